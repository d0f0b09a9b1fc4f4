"""Mechanics of the model as properties (Hypothesis), under the default calibration."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from costmodel import evaluate as ev
from costmodel.model.variables import OUTPUTS
from costmodel.units import GiB, KiB, MiB

memory = st.integers(min_value=1, max_value=2048).map(lambda g: g * 256 * MiB)
vcpus = st.integers(min_value=1, max_value=512)
queues = st.integers(min_value=1, max_value=1024)
hugepage = st.sampled_from([2 * MiB, GiB])
platform = st.sampled_from(["snp", "tdx"])


def splits(**config):
    return ev.evaluate(config, outputs=["splits"])["splits"].to_numpy()


@given(memory, vcpus, vcpus, queues, hugepage, platform)
def test_splits_never_decrease_with_vcpus(m, n1, n2, q, h, p):
    low, high = sorted((n1, n2))
    s = splits(memory_bytes=m, vcpus=[low, high], virtqueues=q, hugepage_bytes=h, platform=p)
    assert s[1] >= s[0] - 1e-9


@given(memory, vcpus, queues, queues, hugepage, platform)
def test_splits_never_decrease_with_virtqueues(m, n, q1, q2, h, p):
    low, high = sorted((q1, q2))
    s = splits(memory_bytes=m, vcpus=n, virtqueues=[low, high], hugepage_bytes=h, platform=p)
    assert s[1] >= s[0] - 1e-9


@given(memory, memory, vcpus, queues, hugepage, platform)
def test_splits_never_decrease_with_memory(m1, m2, n, q, h, p):
    low, high = sorted((m1, m2))
    s = splits(memory_bytes=[low, high], vcpus=n, virtqueues=q, hugepage_bytes=h, platform=p)
    assert s[1] >= s[0] - 1e-9


@given(st.integers(min_value=32, max_value=4096), vcpus, queues, hugepage, platform)
def test_splits_flat_beyond_32_gib(gib, n, q, h, p):
    """SWIOTLB caps at 1 GiB from 8.53 GiB, atomic pools at 4 MiB from 32 GiB."""
    s = splits(memory_bytes=[32 * GiB, gib * GiB], vcpus=n, virtqueues=q, hugepage_bytes=h, platform=p)
    assert np.isclose(s[0], s[1], rtol=1e-12)


@given(vcpus, queues, hugepage, platform)
def test_fewer_splits_at_4_than_16_gib(n, q, h, p):
    s = splits(memory_bytes=[4 * GiB, 16 * GiB], vcpus=n, virtqueues=q, hugepage_bytes=h, platform=p)
    assert s[0] < s[1]


@given(memory, vcpus, queues, hugepage)
def test_tdx_at_most_snp(m, n, q, h):
    s = ev.evaluate({"memory_bytes": m, "vcpus": n, "virtqueues": q, "hugepage_bytes": h,
                     "platform": ["snp", "tdx"]}, outputs=["splits"])["splits"].to_numpy()
    assert s[1] <= s[0] + 1e-9


@given(memory, vcpus, queues, platform)
def test_no_hugepages_no_splits(m, n, q, p):
    row = ev.evaluate({"memory_bytes": m, "vcpus": n, "virtqueues": q, "hugepage_bytes": 4 * KiB,
                       "platform": p}).iloc[0]
    assert row["splits"] == 0 and row["merges"] == 0 and row["huge_mapped_fraction"] == 0


@given(memory, vcpus, queues, st.sampled_from([4 * KiB, 2 * MiB, GiB]), platform,
       st.sampled_from(["status_quo", "guest_pooling", "host_promotion", "struct_page_less"]))
def test_outputs_finite_non_negative_and_bounded(m, n, q, h, p, scenario):
    row = ev.evaluate({"memory_bytes": m, "vcpus": n, "virtqueues": q, "hugepage_bytes": h, "platform": p},
                      scenario=scenario).iloc[0]
    values = row[OUTPUTS].astype(float).to_numpy()
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    assert 0 <= row["huge_mapped_fraction"] <= 1
    assert 0 <= row["split_merge_share"] <= 1
    assert row["merges"] <= row["splits"] + 1e-9
    assert row["splits"] <= -(-m // h)  # never more hugepages than the guest has
