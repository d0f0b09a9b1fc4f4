"""Figures drawn once per host: a report's PNGs kept in the on-disk cache under a key of
everything their pixels depend on.

Drawing the report's figures (Matplotlib's constrained layout, then Agg at 200 px/in) is most
of a report kernel's time, and the same configuration gives the same figures every time.
Each PNG is stored (:mod:`costmodel.cache`, kind ``figure-png``) under a SHA-256 of

- the figure itself: a pickle of the whole figure (every artist, its data, its style and
  the axes' settings), with the one part that differs from process to process left out
  (the transforms' back-references, keyed by ``id()``: the transforms they point to are
  pickled with their owners anyway);
- every Matplotlib setting a drawing reads (``rcParams``), the resolution, the font file the default
  font resolves to (its path, size and modification time);
- the versions of Matplotlib, Pillow, NumPy and FreeType, and the package's code
  fingerprint (:func:`costmodel.cache.code_fingerprint`, which covers this module and
  :mod:`~costmodel.reporting.plots`).

A figure that cannot be pickled (a lambda formatter, say) is simply drawn. Pickles follow
which objects are shared, not only their values: the first kernel on a host, which takes the
theme from seaborn rather than from the cache, keys its figures differently and draws them
again; a key never matches a different figure. Same key, same
bytes: a hit returns exactly the PNG a fresh drawing would give (the reproducibility test of
the reports checks a cold and a warm render against each other). ``COSTMODEL_CACHE=0`` draws
everything.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Callable
from functools import lru_cache

from costmodel import cache

#: The on-disk cache kind of drawn figures.
CACHE_KIND = "figure-png"
#: The first bytes of every PNG file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@lru_cache(maxsize=1)
def _environment() -> str:
    """The libraries and the font a drawing depends on besides the figure and the settings."""
    import os

    import matplotlib
    import numpy
    from matplotlib import font_manager, ft2font

    parts = [f"matplotlib {matplotlib.__version__}", f"numpy {numpy.__version__}",
             f"freetype {getattr(ft2font, '__freetype_version__', '?')}", cache.code_fingerprint()]
    parts += cache.versions("pillow")
    return "\0".join(parts) + "\0" + _font(font_manager, os)


def _font(font_manager, os) -> str:
    """The default font's file as the current settings resolve it: path, size, modification time."""
    try:
        path = font_manager.findfont(font_manager.FontProperties(), fallback_to_default=True)
        status = os.stat(path)
        return f"{path}\0{status.st_size}\0{status.st_mtime_ns}"
    except (OSError, ValueError, RuntimeError):
        return "font ?"


#: Settings of the interactive side (backend, key bindings, GUI toolkits) that no drawing reads;
#: ``backend_fallback`` changes when a module selects Agg, which a cached map skips.
_NOT_DRAWN = ("backend", "backend_fallback", "interactive", "toolbar", "keymap.", "webagg.", "tk.", "macosx.")


def _settings() -> str:
    """Every Matplotlib setting a drawing may read, sorted by name."""
    import matplotlib as mpl

    return "\0".join(f"{name}={mpl.rcParams[name]!r}" for name in sorted(mpl.rcParams)
                      if not name.startswith(_NOT_DRAWN))


class _KeyPickler(pickle.Pickler):
    """A pickle of a figure that is the same in every process: transforms without their
    ``_parents`` (weak back-references keyed by ``id()``). Only hashed, never loaded."""

    def reducer_override(self, obj):
        from matplotlib.transforms import TransformNode

        if isinstance(obj, TransformNode):
            import copyreg

            state = {k: v for k, v in obj.__getstate__().items() if k != "_parents"}
            return copyreg.__newobj__, (type(obj),), state
        return NotImplemented


def figure_key(fig, dpi: float, extra: str = "") -> str | None:
    """The cache key of ``fig`` drawn at ``dpi`` [px/in]; None when it cannot be pickled."""
    buffer = io.BytesIO()
    try:
        _KeyPickler(buffer, protocol=5).dump(fig)
    except Exception:  # noqa: BLE001 - an unpicklable artist: the figure is drawn, not cached
        return None
    digest = hashlib.sha256(buffer.getvalue())
    digest.update(f"\0{float(dpi)!r}\0{extra}\0{_settings()}\0{_environment()}".encode())
    return digest.hexdigest()


def cached(key: str | None, draw: Callable[[], bytes]) -> bytes:
    """The PNG stored under ``key``, or ``draw()``'s, then stored."""
    if key is None or not cache.enabled():
        return draw()
    data = cache.read_bytes(CACHE_KIND, key)
    if data is not None and data.startswith(PNG_SIGNATURE):
        return data
    data = draw()
    cache.write_bytes(CACHE_KIND, key, data)
    return data


def key_of(*parts: str) -> str:
    """A cache key for a figure described by ``parts`` (its inputs), with the settings and the
    environment (:func:`figure_key` for a figure already built)."""
    digest = hashlib.sha256("\0".join(parts).encode())
    digest.update(f"\0{_settings()}\0{_environment()}".encode())
    return digest.hexdigest()
