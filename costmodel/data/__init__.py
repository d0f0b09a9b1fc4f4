"""Measured runs: the dataset contract, validation, and the files that hold them.

One row per measured run of a confidential guest:

- :mod:`~costmodel.data.contract` — the columns (``dataset.schema.json``) and :class:`DataError`;
- :mod:`~costmodel.data.validate` — every cell parsed and checked, errors naming file, line
  and column; unknown values stay unknown (NA), never invented;
- :mod:`~costmodel.data.files` — CSV and Parquet read, written atomically, runs appended.

The frames :func:`load` and :func:`validate` return are indexed by the line (CSV) or row
number, so code further down (fitting) can name it too.
"""

from costmodel.data.contract import (
           FORMATS,
           PROVENANCE,
           REQUIRED,
           TARGETS,
           DataError,
           Said,
           columns,
           schema,
)
from costmodel.data.files import append, frame_sha256, load, ordered, to_csv_text, write
from costmodel.data.validate import validate

__all__ = ["FORMATS", "PROVENANCE", "REQUIRED", "TARGETS", "DataError", "Said", "append", "columns", "frame_sha256", "load",
           "ordered", "schema", "to_csv_text", "validate", "write"]
