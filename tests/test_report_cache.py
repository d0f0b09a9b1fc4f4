"""Formulas laid out once per host: the on-disk cache of reporting.mathsvg."""

import pytest

from costmodel.reporting import mathsvg

FORMULA = r"S = \frac{x}{2^{21}} + 1"


@pytest.fixture
def math_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("COSTMODEL_CACHE", raising=False)
    mathsvg.math_svg.cache_clear()
    yield tmp_path / mathsvg.CACHE_KIND
    mathsvg.math_svg.cache_clear()


def test_a_formula_is_laid_out_once_and_read_back_from_disk(math_cache, monkeypatch):
    first = mathsvg.math_svg(FORMULA)
    assert first.startswith('<img class="math-display"') and len(list(math_cache.iterdir())) == 1
    mathsvg.math_svg.cache_clear()  # a new process: only the disk remembers

    def no_layout(*_):
        raise AssertionError("laid out again")

    monkeypatch.setattr(mathsvg, "_laid_out", no_layout)
    assert mathsvg.math_svg(FORMULA) == first


def test_size_and_form_are_part_of_the_key(math_cache):
    display, inline = mathsvg.math_svg(FORMULA), mathsvg.math_svg(FORMULA, size=13.0, inline=True)
    assert display != inline and 'class="math-inline"' in inline
    assert len(list(math_cache.iterdir())) == 2


def test_a_damaged_entry_is_laid_out_again(math_cache):
    first = mathsvg.math_svg(FORMULA)
    (entry,) = math_cache.iterdir()
    entry.write_text("<img class=")  # cut short
    mathsvg.math_svg.cache_clear()
    assert mathsvg.math_svg(FORMULA) == first


def test_caching_off_writes_nothing(math_cache, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE", "0")
    assert mathsvg.math_svg(FORMULA).startswith("<img ")
    assert not math_cache.exists()
