"""Figures drawn once per host (costmodel.reporting.figcache): the key follows the figure,
its settings and nothing else, and a cached PNG is the PNG a fresh drawing gives."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from costmodel.reporting import figcache, plots  # noqa: E402


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("COSTMODEL_CACHE", raising=False)
    return tmp_path / figcache.CACHE_KIND


def _figure(values=(1, 4, 9), title="squares"):
    fig, ax = plots.figure(height=2.0)
    ax.plot([1, 2, 3], list(values), label="values")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    plt.close(fig)
    return fig


def test_the_same_figure_built_twice_has_one_key_and_other_data_another():
    first, second = figcache.figure_key(_figure(), 200), figcache.figure_key(_figure(), 200)
    assert first is not None and first == second
    assert figcache.figure_key(_figure(values=(1, 4, 10)), 200) != first, "data are part of the key"
    assert figcache.figure_key(_figure(title="cubes"), 200) != first, "text is part of the key"
    assert figcache.figure_key(_figure(), 100) != first, "the resolution is part of the key"
    with matplotlib.rc_context({"lines.antialiased": False}):
        assert figcache.figure_key(_figure(), 200) != first, "drawing settings are part of the key"


def test_a_cached_png_is_the_drawn_png(cache_dir):
    drawn = plots.drawn_png(_figure(), plots.PNG_DPI)
    assert plots.png(_figure()) == drawn  # drawn and stored
    assert len(list(cache_dir.iterdir())) == 1
    assert plots.png(_figure()) == drawn  # read back
    assert len(list(cache_dir.iterdir())) == 1


def test_a_damaged_entry_is_drawn_again(cache_dir):
    fig = _figure()
    key = figcache.figure_key(fig, plots.PNG_DPI)
    cache_dir.mkdir(parents=True)
    (cache_dir / f"{key}.txt").write_text("not a png")
    assert plots.png(fig) == plots.drawn_png(_figure(), plots.PNG_DPI)


def test_an_unpicklable_figure_is_drawn_without_a_key(cache_dir):
    fig = _figure()
    fig.axes[0].xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    assert figcache.figure_key(fig, 200) is None
    assert plots.png(fig).startswith(b"\x89PNG")
    assert not cache_dir.exists() or not list(cache_dir.iterdir())


def test_a_report_figure_is_built_once_per_inputs_and_read_back(cache_dir, tmp_path):
    import pandas as pd

    from costmodel.reporting import figures

    by_size = pd.DataFrame({"hugepage_bytes": [2 * 1024 ** 2, 1024 ** 3], "vmemmap_bytes": [1e6, 3e6],
                            "pageless_saving_bytes": [5e5, 2e6], "shared_bytes": [7e7, 8e7]})
    png, alt = figures.rendered(figures.footprint, by_size)
    assert png == plots.drawn_png(figures.footprint(by_size), plots.PNG_DPI)
    assert alt == plots.describe(figures.footprint(by_size))
    calls = []

    def footprint(frame):
        calls.append(frame)
        return figures.footprint(frame)

    footprint.__module__, footprint.__qualname__ = figures.footprint.__module__, figures.footprint.__qualname__
    assert figures.rendered(footprint, by_size) == (png, alt) and not calls, "read back, not built"
    other = by_size.assign(vmemmap_bytes=[1e6, 4e6])
    assert figures.key(footprint, other) != figures.key(footprint, by_size)
    assert figures.rendered(footprint, other)[0] != png and len(calls) == 1, "other inputs: built and drawn"
    assert figures.key(footprint, lambda: None) is None, "unpicklable inputs are no key"
