"""A small on-disk cache for work that only depends on the code: compiled model functions
and the default calibration.

Deriving the default calibration and compiling the model with SymPy takes about a second
per process: once per CLI call, and once per report notebook's kernel. Both results
depend only on the package's own source, the library versions and (for the calibration)
the reference data, so they are cached under a key that hashes all of those. A changed
file, an upgraded SymPy or an edited data file gives a new key; stale entries are never
read. An entry that cannot be read or parsed is ignored and recomputed; a cache directory
that cannot be written is simply not used.

Location: ``$COSTMODEL_CACHE_DIR``, else ``$XDG_CACHE_HOME/costmodel``, else
``~/.cache/costmodel``. ``COSTMODEL_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def enabled() -> bool:
    return os.environ.get("COSTMODEL_CACHE", "1") != "0"


def directory() -> Path:
    """Where entries live (see the module docstring)."""
    if os.environ.get("COSTMODEL_CACHE_DIR"):
        return Path(os.environ["COSTMODEL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "costmodel"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 over the package's modules and the versions of what they compile with."""
    from importlib.metadata import version

    import numpy

    # SymPy's version from its metadata, not by importing it (1-2 s): cluster workers that only
    # simulate never load SymPy, yet they compute this for the version check.
    digest = hashlib.sha256(f"sympy {version('sympy')} numpy {numpy.__version__}".encode())
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def key(*parts: str) -> str:
    """A cache key for ``parts`` under the current code fingerprint."""
    return hashlib.sha256("\0".join((code_fingerprint(), *parts)).encode()).hexdigest()


def read(kind: str, entry_key: str) -> str | None:
    """The cached text, or None (missing, unreadable, or caching off)."""
    if not enabled():
        return None
    try:
        return (directory() / kind / f"{entry_key}.txt").read_text()
    except (OSError, UnicodeDecodeError):
        return None


def write(kind: str, entry_key: str, text: str) -> None:
    """Store ``text`` atomically; failure to write only means no caching."""
    if not enabled():
        return
    from costmodel.files import atomic_write_text

    try:
        atomic_write_text(directory() / kind / f"{entry_key}.txt", text)
    except OSError:
        pass
