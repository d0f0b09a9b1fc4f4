"""Measured runs: the dataset contract, validation, and the files that hold them.

One row per measured run of a confidential guest:

- :mod:`~costmodel.data.contract` — the columns (``dataset.schema.json``) and :class:`DataError`;
- :mod:`~costmodel.data.validate` — every cell parsed and checked, errors naming file, line
  and column; unknown values stay unknown (NA), never invented;
- :mod:`~costmodel.data.files` — CSV and Parquet read, written atomically, runs appended.

The frames :func:`load` and :func:`validate` return are indexed by the line (CSV) or row
number, so code further down (fitting) can name it too.
"""

import sys as _sys
import types as _types

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

# Lazy (PEP 562): the contract is plain data (``costmodel fit --help`` lists TARGETS from it);
# reading and validating files needs pandas, imported when one of these is first used.
_LAZY = {"append": "files", "frame_sha256": "files", "load": "files", "ordered": "files", "to_csv_text": "files",
         "write": "files", "validate": "validate"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(_types.ModuleType):
    """Importing the submodule ``validate`` must not hide the function ``validate`` (the
    import system sets a package attribute per submodule it loads)."""

    def __setattr__(self, name, value):
        if name == "validate" and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


__all__ = ["FORMATS", "PROVENANCE", "REQUIRED", "TARGETS", "DataError", "Said", "append", "columns", "frame_sha256", "load",
           "ordered", "schema", "to_csv_text", "validate", "write"]
