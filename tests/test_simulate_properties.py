"""The placement simulator's mechanics as properties (Hypothesis, the project's profile)."""

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from costmodel.model.kernel import Device
from costmodel.shape import VmShape
from costmodel.simulate import Conversions, Parameters, boot, count
from costmodel.simulate.count import SOURCE_INDEX, SOURCE_NAMES, brute_force
from costmodel.units import PAGE_SIZE, GiB, KiB, MiB

memory = st.integers(min_value=2, max_value=256).map(lambda q: q * 256 * MiB)  # 512 MiB – 64 GiB
vcpus = st.integers(min_value=1, max_value=96)
nodes = st.integers(min_value=1, max_value=4)
hugepage = st.sampled_from([2 * MiB, GiB])
device = st.builds(Device, st.sampled_from(["virtio-blk", "virtio-net", "virtio-scsi", "nvme", "virtio"]),
                   st.integers(min_value=1, max_value=64), st.sampled_from([64, 256, 1024, 4096]),
                   st.sampled_from(["split", "packed"])).filter(lambda d: not (d.kind == "nvme" and d.layout == "packed"))
devices = st.lists(device, min_size=1, max_size=6).map(tuple)
seed = st.integers(min_value=0, max_value=10_000)


@st.composite
def shapes(draw, hugepage_bytes=hugepage):
    m, n, k, h = draw(memory), draw(vcpus), draw(nodes), draw(hugepage_bytes)
    assume(k <= n and m / k >= 256 * MiB and m >= h)
    platform = draw(st.sampled_from(["snp", "tdx"]))
    return VmShape(memory_bytes=m, vcpus=n, numa_nodes=k, hugepage_bytes=h, platform=platform,
                   devices=draw(devices), svsm=platform == "snp" and draw(st.booleans()),
                   kaslr=draw(st.booleans()), atomic_pools=draw(st.booleans()))


@given(st.lists(st.tuples(st.integers(0, 4096), st.integers(1, 40), st.sampled_from(SOURCE_NAMES)), max_size=25),
       st.sampled_from([8 * KiB, 64 * KiB, 2 * MiB]))
def test_counting_matches_a_page_by_page_walk(pieces, hugepage):
    conversions = Conversions.join([(name, [first * PAGE_SIZE], [(first + n) * PAGE_SIZE]) for first, n, name in pieces])
    counted = count(conversions, hugepage)
    assert (counted.splits, counted.merges) == brute_force(conversions, hugepage)
    assert counted.by_source().sum() == counted.splits


@given(shapes(), seed)
def test_counts_are_finite_non_negative_and_merges_never_exceed_splits(shape, s):
    b = boot(shape, seed=s)
    counted = count(b.conversions, shape.hugepage_bytes)
    assert 0 <= counted.merges <= counted.splits <= shape.memory_bytes // shape.hugepage_bytes
    assert counted.by_source().sum() == counted.splits and (counted.by_source() >= 0).all()
    assert (b.conversions.end > b.conversions.start).all()
    assert (b.conversions.end <= shape.memory_bytes).all()  # file offsets inside guest RAM


@given(shapes(), seed)
def test_a_seed_gives_the_same_boot(shape, s):
    a, b = boot(shape, seed=s), boot(shape, seed=s)
    assert a.image == b.image and a.jitter == b.jitter
    for field in ("start", "end", "source"):
        assert np.array_equal(getattr(a.conversions, field), getattr(b.conversions, field))


@given(shapes(hugepage_bytes=st.just(2 * MiB)), seed)
def test_1_gib_pages_never_split_more_than_2_mib_pages_on_the_same_boot(shape, s):
    """Placement does not depend on the hugepage size, and every touched 1 GiB page holds a touched 2 MiB page."""
    b = boot(shape, seed=s)
    assert count(b.conversions, GiB).splits <= count(b.conversions, 2 * MiB).splits


@given(shapes(), device, seed)
def test_adding_a_device_never_removes_a_split(shape, extra, s):
    """Devices probe last: one more adds conversions and moves none (with the spread pages off,
    whose span the coherent cluster can bound in small guests)."""
    params = Parameters(remainder_regions=0, transient_regions=0)
    before = count(boot(shape, seed=s, params=params).conversions, shape.hugepage_bytes)
    after = count(boot(shape.replace(devices=shape.devices + (extra,)), seed=s, params=params).conversions,
                  shape.hugepage_bytes)
    assert set(before.pages.tolist()) <= set(after.pages.tolist())


@given(shapes(), seed)
def test_queues_of_one_device_pack_doubling_them_adds_at_most_their_bytes_in_hugepages_plus_one(shape, s):
    params = Parameters(remainder_regions=0, transient_regions=0)
    dev = shape.devices[-1]
    assume(dev.kind != "virtio-vsock")
    from costmodel.model.kernel import device_queue_allocations

    doubled = Device(dev.kind, 2 * dev.queues, dev.size, dev.layout)
    H = shape.hugepage_bytes
    added = sum(device_queue_allocations(doubled, shape.vcpus)) - sum(device_queue_allocations(dev, shape.vcpus))
    before = count(boot(shape, seed=s, params=params).conversions, H).splits
    after = count(boot(shape.replace(devices=shape.devices[:-1] + (doubled,)), seed=s, params=params).conversions, H)
    assert before <= after.splits <= before + -(-added // H) + 1


@given(shapes(), seed)
def test_tdx_shapes_convert_no_ghcb_per_cpu_or_bss_decrypted(shape, s):
    assume(shape.platform == "tdx")
    sources = set(boot(shape, seed=s).conversions.source.tolist())
    assert not sources & {SOURCE_INDEX[n] for n in ("ghcb", "percpu", "bss_decrypted")}


@given(shapes(), seed)
def test_4_kib_pages_split_nothing(shape, s):
    assert count(boot(shape, seed=s).conversions, 4 * KiB).splits == 0


@given(shapes(hugepage_bytes=st.just(2 * MiB)), seed)
def test_the_swiotlb_touches_its_size_in_hugepages_or_one_more(shape, s):
    b = boot(shape, seed=s)
    c = b.conversions
    mine = c.source == SOURCE_INDEX["swiotlb"]
    (start,), (end,) = c.start[mine], c.end[mine]
    pages = (end - 1) // (2 * MiB) - start // (2 * MiB) + 1
    assert b.swiotlb_bytes // (2 * MiB) <= pages <= b.swiotlb_bytes // (2 * MiB) + 1
