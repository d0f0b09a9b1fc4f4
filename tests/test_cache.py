"""The on-disk cache of compiled functions and the default calibration."""

import numpy as np
import pytest

from costmodel import cache, calibration, compiled, evaluate
from costmodel.units import GiB, MiB

CONFIG = {"memory_bytes": [4 * GiB, 16 * GiB, 64 * GiB], "vcpus": [2, 16, 128],
          "hugepage_bytes": [2 * MiB, GiB, 2 * MiB], "platform": ["snp", "tdx", "snp"]}


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path))
    compiled.compile_outputs.cache_clear()
    calibration.default.cache_clear()
    yield tmp_path
    compiled.compile_outputs.cache_clear()
    calibration.default.cache_clear()


def recompute():
    compiled.compile_outputs.cache_clear()
    calibration.default.cache_clear()
    return evaluate.evaluate_arrays(CONFIG, calibration.default(), "guest_pooling")


def test_cached_results_equal_fresh_ones(fresh_cache):
    first = recompute()  # computed, then stored
    assert len(list((fresh_cache / "compiled").iterdir())) >= 1
    assert len(list((fresh_cache / "calibration").iterdir())) == 1
    second = recompute()  # read back from disk
    for name, values in first.items():
        assert np.array_equal(values, second[name]), name


def test_damaged_entries_are_recomputed(fresh_cache):
    expected = recompute()
    for path in fresh_cache.rglob("*.txt"):
        path.write_text("def broken(:\n")
    again = recompute()
    assert np.array_equal(again["splits"], expected["splits"])
    assert "broken" not in next((fresh_cache / "calibration").iterdir()).read_text()


def test_cache_off_writes_nothing(fresh_cache, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE", "0")
    recompute()
    assert list(fresh_cache.iterdir()) == []


def test_key_follows_the_code(monkeypatch):
    before = cache.key("compiled", "default", "status_quo", "splits")
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "another version of the code")
    assert cache.key("compiled", "default", "status_quo", "splits") != before
