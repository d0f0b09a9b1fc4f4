"""Calibrations: the numbers bound to the model's coefficients, with where they came from.

- :mod:`~costmodel.calibration.values` — :class:`Calibration` and its file format;
- :mod:`~costmodel.calibration.reference` — the default calibration, solved by code from
  the published reference measurements (``costmodel/reference/``).
"""

from costmodel.calibration.reference import (
                                             REFERENCE_ASSUMED_INPUTS,
                                             REFERENCE_DATA,
                                             default,
                                             reference_calibration,
)
from costmodel.calibration.values import (
                                             FORMAT,
                                             Calibration,
                                             Coefficient,
                                             FitRecord,
                                             Origin,
                                             assumed,
                                             load_or_default,
)

__all__ = ["FORMAT", "REFERENCE_ASSUMED_INPUTS", "REFERENCE_DATA", "Calibration", "Coefficient", "FitRecord", "Origin",
           "assumed", "default",
           "load_or_default", "reference_calibration"]
