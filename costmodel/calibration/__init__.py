"""Calibrations: the numbers bound to the model's coefficients, with where they came from.

- :mod:`~costmodel.calibration.values` — :class:`Calibration` (one :class:`Coefficient` per
  coefficient, one :class:`FitRecord` per fitted target) and its file format;
- :mod:`~costmodel.calibration.reference` — the default calibration, solved by code from
  the published reference measurements (``costmodel/reference/``).
"""

from costmodel.calibration.reference import (
                                             REFERENCE_ASSUMED_INPUTS,
                                             REFERENCE_DATA,
                                             default,
                                             load_or_default,
                                             reference_calibration,
)
from costmodel.calibration.values import FORMAT, Calibration, Coefficient, FitRecord, Origin, assumed

__all__ = ["FORMAT", "REFERENCE_ASSUMED_INPUTS", "REFERENCE_DATA", "Calibration", "Coefficient", "FitRecord", "Origin",
           "assumed", "default", "load_or_default", "reference_calibration"]
