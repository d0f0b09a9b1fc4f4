"""The dataset contract: loading, validation errors that name where, writing, appending."""

import json

import numpy as np
import pandas as pd
import pytest

from costmodel import data
from costmodel.calibration import REFERENCE_DATA
from costmodel.errors import InputError
from costmodel.files import sha256_file
from costmodel.units import GiB, MiB

HEADER = "platform,memory_bytes,vcpus,virtqueues,hugepage_bytes,splits,run_id\n"


def write(tmp_path, text, name="runs.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reference_loads_with_unknowns_kept_unknown():
    frame = data.load(REFERENCE_DATA)
    assert list(frame.index) == [2, 3] and frame.index.name == "line"
    assert (frame["memory_bytes"] == 16 * GiB).all()
    assert list(frame["hugepage_bytes"]) == [2 * MiB, GiB]
    assert frame["vcpus"].isna().all()  # not published: never invented
    assert frame["virtqueues"].isna().all()
    assert frame.loc[2, "splits"] == 622 and np.isnan(frame.loc[3, "conversion_cycles"])
    assert frame.loc[3, "split_merge_event_cycles"] == 46475980  # extra columns are kept
    assert frame.loc[2, "run_id"] == "roth-2025-07-2m"


def test_human_sizes_case_and_bytes(tmp_path):
    path = write(tmp_path, HEADER + "SNP,16GiB,16,,2M,600,a\ntdx,8G,4,7,1073741824,5,b\nsnp,16GB,4,,4K,0,c\n")
    frame = data.load(path)
    assert list(frame["memory_bytes"]) == [16 * GiB, 8 * GiB, 16 * 10**9]
    assert list(frame["hugepage_bytes"]) == [2 * MiB, GiB, 4096]
    assert list(frame["platform"]) == ["snp", "tdx", "snp"]
    assert frame["virtqueues"].isna().tolist() == [True, False, True]
    assert frame["memory_bytes"].dtype == np.int64 and str(frame["vcpus"].dtype) == "Int64"


@pytest.mark.parametrize("body, where, found", [
    ("snp,16G,abc,,2M,5,a\n", "line 2, column vcpus", "'abc'"),
    ("snp,16G,4,,2M,-5,a\n", "line 2, column splits", "-5"),
    ("snp,16G,4,,2M,NaN,a\n", "line 2, column splits", "'NaN'"),
    ("sev,16G,4,,2M,5,a\n", "line 2, column platform", "'sev'"),
    ("snp,16G,4,,3M,5,a\n", "line 2, column hugepage_bytes", "'3M'"),
    ("snp,,4,,2M,5,a\n", "line 2, column memory_bytes", "an empty cell"),
    ("snp,16G,4,,2M,5,a\nsnp,16G,4,,2M,6,a\n", "line 3, column run_id", "(also on line 2)"),
    ("snp,16G,4,,2M,5,\nsnp,16G,4,,2M,5,\n", "line 3", "a copy of line 2"),
    ("snp,16G,4,,2M,,a\n", "line 2", "no measured value"),
])
def test_bad_cells_name_file_line_and_column(tmp_path, body, where, found):
    path = write(tmp_path, HEADER + body)
    with pytest.raises(data.DataError) as error:
        data.load(path)
    message = str(error.value)
    assert message.startswith(f"{path}, {where}: got "), message
    assert found in message and "expected" in message


def test_line_numbers_follow_the_file_with_blank_lines_and_quoted_breaks(tmp_path):
    text = "platform,memory_bytes,vcpus,hugepage_bytes,notes,splits\n" \
           'snp,16G,4,2M,"two\nlines",5\n\nsnp,16G,4,2M,x,-1\n'
    with pytest.raises(data.DataError, match=r", line 5, column splits: got -1"):
        data.load(write(tmp_path, text))


def test_every_problem_is_collected(tmp_path):
    path = write(tmp_path, HEADER + "snp,16G,abc,,2M,5,a\nsnp,16G,4,,2M,x,b\nfoo,16G,4,,2M,5,c\n")
    with pytest.raises(data.DataError) as error:
        data.load(path)
    assert len(error.value.problems) == 3
    assert "and 2 more" in str(error.value) and "line 4, column platform" in str(error.value)


def test_missing_column_suggests_the_misspelled_one(tmp_path):
    path = write(tmp_path, "platform,memory_bytes,vcpu,hugepage_bytes,splits\nsnp,16G,4,2M,5\n")
    with pytest.raises(data.DataError, match=r"no column 'vcpus'.*'vcpu' meant to be 'vcpus'"):
        data.load(path)


@pytest.mark.parametrize("text, found", [
    ("", "an empty file"),
    ("platform,memory_bytes,vcpus,hugepage_bytes,splits\n", "no rows"),
    ("platform,memory_bytes,vcpus,hugepage_bytes\nsnp,16G,4,2M\n", "no measured column"),
])
def test_empty_files_and_files_without_targets(tmp_path, text, found):
    with pytest.raises(data.DataError, match=found):
        data.load(write(tmp_path, text))


def test_unsupported_extension_and_missing_file(tmp_path):
    with pytest.raises(data.DataError, match="a .csv or .parquet file"):
        data.load(tmp_path / "runs.xlsx")
    with pytest.raises(data.DataError, match="no such file"):
        data.load(tmp_path / "absent.csv")


def test_data_error_is_an_input_error():
    assert issubclass(data.DataError, InputError)


@pytest.mark.parametrize("name", ["runs.csv", "runs.parquet"])
def test_write_then_load_round_trips(tmp_path, name):
    frame = data.load(REFERENCE_DATA)
    path = data.write(frame, tmp_path / name)
    again = data.load(path)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), frame.reset_index(drop=True), check_dtype=False)
    if name.endswith(".csv"):
        text = path.read_text()
        assert "17179869184" in text and ",622," in text and "622.0" not in text
        assert text.splitlines()[1].startswith("snp,17179869184,,,2097152,")  # unknown stays empty


def test_write_refuses_bad_frames_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("old\n")
    bad = pd.DataFrame({"platform": ["snp"], "memory_bytes": ["16G"], "vcpus": [4], "hugepage_bytes": ["2M"],
                        "splits": [-1]})
    with pytest.raises(data.DataError, match="row 1, column splits"):
        data.write(bad, path)
    assert path.read_text() == "old\n"


def _row(run_id, splits, vcpus=4):
    return {"platform": "snp", "memory_bytes": "16GiB", "vcpus": vcpus, "hugepage_bytes": "2M",
            "splits": splits, "run_id": run_id, "source": "test"}


@pytest.mark.parametrize("name", ["runs.csv", "runs.parquet"])
def test_append_creates_replaces_by_run_id_and_keeps_order(tmp_path, name):
    path = tmp_path / name
    data.append(path, [_row("a", 600), _row("b", 610, vcpus=8)])
    frame = data.append(path, [_row("a", 601), _row("c", 620, vcpus=16)])  # a re-ingested run replaces its row
    assert list(frame["run_id"]) == ["a", "b", "c"]
    assert list(frame["splits"]) == [601, 610, 620]


@pytest.mark.parametrize("name", ["runs.csv", "runs.parquet"])
def test_append_to_runs_already_read_writes_the_same_file(tmp_path, name):
    """ingest reads a dataset once and hands it to append (old=, reload=False)."""
    first, second = tmp_path / "first" / name, tmp_path / "second" / name
    for path in (first, second):
        path.parent.mkdir()
        data.append(path, [_row("a", 600), _row("b", 610, vcpus=8)])
    data.append(first, [_row("a", 601), _row("c", 620, vcpus=16)])
    merged = data.append(second, [_row("a", 601), _row("c", 620, vcpus=16)], old=data.load(second), reload=False)
    assert first.read_bytes() == second.read_bytes() and list(merged["run_id"]) == ["a", "b", "c"]


def test_append_writes_nothing_on_error(tmp_path):
    path = tmp_path / "runs.csv"
    data.append(path, [_row("a", 600)])
    before = path.read_bytes()
    with pytest.raises(data.DataError, match="new rows, row 2, column vcpus"):
        data.append(path, [_row("b", 600), _row("c", 600, vcpus="many")])
    assert path.read_bytes() == before


def test_sha256_is_of_the_bytes(tmp_path):
    path = write(tmp_path, "x")
    assert sha256_file(path) == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"


def test_constants_match_the_schema():
    columns = data.columns()
    assert set(data.REQUIRED) == set(data.schema()["required"])
    assert all(columns[t]["x-role"] == "target" for t in data.TARGETS)
    assert all(columns[p]["x-role"] == "provenance" for p in data.PROVENANCE)


def test_json_schema_accepts_normalised_rows_and_rejects_bad_ones():
    import jsonschema  # declared in the dev extra: the schema test must not skip silently
    validator = jsonschema.Draft202012Validator(data.schema())
    frame = data.load(REFERENCE_DATA)
    for record in frame.reset_index(drop=True).astype(object).to_dict("records"):
        row = {k: (None if pd.isna(v) else (int(v) if isinstance(v, (np.integer,)) else v)) for k, v in record.items()}
        assert not list(validator.iter_errors(row)), row
    assert list(validator.iter_errors({"platform": "sev", "memory_bytes": 1, "vcpus": None, "hugepage_bytes": 4096}))


def test_docs_describe_every_column():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "data-schema.md").read_text()
    for name in data.columns():
        assert f"`{name}`" in text, name
    json.loads(json.dumps(data.schema()))  # plain JSON


def _plain_frame_sha256(frame):
    """frame_sha256 as first written: pandas' hash of an object copy of every cell."""
    import hashlib

    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    hashes = pd.util.hash_pandas_object(frame.astype(object).where(frame.notna(), None), index=False)
    digest.update(hashes.to_numpy().tobytes())
    return digest.hexdigest()


def test_frame_sha256_is_what_it_was():
    """The digest fits record for a frame is computed per distinct value now: the same value."""
    from costmodel.samples import DIRECTORY

    frames = [data.load(REFERENCE_DATA), data.validate(pd.read_csv(DIRECTORY / "synthetic-runs.csv"), "rows")]
    n = 40
    odd = pd.DataFrame({"platform": ["snp", "tdx"] * (n // 2), "memory_bytes": [16 * GiB] * n,
                        "vcpus": pd.array([None if i % 7 == 0 else 1 + i % 3 for i in range(n)], dtype="Int64"),
                        "hugepage_bytes": [2 * MiB] * n, "run_id": [f"r{i}" for i in range(n)],
                        "splits": [float(i % 5) if i % 3 else np.nan for i in range(n)],
                        "merges": [-0.0 if i % 2 else 0.0 for i in range(n)],
                        "extra": [1, "a", 2.5, None, float("nan"), True, "b", 3, -0.0, 0.0] * (n // 10)})
    frames.append(data.validate(odd, "rows"))
    frames.append(pd.DataFrame({"a": [np.nan, np.nan], "b": pd.array([None, None], dtype="Int64"), "c": ["", None]}))
    for frame in frames:
        assert data.frame_sha256(frame) == _plain_frame_sha256(frame)
    assert data.frame_sha256(frames[-2]) != data.frame_sha256(frames[-2].iloc[::-1])


def test_large_plain_csv_is_read_as_pandas_reads_it(tmp_path):
    """Large plain files go through pyarrow's reader: the same frame as pandas' reader; any
    file that is not plain is left to pandas."""
    import io

    from costmodel.data import files

    n = 24000
    rows = [f"snp,{16 + i % 3}GiB,{1 + i % 7},{'' if i % 5 else 12},2M,{i * 0.37!r},r{i},café ünïcode,"
            + ("x y" if i % 2 else "") for i in range(n)]
    text = "platform,memory_bytes,vcpus,virtqueues,hugepage_bytes,splits,run_id,source,notes\n" + "\n".join(rows) + "\n"
    raw = text.encode()
    assert len(raw) >= files.ARROW_MIN_BYTES
    fast = files._read_plain_csv(raw)
    plain = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig", dtype=str, keep_default_na=False, na_filter=False,
                        skipinitialspace=True)
    pd.testing.assert_frame_equal(fast, plain, check_exact=True)
    assert list(fast.dtypes) == list(plain.dtypes) and (fast["virtqueues"] == "").sum() == n - n // 5
    for odd in (text.replace("r7,", '"r7",'), text.replace(",r7,", ", r7,"), text.replace(",r7,", ",\tr7,"),
                text.replace("\nsnp,16", "\n snp,16", 1), text.replace(",r7,café ünïcode", ",r7"),
                text.replace("notes", "run_id"), "\ufeff" + text):
        assert files._read_plain_csv(odd.encode()) is None
    path = tmp_path / "runs.csv"
    path.write_bytes(raw)
    loaded = data.load(path)
    assert len(loaded) == n and list(loaded.index[:2]) == [2, 3] and loaded["memory_bytes"].iloc[1] == 17 * GiB


def test_large_text_columns_checked_in_arrow_as_cell_by_cell(monkeypatch):
    """Text and measured columns that pyarrow stores are checked in Arrow: the same frame as
    the cell-by-cell rules make; anything those rules must word goes to them."""
    validate = __import__("importlib").import_module("costmodel.data.validate")
    dtype = pd.Series([], dtype=str).dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        pytest.skip("pandas keeps read text as objects here: nothing for Arrow to check")
    n = 400
    rng = np.random.default_rng(4)
    numbers = [repr(float(x)) for x in np.abs(rng.standard_normal(n)) * 1e6]
    blanks = ["", " ", "\t", "\u2003", "\x1c", "\u00a0 ", " x", "é", "~", "!"]
    text = {"platform": ["snp"] * n, "memory_bytes": ["16GiB"] * n, "vcpus": ["4"] * n, "hugepage_bytes": ["2M"] * n,
            "splits": [("" if i % 9 == 0 else numbers[i]) for i in range(n)],
            "merges": ["1e3", "7", "+.5", "5.", "0"] * (n // 5),
            "run_id": [f"r{i}" for i in range(n)], "notes": [blanks[i % len(blanks)] for i in range(n)]}

    def outcome(columns, rows):
        monkeypatch.setattr(validate, "ARROW_MIN_ROWS", rows)
        try:
            return validate.validate(pd.DataFrame({k: pd.Series(v, dtype=dtype) for k, v in columns.items()}), "rows")
        except data.DataError as error:
            return str(error)

    def both(columns):
        fast, plain = outcome(columns, 10), outcome(columns, 1 << 40)
        if isinstance(plain, str):
            assert fast == plain
        else:
            pd.testing.assert_frame_equal(fast, plain, check_exact=True)
            assert list(fast.dtypes) == list(plain.dtypes)
        return fast

    fast = both(text)
    assert fast["notes"].isna().sum() == 6 * n // len(blanks) and fast["splits"].isna().sum() == (n + 8) // 9
    for odd in (" 12", "1_000", "nan", "-inf", "1e19", "\u0661\u0662", "12 ", "-1"):  # the cell rules take or word each
        both(dict(text, merges=[odd] + text["merges"][1:]))
    ids = text["run_id"]
    assert isinstance(both(dict(text, run_id=["r1"] + ids[1:])), str)  # a run id twice: worded by the cell rules
    assert both(dict(text, run_id=["", " "] + ids[2:]))["run_id"].isna().sum() == 2  # unknown ids are no repeats
    assert both(dict(text, notes=[" "] * n, source=[""] * n))["notes"].isna().all()  # no text at all


def _cells_as_before(path):
    """A Parquet file as validation took it before: every cell an object, None for unknown."""
    frame = pd.read_parquet(path)
    frame = frame.astype(object).where(frame.notna(), None)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return frame


def test_parquet_columns_kept_typed_validate_as_cells(tmp_path):
    """Parquet numbers, booleans and text reach validation typed: the same frame (and the same
    errors) as when every cell was turned into an object first."""
    validate = __import__("importlib").import_module("costmodel.data.validate")
    n = 30
    frame = pd.DataFrame({"platform": ["snp", "TDX", "tdx"] * 10, "memory_bytes": [16 * GiB] * n,
                          "vcpus": [4.0, None, 8.0] * 10, "hugepage_bytes": [2 * MiB, GiB, 4096] * 10,
                          "kaslr": [True, False, True] * 10, "splits": [1.5, None, -0.0] * 10,
                          "merges": np.arange(n, dtype="int64"),
                          "run_id": [f"r{i}" if i % 4 else " " for i in range(n)],
                          "extra": [1, 2, None] * 10, "words": ["a", None, ""] * 10})
    for variant in (frame, frame.assign(splits=[1.5, -2.0, 1e30] * 10), frame.assign(vcpus=[4.0, 0.0, 2.5] * 10)):
        path = tmp_path / "runs.parquet"
        variant.to_parquet(path, index=False)
        outcomes = []
        for cells in (__import__("costmodel.data.files", fromlist=["_read"])._read(path), _cells_as_before(path)):
            try:
                outcomes.append(validate.validate(cells, str(path)))
            except data.DataError as error:
                outcomes.append(str(error))
        if isinstance(outcomes[1], str):
            assert outcomes[0] == outcomes[1]
        else:
            pd.testing.assert_frame_equal(outcomes[0], outcomes[1], check_exact=True)
            assert list(outcomes[0].dtypes) == list(outcomes[1].dtypes)
    assert isinstance(outcomes[0], str) and "vcpus" in outcomes[0]
