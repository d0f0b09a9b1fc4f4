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
``~/.cache/costmodel``. ``COSTMODEL_CACHE=0`` turns the cache off. Each kind of entry is
kept under :data:`KIND_BUDGET_BYTES` (least recently used removed first).
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


def _modules() -> list[tuple[str, str]]:
    """(path relative to the package, absolute path) of every module, sorted."""
    found = []
    for root, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        relative = os.path.relpath(root, PACKAGE_DIR).replace(os.sep, "/")
        for name in files:
            if name.endswith(".py"):
                found.append((name if relative == "." else f"{relative}/{name}", os.path.join(root, name)))
    return sorted(found)


def versions(*names: str) -> list[str]:
    """``"NAME VERSION"`` of each installed distribution, ``"NAME none"`` when it is missing: the
    library part of a cache key."""
    from importlib import metadata

    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} none")
    return found


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 over the package's modules and the versions of what they compile with.

    Hashing every module's text takes a CLI call tens of milliseconds, so the result is also
    kept under a key of the modules' names, sizes and modification times: an edited file
    changes those and the text is hashed again."""
    import numpy

    versions = f"sympy {_sympy_version()} numpy {numpy.__version__}"
    modules = _modules()
    stats = hashlib.sha256(versions.encode())
    for relative, path in modules:
        status = os.stat(path)
        stats.update(f"\0{relative}\0{status.st_size}\0{status.st_mtime_ns}".encode())
    known = read("fingerprint", stats.hexdigest())
    if known is not None and len(known) == 64 and all(c in "0123456789abcdef" for c in known):
        return known
    digest = hashlib.sha256(versions.encode())
    for relative, path in modules:
        digest.update(relative.encode())
        with open(path, "rb") as handle:
            digest.update(handle.read())
    write("fingerprint", stats.hexdigest(), digest.hexdigest())
    return digest.hexdigest()


def key(*parts: str) -> str:
    """A cache key for ``parts`` under the current code fingerprint."""
    return hashlib.sha256("\0".join((code_fingerprint(), *parts)).encode()).hexdigest()


#: Bytes one kind of entry may take before its least recently used entries are removed
#: (``$COSTMODEL_CACHE_MAX_MB`` per kind): a sweep of thousands of reports, each with its own
#: figures and pages, must not fill the disk. [B]
KIND_BUDGET_BYTES = 256 * 1024 * 1024


def _budget() -> int:
    try:
        return max(0, int(float(os.environ["COSTMODEL_CACHE_MAX_MB"]) * 1024 * 1024))
    except (KeyError, ValueError):
        return KIND_BUDGET_BYTES


def read(kind: str, entry_key: str) -> str | None:
    """The cached text, or None (missing, unreadable, or caching off). A hit marks the entry
    as recently used."""
    if not enabled():
        return None
    path = directory() / kind / f"{entry_key}.txt"
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        os.utime(path)
    except OSError:
        pass
    return text


def write(kind: str, entry_key: str, text: str) -> None:
    """Store ``text`` atomically, then keep the kind within its budget; failure to write only
    means no caching."""
    if not enabled():
        return
    from costmodel.files import atomic_write_text

    try:
        atomic_write_text(directory() / kind / f"{entry_key}.txt", text)
        prune(directory() / kind, _budget())
    except OSError:
        pass


def read_bytes(kind: str, entry_key: str) -> bytes | None:
    """Bytes stored by :func:`write_bytes`, or None (missing, damaged, or caching off)."""
    import base64
    import binascii

    text = read(kind, entry_key)
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def write_bytes(kind: str, entry_key: str, data: bytes) -> None:
    """Store ``data`` (as base64 text, like every entry)."""
    import base64

    write(kind, entry_key, base64.b64encode(data).decode())


def prune(folder: Path, budget: int) -> list[Path]:
    """Remove the least recently used entries (oldest modification time first) of ``folder``
    until its entries take at most ``budget`` bytes; returns what was removed."""
    entries = []
    with os.scandir(folder) as found:
        for entry in found:
            if entry.is_file(follow_symlinks=False) and entry.name.endswith(".txt"):
                status = entry.stat(follow_symlinks=False)
                entries.append((status.st_mtime_ns, entry.name, status.st_size))
    total = sum(size for _, _, size in entries)
    removed = []
    for _, name, size in sorted(entries):
        if total <= budget:
            break
        try:
            (folder / name).unlink()
        except FileNotFoundError:
            pass
        total -= size
        removed.append(folder / name)
    return removed


def code(source: str, filename: str):
    """``compile(source, filename, "exec")``, the code object kept on disk (marshal, keyed by
    the source and the interpreter's version): compiling the generated model program takes
    longer than loading it."""
    import marshal
    import sys

    entry = hashlib.sha256("\0".join((sys.version, filename, source)).encode()).hexdigest()
    path = directory() / "code" / f"{entry}.marshal"
    if enabled():
        try:
            loaded = marshal.loads(path.read_bytes())
            if type(loaded) is type(code.__code__):
                return loaded
        except (OSError, EOFError, ValueError, TypeError):  # missing or damaged: compiled again
            pass
    compiled = compile(source, filename, "exec")
    if enabled():
        from costmodel.files import atomic_write_bytes

        try:
            atomic_write_bytes(path, marshal.dumps(compiled))
        except OSError:
            pass
    return compiled
