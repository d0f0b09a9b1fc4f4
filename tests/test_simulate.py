"""The placement simulator (costmodel.simulate): each allocator rule alone, the counting rule
against a page-by-page walk, the reference guest source by source, TDX, and the published
numbers of domain.md §9 that a simulated boot can express."""

import subprocess
import sys

import numpy as np
import pytest

from costmodel.errors import InputError
from costmodel.model import kernel
from costmodel.model.kernel import Device
from costmodel.shape import VmShape
from costmodel.simulate import SOURCE_NAMES, Conversions, Parameters, boot, count, replay, simulate
from costmodel.simulate.allocators import Memblock, PageAllocator, subtract
from costmodel.simulate.count import SOURCE_INDEX, brute_force
from costmodel.simulate.layout import Layout, firmware_range, kaslr_slot
from costmodel.units import PAGE_SIZE, GiB, KiB, MiB

H2M, H1G = 2 * MiB, GiB


def by_source(counted) -> dict[str, int]:
    return {name: int(n) for name, n in zip(SOURCE_NAMES, counted.by_source())}


def touched(b, source: str, hugepage: int = H2M) -> set[int]:
    """Hugepages the conversions of one source touch (whoever they are attributed to)."""
    c = b.conversions
    mine = c.source == SOURCE_INDEX[source]
    return {p for s, e in zip(c.start[mine], c.end[mine]) for p in range(s // hugepage, (e - 1) // hugepage + 1)}


# --- the layout (docs/placement.md §3) ----------------------------------------------------------
def test_q35_layout_puts_2_gib_low_and_the_rest_above_4_gib_at_file_offset_lowmem():
    layout = Layout.of(VmShape())
    assert layout.ram == ((0, 2 * GiB), (4 * GiB, 18 * GiB))
    assert int(layout.offset(4 * GiB)) == 2 * GiB and int(layout.offset(GiB)) == GiB
    assert int(layout.gpa(2 * GiB)) == 4 * GiB


def test_numa_nodes_take_ram_in_address_order_and_cpus_evenly():
    layout = Layout.of(VmShape(memory_bytes=16 * GiB, vcpus=5, numa_nodes=2))
    assert [(n.start, n.end, n.cpus) for n in layout.nodes] == [(0, 8 * GiB, 3), (8 * GiB, 16 * GiB, 2)]
    assert layout.nodes[0].pieces == ((0, 2 * GiB), (4 * GiB, 10 * GiB))
    assert layout.nodes[1].pieces == ((10 * GiB, 18 * GiB),)


def test_hugepages_are_counted_in_file_offsets_not_guest_physical_addresses():
    # 3 GiB with 1.5 GiB low: GPA 4 GiB is file offset 1.5 GiB, inside 1 GiB page 1 (GPA would say page 4)
    shape = VmShape(memory_bytes=3 * GiB, lowmem_bytes=1536 * MiB, hugepage_bytes=H1G)
    layout = Layout.of(shape)
    at = int(layout.offset(4 * GiB))
    counted = count(Conversions.join([("remainder", [at], [at + PAGE_SIZE])]), H1G)
    assert counted.pages.tolist() == [1]


def test_firmware_reservation_is_whole_2_mib_pages_plus_the_jitter():
    layout = Layout.of(VmShape())
    assert firmware_range(layout, Parameters(firmware_reserved_bytes=63 * MiB), 0) == (2 * GiB - 64 * MiB, 2 * GiB)
    assert firmware_range(layout, Parameters(), 3 * PAGE_SIZE) == (2 * GiB - 64 * MiB - 12 * KiB, 2 * GiB)


# --- memblock (§4.2, §4.3) -------------------------------------------------------------------------
def test_memblock_allocates_top_down_aligned_and_around_reservations():
    mb = Memblock([(0, 100 * MiB)])
    mb.reserve(90 * MiB, 100 * MiB)
    assert mb.alloc(3 * MiB, 2 * MiB) == 86 * MiB  # highest 2 MiB-aligned start below 90 MiB
    assert mb.alloc(5 * PAGE_SIZE, PAGE_SIZE) == 90 * MiB - 5 * PAGE_SIZE  # the gap the alignment left
    assert mb.alloc(2 * MiB, PAGE_SIZE) == 84 * MiB  # directly below the first
    mb.reserve(40 * MiB, 80 * MiB)
    assert mb.alloc(10 * MiB, PAGE_SIZE) == 30 * MiB  # the free range above 40 MiB is too small
    assert mb.alloc(50 * MiB, PAGE_SIZE) is None


def test_memblock_node_allocation_falls_back_to_any_node():
    mb = Memblock([(0, 64 * MiB), (4 * GiB, 4 * GiB + 8 * MiB)])
    assert mb.alloc_node(4 * MiB, 2 * MiB, [(4 * GiB, 4 * GiB + 8 * MiB)]) == 4 * GiB + 4 * MiB
    assert mb.alloc_node(16 * MiB, 2 * MiB, [(4 * GiB, 4 * GiB + 8 * MiB)]) == 48 * MiB  # did not fit there
    with pytest.raises(MemoryError):
        mb.alloc_node(GiB, 2 * MiB, [(0, 64 * MiB)])


def test_subtract_leaves_the_gaps():
    assert subtract([(0, 10), (20, 30)], [(5, 22), (25, 26)]) == [(0, 5), (22, 25), (26, 30)]


# --- the page allocator (§4.4, §4.5) ----------------------------------------------------------------
def test_page_allocator_hands_out_naturally_aligned_blocks_back_to_back_downwards():
    pa = PageAllocator([(MiB, 2 * GiB), (4 * GiB, 6 * GiB + 4 * KiB)], [[(0, 2 * GiB), (4 * GiB, 8 * GiB)]])
    assert pa.alloc(2 * MiB) == 6 * GiB - 2 * MiB  # naturally aligned below the (unaligned) top
    starts = pa.alloc_sequence([8 * KiB, 8 * KiB, 4 * KiB, 32 * KiB])
    assert starts.tolist() == [6 * GiB - 2 * MiB - 8 * KiB, 6 * GiB - 2 * MiB - 16 * KiB,
                               6 * GiB - 2 * MiB - 20 * KiB, 6 * GiB - 2 * MiB - 64 * KiB]
    assert pa.alloc(4 * MiB, "dma32") == 2 * GiB - 4 * MiB
    assert pa.alloc(128 * KiB, "dma") == 16 * MiB - 128 * KiB


def test_page_allocator_falls_back_from_normal_to_dma32_below_what_dma32_gave():
    pa = PageAllocator([(MiB, GiB)], [[(0, GiB)]])  # no memory above 4 GiB
    pool = pa.alloc(2 * MiB, "dma32")
    assert pa.alloc(2 * MiB, "kernel") == pool - 2 * MiB


def test_page_allocator_reuses_alignment_gaps_so_packed_rings_pack_tight():
    pa = PageAllocator([(16 * MiB, GiB)], [[(0, GiB)]])
    top = pa.alloc(64 * KiB, "dma32")
    sizes = [16 * KiB, 4 * KiB, 4 * KiB] * 3  # three packed queues: descriptor ring and two event structures
    starts = pa.alloc_sequence(sizes, "dma32")
    assert starts.min() == top - sum(sizes)  # no padding left behind
    spans = sorted(zip(starts.tolist(), sizes))
    assert all(a + n <= b for (a, n), (b, _) in zip(spans, spans[1:]))  # no overlap
    assert all(a % n == 0 for a, n in spans)  # naturally aligned


def test_page_allocator_skips_to_the_next_free_range_when_one_is_full():
    pa = PageAllocator([(16 * MiB, 17 * MiB), (32 * MiB, 32 * MiB + 12 * KiB)], [[(0, GiB)]])
    starts = pa.alloc_run(8 * KiB, 3, "dma32")
    assert starts.tolist() == [32 * MiB, 17 * MiB - 8 * KiB, 17 * MiB - 16 * KiB]


# --- KASLR (§4.1) -------------------------------------------------------------------------------------
def test_kaslr_slots_are_2_mib_aligned_above_16_mib_and_hold_the_image():
    free = [(MiB, 100 * MiB), (4 * GiB, 4 * GiB + 70 * MiB)]
    rng = np.random.default_rng(1)
    slots = {kaslr_slot(free, 64 * MiB, rng) for _ in range(2000)}
    low = set(range(16 * MiB, 36 * MiB + 1, 2 * MiB))
    high = set(range(4 * GiB, 4 * GiB + 6 * MiB + 1, 2 * MiB))
    assert slots == low | high
    assert kaslr_slot(free, 64 * MiB, None) == 16 * MiB


# --- the sources, one at a time -------------------------------------------------------------------------
def test_swiotlb_ends_at_the_firmware_and_the_jitter_costs_one_hugepage():
    fixed = boot(VmShape(), seed=None)
    (swiotlb,) = [p for p in fixed.placements if p.what == "SWIOTLB"]
    assert (swiotlb.start, swiotlb.end) == (2 * GiB - 64 * MiB - GiB, 2 * GiB - 64 * MiB)
    assert len(touched(fixed, "swiotlb")) == 512
    random = boot(VmShape(kaslr=False), seed=3)
    assert len(touched(random, "swiotlb")) == 513


def test_swiotlb_is_halved_until_it_fits_below_4_gib():
    b = boot(VmShape(lowmem_bytes=512 * MiB), seed=None)  # room: 512 − 64 (firmware) − 128 (floor) MiB
    assert b.swiotlb_bytes == 256 * MiB


def test_per_cpu_units_follow_the_waste_rule_5_vcpus_take_3_atoms_8_take_1():
    atoms = {}
    for n in (5, 8):
        b = boot(VmShape(vcpus=n), seed=None)
        (group,) = [p for p in b.placements if p.what.startswith("per-CPU group")]
        atoms[n] = (group.end - group.start) // (2 * MiB)
        assert len(touched(b, "percpu")) == atoms[n]
    assert atoms == {5: 3, 8: 1}


def test_ghcb_pages_are_12_kib_apart_16_under_an_svsm_below_the_per_cpu_group():
    for svsm, gap in ((False, 12 * KiB), (True, 16 * KiB)):
        b = boot(VmShape(vcpus=16, svsm=svsm), seed=None)
        c = b.conversions
        ghcb = np.sort(c.start[c.source == SOURCE_INDEX["ghcb"]])
        assert len(ghcb) == 16 and set(np.diff(ghcb).tolist()) == {gap}
        (group,) = [p for p in b.placements if p.what.startswith("per-CPU group")]
        assert int(b.layout.gpa(ghcb.max())) + gap == group.start


def test_atomic_pools_are_naturally_aligned_in_their_zones():
    b = boot(VmShape(), seed=None)
    pools = {p.what: p for p in b.placements if p.what.startswith("atomic pool")}
    assert b.atomic_pool_bytes == 2 * MiB  # 128 KiB per GiB of ≈14.6 GiB totalram, to a power of two
    assert (pools["atomic pool dma"].start, pools["atomic pool dma"].end) == (14 * MiB, 16 * MiB)
    swiotlb = next(p for p in b.placements if p.what == "SWIOTLB")
    assert pools["atomic pool dma32"].end == swiotlb.start  # directly below, P-aligned
    assert pools["atomic pool kernel"].start >= 4 * GiB
    assert all(p.start % b.atomic_pool_bytes == 0 for p in pools.values())
    assert boot(VmShape(atomic_pools=False), seed=None).atomic_pool_bytes == 0


def test_rings_of_one_device_pack_into_one_hugepage():
    shape = VmShape(devices=(Device("virtio-blk", queues=200),))
    assert len(touched(boot(shape, seed=None), "devices")) == 1  # 200 × 8 KiB = 1.6 MiB, below the pool


def test_remainder_pages_spread_evenly_over_low_ram_below_the_lowest_allocation():
    b = boot(VmShape(), seed=None)
    c = b.conversions
    pages = np.sort(c.start[c.source == SOURCE_INDEX["remainder"]])
    dma32 = next(p for p in b.placements if p.what == "atomic pool dma32")
    assert len(pages) == 70 and pages.min() >= 16 * MiB and pages.max() < dma32.start
    assert np.ptp(np.diff(pages)) <= PAGE_SIZE  # evenly spaced, to a page


def test_fractional_remainder_is_one_more_page_with_its_fraction():
    params = Parameters(remainder_regions=10.25)
    n = [int(np.sum(boot(VmShape(), seed=s, params=params).conversions.source == SOURCE_INDEX["remainder"]))
         for s in range(400)]
    assert set(n) == {10, 11} and 0.18 < np.mean(n) - 10 < 0.32


def test_transient_pages_merge_unless_something_permanent_shares_their_hugepage():
    b = boot(VmShape(), seed=None)
    counted = count(b.conversions, H2M)
    assert counted.merges == 30
    # a 1 GiB guest has no RAM above 4 GiB: its transient pages land among permanent ones
    small = count(boot(VmShape(memory_bytes=GiB, hugepage_bytes=H1G), seed=None).conversions, H1G)
    assert small.splits == 1 and small.merges == 0


def test_bss_decrypted_follows_the_kernel_image():
    b = boot(VmShape(), seed=7)
    c = b.conversions
    (bss,) = c.start[c.source == SOURCE_INDEX["bss_decrypted"]]
    assert int(b.layout.gpa(bss)) == b.image + 48 * MiB and b.image % (2 * MiB) == 0
    assert boot(VmShape(), seed=None).image == 16 * MiB


# --- counting -----------------------------------------------------------------------------------------------
def test_counting_agrees_with_a_page_by_page_walk_on_a_whole_boot():
    b = boot(VmShape(memory_bytes=GiB, vcpus=4), seed=5)
    for hugepage in (64 * KiB, H2M, H1G):
        counted = count(b.conversions, hugepage)
        assert (counted.splits, counted.merges) == brute_force(b.conversions, hugepage)


def test_each_hugepage_counts_once_and_goes_to_the_first_source_in_catalogue_order():
    c = Conversions.join([("transient", [0], [4096]), ("ghcb", [8192], [12288]), ("swiotlb", [3 * H2M], [5 * H2M]),
                          ("remainder", [4 * H2M], [4 * H2M + 4096])])
    counted = count(c, H2M)
    assert counted.pages.tolist() == [0, 3, 4]
    assert [SOURCE_NAMES[o] for o in counted.owner] == ["ghcb", "swiotlb", "swiotlb"]
    assert counted.merges == 0


def test_4_kib_pages_split_nothing():
    d = simulate(VmShape(hugepage_bytes=4 * KiB), seeds=3)
    assert d.splits.tolist() == [0, 0, 0] and d.merges.tolist() == [0, 0, 0]


# --- the reference guest (domain.md §2) ------------------------------------------------------------------
def test_reference_guest_source_by_source_without_randomness():
    counted = count(boot(VmShape(), seed=None).conversions, H2M)
    assert (counted.splits, counted.merges) == (620, 30)
    assert by_source(counted) == {
        "swiotlb": 512, "atomic_pool_dma": 1, "atomic_pool_dma32": 1, "atomic_pool_kernel": 1, "devices": 1,
        "guest_messages": 0, "percpu": 2, "ghcb": 1, "bss_decrypted": 1, "remainder": 70, "transient": 30}


def test_reference_guest_distribution_is_near_the_published_622_and_30():
    d = simulate(VmShape(), seeds=100)
    s = d.split_summary
    assert 590 <= s.mean <= 653 and 620 <= s.p05 <= s.p95 <= 622  # 622 ± 5 %
    assert d.merge_summary.p05 == d.merge_summary.p95 == 30


def test_reference_guest_at_1_gib_splits_about_6_and_merges_about_2():
    d = simulate(VmShape(hugepage_bytes=H1G), seeds=200)
    assert 5 <= d.split_summary.mean <= 7 and 1.5 <= d.merge_summary.mean <= 2.0
    det = simulate(VmShape(hugepage_bytes=H1G), seeds=1, deterministic=True)
    assert (int(det.splits[0]), int(det.merges[0])) == (5, 2)


# --- TDX and the published numbers of domain.md §9 ---------------------------------------------------------
def test_tdx_has_no_ghcb_per_cpu_or_bss_decrypted_but_a_quote_buffer():
    b = boot(VmShape(platform="tdx"), seed=2)
    present = set(np.unique(b.conversions.source).tolist())
    assert not present & {SOURCE_INDEX[s] for s in ("ghcb", "percpu", "bss_decrypted")}
    c = b.conversions
    assert (c.end - c.start)[c.source == SOURCE_INDEX["guest_messages"]].tolist() == [8 * KiB]


def test_a_4_gib_td_places_a_256_mib_swiotlb():
    # intel/tdx-linux issue #1: "roundup to 256MB" in a 4 GiB TD's dmesg
    assert boot(VmShape(memory_bytes=4 * GiB, vcpus=8, platform="tdx"), seed=0).swiotlb_bytes == 256 * MiB


def test_a_cloud_tds_982_mb_swiotlb_rounds_up_to_1024_mib():
    # domain.md §9: "adjusted to 982MB … roundup to 1024MB"
    shape = VmShape(memory_bytes=64 * GiB, platform="tdx", swiotlb_bytes=982 * MiB)
    assert boot(shape, seed=0).swiotlb_bytes == 1024 * MiB


def test_yan_zhaos_flipping_gfns_lie_just_below_2_gib_inside_the_firmware_for_every_seed():
    # Message-ID aF0Kg8FcHVMvsqSo@yzhao56-desk.sh.intel.com: a 4 GiB TD, 8 vCPUs, GFNs just below 2 GiB
    shape = VmShape(memory_bytes=4 * GiB, vcpus=8, platform="tdx")
    F = Parameters().firmware_reserved_bytes
    for seed in range(50):
        b = boot(shape, seed=seed)
        (firmware,) = [p for p in b.placements if p.what == "firmware"]
        for gfn in (0x7D9D7, 0x7D9DA, 0x7D9D9):
            assert b.layout.lowmem - F - 2 * MiB <= gfn * PAGE_SIZE < b.layout.lowmem
            assert firmware.start <= gfn * PAGE_SIZE < firmware.end


# --- errors and isolation -----------------------------------------------------------------------------------------
def test_a_shape_whose_early_allocations_do_not_fit_is_an_input_error():
    with pytest.raises(InputError, match="memory"):
        replay(VmShape(memory_bytes=512 * MiB, vcpus=4096))


def test_parameters_are_checked():
    with pytest.raises(InputError, match="remainder_regions"):
        Parameters(remainder_regions=-1)
    with pytest.raises(InputError, match="kernel_bss_offset_bytes"):
        Parameters(kernel_image_bytes=32 * MiB, kernel_bss_offset_bytes=48 * MiB)
    assert Parameters.from_mapping({"remainder_regions": 71.5, "firmware_reserved_bytes": 6.7e7,
                                    "split_fixed_cycles": 1.0}).remainder_regions == 71.5


def test_the_simulator_loads_neither_sympy_nor_the_closed_form():
    code = ("import sys\nfrom costmodel.shape import VmShape\nfrom costmodel.simulate import simulate\n"
            "simulate(VmShape(), seeds=2)\n"
            "bad = [m for m in sys.modules if m == 'sympy' or m.startswith(('costmodel.model.closed_form',"
            " 'costmodel.model.variables', 'costmodel.compiled', 'costmodel.evaluate', 'costmodel.results'))]\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_simulation_is_reproducible_for_a_seed():
    a, b = simulate(VmShape(vcpus=7), seeds=5, first_seed=11), simulate(VmShape(vcpus=7), seeds=5, first_seed=11)
    assert np.array_equal(a.by_source, b.by_source) and np.array_equal(a.splits, b.splits)
    assert kernel.swiotlb_bytes(16 * GiB, 16) == GiB


def test_a_node_ending_just_below_the_firmware_pushes_the_swiotlb_below_its_stack():
    # node 0 holds [0, 1.5 GiB); the 448 MiB between it and the firmware cannot take 512 MiB
    b = boot(VmShape(memory_bytes=6 * GiB, vcpus=401, numa_nodes=4), seed=None)
    swiotlb = next(p for p in b.placements if p.what == "SWIOTLB")
    stack = min(p.start for p in b.placements if p.what in ("memmap 0", "per-CPU group 0", "GHCB slots 0"))
    assert swiotlb.end <= stack < 1536 * MiB and swiotlb.end - swiotlb.start == 512 * MiB


def test_kaslr_sometimes_leaves_no_room_for_the_whole_swiotlb_and_it_is_halved():
    sizes = [boot(VmShape(), seed=s).swiotlb_bytes for s in range(600)]
    halved = sum(size == 512 * MiB for size in sizes)
    assert set(sizes) <= {GiB, 512 * MiB} and 1 <= halved <= 30  # about 1.6 % of the image's slots
