"""The report's figure theme (seaborn's ``whitegrid`` style in its ``paper`` context) without
importing seaborn in every kernel.

seaborn sets the theme by writing Matplotlib settings (rcParams), the colours the
shorthand codes ``b``, ``g``, … stand for, and its default colour map (registered when it is
imported); importing it also imports SciPy's statistics (≈0.9 s per kernel here). The settings it writes are asked of seaborn once, kept in the
on-disk cache (:mod:`costmodel.cache`, kind ``plot-theme``, keyed by the theme and the
Matplotlib and seaborn versions) and applied from there by every later kernel: the same
settings, so the same pixels.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

from costmodel import cache

CACHE_KIND = "plot-theme"
STYLE, CONTEXT, FONT_SCALE = "whitegrid", "paper", 1.0
_CODES = "bgrmyck"


@lru_cache(maxsize=1)
def _key() -> str:
    versions = cache.versions("matplotlib", "seaborn")
    return hashlib.sha256(f"{STYLE} {CONTEXT} {FONT_SCALE} v2 {' '.join(versions)}".encode()).hexdigest()


def _from_seaborn() -> dict:
    """Apply the theme with seaborn and return what it set, as JSON-ready settings."""
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(style=STYLE, context=CONTEXT, font_scale=FONT_SCALE)
    keys = set(sns.axes_style(STYLE)) | set(sns.plotting_context(CONTEXT, FONT_SCALE)) | {"font.family"}
    rc = {key: mpl.rcParams[key] for key in sorted(keys)}
    colormap = mpl.colormaps[rc["image.cmap"]] if "image.cmap" in rc else None  # seaborn's own, registered on import
    return {"rc": json.loads(json.dumps(rc, default=str)),
            "colormaps": {colormap.name: colormap.colors.tolist() if hasattr(colormap.colors, "tolist")
                          else [list(c) for c in colormap.colors]}
            if isinstance(colormap, mpl.colors.ListedColormap) else {},
            "cycle": [c if isinstance(c, str) else list(c) for c in mpl.rcParams["axes.prop_cycle"].by_key()["color"]],
            "codes": {code: list(mpl.colors.colorConverter.colors[code]) for code in _CODES}}


def _apply(theme: dict) -> None:
    import matplotlib as mpl
    from cycler import cycler

    for name, colors in theme.get("colormaps", {}).items():
        if name not in mpl.colormaps:
            mpl.colormaps.register(mpl.colors.ListedColormap(colors, name=name))
    mpl.rcParams.update(theme["rc"])
    mpl.rcParams["axes.prop_cycle"] = cycler(color=[c if isinstance(c, str) else tuple(c) for c in theme["cycle"]])
    for code, rgb in theme["codes"].items():
        mpl.colors.colorConverter.colors[code] = tuple(rgb)


def _valid(theme) -> bool:
    return (isinstance(theme, dict) and isinstance(theme.get("rc"), dict) and isinstance(theme.get("cycle"), list)
            and isinstance(theme.get("codes"), dict) and set(theme["codes"]) == set(_CODES))


def apply() -> None:
    """Set the theme: from the on-disk cache when this host asked seaborn before, else from seaborn."""
    text = cache.read(CACHE_KIND, _key())
    if text is not None:
        try:
            theme = json.loads(text)
        except ValueError:
            theme = None
        if _valid(theme):
            try:
                _apply(theme)
                return
            except (KeyError, ValueError, TypeError):  # a damaged entry: ask seaborn again
                pass
    theme = _from_seaborn()
    cache.write(CACHE_KIND, _key(), json.dumps(theme, sort_keys=True))
