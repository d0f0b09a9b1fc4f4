"""The dataset contract: the columns a file of measured runs has, and the error it raises.

The contract is written down twice, in agreement: ``dataset.schema.json`` beside this
module (machine-readable, a JSON Schema of one normalised row, with units and roles as
``x-`` annotations) and ``docs/data-schema.md``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from costmodel.errors import InputError

#: Columns every file must have (a cell of ``vcpus`` may still be empty: unknown).
REQUIRED = ("platform", "memory_bytes", "vcpus", "hugepage_bytes")


#: Measured quantities the model predicts (and :mod:`costmodel.fitting.fit` can fit).
TARGETS = ("splits", "merges", "conversion_ops", "conversion_cycles", "split_merge_cycles")


#: Where a run came from.
PROVENANCE = ("run_id", "source", "date", "kernel", "notes")


#: File types by extension.
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


_MORE_SHOWN = 3


class Said(str):
    """A description shown as is in an error (not quoted like a value the user typed)."""

    def __repr__(self) -> str:
        return str(self)


class DataError(InputError):
    """A dataset does not meet its contract.

    ``problems`` lists every problem found as ``(where, found, expected)``; the message
    shows the first one and how many more there are, with where they are.
    """

    def __init__(self, where: str, found: object, expected: str, problems: list | None = None):
        self.problems = problems or [(where, found, expected)]
        super().__init__(where, found, expected)
        more = self.problems[1:]
        if more:
            shown = "; ".join(w for w, _, _ in more[:_MORE_SHOWN])
            extra = ", …" if len(more) > _MORE_SHOWN else ""
            self.args = (f"{self.args[0]} (and {len(more)} more: {shown}{extra})",)

    def __str__(self) -> str:
        return self.args[0]


@lru_cache(maxsize=1)
def schema() -> dict:
    """The machine-readable contract (``costmodel/data/dataset.schema.json``)."""
    text = resources.files("costmodel.data").joinpath("dataset.schema.json").read_text()
    return json.loads(text)


def columns() -> dict[str, dict]:
    """Known columns, in schema order, each with its JSON Schema entry."""
    return dict(schema()["properties"])
