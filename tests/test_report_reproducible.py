"""Same inputs, same bytes: a report rendered twice gives identical HTML and PDF files.

A small notebook with what a report is made of (a figure through plots.show, display and
inline formulas, a table), rendered twice, each time in a fresh kernel; the second finds
its formulas in the on-disk cache the first filled, so the cached markup is checked too.
"""

import json

import pytest

from costmodel import reporting
from costmodel.reporting import mathsvg

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
    notebook = tmp_path / "small.py"
    notebook.write_text(SMALL_REPORT)
    first = reporting.render({"n": 5}, notebook, tmp_path / "first", ("html", "pdf"))
    mathsvg.math_svg.cache_clear()  # the second run reads the formulas back from disk
    second = reporting.render({"n": 5}, notebook, tmp_path / "second", ("html", "pdf"))
    mathsvg.math_svg.cache_clear()
    assert list((tmp_path / "cache" / mathsvg.CACHE_KIND).iterdir()), "the formulas were cached"
    page = first.paths["html"].read_text()
    assert page.count('class="math-') >= 2 and "data:image/png;base64," in page, "formulas and the figure are in"
    for kind in ("html", "pdf", "ipynb"):
        assert first.paths[kind].read_bytes() == second.paths[kind].read_bytes(), f"the {kind} differs"
    executed = json.loads(first.paths["ipynb"].read_text())
    assert executed["metadata"]["papermill"]["input_path"] == "small.py"
    assert executed["metadata"]["papermill"]["parameters"] == {"n": 5}, "what the run was given stays"
