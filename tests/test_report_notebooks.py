"""Reports executed for real (papermill, a kernel each): kept to the few the issue names.

The reference report for 2 MiB and 1 GiB pages (HTML and PDF checked as a reader gets
them), a batch of three with one invalid entry, and a notebook failing mid-way.
"""

import re
import shutil
import subprocess

import pytest

from costmodel import reporting, results
from costmodel.cli import main as cli_main
from costmodel.render import numbers

pytestmark = pytest.mark.notebook

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdfinfo") is None,
                                   reason="poppler-utils (pdftotext, pdfinfo) missing: `make setup` installs it")


def _visible_text(page: str) -> str:
    page = re.sub(r"<(style|script)\b.*?</\1>", "", page, flags=re.S)
    page = re.sub(r'src="data:[^"]*"', "", page)
    return re.sub(r"<[^>]+>", " ", page)


def _expected(hugepage):
    point = results.predict("16GiB", 16, hugepage, "snp").to_dict()
    return {k: numbers.format_value(k, point[k]) for k in ("splits", "merges", "split_merge_share", "vmemmap_bytes")}


@needs_poppler
@pytest.mark.parametrize("hugepage", ["2M", "1G"])
def test_reference_report_reads_right_in_html_and_pdf(hugepage, tmp_path, capsys):
    status = cli_main(["report", "-p", "hugepage", hugepage, "-o", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    name = f"snp-16GiB-16vcpu-{hugepage}-status_quo"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.{s}" for s in ("html", "ipynb", "pdf")]
    page = (tmp_path / f"{name}.html").read_text()

    # self-contained: nothing fetched or linked over the network, no script at all
    assert reporting.external_references(page) == []
    assert "<script" not in page
    # formulas rendered (SVG images), none left as TeX source
    text = _visible_text(page)
    assert page.count("data:image/svg+xml;base64,") > 20
    assert '<table class="math-aligned">' in page
    assert "$$" not in text and "\\frac" not in text and 'class="math-source"' not in page
    # charts embedded, every section there, the key numbers shown as people read them
    assert page.count("data:image/png;base64,") >= 5
    for heading in ("Configuration", "Key numbers", "Formula card", "Splits by source", "Scaling with",
                    "Conversion-cycle budget", "vmemmap footprint", "Scenarios side by side", "Provenance"):
        assert f">{heading}" in page, heading
    expected = _expected(hugepage)
    for value in expected.values():
        assert value in text, value
    assert "Traceback" not in page and "Error" not in text

    pdf = tmp_path / f"{name}.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info)[1])
    assert pages >= 2
    pdf_text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for value in expected.values():
        assert value in pdf_text, f"{value} not in the PDF text"
    assert "Hugepage split/merge cost" in pdf_text and "Provenance" in pdf_text
    _check_pdf_layout(pdf)
    splits = results.predict("16GiB", 16, hugepage, "snp").to_dict()["splits"]
    assert reporting.read_summary(tmp_path / f"{name}.html")["splits"] == numbers.rounded(splits)
    assert f'<a href="{name}.pdf">PDF</a>' in page and f'<a href="{name}.ipynb">notebook</a>' in page


#: Text of this size or more is a heading (h1 18 pt, h2 13.5 pt, h3 11.5 pt; body 10 pt, tables 8.5 pt).
HEADING_PT = 11


def _lines(page):
    """A PDF page's text lines, top to bottom: (top, largest font size, text)."""
    rows = {}
    for word in page.extract_words(extra_attrs=["size"]):
        rows.setdefault(round(word["top"] / 3), []).append(word)
    return [(min(w["top"] for w in ws), max(w["size"] for w in ws), " ".join(w["text"] for w in ws))
            for _, ws in sorted(rows.items())]


def _check_pdf_layout(pdf):
    """No heading is the last line of a page (stranded from what follows), and the formula
    card's formulas sit on one page."""
    pdfplumber = pytest.importorskip("pdfplumber")
    with pdfplumber.open(pdf) as document:
        pages = [_lines(page) for page in document.pages]
    for number, lines in enumerate(pages[:-1], 1):
        body = [line for line in lines if not re.fullmatch(r"\d+ / \d+", line[2])]  # the page footer
        assert body and body[-1][1] < HEADING_PT, f"page {number} ends with the heading {body[-1][2]!r}"
    where = {key: [n for n, lines in enumerate(pages) if any(key in text for _, _, text in lines)]
             for key in ("Closed form", "writes them out")}
    assert where["Closed form"] and where["Closed form"][:1] == where["writes them out"][:1], where


@needs_poppler
def test_explore_exports_its_initial_state(tmp_path, capsys):
    """The explore notebook as HTML: the table and figures its controls drew at the start."""
    from costmodel.shape import VmShape

    status = cli_main(["report", "--notebook", "explore", "-p", "memory", "64GiB", "--to", "html", "-o", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    page = next(tmp_path.glob("*.html")).read_text()
    shape = VmShape.parse(memory="64GiB", devices="virtio-blk:size=256;virtio-net:queues=1,size=256")
    point = results.predict(shape=shape).to_dict()
    text = _visible_text(page)
    for key in ("splits", "merges", "vmemmap_bytes"):
        assert numbers.format_value(key, point[key]) in text, key
    assert re.search(r"memory =\s+64 GiB", text) and "--memory 64GiB" in text, "the controls and the command follow the parameters"
    assert page.count("data:image/png;base64,") >= 1 and "No description" not in page


TINY = '''\
# %% [markdown]
# # Tiny
# %% tags=["parameters"]
memory = "16GiB"
hugepage = "2M"
vcpus = 16
# %%
from costmodel import parse
splits = parse.size(memory) // parse.size(hugepage)
print(splits)
# %% tags=["summary"]
display({"application/json": {"splits": float(splits), "merges": 1.0}}, raw=True)
'''


def test_batch_of_three_with_one_invalid_entry(tmp_path):
    notebook = tmp_path / "tiny.py"
    notebook.write_text(TINY)
    entries = [{"memory": "16GiB", "hugepage": "2M"}, {"memory": "16GiB", "hugepage": "3M"},
               {"memory": "64GiB", "hugepage": "1G", "vcpus": 4}]
    outcomes = reporting.render_batch(entries, tmp_path / "out", jobs=2, formats="html", notebook=str(notebook),
                                   progress=False)
    assert [o.ok for o in outcomes] == [True, False, True]
    assert "entry 2: parameter hugepage: got '3M'" in outcomes[1].error
    assert outcomes[0].summary["splits"] == 8192.0 and outcomes[2].summary["splits"] == 64.0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(["index.csv", "index.html", "index.json", "tiny-hugepage_1G-memory_64GiB-vcpus_4.html",
                              "tiny-hugepage_1G-memory_64GiB-vcpus_4.ipynb", "tiny-hugepage_2M-memory_16GiB.html",
                              "tiny-hugepage_2M-memory_16GiB.ipynb"])
    index = (tmp_path / "out" / "index.html").read_text()
    assert '<a href="tiny-hugepage_2M-memory_16GiB.html">html</a>' in index
    assert "8192" in index and "got &#x27;3M&#x27;" in index and "2 written, 1 failed" in index


FAILING = '''\
# %% tags=["parameters"]
size = 1
# %%
first = size + 1
# %%
raise ValueError(f"cannot continue with {first}")
# %%
never = True
'''


def test_a_notebook_failing_midway_names_the_cell_and_writes_nothing(tmp_path, capsys):
    notebook = tmp_path / "failing.py"
    notebook.write_text(FAILING)
    out = tmp_path / "out"
    status = cli_main(["report", "--notebook", str(notebook), "-p", "size", "41", "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 1
    assert "cell 2 (raise ValueError" in err and "ValueError: cannot continue with 42" in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() or list(out.iterdir()) == []


def test_a_warm_batch_kernel_names_the_same_cell_and_starts_clean(tmp_path):
    notebook = tmp_path / "failing.py"
    notebook.write_text(FAILING)
    kernel = reporting.WarmKernel(tmp_path)
    try:
        with pytest.raises(reporting.ReportError) as error:
            reporting.execute(notebook, {"size": 41}, kernel=kernel)
        assert error.value.cell_index.startswith("2 (raise ValueError") and error.value.ename == "ValueError"
        # the next run on the same kernel starts from an empty namespace: `first` is gone
        probe = tmp_path / "probe.py"
        probe.write_text('# %% tags=["parameters"]\nx = 1\n# %%\nassert "first" not in globals()\nprint(x)\n')
        executed = reporting.execute(probe, {"x": 7}, kernel=kernel)
        assert executed.cells[-1].outputs[0]["text"] == "7\n"
        assert executed.cells[0].source.startswith("# Parameters") or "parameters" in executed.cells[0].metadata.tags
    finally:
        kernel.close()
