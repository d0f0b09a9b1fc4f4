"""Hostile and broken input (issue 14): every case exits 2 with one line, no traceback, and
writes or changes nothing; shared calibrations and data file names cannot inject markup,
read files or reach the network; parsers and the calibration reader raise nothing but
InputError (Hypothesis)."""

from __future__ import annotations

import html.parser
import http.server
import json
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costmodel import calibration, parse
from costmodel.calibration.values import Calibration
from costmodel.cli import main
from costmodel.errors import InputError
from costmodel.files import sha256_file
from costmodel.model.variables import COEFFICIENTS, QUANTITIES
from costmodel.render import escape

SAMPLES = Path(__file__).resolve().parent / "samples"
PACKAGE = Path(calibration.__file__).resolve().parent.parent
REFERENCE = PACKAGE / "reference" / "roth-2025-07.csv"
SYNTHETIC = PACKAGE / "samples" / "synthetic-runs.csv"
HEADER = ("costmodel-collect/1 header run=r1 pid=1 kernel=6.15 host=h unit=ns started=2026-01-05T10:00:00Z "
          "tsc_hz=2400000000 hugepage=2M hvo=1 fallback=0")
END = "costmodel-collect/1 end run=r1 pid=1 elapsed_ns=1000"


def _calibration_dict() -> dict:
    return json.loads(calibration.default().to_json())


def _with(changes) -> str:
    """The default calibration's JSON with ``changes(d)`` applied (text, or a dict)."""
    d = _calibration_dict()
    out = changes(d)
    return out if isinstance(out, str) else json.dumps(d if out is None else out)


def _set(path: str, value):
    def change(d):
        *parents, last = path.split(".")
        node = d
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return change


def _fit_record() -> dict:
    return {"target": "splits", "free": ["remainder_regions"], "covariance": [[1.0]], "residual_scale": 0.1, "dof": 3}


#: (id, calibration file content, text the one-line error must contain)
BAD_CALIBRATIONS = [
    ("negative remainder", _with(_set("coefficients.remainder_regions.value", -500)), "remainder_regions"),
    ("1e308 cycles", _with(_set("coefficients.split_fixed_cycles.value", 1e308)), "split_fixed_cycles"),
    ("boolean value", _with(_set("coefficients.remainder_regions.value", True)), "a boolean"),
    ("string value", _with(_set("coefficients.remainder_regions.value", "70")), "remainder_regions"),
    ("10^400 literal", _with(lambda d: json.dumps(d).replace('"value": 30.', '"value": 1' + "0" * 400 + ', "x": 30.', 1)),
     "digits"),
    ("1e400 literal", _with(lambda d: json.dumps(d).replace('"value": 30.', '"value": 1e400, "x": 30.', 1)), "double"),
    ("NaN literal", _with(lambda d: json.dumps(d).replace('"value": 30.', '"value": NaN, "x": 30.', 1)), "NaN"),
    ("Infinity", _with(lambda d: json.dumps(d).replace('"value": 30.', '"value": -Infinity, "x": 30.', 1)), "Infinity"),
    ("provenance list", _with(_set("provenance", ["a"])), "provenance"),
    ("provenance method number", _with(_set("provenance.method", 5)), "provenance.method"),
    ("string stderr", _with(_set("coefficients.remainder_regions.stderr", "big")), "stderr"),
    ("negative stderr", _with(_set("coefficients.remainder_regions.stderr", -1)), "stderr"),
    ("interval upside down", _with(lambda d: d["coefficients"]["remainder_regions"].update(ci_low=9, ci_high=1)),
     "ci_low"),
    ("wrong unit", _with(_set("coefficients.firmware_reserved_bytes.unit", "MiB")), "unit"),
    ("unknown origin", _with(_set("coefficients.remainder_regions.origin", "<script>")), "origin"),
    ("unknown coefficient", _with(_set("coefficients.bogus", {"value": 1})), "bogus"),
    ("tdx set a list", _with(_set("tdx_coefficients", [1, 2])), "tdx_coefficients"),
    ("extra.fit a number", _with(_set("extra.fit", 5)), "extra.fit"),
    ("extra.fit free a string", _with(_set("extra.fit", {**_fit_record(), "free": "remainder_regions"})), "free"),
    ("extra.fit dof true", _with(_set("extra.fit", {**_fit_record(), "dof": True})), "dof"),
    ("extra.fit level 2", _with(_set("extra.fit", {**_fit_record(), "level": 2})), "level"),
    ("extra.fit target unknown", _with(_set("extra.fit", {**_fit_record(), "target": "x"})), "target"),
    ("extra.fit platform unknown", _with(_set("extra.fit", {**_fit_record(), "platform": "sgx"})), "platform"),
    ("extra.fit covariance NaN-free but ragged", _with(_set("extra.fit", {**_fit_record(), "covariance": [[1, 2]]})),
     "covariance"),
    ("extra.fit input range reversed",
     _with(_set("extra.fit", {**_fit_record(), "input_ranges": {"vcpus": [64, 1]}})), "input_ranges"),
    ("extra.fits a list", _with(_set("extra.fits", [1])), "extra.fits"),
    ("extra a string", _with(_set("extra", "x")), "extra"),
    ("form unknown", _with(_set("form", ["default"])), "form"),
    ("deep nesting", '{"format": "costmodel-calibration/2", "provenance": ' + "[" * 100_000 + "]" * 100_000 + "}",
     "nest"),
    ("moderate nesting in provenance", _with(_set("provenance.x", json.loads("[" * 20 + "]" * 20))), "nest"),
    ("huge string", _with(_set("provenance.note", "x" * 10_000)), "characters"),
    ("a JSON list", "[1, 2]", "a list"),
    ("empty file", "", "valid JSON"),
    ("old format", _with(_set("format", "costmodel-calibration/1")), "format"),
]


def _run(argv, capsys) -> tuple[int, str]:
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    err = capsys.readouterr().err
    return status, err


def _assert_one_line_error(status: int, err: str, *expected: str):
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert ": error: " in lines[0] and "got" in lines[0] or "error:" in lines[0], err
    for text in expected:
        assert text in lines[0], (text, lines[0])


@pytest.mark.parametrize("content, expected", [c[1:] for c in BAD_CALIBRATIONS], ids=[c[0] for c in BAD_CALIBRATIONS])
@pytest.mark.parametrize("command", ["predict", "formula"])
def test_bad_calibrations_exit_2_in_one_line(tmp_path, capsys, command, content, expected):
    path = tmp_path / "cal.json"
    path.write_text(content)
    status, err = _run([command, "--calibration", path], capsys)
    _assert_one_line_error(status, err, expected)


def test_binary_and_oversized_calibrations(tmp_path, capsys):
    binary = tmp_path / "bin.json"
    binary.write_bytes(bytes(range(256)) * 4)
    _assert_one_line_error(*_run(["predict", "--calibration", binary], capsys), "UTF-8")
    big = tmp_path / "big.json"
    big.write_text(" " * (5 * 1024 * 1024) + "{}")
    _assert_one_line_error(*_run(["predict", "--calibration", big], capsys), "MiB")
    missing = tmp_path / "missing.json"
    _assert_one_line_error(*_run(["predict", "--calibration", missing], capsys), "--calibration")


def test_every_coefficient_has_a_finite_bound_and_edges_stay_strict_json(tmp_path, capsys):
    """A calibration at the registry's bounds is read, and its JSON has no NaN/Infinity."""
    for name in COEFFICIENTS:
        low, high = QUANTITIES[name].bounds
        assert 0 <= high < float("inf") and low <= QUANTITIES[name].default <= high, name
    for side in (0, 1):
        d = _calibration_dict()
        for name in COEFFICIENTS:
            d["coefficients"][name]["value"] = QUANTITIES[name].bounds[side]
        path = tmp_path / f"edge{side}.json"
        path.write_text(json.dumps(d))
        status = main(["predict", "--json", "--calibration", str(path), "--memory", "64TiB", "--vcpus", "4096",
                       "--hugepage", "1G"])
        out, err = capsys.readouterr()
        assert status == 0 and not err.strip(), err
        assert "NaN" not in out and "Infinity" not in out
        json.loads(out, parse_constant=lambda c: pytest.fail(f"non-finite {c} in --json"))


#: (id, argv, text the error names) — flags, ranges and empty paths.
BAD_FLAGS = [
    ("memory int64 max", ["predict", "--memory", str(2**63 - 1)], "--memory"),
    ("memory past int64", ["predict", "--memory", str(2**63)], "9223372036854775807"),
    ("memory past double", ["predict", "--memory", "1" + "0" * 400], "--memory"),
    ("memory 8 EiB in TB", ["predict", "--memory", "9300000TB"], "--memory"),
    ("vcpus past int64", ["predict", "--vcpus", "99999999999999999999999"], "--vcpus"),
    ("vcpus 5000 digits", ["predict", "--vcpus", "9" * 5000], "--vcpus"),
    ("nan step", ["predict", "--vcpus", "1:4:+nan"], "finite step"),
    ("inf step", ["predict", "--vcpus", "1:4:xinf"], "finite step"),
    ("memory below a hugepage", ["predict", "--memory", "512MiB", "--hugepage", "1G"], "hugepage"),
    ("swiotlb above memory", ["predict", "--memory", "1GiB", "--swiotlb", "2GiB"], "SWIOTLB"),
    ("grid product", ["predict", "--vcpus", "1:100000", "--virtqueues", "1:100000", "--csv"], "configurations"),
    ("empty calibration", ["predict", "--calibration", ""], "--calibration"),
    ("blank calibration formula", ["formula", "--calibration", " "], "--calibration"),
    ("empty calibration fit", ["fit", SYNTHETIC, "--target", "splits", "--calibration", ""], "--calibration"),
]


@pytest.mark.parametrize("argv, expected", [c[1:] for c in BAD_FLAGS], ids=[c[0] for c in BAD_FLAGS])
def test_bad_flags_exit_2_in_one_line(capsys, argv, expected):
    _assert_one_line_error(*_run(argv, capsys), expected)


# --- outputs ---------------------------------------------------------------------------------
def _collector(tmp_path, *lines, header=HEADER) -> Path:
    path = tmp_path / "run.collect"
    path.write_text("\n".join([header, "costmodel-collect/1 begin run=r1 pid=1 probes=1", *lines, END]) + "\n")
    return path


def _ingest(collect, output, *extra):
    return ["ingest", collect, "--platform", "snp", "--memory", "16GiB", "--vcpus", "16", "-o", output, *extra]


def test_ingest_never_rewrites_the_shipped_reference(tmp_path, capsys):
    before = sha256_file(REFERENCE)
    collect = _collector(tmp_path, "costmodel-collect/1 split run=r1 pid=1 probe=kprobe:x count=5 ns=10 other=0")
    _assert_one_line_error(*_run(_ingest(collect, REFERENCE), capsys), "outside the installed costmodel package")
    link = tmp_path / "ref-link.csv"
    link.symlink_to(REFERENCE)
    _assert_one_line_error(*_run(_ingest(collect, link), capsys), "-o")
    assert sha256_file(REFERENCE) == before


@pytest.mark.parametrize("case", ["directory", "under a file", "read-only", "symlink", "package"])
def test_fit_output_is_checked_before_the_fit(tmp_path, capsys, monkeypatch, case):
    from costmodel import fitting

    monkeypatch.setattr(fitting, "fit", lambda *a, **k: pytest.fail("fitted before checking -o"))
    target = {"directory": tmp_path / "dir.json", "under a file": tmp_path / "file.json" / "cal.json",
              "read-only": tmp_path / "ro.json", "symlink": tmp_path / "link.json",
              "package": PACKAGE / "reference" / "mine.json"}[case]
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "file.json").write_text("{}")
    (tmp_path / "ro.json").write_text("{}")
    os.chmod(tmp_path / "ro.json", 0o444)
    (tmp_path / "link.json").symlink_to(tmp_path / "elsewhere.json")
    before = {p: p.read_bytes() for p in (tmp_path / "file.json", tmp_path / "ro.json")}
    _assert_one_line_error(*_run(["fit", SYNTHETIC, "--target", "splits", "-o", target], capsys), "-o")
    assert {p: p.read_bytes() for p in before} == before
    assert stat.S_IMODE((tmp_path / "ro.json").stat().st_mode) == 0o444
    assert (tmp_path / "link.json").is_symlink() and not (tmp_path / "elsewhere.json").exists()
    assert not (PACKAGE / "reference" / "mine.json").exists()


# --- collector output -----------------------------------------------------------------------
BAD_COLLECTOR = [
    ("count past double", ["costmodel-collect/1 split run=r1 pid=1 probe=kprobe:x count=1" + "0" * 400 + " ns=1 other=0"],
     HEADER, "count="),
    ("count past int64", [f"costmodel-collect/1 split run=r1 pid=1 probe=kprobe:x count={2**63} ns=1 other=0"],
     HEADER, "count="),
    ("totals past int64", [f"costmodel-collect/1 split run=r1 pid=1 probe=kprobe:x count={2**63 - 1} ns=1 other=0"] * 2,
     HEADER, "int64" if False else "totals"),
    ("run id with a path", [], HEADER.replace("run=r1", "run=../../etc/x"), "run="),
    ("tsc_hz zero", [], HEADER.replace("tsc_hz=2400000000", "tsc_hz=0"), "tsc_hz"),
    ("tsc_hz negative", [], HEADER.replace("tsc_hz=2400000000", "tsc_hz=-5"), "tsc_hz"),
    ("tsc_hz nan", [], HEADER.replace("tsc_hz=2400000000", "tsc_hz=nan"), "tsc_hz"),
]


@pytest.mark.parametrize("lines, header, expected", [c[1:] for c in BAD_COLLECTOR], ids=[c[0] for c in BAD_COLLECTOR])
def test_bad_collector_output_exits_2_and_appends_nothing(tmp_path, capsys, lines, header, expected):
    collect = _collector(tmp_path, *lines, header=header)
    dataset = tmp_path / "runs.csv"
    _assert_one_line_error(*_run(_ingest(collect, dataset), capsys), expected)
    assert not dataset.exists()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e400"])
def test_ingest_tsc_flag_is_a_positive_frequency(tmp_path, capsys, value):
    collect = _collector(tmp_path)
    _assert_one_line_error(*_run(_ingest(collect, tmp_path / "runs.csv", f"--tsc-hz={value}"), capsys), "--tsc-hz")


# --- datasets -------------------------------------------------------------------------------
@pytest.mark.parametrize("column, value", [("memory_bytes", str(2**70)), ("memory_bytes", "1" + "0" * 400),
                                           ("splits", "1e300"), ("vcpus", "9" * 30), ("splits", "inf")])
def test_dataset_cells_past_the_model_are_refused(tmp_path, capsys, column, value):
    header = "platform,memory_bytes,vcpus,hugepage_bytes,splits"
    row = {"platform": "snp", "memory_bytes": "16GiB", "vcpus": "16", "hugepage_bytes": "2M", "splits": "622"}
    row[column] = value
    path = tmp_path / "runs.csv"
    path.write_text(header + "\n" + ",".join(row[c] for c in header.split(",")) + "\n")
    _assert_one_line_error(*_run(["fit", path, "--target", "splits"], capsys), "line 2", column)


# --- reports: everything checked before a kernel starts -------------------------------------
@pytest.fixture
def no_kernel(monkeypatch):
    from costmodel.reporting import report

    monkeypatch.setattr(report, "execute", lambda *a, **k: pytest.fail("a kernel was started"))


def test_report_inputs_fail_before_the_kernel(tmp_path, capsys, no_kernel, monkeypatch):
    bad_types = tmp_path / "bad-types.csv"
    bad_types.write_text("platform,memory_bytes,vcpus,hugepage_bytes,splits\nsnp,lots,16,2M,622\n")
    bad_cal = tmp_path / "bad.json"
    bad_cal.write_text(_with(_set("coefficients.remainder_regions.value", -500)))
    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "taken.html").mkdir()
    cases = [
        (["-p", "data", bad_types], "memory_bytes"),
        (["-p", "calibration", bad_cal], "remainder_regions"),
        (["-p", "memory", str(2**63)], "memory"),
        (["--name", "../../x"], "--name"),
        (["--name", "a/b"], "--name"),
        (["-o", afile], "--output"),
        (["-o", tmp_path / "out", "--name", "taken", "--to", "html"], "directory"),
        (["-o", PACKAGE / "notebooks"], "outside the installed costmodel package"),
    ]
    for extra, expected in cases:
        argv = ["report", "--to", "html", "-o", tmp_path / "out", *extra]
        _assert_one_line_error(*_run(argv, capsys), expected)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    _assert_one_line_error(*_run(["report", "--pdf-engine", "latex", "-o", tmp_path / "out"], capsys), "xelatex")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["taken.html"]


def test_report_data_row_budget(tmp_path, capsys, no_kernel):
    from costmodel.reporting.notebooks import MAX_REPORT_DATA_ROWS

    path = tmp_path / "many.csv"
    path.write_text("platform,memory_bytes,vcpus,hugepage_bytes,splits\n"
                    + "".join(f"snp,16GiB,{1 + i % 4000},2M,{i}\n" for i in range(MAX_REPORT_DATA_ROWS + 1)))
    _assert_one_line_error(*_run(["report", "-p", "data", path, "-o", tmp_path], capsys), str(MAX_REPORT_DATA_ROWS))


def test_yaml_alias_bombs_are_refused(tmp_path, capsys, no_kernel):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    _assert_one_line_error(*_run(["report", "-f", bomb, "-o", tmp_path], capsys), "aliases expanded")
    recursive = tmp_path / "self.yaml"
    recursive.write_text("memory: &a [*a]\n")
    _assert_one_line_error(*_run(["report", "-f", recursive, "-o", tmp_path], capsys), "itself")


def test_sweep_budgets_and_bom(tmp_path):
    from costmodel.measure import sweep

    shapes = tmp_path / "shapes.csv"
    shapes.write_text("\ufeffvcpus,memory,hugepage\n4,16GiB,2M\n")
    assert [s.vcpus for s in sweep.load_shapes(shapes)] == [4]
    big = tmp_path / "big.yaml"
    big.write_text("- {vcpus: '1:1000', memory: '1:1000', hugepage: 2M}\n")
    with pytest.raises(InputError, match="combinations"):
        sweep.load_shapes(big)
    with pytest.raises(InputError, match="10000"):
        sweep.plan(sweep.load_shapes(shapes), ["qemu"], platform="snp", out_dir=tmp_path, dataset=tmp_path / "d.csv",
                   collector="c", repeat=1_000_000_000)


# --- injection: HTML, PDF and LaTeX ----------------------------------------------------------
class _Requests(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_GET(self):  # noqa: N802 - http.server API
        _Requests.seen.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"GIF89a")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Requests.seen = []
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Requests)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def _payload(port: int) -> str:
    return (f'<a rel="attachment" href="file:///etc/passwd">x</a> <img src=x onerror=alert(1)> '
            f'<img src="http://127.0.0.1:{port}/p.png"> <script>alert(3)</script> `x` $\\input{{/etc/passwd}}$ '
            "\\input{/etc/passwd} ^^5cinput\n\n# heading\n<svg onload=alert(4)>")


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _live_markup(page: str) -> list:
    parser = _Tags()
    parser.feed(page)
    bad = []
    for tag, attrs in parser.tags:
        if tag == "script" or any(name.startswith("on") for name in attrs):
            bad.append((tag, attrs))
        for name in ("src", "href"):
            if name in attrs and attrs[name] and not str(attrs[name]).startswith(("data:", "#")):
                if tag != "a" or "attachment" in str(attrs.get("rel", "")) or attrs[name].startswith("file:"):
                    bad.append((tag, attrs))
    return bad


def test_formula_latex_and_markdown_neutralise_a_shared_calibration(tmp_path, capsys):
    path = tmp_path / "evil.json"
    d = _calibration_dict()
    d["provenance"].update(method=_payload(9), data="a`<img src=x onerror=alert(2)>`.csv")
    path.write_text(json.dumps(d))
    assert main(["formula", "--calibration", str(path), "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    live = [line for line in latex.splitlines() if not line.startswith("%")]  # TeX ignores a comment to its line's end
    assert live and not any("\\input" in line or "^^" in line or "<img" in line for line in live)
    assert all(not line.startswith(("\\input", "# heading")) for line in latex.splitlines())
    assert main(["formula", "--calibration", str(path), "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "<img" not in markdown and "<a " not in markdown and "<script" not in markdown
    assert "\n# heading" not in markdown


@pytest.mark.notebook
def test_report_of_a_hostile_calibration_and_file_name_reads_and_fetches_nothing(tmp_path, server):
    from costmodel import reporting

    d = _calibration_dict()
    d["provenance"].update(method=_payload(server), data=f'<img src="http://127.0.0.1:{server}/d.png">')
    cal = tmp_path / "evil.json"
    cal.write_text(json.dumps(d))
    data = tmp_path / f"a`<img src=x onerror=alert(1)><img src=http:{chr(0x2215)}{chr(0x2215)}127.0.0.1:{server}>`.csv"
    shutil.copy(REFERENCE, data)
    done = reporting.render({"calibration": str(cal), "data": str(data)}, outdir=tmp_path / "out",
                            formats=("html", "pdf"), name="evil")
    page = done.paths["html"].read_text()
    pdf = done.paths["pdf"].read_bytes()
    assert _live_markup(page) == []
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "onerror=alert(1)" in page  # shown as text, escaped
    assert b"/EmbeddedFile" not in pdf and b"/EmbeddedFiles" not in pdf
    assert _Requests.seen == []


def test_pdf_fetcher_refuses_files_and_network(server):
    from costmodel.reporting.export import to_pdf

    page = (f'<html><body><a rel="attachment" href="file:///etc/passwd">x</a>'
            f'<img src="http://127.0.0.1:{server}/p.png"><link rel="attachment" href="http://127.0.0.1:{server}/a">'
            '<img src="/etc/hostname"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><p>ok</p></body></html>')
    pdf = to_pdf(page)
    assert pdf.startswith(b"%PDF") and b"/EmbeddedFile" not in pdf
    assert _Requests.seen == []


# --- the escaping module ---------------------------------------------------------------------
@given(st.text())
def test_latex_escape_leaves_no_special_character_live(text):
    out = escape.latex(text)
    stripped = out
    for command in (r"\textbackslash{}", r"\textasciicircum{}", r"\textasciitilde{}", r"\textless{}",
                    r"\textgreater{}", r"\ldots{}", r"\S{}", r"$\pm$", r"$\approx$", r"$\to$", r"$\lceil$", r"$\rceil$",
                    r"$\geq$", r"$\leq$", r"$\times$", r"$\sigma$", r"$\delta$", r"$\rho$"):
        stripped = stripped.replace(command, "")
    for char in "{}$&#_%":
        stripped = stripped.replace("\\" + char, "")
    assert not set(stripped) & set("\\{}$&#^_~%\n\r")


@given(st.text())
def test_code_span_cannot_be_left(text):
    out = escape.code_span(text)
    fence = out[: len(out) - len(out.lstrip("`"))]
    inner = out[len(fence):-len(fence)]
    assert out.endswith(fence) and fence not in inner and "\n" not in out


@given(st.text())
def test_html_and_markdown_escape_leave_no_tag(text):
    assert "<" not in escape.html(text) and ">" not in escape.html(text) and '"' not in escape.html(text)
    out = escape.markdown(text)
    assert "<" not in out and "\n" not in out


# --- fuzz: parsers and the calibration reader raise only InputError ---------------------------
@given(st.one_of(st.text(max_size=60), st.integers(), st.floats(), st.booleans(), st.none()))
def test_parsers_raise_only_input_errors(value):
    for parser in (parse.size, parse.count, parse.hugepage, parse.platform, parse.boolean, parse.device):
        try:
            result = parser(value, "x")
        except InputError:
            continue
        if parser in (parse.size, parse.count):
            assert 0 <= result <= 2**63 - 1
    try:
        values = parse.grid(value, parse.count, "x")
    except InputError:
        return
    assert all(0 <= v <= 2**63 - 1 for v in values)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                           max_size=4), max_leaves=20)


@given(st.dictionaries(st.sampled_from(["value", "origin", "stderr", "ci_low", "ci_high", "unit"]), _json),
       st.sampled_from(COEFFICIENTS), _json, _json)
def test_calibration_reader_raises_only_input_errors(entry, name, provenance, fit):
    d = _calibration_dict()
    d["coefficients"][name] = entry
    d["provenance"] = provenance
    d["extra"] = {"fit": fit}
    try:
        cal = Calibration.from_dict(json.loads(json.dumps(d)))
    except InputError:
        return
    for coefficient in cal.coefficients.values():
        low, high = QUANTITIES[coefficient.name].bounds
        assert low <= coefficient.value <= high
    json.loads(cal.to_json())


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_calibration_files_of_any_bytes_raise_only_input_errors(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("fuzz") / "cal.json"
    path.write_bytes(content)
    with pytest.raises(InputError):
        Calibration.load(path)


@given(st.fixed_dictionaries({"memory_bytes": st.one_of(st.text(max_size=30), st.integers(), st.floats()),
                              "vcpus": st.one_of(st.text(max_size=30), st.integers(), st.floats()),
                              "splits": st.one_of(st.text(max_size=30), st.integers(), st.floats())}))
def test_dataset_rows_raise_only_input_errors(row):
    from costmodel import data

    frame = __import__("pandas").DataFrame([{"platform": "snp", "hugepage_bytes": "2M", **row}])
    try:
        out = data.validate(frame, "rows")
    except InputError:
        return
    assert 0 < int(out["memory_bytes"].iloc[0]) <= 2**63 - 1
    splits = out["splits"].iloc[0]
    assert splits != splits or 0 <= splits <= 1e18
