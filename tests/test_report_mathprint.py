"""The print form of formulas (costmodel.reporting.mathprint): each ziamath SVG drawn to a PNG at
print resolution, swapped into the page the PDF is printed from."""

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from costmodel.reporting import mathprint, mathsvg


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("COSTMODEL_CACHE", raising=False)
    mathprint._print_uri.cache_clear()
    yield tmp_path / mathprint.CACHE_KIND
    mathprint._print_uri.cache_clear()


def _svg_of(markup: str) -> str:
    return base64.b64decode(re.search(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", markup)[1]).decode()


def _ink(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.mode == "LA"
    return np.asarray(image)[:, :, 1] > 128  # opaque pixels


def test_a_formula_is_drawn_at_four_times_its_css_size_with_ink_inside():
    svg = _svg_of(mathsvg._laid_out(r"\frac{2\,\mathrm{MiB}}{v} + \left\lceil \frac{M}{K} \right\rceil", 15.0, False))
    width, height = (float(v) for v in re.search(r'width="([0-9.]+)" height="([0-9.]+)"', svg).groups())
    ink = _ink(mathprint.print_png(svg))
    assert ink.shape == (round(height * 4), round(width * 4))
    rows, columns = np.nonzero(ink)
    assert 0.05 < ink.mean() < 0.6, "glyphs, not a blank or a filled box"
    assert columns.min() < ink.shape[1] * 0.1 and columns.max() > ink.shape[1] * 0.9, "the formula spans the width"
    assert rows.min() < ink.shape[0] * 0.2 and rows.max() > ink.shape[0] * 0.8, "and the height (fraction bars)"


def test_a_glyph_is_where_its_use_places_it():
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10" viewBox="0 0 20 10">'
           '<symbol id="box" viewBox="0 0 1 1"><path d="M 0 0 L 1 0 L 1 1 L 0 1 Z" /></symbol>'
           '<use href="#box" x="10" y="0" width="10" height="10" fill="black" /></svg>')
    ink = _ink(mathprint.print_png(svg, scale=1))
    assert ink[:, 10:].all() and not ink[:, :10].any(), "the right half, y down as in SVG"


def test_for_print_swaps_formulas_only_and_keeps_what_it_cannot_draw(cache_dir):
    formula = mathsvg._laid_out("x^2", 13.0, True)
    figure = '<img alt="figure" src="data:image/svg+xml;base64,' + base64.b64encode(b"<svg/>").decode() + '">'
    odd = ('<img class="math-inline" src="data:image/svg+xml;base64,'
           + base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><circle r="1"/></svg>').decode()
           + '">')
    page = f"<p>{formula} {figure} {odd}</p>"
    printed = mathprint.for_print(page)
    assert printed.count("data:image/png;base64,") == 1
    assert figure in printed and odd in printed
    assert 'class="math-inline"' in printed and 'alt="x^2"' in printed and "vertical-align" in printed
    assert len(list(cache_dir.iterdir())) == 2, "both answers are kept: a print form and a keep-the-SVG"
    mathprint._print_uri.cache_clear()
    assert mathprint.for_print(page) == printed, "read back from the on-disk cache"


def test_unsupported_svg_raises():
    with pytest.raises(mathprint.Unsupported):
        mathprint.print_png('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><text>x</text></svg>')
    with pytest.raises(mathprint.Unsupported):
        mathprint._path("M 1")
