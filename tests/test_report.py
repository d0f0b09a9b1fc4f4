"""The report machinery without a kernel: parameters, names, math, HTML, sweeps, index, CLI."""

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from costmodel import reporting
from costmodel.cli import main as cli_main
from costmodel.errors import InputError
from costmodel.reference import REFERENCE_DATA
from costmodel.reporting import export as export_module
from costmodel.reporting import report as report_module
from costmodel.reporting import sections
from costmodel.units import MiB


@pytest.fixture(scope="module")
def declared():
    return reporting.notebook_parameters(reporting.read_notebook("report"))


# --- parameters and names ---------------------------------------------------------------------
def test_report_notebook_declares_the_documented_parameters(declared):
    assert list(declared) == ["memory", "vcpus", "boot_vcpus", "numa_nodes", "lowmem", "devices", "virtqueues", "hugepage",
                              "platform", "kaslr", "svsm", "atomic_pools", "scenario", "calibration", "data"]
    assert all(p.help for p in declared.values()), "every parameter carries a comment saying what it takes"


def test_values_are_parsed_like_predict_and_passed_in_canonical_form(declared):
    values = reporting.check_parameters({"memory": "16G", "vcpus": "8", "hugepage": 2 * MiB, "platform": "SNP",
                                      "virtqueues": "none"}, declared)
    assert values == {"memory": "16GiB", "vcpus": 8, "hugepage": "2M", "platform": "snp", "virtqueues": None}


def test_unknown_parameter_lists_the_notebooks_parameters_closest_first(declared):
    with pytest.raises(InputError) as error:
        reporting.check_parameters({"memroy": "16GiB"}, declared)
    message = str(error.value)
    assert "got 'memroy'" in message
    listed = message.split("parameter of the notebook: ")[1].split(", ")
    assert listed[0] == "memory" and sorted(listed) == sorted(declared)


@pytest.mark.parametrize("name, value, expected", [
    ("hugepage", "3M", "one of 4K, 2M, 1G"),
    ("memory", "16GB?", "a size such as"),
    ("vcpus", "0", "a whole number"),
    ("scenario", "status-quo", "status_quo"),
    ("data", "/nonexistent/file.csv", "an existing file"),
])
def test_invalid_values_name_the_parameter(declared, name, value, expected):
    with pytest.raises(InputError) as error:
        reporting.check_parameters({name: value}, declared)
    assert str(error.value).startswith(f"parameter {name}: got") and expected in str(error.value)


def test_report_names_follow_from_the_parameters(declared):
    assert reporting.report_name("report", {}, declared) == "snp-16GiB-16vcpu-2M-status_quo"
    values = reporting.check_parameters({"memory": "64G", "hugepage": "1G", "platform": "tdx", "vcpus": 4,
                                      "virtqueues": 8, "scenario": "host_promotion"}, declared)
    assert reporting.report_name("report", values, declared) == "tdx-64GiB-4vcpu-1G-host_promotion-8vq"
    assert reporting.report_name("other", {"b": "x y", "a": 1}, {}) == "other-a_1-b_x_y"


def test_unknown_notebook_lists_the_available_ones():
    with pytest.raises(InputError) as error:
        reporting.notebook_path("reprot")
    assert "report" in str(error.value).split("expected ")[1].split(",")[0]
    assert set(reporting.available_notebooks()) >= {"report", "explore", "fit"}


def test_formats_are_checked():
    assert reporting.parse_formats("pdf,html,pdf") == ("pdf", "html")
    with pytest.raises(InputError, match="to: got 'docx'"):
        reporting.parse_formats("html,docx")


# --- math and HTML ---------------------------------------------------------------------------------
def test_math_becomes_inline_svg_and_no_dollar_is_left():
    text = "Inline $s = \\lceil S/H \\rceil$ and\n\n$$\n\\begin{aligned}\na &= \\frac{M}{H} \\\\\nb &= 2 \\\\\n\\end{aligned}\n$$\n"
    out = reporting.render_math(text)
    assert "$" not in out
    assert out.count('class="math-inline"') == 1
    assert '<table class="math-aligned">' in out and out.count("<tr>") == 2
    assert "data:image/svg+xml;base64," in out


def test_unsupported_tex_falls_back_to_its_source():
    out = reporting.math_svg(r"\notacommand{x}")
    assert "notacommand" in out


def _fake_executed_notebook():
    cells = [
        new_markdown_cell("# A title\n\nText with $x^2$."),
        new_code_cell("display(Markdown('$$y = \\\\frac{1}{2}$$'))", outputs=[
            new_output("display_data", data={"text/markdown": "$$y = \\frac{1}{2}$$", "text/plain": "<md>"})]),
        new_code_cell("import warnings", outputs=[new_output("stream", name="stderr", text="a warning\n")]),
        new_code_cell("summary", outputs=[new_output("display_data", data={"application/json": {"splits": 622.0}})],
                      metadata={"tags": ["summary"]}),
        new_code_cell("png", outputs=[new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})]),
    ]
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def test_html_is_self_contained_with_code_hidden():
    nb = _fake_executed_notebook()
    page = reporting.to_html(nb)
    assert reporting.external_references(page) == []
    assert "<script" not in page and "mathjax" not in page.lower()
    assert "<title>A title</title>" in page
    assert "display(Markdown" not in page, "code cells are hidden"
    assert "a warning" not in page, "stderr is for the executed notebook, not the reader"
    assert "application/json" not in page and "622" not in page, "the summary cell is not shown"
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in page
    assert page.count("data:image/svg+xml") >= 2 and "$" not in re.sub(r"<style>.*?</style>", "", page, flags=re.S)
    assert reporting.summary_of(nb) == {"splits": 622.0}


def test_external_references_are_found():
    page = ('<img src="https://cdn.example/x.png"><link href="//cdn.example/a.css">'
            '<style>@import "http://x/y.css"; .a { background: url(https://x/z.png) }</style>'
            '<svg xmlns="http://www.w3.org/2000/svg"></svg><a href="#top">top</a>')
    assert reporting.external_references(page) == ["//cdn.example/a.css", "http://x/y.css",
                                                 "https://cdn.example/x.png", "https://x/z.png"]


def test_latex_engine_without_tex_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(export_module.shutil, "which", lambda name: None)
    with pytest.raises(InputError, match="xelatex on PATH"):
        reporting.to_pdf("<html></html>", _fake_executed_notebook(), engine="latex")


def test_weasyprint_pdf_is_a_pdf():
    data = reporting.to_pdf(reporting.to_html(_fake_executed_notebook()))
    assert data.startswith(b"%PDF") and len(data) > 1000


# --- atomic writes -----------------------------------------------------------------------------------
def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    target = tmp_path / "out"
    (target).mkdir()
    (target / "a.html").write_text("old")
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        raise OSError("disk full")

    monkeypatch.setattr(report_module.os, "replace", failing_replace)
    with pytest.raises(OSError):
        report_module._write_all({target / "a.html": b"new", target / "a.pdf": b"%PDF"})
    assert sorted(p.name for p in target.iterdir()) == ["a.html"]
    assert (target / "a.html").read_text() == "old"


# --- sweeps ------------------------------------------------------------------------------------------
def test_yaml_grid_and_list_and_csv(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("memory: 16GiB\nhugepage: [2M, 1G]\nvcpus: [4, 16]\n")
    assert reporting.read_sweep(grid) == [
        {"memory": "16GiB", "hugepage": "2M", "vcpus": 4}, {"memory": "16GiB", "hugepage": "2M", "vcpus": 16},
        {"memory": "16GiB", "hugepage": "1G", "vcpus": 4}, {"memory": "16GiB", "hugepage": "1G", "vcpus": 16}]
    listed = tmp_path / "list.yml"
    listed.write_text("- {memory: 8GiB}\n- {memory: 16GiB, platform: tdx}\n")
    assert reporting.read_sweep(listed) == [{"memory": "8GiB"}, {"memory": "16GiB", "platform": "tdx"}]
    rows = tmp_path / "rows.csv"
    rows.write_text("memory,hugepage,virtqueues\n16GiB,2M,\n64GiB,1G,8\n")
    assert reporting.read_sweep(rows) == [{"memory": "16GiB", "hugepage": "2M"},
                                       {"memory": "64GiB", "hugepage": "1G", "virtqueues": "8"}]


def test_shipped_example_sweeps_are_valid(declared):
    root = Path(__file__).resolve().parent.parent / "examples"
    for name in ("sweep.yaml", "sweep.csv"):
        entries = reporting.read_sweep(root / name)
        assert len(entries) >= 2
        names = {reporting.report_name("report", reporting.check_parameters(e, declared), declared) for e in entries}
        assert len(names) == len(entries), f"{name}: every entry gives its own report"


@pytest.mark.parametrize("text, suffix, expected", [
    ("memory: [16GiB\n", ".yaml", "valid YAML"),
    ("- 3\n", ".yaml", "entry 1"),
    ("42\n", ".yaml", "a list of parameter maps"),
    ("memory,vcpus\n16GiB,4,9\n", ".csv", ":2"),
])
def test_bad_sweep_files_say_where(tmp_path, text, suffix, expected):
    path = tmp_path / f"sweep{suffix}"
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(expected)):
        reporting.read_sweep(path)


def test_index_links_reports_and_names_failures(tmp_path):
    outcomes = [
        reporting.Outcome(1, {"memory": "16GiB"}, "snp-16GiB", {"html": str(tmp_path / "snp-16GiB.html"),
                                                             "pdf": str(tmp_path / "snp-16GiB.pdf")},
                       {"splits": 622.0, "split_merge_share": 0.07}),
        reporting.Outcome(2, {"memory": "zz"}, error="parameter memory: got 'zz'; expected a size"),
    ]
    page = reporting.write_index(outcomes, tmp_path).read_text()
    assert '<a href="snp-16GiB.html">html</a>' in page and '<a href="snp-16GiB.pdf">pdf</a>' in page
    assert "622" in page and "7.00 %" in page
    assert "failed" in page and "got &#x27;zz&#x27;" in page
    assert "1 written, 1 failed" in page
    assert reporting.external_references(page) == []


# --- CLI (no kernel) ------------------------------------------------------------------------------
def test_cli_report_passes_parameters_file_then_flags(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake_render(parameters, notebook, outdir, formats, pdf_engine, name, progress=None):
        seen.update(parameters=parameters, notebook=notebook, outdir=outdir, formats=formats, engine=pdf_engine)
        return reporting.Rendered("n", parameters, {"html": Path(outdir) / "n.html"}, {}, 0.1)

    monkeypatch.setattr(reporting, "render", fake_render)
    params = tmp_path / "p.yaml"
    params.write_text("memory: 64GiB\nhugepage: 1G\n")
    status = cli_main(["report", "-f", str(params), "-p", "hugepage", "2M", "--to", "html", "-o", str(tmp_path)])
    assert status == 0
    assert seen == {"parameters": {"memory": "64GiB", "hugepage": "2M"}, "notebook": "report",
                    "outdir": str(tmp_path), "formats": "html", "engine": "weasyprint"}
    assert capsys.readouterr().out.strip() == str(tmp_path / "n.html")


def test_cli_unknown_parameter_is_one_line_and_status_2(tmp_path, capsys):
    status = cli_main(["report", "-p", "hugepages", "2M", "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "got 'hugepages'" in err and "notebook: hugepage," in err
    assert list(tmp_path.iterdir()) == []


def test_cli_batch_reports_failures_with_status_1(tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("- {memory: 16GiB}\n- {memory: 8GiB}\n")

    def fake_batch(entries, outdir, jobs, formats, notebook, pdf_engine, progress, scheduler=None):
        assert entries == [{"memory": "16GiB"}, {"memory": "8GiB"}] and jobs == 3 and not progress
        return [reporting.Outcome(1, entries[0], "a"), reporting.Outcome(2, entries[1], error="cell 5: ValueError: x")]

    monkeypatch.setattr(reporting, "render_batch", fake_batch)
    status = cli_main(["batch", str(sweep), "-o", str(tmp_path / "out"), "-j", "3", "--no-progress"])
    captured = capsys.readouterr()
    assert status == 1
    assert "1 of 2 failed" in captured.err and "entry 2 {'memory': '8GiB'}: cell 5: ValueError: x" in captured.err


def test_cli_lab_without_jupyterlab_says_how_to_install(monkeypatch, capsys):
    from costmodel.cli import lab

    monkeypatch.setattr(lab.importlib.util, "find_spec", lambda name: None)
    assert cli_main(["lab"]) == lab.EXIT_MISSING
    assert "pip install 'costmodel[lab]'" in capsys.readouterr().err


def test_cli_lab_command_opens_the_notebooks_directory():
    from costmodel.cli import build_parser, lab

    args = build_parser().parse_args(["lab", "--no-browser", "--port", "9999"])
    command = lab.command(args)
    assert command[1:3] == ["-m", "jupyterlab"]
    assert f"--notebook-dir={reporting.NOTEBOOKS_DIR}" in command and "--no-browser" in command and "--port=9999" in command


def test_notebooks_are_percent_scripts_without_outputs():
    for path in sorted(reporting.NOTEBOOKS_DIR.glob("*.py")):
        text = path.read_text()
        header = text[:text.index("# ---", 5) + 5]
        assert "# %%" in text and "kernelspec" in header and "jupytext" not in header, \
            f"{path.name}: a percent script whose header holds the kernelspec alone"
        nb = reporting.read_notebook(path)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name
        tags = [t for c in nb.cells for t in c.metadata.get("tags", [])]
        assert tags.count("parameters") == 1, f"{path.name}: one parameters cell"
    assert not list(reporting.NOTEBOOKS_DIR.glob("*.ipynb")), "outputs are never committed"


def test_written_json_round_trips(tmp_path):
    nb = _fake_executed_notebook()
    path = tmp_path / "x.ipynb"
    path.write_text(nbformat.writes(nb))
    assert reporting.summary_of(nbformat.read(path, as_version=4)) == {"splits": 622.0}
    assert json.loads(path.read_text())["nbformat"] == 4


def test_lab_makes_py_notebooks_open_as_notebooks_in_the_environment(tmp_path):
    from costmodel.cli import lab

    settings = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}))
    assert lab.settings_overrides(str(tmp_path)) == settings
    written = json.loads(settings.read_text())
    assert written["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"] == {"python": "Jupytext Notebook"}
    assert written["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}, "other settings kept"


# --- the report's data section (library, no kernel) ----------------------------------------------
def test_reference_data_against_the_default_calibration(reference_calibration):
    path = REFERENCE_DATA
    comparison = sections.compare_with_data(path, reference_calibration)
    assert comparison.targets[:2] == ("splits", "merges")
    assert "vCPUs unknown on line 2, 3: assumed 16" in comparison.text
    assert "no intervals" in comparison.text and "Extrapolation" not in comparison.text
    frame = comparison.frame
    assert frame["splits_predicted"].tolist() == pytest.approx([622, 6], abs=0.5)  # 1 GiB: an expected value
    assert abs(frame["splits_residual"].iloc[0]) < 1e-6
    assert "<td class=\"num\">622</td>" in comparison.table


def test_fitted_calibration_shows_intervals_and_flags_extrapolation(tmp_path):
    from costmodel import data as data_module
    from costmodel import fitting
    shapes = {"memory_bytes": ["16GiB", "64GiB"] * 4, "vcpus": [4, 4, 8, 8, 16, 16, 32, 32],
              "hugepage_bytes": "2M", "platform": "snp"}
    runs = fitting.synthetic_runs(shapes, noise=0.03, seed=3)
    calibration = fitting.fit(runs, "splits", alternatives=False).to_calibration()
    outside = fitting.synthetic_runs({"memory_bytes": ["16GiB", "256GiB"], "vcpus": [8, 128], "hugepage_bytes": "2M",
                            "platform": "snp"}, noise=0.03, seed=4)
    outside["run_id"] = ["inside", "outside"]
    path = data_module.write(outside, tmp_path / "runs.csv")
    comparison = sections.compare_with_data(path, calibration)
    assert "splits_pi_low" in comparison.frame and "interval" in comparison.table
    low, high = comparison.frame.loc[0, ["splits_pi_low", "splits_pi_high"]]
    assert low < comparison.frame.loc[0, "splits_predicted"] < high
    assert "Extrapolation" in comparison.text and "line 3: memory_bytes, vcpus" in comparison.text
    assert "line 2" not in comparison.text.split("Extrapolation")[1]
