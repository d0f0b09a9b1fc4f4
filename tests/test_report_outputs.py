"""What readers get from reports without a kernel: the batch index and its CSV/JSON, reading
a report's numbers back, widgets in exports, cards in notebooks, notebooks that save clean."""

import csv
import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from costmodel import reporting
from costmodel.errors import InputError
from costmodel.render import numbers
from costmodel.reporting import cards, index, report, sections, widgets


def _outcomes(tmp_path):
    ok = reporting.Outcome(1, {"memory": "64GiB"}, "snp-64GiB", {"html": str(tmp_path / "snp-64GiB.html")},
                           {"splits": 622.0000000000001, "merges": 29.999999999999993, "split_merge_share": 0.07})
    failed = reporting.Outcome(2, {"memory": "zz", "hugepage": "1G"},
                               error="entry 2 {memory: zz}: entry 2: parameter memory: got 'zz'; expected a size")
    return [ok, failed]


def test_index_writes_csv_and_json_of_the_same_rows_without_float_noise(tmp_path):
    reporting.write_index(_outcomes(tmp_path), tmp_path)
    records = json.loads((tmp_path / "index.json").read_text())
    assert records[0]["splits"] == 622 and records[0]["merges"] == 30, "integral counts print as integers"
    assert records[0]["hugepage"] == "2M", "a parameter not given shows the notebook's default"
    assert records[1]["status"] == "failed" and records[1]["error"] == "parameter memory: got 'zz'; expected a size"
    rows = list(csv.DictReader((tmp_path / "index.csv").read_text().splitlines()))
    assert [r["index"] for r in rows] == ["1", "2"] and rows[0]["splits"] == "622"


def test_index_page_headers_alignment_defaults_and_title(tmp_path):
    page = reporting.write_index(_outcomes(tmp_path), tmp_path, title="costmodel reports (sweep)").read_text()
    assert "<h1>costmodel: 2 reports of the sweep sweep</h1>" in page
    assert 'title="hugepages split during boot">splits [1]</th>' in page, "header from the registry"
    assert '<td class="num" data-sort="622.0000000000001">622</td>' in page, "numbers right-aligned"
    assert 'class="default"' in page and ">2M</td>" in page, "defaults filled in, marked"
    assert page.count("entry 2") == 0, "the reason without the entry prefix the row already shows"
    assert 'href="index.csv"' in page and 'href="index.json"' in page
    assert reporting.external_references(page) == []


def test_index_chart_has_alt_text(tmp_path):
    outcomes = _outcomes(tmp_path)
    outcomes[0].summary["merges"] = 30.0
    page = reporting.write_index(outcomes, tmp_path).read_text()
    assert '<figure class="index-chart"><img src="data:image/png;base64,' in page
    assert 'alt="Bar chart of splits and merges (log scale) for the 1 reports written' in page


def test_failure_reason_keeps_what_is_not_a_prefix():
    outcome = reporting.Outcome(3, {}, error="entry 3: same report as entry 1 (x)")
    assert index._reason(outcome) == "same report as entry 1 (x)"


def test_read_summary_from_the_html_or_the_notebook(tmp_path):
    nb = new_notebook(cells=[new_code_cell("summary", metadata={"tags": ["summary"]}, outputs=[
        new_output("display_data", data={"application/json": {"splits": 622, "split_merge_share": 0.07}})])])
    (tmp_path / "r.ipynb").write_text(nbformat.writes(nb))
    assert reporting.read_summary(tmp_path / "r.html") == {"splits": 622, "split_merge_share": 0.07}
    assert reporting.read_summary(tmp_path / "r.ipynb")["splits"] == 622
    with pytest.raises(InputError, match="r2.ipynb"):
        reporting.read_summary(tmp_path / "r2.pdf")


def test_summary_rounds_float_noise():
    point = {"memory_bytes": 17179869184, "splits": 622.0000000000001, "merges": 29.999999999999993,
             "split_merge_share": 0.06999999980841783, "scenario": "status_quo"}
    assert sections.summary(point) == {"memory_bytes": 17179869184, "scenario": "status_quo", "splits": 622,
                                       "merges": 30, "split_merge_share": 0.0699999998}
    assert numbers.rounded(float("nan")) != numbers.rounded(float("nan")), "NaN stays NaN"


def test_html_report_links_its_pdf_notebook_and_inputs(tmp_path):
    page = "<!DOCTYPE html>\n<html><head></head><body>\n<p>x</p></body></html>"
    data = tmp_path / "in" / "runs.csv"
    data.parent.mkdir()
    data.write_text("x")
    links = {"PDF": "r.pdf", "notebook": "r.ipynb", **report._inputs({"data": str(data)}, tmp_path / "out")}
    linked = report.with_links(page, links)
    assert '<a href="r.pdf">PDF</a>' in linked and '<a href="r.ipynb">notebook</a>' in linked
    assert '<a href="../in/runs.csv">data (runs.csv)</a>' in linked
    assert reporting.external_references(linked) == []


def _widget_notebook():
    state = {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_slider", "IPY_MODEL_out"]}},
        "slider": {"model_name": "SelectionSliderModel",
                   "state": {"description": "memory", "_options_labels": ["1 GiB", "64 GiB"], "index": 1}},
        "out": {"model_name": "OutputModel", "state": {"outputs": [
            {"output_type": "display_data", "metadata": {}, "data": {"text/html": "<table><td>622</td></table>"}}]}},
    }
    cell = new_code_cell("display(box)", outputs=[new_output("display_data", data={
        widgets.VIEW: {"model_id": "box", "version_major": 2, "version_minor": 0}, "text/plain": "VBox()"})])
    nb = new_notebook(cells=[cell])
    nb.metadata["widgets"] = {widgets.STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    return nb


def test_widget_views_export_as_their_initial_state():
    page = reporting.to_html(_widget_notebook())
    assert "<td>622</td>" in page, "what the Output widget captured"
    assert "memory = <b>64 GiB</b>" in page, "the controls' starting values"


def test_cards_display_as_markdown_and_latex_in_notebooks(reference_calibration):
    card = cards.card("merges", calibration=reference_calibration, fmt="text")
    assert isinstance(card, str) and card.startswith("merges")
    assert card._repr_markdown_().startswith("### `merges`") and "$$" in card._repr_markdown_()
    assert card._repr_latex_().startswith("% costmodel formula card: merges")


def test_compact_card_names_long_definitions_and_keeps_its_formulas_in_one_block(reference_calibration):
    text = cards.card("splits", calibration=reference_calibration, fmt="markdown", platform="snp", hugepage="2M",
                      compact=True)
    assert "in full: costmodel formula" in text and "With the calibration's numbers" not in text
    assert max(len(line) for line in text.splitlines() if "&=" in line) <= cards.COMPACT_CHARS + 200
    block = sections.formula_card(text)
    assert block.startswith('<div class="formula-card">') and block.index("</div>") < block.index("| symbol |")


def test_notebooks_open_and_save_through_jupytext_without_a_diff(tmp_path):
    """What JupyterLab does: read through jupytext's contents manager with the folder's
    jupytext.toml, add the kernel's metadata, save; the file must not change."""
    pytest.importorskip("jupyter_server")
    import shutil

    from jupyter_server.services.contents.largefilemanager import LargeFileManager
    from jupytext.sync_contentsmanager import build_sync_jupytext_contents_manager_class

    for source in sorted(reporting.NOTEBOOKS_DIR.glob("*.py")):
        shutil.copy(source, tmp_path / source.name)
    shutil.copy(reporting.NOTEBOOKS_DIR / "jupytext.toml", tmp_path / "jupytext.toml")
    manager = build_sync_jupytext_contents_manager_class(LargeFileManager)(root_dir=str(tmp_path))
    for source in sorted(reporting.NOTEBOOKS_DIR.glob("*.py")):
        model = manager.get(source.name, content=True, type="notebook")
        content = model["content"]
        content["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                             "language": "python"}
        content["metadata"]["language_info"] = {"name": "python", "version": "3.11.7"}
        for cell in content["cells"]:
            cell["metadata"]["trusted"] = True
        manager.save({"type": "notebook", "format": "json", "content": content}, source.name)
        assert (tmp_path / source.name).read_text() == source.read_text(), f"{source.name} changed on save"


def test_evaluation_frames_styled_with_units_and_people_numbers():
    from costmodel.evaluate import evaluate
    from costmodel.reporting.tables import styled

    frame = evaluate({"memory_bytes": 16 * 2**30, "vcpus": [16], "hugepage_bytes": 2 * 2**20, "platform": "snp"})
    page = styled(frame, ["memory_bytes", "splits", "split_merge_share"]).to_html()
    assert "memory_bytes [B]" in page and "splits [1]" in page and "split_merge_share [%]" in page
    assert ">16 GiB<" in page and ">622<" in page and ">7.00 %<" in page
    assert frame["splits"].iloc[0] == pytest.approx(622), "the frame keeps its numbers"
