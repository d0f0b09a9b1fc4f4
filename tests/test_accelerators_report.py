"""The accelerators section (issue 10): the family's numbers, its table and figure, and the
section as a reader gets it in the reference report's HTML and PDF."""

import re
import shutil
import subprocess

import pytest

from costmodel.reporting import accelerators, plots
from costmodel.shape import VmShape
from costmodel.units import GiB, MiB

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                   reason="poppler-utils (pdftotext) missing: `make setup` installs it")


@pytest.fixture(scope="module")
def family(reference_calibration):
    return accelerators.family(VmShape(), reference_calibration)


def _text(page: str) -> str:
    page = re.sub(r"<(style|script)\b.*?</\1>", "", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_family_counts_follow_the_gpus_by_hand(family):
    """Kept unprotected memory in 4 KiB chunks packs: one 2 MiB hugepage per 2 MiB, plus one per
    2 MiB staging buffer; 2 MiB chunks split the same hugepages; TDISP converts nothing."""
    rows = family.set_index("case")
    for case, gpus in (("gpu_1", 1), ("gpu_4", 4), ("gpu_8", 8)):
        assert rows.loc[case, "gpus"] == gpus
        assert rows.loc[case, "runtime_splits"] == pytest.approx(gpus * (GiB // (2 * MiB) + 8))
        assert rows.loc[case, "runtime_merges"] == 0
    assert rows.loc["gpu_8_256m", "runtime_splits"] == pytest.approx(8 * (128 + 8))
    assert rows.loc["gpu_8_2m_chunks", "runtime_splits"] == rows.loc["gpu_8", "runtime_splits"]
    assert rows.loc["gpu_8_2m_chunks", "runtime_conversion_ops"] < rows.loc["gpu_8", "runtime_conversion_ops"] / 100
    assert rows.loc["gpu_8_per_job", "runtime_merges"] == pytest.approx(10 * 8 * 512)
    assert rows.loc["gpu_8_tdisp", ["runtime_splits", "runtime_merges", "runtime_conversion_ops"]].sum() == 0
    assert (rows["splits"] == 622).all() and (rows["merges"] == 30).all()  # boot: the reference guest, unchanged
    assert rows.loc["gpu_8", "final_huge_mapped_fraction"] < rows.loc["gpu_1", "final_huge_mapped_fraction"]
    assert rows.loc["gpu_0", "final_huge_mapped_fraction"] == rows.loc["gpu_0", "huge_mapped_fraction"]
    share = rows["runtime_split_merge_cycles"] / rows["runtime_conversion_cycles"]
    assert rows.loc["gpu_8", "runtime_split_merge_share"] == pytest.approx(share["gpu_8"])
    assert rows.loc["gpu_0", "runtime_split_merge_share"] == 0  # no run-time cycles: 0, not NaN


def test_tables_show_the_numbers_as_people_read_them(family):
    inputs, results = _text(accelerators.inputs_table(family)), _text(accelerators.results_table(family))
    for text in ("8 GPUs, TDISP", "256 MiB", "2 MiB", "4 KiB", "per job, 10 jobs", "once, kept"):
        assert text in inputs, text
    for text in ("boot (every case)", "622", "4,160", "41,024", "40,960", "2,097,216", "41.6 %", "92.4 %",
                 "[cycles]", "[1]"):
        assert text in results, text
    assert "nan" not in results.lower() and "e+" not in results


def test_reading_names_this_guests_numbers(family):
    text = accelerators.reading(family)
    for number in ("622", "520", "2,080", "4,160", "92.4 %", "41.6 %", "41,024", "40,960"):
        assert number in text, number
    assert "TDISP convert nothing" in text
    notes = accelerators.notes(family)
    assert "1 h" in notes and "nv_alloc_system_pages()" in notes and "domain.md §9" in notes


def test_boot_merges_are_named_or_said_to_be_unexplained(family):
    text = accelerators.boot_merges(family)
    assert "The boot's 30 merges" in text and "3.8 of them" in text and "other 26.2 have no named source" in text


def test_reading_with_4k_pages_says_nothing_splits(reference_calibration):
    frame = accelerators.family(VmShape(hugepage_bytes=4096), reference_calibration)
    assert (frame["runtime_splits"] == 0).all()
    assert "nothing splits" in accelerators.reading(frame)


def test_figure_has_six_panels_with_units_and_one_legend(family):
    import matplotlib.pyplot as plt

    fig, axes = accelerators.figure(family)
    try:
        assert [ax.get_title() for ax in axes.flat] == [p.title for p in accelerators.PANELS]
        assert all("[" in ax.get_xlabel() for ax in axes.flat)
        ticks = {t.get_text().replace("\n", " "): t.get_position()[1] for t in axes[0][0].get_yticklabels()}
        assert len(ticks) == len(family) and max(ticks, key=ticks.get) == "no GPU"  # the family's order, top down
        assert all(not t.get_text() for t in axes[0][1].get_yticklabels())  # labels once per row of panels
        assert len(fig.legends) == 1
        assert "Huge-mapped memory" in plots.describe(fig)
    finally:
        plt.close(fig)


@needs_poppler
@pytest.mark.notebook
def test_section_renders_in_html_and_pdf(tmp_path, capsys, family):
    from costmodel.cli import main as cli_main

    assert cli_main(["report", "-o", str(tmp_path)]) == 0, capsys.readouterr().err
    name = "snp-16GiB-16vcpu-2M-status_quo"
    page = (tmp_path / f"{name}.html").read_text()
    text = _text(page)
    assert ">Accelerators: the same VM with 0 to 8 GPUs" in page
    section = text[text.index("Accelerators: the same VM"):text.index("Measurements")]
    expected = ["8 GPUs, TDISP", "4,160", "41,024", "40,960", "2,097,216", "41.6 %", "What to read from it",
                "other 26.2 have no named source"]
    for value in expected:
        assert value in section, value
    assert section.count("Figure. Splits") == 0  # alt text is an attribute, not visible text
    assert re.search(r'alt="Figure\. Splits[^"]*Huge-mapped memory', page), "the figure and its alt text"
    pdf = subprocess.run(["pdftotext", "-layout", str(tmp_path / f"{name}.pdf"), "-"], capture_output=True, text=True,
                         check=True).stdout
    assert "Accelerators: the same VM with 0 to 8 GPUs" in pdf
    pdf_section = pdf[pdf.index("Accelerators: the same VM"):pdf.index("Measurements")]
    for value in expected[1:] + ["TDISP"]:  # table cells wrap in the PDF: the labels' words land on several lines
        assert value in re.sub(r"\s+", " ", pdf_section), f"{value} not in the PDF"
