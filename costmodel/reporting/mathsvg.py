"""Formulas for readers without network: TeX math laid out to inline SVG at export time.

ziamath lays out TeX math in pure Python with its bundled STIX font, so a report shows its
formulas with no MathJax, no CDN and no fonts installed.

Laying out a formula is the slow part of an export (a report has about 80). Each one is laid
out once per host: the ``<img>`` it becomes is kept in the on-disk cache
(:mod:`costmodel.cache`, kind ``math-svg``) under a key of the formula, its size and form,
this module's source and the versions of ziamath and the libraries it lays out with, so the
next report, and the other workers of a batch, read it back instead.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from functools import lru_cache
from pathlib import Path

from costmodel import cache

#: The on-disk cache kind of laid-out formulas.
CACHE_KIND = "math-svg"


def _import_quietly(name: str):
    """Import a renderer, silencing its own import-time deprecation notices.

    ziamath 0.13 opens its font with the legacy ``importlib.resources.path``; WeasyPrint
    warns when HarfBuzz-Subset is absent (``make setup`` installs it). Neither is ours to fix,
    and neither changes the output.
    """
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r"(path is deprecated|HarfBuzz)")
        return importlib.import_module(name)


_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)


_INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)([^$\n]+?)(?<!\\)\$")


_ALIGNED = re.compile(r"^\s*\\begin\{(aligned|align\*?)\}(.*)\\end\{\1\}\s*$", re.S)


@lru_cache(maxsize=1)
def _layout_fingerprint() -> str:
    """What a laid-out formula depends on besides its text: this module and the layout libraries' versions."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for version in cache.versions("ziamath", "ziafont", "latex2mathml"):
        digest.update(f"\0{version}".encode())
    return digest.hexdigest()


def _cache_key(latex: str, size: float, inline: bool) -> str:
    return hashlib.sha256("\0".join((_layout_fingerprint(), latex, repr(float(size)), str(bool(inline)))).encode()
                          ).hexdigest()


@lru_cache(maxsize=4096)
def math_svg(latex: str, size: float = 15.0, inline: bool = False) -> str:
    """``latex`` as an ``<img>`` with an inline SVG ``data:`` URI (no network, no fonts).

    ziamath lays out TeX math in pure Python with its bundled STIX font. The image sits on
    the text baseline (``vertical-align`` from the SVG's descent). Falls back to the LaTeX
    source in ``<code>`` when ziamath cannot lay out a command, so nothing is dropped.
    Read from the on-disk cache when this host laid the formula out before (module docstring).
    """
    key = _cache_key(latex, size, inline)
    cached = cache.read(CACHE_KIND, key)
    if cached is not None and cached.startswith(("<img ", "<code ")) and cached.endswith(">"):
        return cached
    markup = _laid_out(latex, size, inline)
    cache.write(CACHE_KIND, key, markup)
    return markup


def _laid_out(latex: str, size: float, inline: bool) -> str:
    """:func:`math_svg` without the caches: ziamath's layout of ``latex``."""
    ziamath = _import_quietly("ziamath")
    # ziamath sets \min/\max as big operators with (empty) limits: a stray mark below them
    source = re.sub(r"\\(min|max)\b", r"\\operatorname{\1}", latex)
    try:
        svg = ziamath.Latex(source, size=size).svg()
    except Exception:  # noqa: BLE001 - unsupported TeX: show the source instead of failing
        return f'<code class="math-source">{html.escape(latex)}</code>'
    match = re.search(r'width="([0-9.]+)" height="([0-9.]+)" viewBox="([-0-9.]+) ([-0-9.]+) ', svg)
    style = ""
    if match:
        width, height, ymin = float(match[1]), float(match[2]), float(match[4])
        descent = height + ymin
        style = f' style="width:{width:.1f}px;height:{height:.1f}px;vertical-align:{-descent:.1f}px"'
    data = base64.b64encode(svg.encode()).decode()
    kind = "math-inline" if inline else "math-display"
    return f'<img class="{kind}" alt="{html.escape(latex, quote=True)}" src="data:image/svg+xml;base64,{data}"{style}>'


def _display_math(latex: str) -> str:
    """A display formula; ``aligned`` blocks become one row per line (they break across pages)."""
    match = _ALIGNED.match(latex)
    if not match:
        return f'<div class="math-block">{math_svg(latex.strip())}</div>'
    rows = []
    for line in re.split(r"\\\\\s*(?:\n|$)", match[2]):
        if not line.strip():
            continue
        left, _, right = line.partition("&")
        right = right.strip()
        relation = "="
        for rel in ("=", r"\approx", r"\le", r"\ge"):
            if right.startswith(rel):
                relation, right = rel, right[len(rel):].strip()
                break
        cells = [math_svg(left.strip()) if left.strip() else "", math_svg(relation), math_svg(right) if right else ""]
        rows.append("<tr>" + "".join(f'<td class="{c}">{v}</td>' for c, v in zip(("lhs", "rel", "rhs"), cells)) + "</tr>")
    return '<table class="math-aligned"><tbody>' + "".join(rows) + "</tbody></table>"


def render_math(text: str) -> str:
    """Replace ``$$…$$`` and ``$…$`` in Markdown/HTML text with inline SVG images."""
    text = _DISPLAY_MATH.sub(lambda m: "\n\n" + _display_math(m[1]) + "\n\n", text)
    return _INLINE_MATH.sub(lambda m: math_svg(m[1].strip(), size=13.0, inline=True), text)
