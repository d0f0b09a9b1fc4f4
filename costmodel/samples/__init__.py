"""Synthetic sample runs, shipped with the package for trying the fit and the reports.

They are made by ``make_samples.py`` beside them from known coefficients (seeded); they are
not measurements. ``README.md`` says what each file holds.
"""

from importlib import resources
from pathlib import Path

#: Folder of the shipped sample files.
DIRECTORY = Path(str(resources.files(__name__)))
#: 128 synthetic runs across shapes, with 5 % noise (what ``costmodel fit`` examples use).
SYNTHETIC_RUNS = DIRECTORY / "synthetic-runs.csv"
#: The coefficients behind :data:`SYNTHETIC_RUNS`.
SYNTHETIC_TRUTH = DIRECTORY / "synthetic-truth.json"
