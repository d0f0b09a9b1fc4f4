"""Same inputs, same bytes: a report rendered twice gives identical HTML and PDF files.

A small notebook with what a report is made of (a figure through plots.show, display and
inline formulas, a table), rendered twice, each time in a fresh kernel; the second finds
its formulas and its figure in the on-disk cache the first filled (and prints its page again),
so the cached markup and PNG are checked too; a third renders with the cache off.
"""

import json
import shutil

import pytest

from costmodel import reporting
from costmodel.reporting import figcache, mathsvg, pdfcache, theme

pytestmark = pytest.mark.notebook

SMALL_REPORT = '''\
# %% tags=["parameters"]
n = 4
# %% [markdown]
# # Small report
#
# The split count $S = \\\\lceil x / 2^{21} \\\\rceil$ and
#
# $$\\\\sum_{i=1}^{n} i = \\\\frac{n (n + 1)}{2}$$
# %%
from IPython.display import HTML, display

from costmodel.reporting import plots

plots.style()
fig, ax = plots.figure(height=2.0)
ax.plot(range(n), [i * i for i in range(n)], label="squares")
ax.set_title("squares")
ax.legend()
plots.show(fig)
display(HTML("<table><tr><th>n</th><td>" + str(n) + "</td></tr></table>"))
'''


def test_a_report_rendered_twice_has_the_same_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COSTMODEL_CACHE", raising=False)
    mathsvg.math_svg.cache_clear()
    theme.apply()  # as every kernel after a host's first: the theme from the cache (it shares no
    # string objects the way seaborn's does, so a figure pickles, and is keyed, alike in both)
    notebook = tmp_path / "small.py"
    notebook.write_text(SMALL_REPORT)
    first = reporting.render({"n": 5}, notebook, tmp_path / "first", ("html", "pdf"))
    mathsvg.math_svg.cache_clear()  # the second run reads the formulas back from disk
    shutil.rmtree(tmp_path / "cache" / pdfcache.CACHE_KIND)  # but prints its page again
    second = reporting.render({"n": 5}, notebook, tmp_path / "second", ("html", "pdf"))
    mathsvg.math_svg.cache_clear()
    monkeypatch.setenv("COSTMODEL_CACHE", "0")  # and nothing cached at all: everything done afresh
    fresh = reporting.render({"n": 5}, notebook, tmp_path / "fresh", ("html", "pdf"))
    mathsvg.math_svg.cache_clear()
    assert list((tmp_path / "cache" / mathsvg.CACHE_KIND).iterdir()), "the formulas were cached"
    figures = list((tmp_path / "cache" / figcache.CACHE_KIND).iterdir())
    assert len(figures) == 1, f"the second kernel found the first one's figure under the same key: {figures}"
    page = first.paths["html"].read_text()
    assert page.count('class="math-') >= 2 and "data:image/png;base64," in page, "formulas and the figure are in"
    for kind in ("html", "pdf", "ipynb"):
        assert first.paths[kind].read_bytes() == second.paths[kind].read_bytes(), f"the {kind} differs"
        assert first.paths[kind].read_bytes() == fresh.paths[kind].read_bytes(), f"the uncached {kind} differs"
    executed = json.loads(first.paths["ipynb"].read_text())
    assert executed["metadata"]["papermill"]["input_path"] == "small.py"
    assert executed["metadata"]["papermill"]["parameters"] == {"n": 5}, "what the run was given stays"
