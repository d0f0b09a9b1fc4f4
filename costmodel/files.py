"""Writing files so that a failure never leaves one half-written.

Everything the project writes (calibrations, datasets, reports, cache entries) goes through
a temporary file beside the target and an atomic rename; the file then gets the mode a
plain ``open()`` would give it under the user's umask (``mkstemp`` alone makes it 0600).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path


def sha256_bytes(data: bytes) -> str:
    """SHA-256 of ``data``, hex."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, hex (what provenance records cite)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def staged_copy(path: Path, data: bytes) -> str:
    """Write ``data`` to a new temporary file beside ``path``; return its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, default_file_mode())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Replace ``path`` with ``data`` in one rename; on failure the old file stays as it was."""
    path = Path(path)
    tmp = staged_copy(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` for text (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


# --- where the project may write ------------------------------------------------------------
#: Subpackages whose files ship as package data (read through importlib.resources).
SHIPPED_DATA = ("costmodel.reference", "costmodel.samples", "costmodel.notebooks", "costmodel.data")


def protected_directories() -> list[Path]:
    """The installed package's directory and its shipped data, symlinks resolved: no command
    writes there (an ingest into the published reference would change every default)."""
    import importlib.util

    roots = []
    for package in ("costmodel", *SHIPPED_DATA):
        spec = importlib.util.find_spec(package)
        # a namespace package (notebooks/) may span several directories: each is protected
        roots += [Path(p).resolve() for p in ((spec.submodule_search_locations or []) if spec else [])]
    return list(dict.fromkeys(roots))


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_output(path: str | os.PathLike, where: str, *, replace_symlink: bool = False) -> Path:
    """Check, before any work, that ``path`` may be written as a file; return it.

    Refused, with :class:`~costmodel.errors.InputError` naming ``where``: a path inside the
    installed package or its shipped data (symlinks resolved); an existing directory; a
    symlink (unless ``replace_symlink``); a read-only file; a parent that is a file or that
    cannot be written.
    """
    from costmodel.errors import InputError

    path = Path(path).expanduser()
    if not str(path).strip() or "\x00" in str(path):
        raise InputError(where, str(path), "a file path")
    resolved = path.resolve(strict=False)
    for root in protected_directories():
        if _within(resolved, root):
            raise InputError(where, str(path), f"a path outside the installed costmodel package ({root}): "
                             "its reference data, samples and notebooks are never written")
    if path.is_symlink() and not replace_symlink:
        raise InputError(where, str(path), f"a regular file or a new name (it is a symlink to {os.readlink(path)})")
    if path.is_dir():
        raise InputError(where, str(path), "a file name (it is a directory)")
    if path.exists() and not (path.stat().st_mode & 0o222 and os.access(path, os.W_OK)):  # root too: mode bits
        raise InputError(where, str(path), "a writable file (it is read-only)")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(where, str(path), f"a path under a directory ({parent} is a file)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(where, str(path), f"a path under a writable directory ({parent} is not writable)")
    return path


def check_file_name(name: str, where: str) -> str:
    """A file name stem that stays in its directory: no separator, not ``.``/``..``, no
    control character, at most 200 characters."""
    from costmodel.errors import InputError

    text = str(name)
    if (not text.strip() or text in (".", "..") or any(c in text for c in "/\\") or len(text) > 200
            or any(ord(c) < 32 or ord(c) == 127 for c in text)):
        raise InputError(where, text[:80], "a file name without '/', '\\', control characters or '..' "
                         "(at most 200 characters; files go into the output directory)")
    return text


def check_output_dir(directory: str | os.PathLike, names: list[str], where: str, name_where: str = "") -> list[Path]:
    """Check, before any work, that every ``directory/name`` may be written (see
    :func:`check_output`); return those paths."""
    from costmodel.errors import InputError

    directory = Path(directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise InputError(where, str(directory), "a directory (it is a file)")
    return [check_output(directory / check_file_name(name, name_where or where), where) for name in names]

def atomic_write_set(files: Mapping[str | os.PathLike, bytes]) -> list[Path]:
    """Write several files as one set: all staged beside their targets first, then renamed.

    A failure while staging leaves none of the targets touched and no temporary behind;
    the renames that follow are each atomic, so every target is either its old or its new
    whole file.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for target, data in files.items():
            target = Path(target)
            staged.append((staged_copy(target, data), target))
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
    return [target for _, target in staged]


#: What :func:`staged_copy` names a temporary: ``.`` + the target's name + ``.`` + mkstemp's 8 characters.
_STAGED = re.compile(r"^\.(.+)\.[A-Za-z0-9_]{8}$")


def remove_staged(directory: str | os.PathLike, suffixes: Iterable[str]) -> list[Path]:
    """Remove temporaries a killed writer left in ``directory`` for targets ending in ``suffixes``.

    Only hidden files named as :func:`staged_copy` names them (``.NAME.SUFFIX.xxxxxxxx``)
    are removed; call it only while no other writer uses the directory (see
    :func:`lock_directory`). Returns what was removed.
    """
    directory = Path(directory)
    endings = tuple(f".{s.lstrip('.')}" for s in suffixes)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for path in sorted(directory.iterdir()):
        match = _STAGED.match(path.name)
        if match and match[1].endswith(endings) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class DirectoryBusy(RuntimeError):
    """Another process holds the lock on a directory (:func:`lock_directory`)."""


@contextlib.contextmanager
def lock_directory(directory: str | os.PathLike):
    """Hold an exclusive lock on ``directory`` itself (``flock`` on its descriptor; no lock file).

    Creates the directory if needed. Raises :class:`DirectoryBusy` at once when another
    process holds it; the lock goes with the process, so a killed holder leaves none.
    """
    import fcntl

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DirectoryBusy(str(directory)) from None
        yield directory
    finally:
        os.close(fd)


def write_parquet_chunks(path: str | os.PathLike, frames: Iterable) -> int:
    """Write pandas frames, one after another, into one Parquet file; returns the rows written.

    Each frame is written as it comes (a row group), so the whole never has to fit in
    memory; every frame must have the first one's columns. The file appears only when
    complete (staged beside ``path``, then renamed); on failure nothing is left.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    written = 0
    writer = None
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False,
                                         schema=writer.schema if writer is not None else None)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            written += len(frame)
        if writer is None:
            raise ValueError("no rows to write")
        writer.close()
        writer = None
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.close()
        Path(tmp).unlink(missing_ok=True)
    return written
