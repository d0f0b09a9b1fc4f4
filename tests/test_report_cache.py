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


def test_the_cached_theme_sets_what_seaborn_sets(tmp_path, monkeypatch):
    import matplotlib as mpl

    from costmodel.reporting import theme

    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("COSTMODEL_CACHE", raising=False)
    with mpl.rc_context():
        theme.apply()  # asks seaborn, fills the cache
        by_seaborn = {k: v for k, v in mpl.rcParams.items() if not k.startswith("backend")}
        codes = {c: mpl.colors.colorConverter.colors[c] for c in "bgrmyck"}
    assert len(list((tmp_path / theme.CACHE_KIND).iterdir())) == 1
    monkeypatch.setattr(theme, "_from_seaborn", lambda: pytest.fail("seaborn asked again"))
    with mpl.rc_context():
        mpl.rcParams.update(mpl.rcParamsDefault)
        theme.apply()  # from the cache
        assert {k: v for k, v in mpl.rcParams.items() if not k.startswith("backend")} == by_seaborn
        assert {c: mpl.colors.colorConverter.colors[c] for c in "bgrmyck"} == codes


def test_simulator_bands_are_read_back_exactly_and_follow_the_seeds(tmp_path, monkeypatch):
    import numpy as np

    from costmodel import calibration as calibration_module
    from costmodel.reporting import sections, simulated
    from costmodel.shape import VmShape

    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("COSTMODEL_CACHE", raising=False)
    cal = calibration_module.load_or_default(None)
    frame = sections.scaling_grids(VmShape.parse(memory="4GiB", vcpus=4, hugepage="2M"))["numa_nodes"].evaluate(
        cal, "status_quo")
    first = simulated.bands(frame, cal, seeds=3)
    assert len(list((tmp_path / simulated.CACHE_KIND).iterdir())) == 1

    def no_boots(*_args, **_kwargs):
        raise AssertionError("simulated again")

    import costmodel.simulate

    monkeypatch.setattr(costmodel.simulate, "simulate", no_boots)
    again = simulated.bands(frame, cal, seeds=3)
    for y in ("splits", "merges"):
        for side in (0, 1):
            assert np.array_equal(first.of(y)[side], again.of(y)[side]), "the same floats, read back"
    with pytest.raises(AssertionError, match="simulated again"):
        simulated.bands(frame, cal, seeds=4)  # other seeds: another key


def test_a_card_is_derived_once_per_calibration_and_configuration(tmp_path, monkeypatch):
    from costmodel import calibration as calibration_module
    from costmodel.reporting import cards

    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("COSTMODEL_CACHE", raising=False)
    cal = calibration_module.load_or_default(None)
    arguments = dict(calibration=cal, fmt="markdown", platform="snp", hugepage=2 * 1024 ** 2, compact=True)
    first = cards.card_text("splits", **arguments)
    assert first == str(cards.card("splits", **arguments))

    def no_card(*_args, **_kwargs):
        raise AssertionError("derived again")

    monkeypatch.setattr(cards, "card", no_card)
    assert cards.card_text("splits", **arguments) == first
    with pytest.raises(AssertionError, match="derived again"):
        cards.card_text("splits", **dict(arguments, hugepage=1024 ** 3))
