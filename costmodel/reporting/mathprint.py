"""The print form of a report's formulas: each laid-out formula's SVG drawn to a PNG at print
resolution for the PDF.

The HTML page keeps the SVG formulas (:mod:`~costmodel.reporting.mathsvg`): sharp at any zoom,
and a browser draws them at once. WeasyPrint, though, parses every glyph's outline point by
point in Python each time the glyph is used: the formulas of one report (≈80, 40k points)
were most of the PDF's drawing time. On paper a formula at :data:`SCALE` times its CSS size
(≈380 px per inch) looks the same, so :func:`for_print` swaps each formula image for that PNG,
at the same CSS size and baseline, before the page is printed.

ziamath's SVGs use a small subset of SVG: ``<symbol viewBox>`` holding glyph ``<path>`` s (some in a
plain ``<g>``) of
absolute ``M``/``L``/``Q``/``Z`` commands, ``<use x y width height fill>`` placing them, and
``<rect>`` for fraction bars and rules. :func:`print_png` draws exactly that subset with
Matplotlib's Agg rasteriser (anti-aliased, non-zero fill as SVG's default); an SVG with anything
else is left as it is. Each print form is drawn once per host (the on-disk cache, kind
``math-print``), and a report's are drawn while its kernel runs (:mod:`~costmodel.reporting.execute`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import xml.etree.ElementTree as ElementTree
from functools import lru_cache
from pathlib import Path

from costmodel import cache

#: The on-disk cache kind of formulas' print forms.
CACHE_KIND = "math-print"

#: Pixels per CSS pixel of a formula's print form (96 CSS px per inch: ≈384 px per inch).
SCALE = 4
_SVG_NS = "{http://www.w3.org/2000/svg}"
_IMAGE = re.compile(r"<img\b[^>]*>")
_SVG_SOURCE = re.compile(r'(\bsrc=")data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)(")')
_FORMULA_CLASS = re.compile(r'\bclass="math-(?:inline|display)"')
_TOKEN = re.compile(r"[MLQZ]|-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class Unsupported(ValueError):
    """An SVG outside the subset ziamath writes."""


def _path(d: str):
    """``(vertices, codes)`` of an SVG path of absolute ``M``, ``L``, ``Q`` and ``Z`` commands."""
    from matplotlib.path import Path

    vertices, codes = [], []
    tokens = _TOKEN.findall(d)
    if not tokens:
        raise Unsupported("an empty path")
    i, start, command = 0, (0.0, 0.0), None
    counts = {"M": 1, "L": 1, "Q": 2}
    while i < len(tokens):
        if tokens[i] in "MLQZ":
            command, i = tokens[i], i + 1
            if command == "Z":
                vertices.append(start)
                codes.append(Path.CLOSEPOLY)
                continue
        elif command is None or command == "Z":
            raise Unsupported(f"a number without a command in {d[:40]!r}")
        points = []
        for _ in range(counts[command]):
            try:
                points.append((float(tokens[i]), float(tokens[i + 1])))
            except (IndexError, ValueError):
                raise Unsupported(f"a short {command} in {d[:40]!r}") from None
            i += 2
        if command == "M":
            start = points[0]
            codes.append(Path.MOVETO)
            command = "L"  # further pairs after a move are lines (SVG)
        elif command == "L":
            codes.append(Path.LINETO)
        else:
            codes.extend((Path.CURVE3, Path.CURVE3))
        vertices.extend(points)
    return vertices, codes


def _paths_in(element):
    """The ``<path>`` s of a symbol, also inside plain ``<g>`` (no attributes: no transform, no fill)."""
    for child in element:
        if child.tag == f"{_SVG_NS}path":
            yield child
        elif child.tag == f"{_SVG_NS}g" and not child.attrib:
            yield from _paths_in(child)
        else:
            raise Unsupported(f"a <{child.tag}> in a symbol")


def _numbers(element, *names: str) -> list[float]:
    try:
        return [float(element.get(name, "0")) for name in names]
    except ValueError:
        raise Unsupported(f"a non-numeric {names} on <{element.tag}>") from None


def print_png(svg: str, scale: float = SCALE) -> bytes:
    """A ziamath formula's SVG as a grey-and-alpha PNG, ``scale`` pixels per CSS pixel.

    Raises :class:`Unsupported` for SVG outside the subset ziamath writes (module docstring)."""
    import numpy as np
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.colors import to_rgba
    from matplotlib.path import Path
    from matplotlib.transforms import Affine2D
    from PIL import Image

    try:
        root = ElementTree.fromstring(svg)
    except ElementTree.ParseError as error:
        raise Unsupported(str(error)) from None
    if root.tag != f"{_SVG_NS}svg":
        raise Unsupported(f"a root <{root.tag}>")
    x0, y0, width, height = (float(v) for v in root.get("viewBox", "").split())
    css_width, css_height = float(root.get("width", width)), float(root.get("height", height))
    columns, rows = max(1, round(css_width * scale)), max(1, round(css_height * scale))
    # user units → device pixels, y down in SVG and up in Agg
    to_pixels = Affine2D().translate(-x0, -y0).scale(columns / width, -rows / height).translate(0, rows)
    symbols = {}
    renderer = RendererAgg(columns, rows, 72)
    gc = renderer.new_gc()
    gc.set_antialiased(True)
    gc.set_linewidth(0)

    def fill(vertices, codes, transform, colour):
        if vertices:
            renderer.draw_path(gc, Path(vertices, codes), transform, to_rgba(colour))

    for element in root:
        tag = element.tag.removeprefix(_SVG_NS)
        if tag == "symbol":
            paths = list(_paths_in(element))
            view = [float(v) for v in element.get("viewBox", "").split()]
            if len(view) != 4:
                raise Unsupported("a symbol without a viewBox")
            vertices, codes = [], []
            for path in paths:
                v, c = _path(path.get("d", ""))
                vertices.extend(v)
                codes.extend(c)
            symbols[element.get("id")] = (view, vertices, codes)
        elif tag == "use":
            href = (element.get("href") or element.get("{http://www.w3.org/1999/xlink}href") or "").lstrip("#")
            if href not in symbols:
                raise Unsupported(f"a use of an unknown symbol {href!r}")
            (vx, vy, vw, vh), vertices, codes = symbols[href]
            x, y, w, h = _numbers(element, "x", "y", "width", "height")
            if vw <= 0 or vh <= 0 or w <= 0 or h <= 0:  # an empty viewBox or viewport draws nothing (SVG)
                continue
            k = min(w / vw, h / vh)  # preserveAspectRatio xMidYMid meet, SVG's default
            placed = Affine2D().translate(-vx, -vy).scale(k).translate(x + (w - vw * k) / 2, y + (h - vh * k) / 2)
            fill(vertices, codes, placed + to_pixels, element.get("fill", "black"))
        elif tag == "rect":
            x, y, w, h = _numbers(element, "x", "y", "width", "height")
            corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)]
            fill(corners, [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY], to_pixels,
                 element.get("fill", "black"))
        elif tag == "path":
            vertices, codes = _path(element.get("d", ""))
            fill(vertices, codes, to_pixels, element.get("fill", "black"))
        else:
            raise Unsupported(f"a <{tag}> element")
    rgba = np.asarray(renderer.buffer_rgba())
    image = Image.fromarray(np.ascontiguousarray(rgba)).convert("LA")
    buffer = io.BytesIO()
    image.save(buffer, format="png", compress_level=1)  # WeasyPrint decodes and compresses it again
    return buffer.getvalue()


@lru_cache(maxsize=1)
def _fingerprint() -> str:
    """What a print form depends on besides its SVG: this module and the drawing libraries' versions."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for version in cache.versions("matplotlib", "pillow", "numpy"):
        digest.update(f"\0{version}".encode())
    return digest.hexdigest()


@lru_cache(maxsize=4096)
def _print_uri(encoded: str) -> str | None:
    """The print form of a formula's base64 SVG as a ``data:`` URI (None: keep the SVG); drawn once
    per host, kept in the on-disk cache (kind ``math-print``) under the SVG and :func:`_fingerprint`."""
    key = hashlib.sha256(f"{_fingerprint()}\0{encoded}".encode()).hexdigest()
    known = cache.read(CACHE_KIND, key)
    if known is not None and (known == "svg" or known.startswith("data:image/png;base64,")):
        return None if known == "svg" else known
    try:
        uri = "data:image/png;base64," + base64.b64encode(print_png(base64.b64decode(encoded).decode())).decode()
    except (Unsupported, ValueError, UnicodeDecodeError):
        uri = None
    cache.write(CACHE_KIND, key, uri or "svg")
    return uri


def for_print(page: str) -> str:
    """``page`` with each formula image's SVG swapped for its print-resolution PNG (same CSS size
    and baseline, same alternative text); a formula outside ziamath's subset keeps its SVG."""
    def swap_source(match: re.Match) -> str:
        uri = _print_uri(match[2])
        return match[0] if uri is None else f"{match[1]}{uri}{match[3]}"

    def swap(tag: re.Match) -> str:
        return _SVG_SOURCE.sub(swap_source, tag[0]) if _FORMULA_CLASS.search(tag[0]) else tag[0]

    return _IMAGE.sub(swap, page)
