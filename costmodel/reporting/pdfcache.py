"""Printed pages kept per host: a report's PDF in the on-disk cache under a key of the exact
page it was printed from and of everything WeasyPrint prints with.

The PDF is a function of the HTML page (which holds every number, image and formula of the
report, and the style sheet), the print form of its formulas, the WeasyPrint, pydyf, Pillow and
fontTools versions, the system libraries it draws text with (Pango, HarfBuzz, fontconfig,
FreeType: the files mapped into this process) and the fonts installed. Reports are
reproducible (the same page gives the same bytes, ``tests/test_report_reproducible.py``), so a
page printed before on this host is read back (:mod:`costmodel.cache`, kind ``report-pdf``)
instead of laid out again. Any change to the page (another configuration, calibration, data
file or code) is another key.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache

from costmodel import cache

#: The on-disk cache kind of printed reports.
CACHE_KIND = "report-pdf"
_LIBRARIES = ("pango", "harfbuzz", "fontconfig", "freetype", "cairo", "glib", "gobject", "fribidi", "png", "libz")
_FONT_DIRECTORIES = ("/etc/fonts", "/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts")


def _files(paths) -> list[str]:
    """``path size mtime`` of each file, sorted (missing files are left out)."""
    out = []
    for path in sorted(set(paths)):
        try:
            status = os.stat(path)
        except OSError:
            continue
        out.append(f"{path} {status.st_size} {status.st_mtime_ns}")
    return out


def _libraries() -> list[str]:
    """The text and image libraries mapped into this process (after WeasyPrint is imported)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if ".so" in line}
    except OSError:
        return ["no /proc/self/maps"]
    return _files(p for p in paths if p.startswith("/") and any(name in os.path.basename(p) for name in _LIBRARIES))


def _fonts() -> list[str]:
    """The font files and fontconfig's settings."""
    found = []
    for directory in _FONT_DIRECTORIES:
        for root, dirs, files in os.walk(os.path.expanduser(directory)):
            dirs.sort()
            found.extend(os.path.join(root, name) for name in files)
    return _files(found)


@lru_cache(maxsize=1)
def _environment() -> str:
    versions = cache.versions("weasyprint", "pydyf", "pillow", "fonttools", "tinycss2", "cssselect2", "tinyhtml5")
    return "\0".join([cache.code_fingerprint(), *versions, *_libraries(), *_fonts()])


def key(page: str) -> str:
    """The cache key of the PDF printed from ``page`` (call after importing WeasyPrint)."""
    digest = hashlib.sha256(page.encode())
    digest.update(b"\0" + _environment().encode())
    return digest.hexdigest()


def read(entry: str) -> bytes | None:
    """The PDF stored under ``entry``, or None."""
    data = cache.read_bytes(CACHE_KIND, entry)
    return data if data is not None and data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF") else None


def write(entry: str, data: bytes) -> None:
    cache.write_bytes(CACHE_KIND, entry, data)
