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


def test_a_kind_over_its_budget_loses_its_least_recently_used_entries(fresh_cache, monkeypatch):
    import os

    monkeypatch.setenv("COSTMODEL_CACHE_MAX_MB", str(2500 / 1024 / 1024))  # room for two 1,000-byte entries
    for i, name in enumerate(("a", "b")):
        cache.write("kind", name, "x" * 1000)
        os.utime(fresh_cache / "kind" / f"{name}.txt", ns=(i * 10**9, i * 10**9))  # a older than b
    assert cache.read("kind", "a") == "x" * 1000  # a hit: now the most recent
    cache.write("kind", "c", "y" * 1000)
    assert sorted(p.name for p in (fresh_cache / "kind").iterdir()) == ["a.txt", "c.txt"], "b was least recent"
    assert cache.read("kind", "b") is None and cache.read("kind", "c") == "y" * 1000
