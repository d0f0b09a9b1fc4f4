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


def _sympy_version() -> str:
    """SymPy's version without importing SymPy (a warm ``predict`` never does): read from
    ``sympy/release.py``, where ``sympy.__version__`` comes from; imported only if that fails."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("sympy")
    if spec is not None and spec.origin:
        try:
            text = (Path(spec.origin).parent / "release.py").read_text()
            found = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M)
            if found:
                return found.group(1)
        except OSError:
            pass
    import sympy

    return sympy.__version__


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 over the package's modules and the versions of what they compile with."""
    import numpy

    digest = hashlib.sha256(f"sympy {_sympy_version()} numpy {numpy.__version__}".encode())
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
