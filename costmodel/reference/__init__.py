"""The published measurements, shipped with the package and never edited by code.

``roth-2025-07.csv`` holds the only published numbers (``README.md`` beside it gives the
source and how the message was read). Read them through :data:`REFERENCE_DATA`, which
works from a checkout and from an installed wheel alike.
"""

from importlib import resources
from pathlib import Path

#: Folder of the shipped reference files (a real directory: the package is never zipped).
DIRECTORY = Path(str(resources.files(__name__)))
#: The published reference runs (Roth, July 2025).
REFERENCE_DATA = DIRECTORY / "roth-2025-07.csv"
