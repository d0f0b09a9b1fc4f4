"""The simulator's kernel-rule options (costmodel.simulate.rules.KernelRules): each changes what
it should, on small deterministic boots; the default is the spec."""

import pytest

from costmodel.errors import InputError
from costmodel.model import kernel
from costmodel.shape import VmShape
from costmodel.simulate import CORRECTIONS, KernelRules, boot, simulate
from costmodel.simulate.count import SOURCE_INDEX
from costmodel.simulate.rules import atomic_pool_bytes_kernel
from costmodel.units import GiB, KiB, MiB


def _placed(b, what):
    return [p for p in b.placements if p.what == what]


def _splits_merges(shape, rules=None):
    d = simulate(shape, 1, deterministic=True, rules=rules)
    return int(d.splits[0]), int(d.merges[0])


def test_default_rules_are_the_spec():
    assert KernelRules().is_spec and not KernelRules.kernel().is_spec
    spec = boot(VmShape(), None)
    same = boot(VmShape(), None, rules=KernelRules())
    assert spec.placements == same.placements
    assert "rules" not in simulate(VmShape(), 1, deterministic=True).to_dict()
    assert simulate(VmShape(), 1, deterministic=True, rules=KernelRules.kernel()).to_dict()["rules"]["page_order"] \
        == "bottom_up"


def test_bad_rules_are_input_errors():
    with pytest.raises(InputError, match="page_order"):
        KernelRules(page_order="sideways")
    with pytest.raises(InputError, match="ghcb_in_percpu_holes"):
        KernelRules(ghcb_in_percpu_holes="yes")
    with pytest.raises(InputError, match="early_page_bytes"):
        KernelRules(early_page_bytes=-1)
    with pytest.raises(InputError, match="name"):
        KernelRules.only("early_page_bytes")
    assert {name for name in CORRECTIONS if getattr(KernelRules.only(name), name) != getattr(KernelRules(), name)} \
        == set(CORRECTIONS)


def test_bottom_up_puts_pools_and_rings_at_the_bottom_of_their_zones():
    spec = boot(VmShape(), None)
    low = boot(VmShape(), None, rules=KernelRules.only("page_order"))
    assert _placed(spec, "atomic pool kernel")[0].start > 17 * GiB  # top of node 0, below memmap
    assert _placed(low, "atomic pool kernel")[0].start == 4 * GiB
    assert _placed(low, "atomic pool dma32")[0].start < 128 * MiB  # above the image at 16 MiB (no KASLR)
    assert _placed(low, "devices")[0].start < 4 * GiB + 4 * MiB
    # the kernel's earlier allocations shift them up, to the next 4 MiB block
    shifted = boot(VmShape(), None, rules=KernelRules(page_order="bottom_up", early_page_bytes=30 * MiB))
    assert _placed(shifted, "atomic pool kernel")[0].start == 4 * GiB + 32 * MiB


def test_bottom_up_costs_a_merge_at_1g():
    """At 1 GiB the pools and rings land in the first hugepage above 4 GiB, which the transient
    pages also touch: it no longer merges."""
    shape = VmShape(hugepage_bytes=GiB)
    spec_splits, spec_merges = _splits_merges(shape)
    splits, merges = _splits_merges(shape, KernelRules.only("page_order"))
    assert (spec_splits, spec_merges) == (5, 2)  # deterministic: the image's hugepage is already split
    assert (splits, merges) == (5, 1)


def test_the_kernel_pool_exists_only_with_ram_above_4g():
    """dma_atomic_pool_init() builds the GFP_KERNEL pool only when ZONE_NORMAL has memory."""
    below = [p.what for p in boot(VmShape(memory_bytes=2 * GiB), None).placements if "pool" in p.what]
    above = [p.what for p in boot(VmShape(), None).placements if "pool" in p.what]
    assert below == ["atomic pool dma", "atomic pool dma32"]
    assert above == ["atomic pool kernel", "atomic pool dma", "atomic pool dma32"]


def test_ghcb_data_fills_the_per_cpu_tails_when_units_have_room():
    """4 vCPUs: 512 KiB units holding 256 KiB each, so every GHCB slot fits in a returned tail and
    the hugepage the spec gives the GHCB slots below the group is not split; 16 vCPUs: 256 KiB
    units with no tail, nothing changes."""
    rules = KernelRules.only("ghcb_in_percpu_holes")
    b = boot(VmShape(vcpus=4), None, rules=rules)
    group = _placed(b, "per-CPU group 0")[0]
    gpa = b.layout.gpa(b.conversions.start[b.conversions.source == SOURCE_INDEX["ghcb"]])
    assert len(gpa) == 4 and all(group.start <= a < group.end for a in gpa)
    assert _splits_merges(VmShape(vcpus=4), rules)[0] == _splits_merges(VmShape(vcpus=4))[0] - 1
    assert _splits_merges(VmShape(), rules) == _splits_merges(VmShape())


def test_totalram_from_memblock_halves_the_pool_near_a_boundary():
    """9,528 MiB: the spec's totalram is just above 8 GiB + 32 MiB (2 MiB pools); memblock's further
    reservations and the kernel's integer division take it below (1 MiB pools)."""
    shape = VmShape(memory_bytes=9528 * MiB)
    assert boot(shape, None).atomic_pool_bytes == 2 * MiB
    assert boot(shape, None, rules=KernelRules.only("totalram_from_memblock")).atomic_pool_bytes == 1 * MiB
    assert boot(VmShape(), None, rules=KernelRules.only("totalram_from_memblock")).atomic_pool_bytes == 2 * MiB
    # the integer arithmetic alone: 8,200 MiB is 256.25 × 32 MiB
    assert kernel.atomic_pool_bytes(8200 * MiB) == 2 * MiB
    assert atomic_pool_bytes_kernel(8200 * MiB) == 1 * MiB
    assert atomic_pool_bytes_kernel(512 * MiB) == 128 * KiB
    assert atomic_pool_bytes_kernel(256 * GiB) == 4 * MiB


@pytest.mark.parametrize("memory", [2 * GiB, 16 * GiB])
def test_bottom_up_blocks_are_aligned_disjoint_and_in_free_ram(memory):
    """Mixed orders (packed rings: a ring and two 4 KiB event structures per queue, NVMe queues of
    64 KiB and 16 KiB) pack without overlapping each other, memblock's allocations or the image."""
    from costmodel.model.kernel import Device

    shape = VmShape(memory_bytes=memory, devices=(Device("virtio-net", 4, 1024, "packed"), Device("nvme", 8),
                                                  Device("virtio-blk", 16, 256, "split")))
    b = boot(shape, 3, rules=KernelRules.kernel())
    paged = {SOURCE_INDEX[n] for n in ("atomic_pool_dma", "atomic_pool_dma32", "atomic_pool_kernel",
                                       "guest_messages", "devices")}
    keep = [i for i, s in enumerate(b.conversions.source) if int(s) in paged]
    starts = b.layout.gpa(b.conversions.start[keep])
    ends = starts + (b.conversions.end[keep] - b.conversions.start[keep])
    sizes = ends - starts
    assert len(keep) > 40
    assert all(int(a) % (1 << (int(n) - 1).bit_length()) == 0 for a, n in zip(starts, sizes))  # natural alignment
    order = sorted(zip(starts.tolist(), ends.tolist()))
    assert all(e <= s for (_, e), (s, _) in zip(order, order[1:]))
    memblock = [(p.start, p.end) for p in b.placements
                if p.what.startswith(("firmware", "kernel image", "memmap", "per-CPU", "GHCB", "SWIOTLB"))]
    assert not any(s < me and ms < e for s, e in order for ms, me in memblock)
