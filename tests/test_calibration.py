import json

import pytest

from costmodel.calibration import Calibration, assumed
from costmodel.calibration import reference_calibration as reference_calibration_from
from costmodel.errors import InputError


def test_round_trip_is_byte_stable(tmp_path, reference_calibration):
    path = reference_calibration.save(tmp_path / "cal.json")
    again = Calibration.load(path)
    assert again.coefficients == reference_calibration.coefficients
    assert again.to_json() == path.read_text()


def test_derivation_is_reproducible_and_reads_the_file(tmp_path, reference_calibration):
    """Same file, same numbers, byte for byte; a copy elsewhere gives the same values."""
    from costmodel.calibration import REFERENCE_DATA

    copy = tmp_path / "ref.csv"
    copy.write_bytes(REFERENCE_DATA.read_bytes())
    again = reference_calibration_from(copy)
    assert again.values == pytest.approx(reference_calibration.values, rel=1e-12)
    assert again.provenance["data_sha256"] == reference_calibration.provenance["data_sha256"]
    assert reference_calibration_from(REFERENCE_DATA).to_json() == reference_calibration.to_json()


def test_derivation_follows_the_published_numbers(tmp_path):
    """Change a published figure and the derived coefficient moves: nothing is typed in."""
    from costmodel.calibration import REFERENCE_DATA

    edited = tmp_path / "ref.csv"
    edited.write_text(REFERENCE_DATA.read_text().replace("snp,16GiB,,,2MiB,622,", "snp,16GiB,,,2MiB,700,"))
    base = reference_calibration_from(REFERENCE_DATA).values["remainder_regions"]
    assert reference_calibration_from(edited).values["remainder_regions"] > base + 70


@pytest.mark.parametrize("content, where", [
    ("{not json", "1:2"),
    ('{"format": "other"}', "format"),
    ('{"format": "costmodel-calibration/2", "coefficients": {"remainder_regions": {"value": 1}}}', "no value for"),
    ('{"format": "costmodel-calibration/2", "form": "bogus", "coefficients": {}}', "form"),
    ('{"format": "costmodel-calibration/1", "coefficients": {}}', "fit the runs again"),
])
def test_bad_calibration_files(tmp_path, content, where):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError) as info:
        Calibration.load(path)
    assert where in str(info.value)


def test_unknown_and_non_finite_coefficients():
    values = dict(assumed().values)
    with pytest.raises(InputError, match="remainder_region"):
        Calibration.from_values({**values, "remainder_region": 1.0})
    with pytest.raises(InputError, match="a finite number"):
        Calibration.from_values({**values, "remainder_regions": float("nan")})


def test_save_is_atomic(tmp_path, reference_calibration, monkeypatch):
    path = tmp_path / "cal.json"
    path.write_text("old")
    monkeypatch.setattr(json, "dumps", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        reference_calibration.save(path)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["cal.json"]


def test_written_files_follow_the_umask_not_mkstemp(tmp_path, reference_calibration):
    """mkstemp makes files 0600; what we write must be readable as a plain open() would make it."""
    import os

    old = os.umask(0o022)
    try:
        path = reference_calibration.save(tmp_path / "cal.json")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
