"""Mechanics of the model as properties (Hypothesis), under the default calibration."""

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from costmodel import evaluate as ev
from costmodel.model.variables import OUTPUTS
from costmodel.units import GiB, KiB, MiB

memory = st.integers(min_value=2, max_value=16384).map(lambda g: g * 256 * MiB)  # 512 MiB – 4 TiB
vcpus = st.integers(min_value=1, max_value=512)
queues = st.integers(min_value=1, max_value=1024)
sizes = st.sampled_from([64, 256, 1024, 4096])
layout = st.sampled_from(["split", "packed"])
hugepage = st.sampled_from([2 * MiB, GiB])
platform = st.sampled_from(["snp", "tdx"])
nodes = st.integers(min_value=1, max_value=8)


def evaluated(configs, outputs=("splits",)):
    return ev.evaluate(configs, outputs=list(outputs))


def splits(**config):
    return evaluated(config)["splits"].to_numpy()


def _fits(m, n, k, h=0):
    return k <= n and m / k >= 256 * MiB and m >= max(512 * MiB, h)


#: The spread clusters (unexplained and transient pages) and KASLR are expectations: a shape
#: change that moves a range they spread over can shift them by a few thousandths of a page.
EXPECTATION = 0.05


def _atoms(n, k):
    from costmodel.model import kernel

    cpus = kernel.node_cpus(n, k)
    upa = kernel.percpu_units_per_atom(cpus, kernel.PERCPU_UNIT_MIN)
    return [-(-c // upa) for c in cpus]


@given(memory, vcpus, vcpus, hugepage, platform, nodes)
def test_splits_never_decrease_with_vcpus_unless_per_cpu_atoms_do(m, n1, n2, h, p, k):
    """pcpu_build_alloc_info() is not monotone in CPUs (domain.md §9); whenever no node's
    per-CPU atoms shrink, splits never decrease with vCPUs."""
    n1, n2 = sorted((n1, n2))
    assume(_fits(m, n1, k, h))
    assume(all(b >= a for a, b in zip(_atoms(n1, k), _atoms(n2, k))))
    s = splits(memory_bytes=m, vcpus=[n1, n2], hugepage_bytes=h, platform=p, numa_nodes=k, devices="virtio-net")
    assert s[1] >= s[0] - EXPECTATION


def test_per_cpu_atoms_are_not_monotone():
    """5 vCPUs take 3 atoms, 8 take 1: fewer per-CPU hugepages with more vCPUs (SNP, 2 MiB)."""
    frame = evaluated({"memory_bytes": 16 * GiB, "vcpus": [5, 8], "hugepage_bytes": 2 * MiB, "platform": "snp",
                       "devices": "virtio-net", "kaslr": False}, ("splits_from_percpu",))
    assert list(frame["splits_from_percpu"]) == [3, 1]


@given(memory, vcpus, queues, queues, sizes, layout, hugepage, platform)
def test_splits_never_decrease_with_queues(m, n, q1, q2, size, lay, h, p):
    q1, q2 = sorted((q1, q2))
    assume(_fits(m, n, 1, h))
    devices = [f"virtio-blk:queues={q},size={size},layout={lay}" for q in (q1, q2)]
    s = splits(memory_bytes=m, vcpus=n, devices=devices, hugepage_bytes=h, platform=p)
    assert s[1] >= s[0] - EXPECTATION


@given(memory, vcpus, queues, hugepage, platform)
def test_splits_never_decrease_with_queue_size_or_devices(m, n, q, h, p):
    assume(_fits(m, n, 1, h))
    devices = [f"virtio-blk:queues={q},size=256", f"virtio-blk:queues={q},size=1024",
               f"virtio-blk:queues={q},size=1024;nvme;virtio-vsock"]
    s = splits(memory_bytes=m, vcpus=n, devices=devices, hugepage_bytes=h, platform=p)
    assert np.all(np.diff(s) >= -EXPECTATION)


@given(memory, vcpus, queues, sizes, layout, hugepage, platform)
def test_rings_of_one_device_pack(m, n, q, size, lay, h, p):
    """Doubling a device's queues adds at most ⌈ring bytes · Q / H⌉ + 1 hugepages."""
    from costmodel.model import kernel

    assume(_fits(m, n, 1, h))
    devices = [f"virtio-blk:queues={q},size={size},layout={lay}", f"virtio-blk:queues={2 * q},size={size},layout={lay}"]
    s = splits(memory_bytes=m, vcpus=n, devices=devices, hugepage_bytes=h, platform=p)
    ring = sum(kernel.device_queue_allocations(kernel.Device("virtio-blk", 1, size, lay), n))
    assert s[1] - s[0] <= -(-ring * q // h) + 1 + 1e-9


@given(memory, vcpus, hugepage, nodes)
def test_tdx_has_no_ghcb_percpu_or_bss_term(m, n, h, k):
    assume(_fits(m, n, k, h))
    frame = evaluated({"memory_bytes": m, "vcpus": n, "hugepage_bytes": h, "platform": "tdx", "numa_nodes": k},
                      ("splits_from_ghcb", "splits_from_percpu", "splits_from_bss_decrypted"))
    assert (frame[["splits_from_ghcb", "splits_from_percpu", "splits_from_bss_decrypted"]].to_numpy() == 0).all()


@given(memory, vcpus, platform, nodes)
def test_at_1_gib_splits_never_exceed_the_pages_that_hold_a_cluster(m, n, p, k):
    assume(_fits(m, n, k, GiB))
    from costmodel.model.variables import CLUSTERS

    names = [f"{part}_{c}" for c in CLUSTERS for part in ("first_page", "last_page", "weight")]
    row = evaluated({"memory_bytes": m, "vcpus": n, "hugepage_bytes": GiB, "platform": p, "numa_nodes": k},
                    ("splits", *names)).iloc[0]
    holding = sum(row[f"last_page_{c}"] - row[f"first_page_{c}"] + 1 for c in CLUSTERS
                  if row[f"weight_{c}"] > 0 and row[f"last_page_{c}"] >= row[f"first_page_{c}"])
    assert row["splits"] <= holding + 1 + 1e-9  # + the image's .bss..decrypted under KASLR


@given(memory, vcpus, platform)
def test_no_hugepages_no_splits(m, n, p):
    row = evaluated({"memory_bytes": m, "vcpus": n, "hugepage_bytes": 4 * KiB, "platform": p},
                    ("splits", "merges", "huge_mapped_fraction")).iloc[0]
    assert row["splits"] == 0 and row["merges"] == 0 and row["huge_mapped_fraction"] == 0


@given(memory, vcpus, st.sampled_from([4 * KiB, 2 * MiB, GiB]), platform, nodes,
       st.sampled_from(["status_quo", "guest_pooling", "host_promotion", "struct_page_less"]), st.booleans())
def test_outputs_finite_non_negative_and_bounded(m, n, h, p, k, scenario, kaslr):
    assume(_fits(m, n, k, h))
    row = ev.evaluate({"memory_bytes": m, "vcpus": n, "hugepage_bytes": h, "platform": p, "numa_nodes": k,
                       "kaslr": kaslr}, scenario=scenario).iloc[0]
    values = row[list(OUTPUTS)].to_numpy(dtype=float)
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    assert 0 <= row["huge_mapped_fraction"] <= 1
    assert 0 <= row["split_merge_share"] <= 1
    assert row["merges"] <= row["splits"] + 1e-9
    assert row["splits"] <= -(-m // h)  # never more hugepages than the guest has
