"""The VM shape: the one description of a confidential guest that every part of costmodel
takes (evaluation, the placement simulator, fitting data, ingest, the sweep driver, reports).

:class:`VmShape` holds one guest's inputs to the model, each in its unit; its field names
are the column names of datasets and evaluated frames (:data:`SHAPE_COLUMNS` is derived
from the fields, never listed by hand). Optional fields left None take the default the VMM
or the kernel derives (QEMU's devices and low-memory split, the kernel's SWIOTLB rule).
What a shape may be is checked in one place, :func:`check_columns`, for one shape and for
whole grids alike. docs/placement.md says what each input does.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache

import numpy as np

from costmodel import parse
from costmodel.errors import Argument, InputError
from costmodel.model import kernel
from costmodel.model.kernel import Device
from costmodel.units import GiB, MiB, TiB

#: The model's limits on a shape, each with why.
MIN_MEMORY = 512 * MiB  # room for the firmware, the kernel image and a 64 MiB SWIOTLB below 4 GiB
MAX_MEMORY = 64 * TiB  # x86-64 with 4-level paging
MAX_VCPUS = 4096  # KVM_MAX_VCPUS on x86
MIN_NODE_MEMORY = 256 * MiB  # a node holds its memmap, per-CPU group and early allocations
MIN_LOWMEM = 256 * MiB
MAX_LOWMEM = 4 * GiB


@dataclass(frozen=True, kw_only=True)
class VmShape:
    """One confidential guest, as the model sees it.

    Parameters
    ----------
    memory_bytes : int
        Guest RAM. [B]
    vcpus : int
        Possible vCPUs (GHCB pages, per-CPU data, SWIOTLB areas scale with these). [1]
    virtqueues : int or None
        Shortcut for one generic virtio device with this many queues of 256 entries; None:
        the devices decide. [1]
    hugepage_bytes : int or None
        guest_memfd hugepage size, 4 KiB (no hugepages), 2 MiB or 1 GiB; None only where
        it is read later (ingest takes it from the collector's header). [B]
    platform : str
        ``snp`` (AMD SEV-SNP) or ``tdx`` (Intel TDX).
    swiotlb_bytes : int or None
        SWIOTLB pool size set on the guest command line (``swiotlb=``); None: the kernel's
        rule. [B]
    boot_vcpus : int or None
        vCPUs online at boot (QEMU sizes virtio-blk and virtio-scsi queues by them); None:
        all possible vCPUs. [1]
    numa_nodes : int
        NUMA nodes, 1–8. [1]
    lowmem_bytes : int or None
        RAM below 4 GiB; None: q35's split (all of it below 2.75 GiB, else 2 GiB). [B]
    devices : tuple of Device or None
        The guest's devices in probe order; None: one virtio-blk and one virtio-net
        (QEMU's usual guest), or the ``virtqueues`` shortcut.
    kaslr : bool
        Physical KASLR on (the kernel image lands at a random 2 MiB slot).
    svsm : bool
        SEV-SNP under an SVSM (an extra private page beside each GHCB).
    atomic_pools : bool
        The kernel builds the DMA atomic pools (``AMD_MEM_ENCRYPT`` selected; distribution
        kernels do, a TDX-only kernel does not).
    """

    memory_bytes: int = 16 * GiB
    vcpus: int = 16
    virtqueues: int | None = None
    hugepage_bytes: int | None = 2 * MiB
    platform: str = "snp"
    swiotlb_bytes: int | None = None
    boot_vcpus: int | None = None
    numa_nodes: int = 1
    lowmem_bytes: int | None = None
    devices: tuple[Device, ...] | None = None
    kaslr: bool = True
    svsm: bool = False
    atomic_pools: bool = True

    def __post_init__(self):
        if self.devices and self.virtqueues is not None:
            raise InputError(Argument("virtqueues"), self.virtqueues, "either devices or the virtqueues shortcut, not both")
        columns = {k: np.asarray([v]) for k, v in self.to_columns().items() if v is not None}
        if self.hugepage_bytes is None:  # a shape whose hugepage size comes later is checked for the rest
            columns.pop("hugepage_bytes", None)
        check_columns(columns, where="")

    @classmethod
    def parse(cls, *, memory=None, vcpus=None, virtqueues=None, hugepage=None, platform=None, swiotlb=None,
              boot_vcpus=None, numa_nodes=None, lowmem=None, devices=None, kaslr=None, svsm=None,
              atomic_pools=None, where: str = "") -> "VmShape":
        """A shape from the forms users type (``16GiB``, ``2M``, ``SNP``,
        ``virtio-net:queues=4``); ``None`` or ``""`` takes the field's default. Errors name
        ``where`` and the field (the flag that sets it when ``where`` is empty)."""

        def at(name):
            return f"{where}, {name}" if where else Argument(name)

        def given(value):
            return value is not None and value != "" and value != ()

        default = cls()
        if given(devices):
            items = devices.split(";") if isinstance(devices, str) else list(devices)
            devices = tuple(d if isinstance(d, Device) else parse.device(d, at("device")) for d in items if d)
        return cls(
            memory_bytes=parse.size(memory, at("memory")) if given(memory) else default.memory_bytes,
            vcpus=parse.count(vcpus, at("vcpus")) if given(vcpus) else default.vcpus,
            virtqueues=parse.count(virtqueues, at("virtqueues")) if given(virtqueues) else None,
            hugepage_bytes=parse.hugepage(hugepage, at("hugepage")) if given(hugepage) else default.hugepage_bytes,
            platform=parse.platform(platform, at("platform")) if given(platform) else default.platform,
            swiotlb_bytes=parse.size(swiotlb, at("swiotlb")) if given(swiotlb) else None,
            boot_vcpus=parse.count(boot_vcpus, at("boot_vcpus")) if given(boot_vcpus) else None,
            numa_nodes=parse.count(numa_nodes, at("numa_nodes")) if given(numa_nodes) else 1,
            lowmem_bytes=parse.size(lowmem, at("lowmem")) if given(lowmem) else None,
            devices=devices if given(devices) else None,
            kaslr=parse.boolean(kaslr, at("kaslr")) if given(kaslr) else True,
            svsm=parse.boolean(svsm, at("svsm")) if given(svsm) else False,
            atomic_pools=parse.boolean(atomic_pools, at("atomic_pools")) if given(atomic_pools) else True,
        )

    def replace(self, **changes) -> "VmShape":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Field name → value, in :data:`SHAPE_COLUMNS` order (devices as Device objects)."""
        out = asdict(self)
        out["devices"] = self.devices
        return out

    def to_columns(self) -> dict:
        """Field name → value as a dataset row holds it (devices as their ``--device`` specs,
        ``;``-separated; None where the default applies)."""
        out = self.to_dict()
        out["devices"] = devices_spec(self.devices)
        return out

    # --- what the VMM and kernel derive from the shape ---------------------------------
    @property
    def effective_boot_vcpus(self) -> int:
        return self.boot_vcpus if self.boot_vcpus is not None else self.vcpus

    @property
    def effective_lowmem(self) -> int:
        return self.lowmem_bytes if self.lowmem_bytes is not None else kernel.q35_lowmem(self.memory_bytes)

    @property
    def effective_devices(self) -> tuple[Device, ...]:
        return resolve_devices(self.devices, self.virtqueues)


def resolve_devices(devices: tuple[Device, ...] | None, virtqueues: int | None) -> tuple[Device, ...]:
    """The devices a guest has: given ones, the ``virtqueues`` shortcut, or QEMU's default."""
    if devices:
        return tuple(devices)
    if virtqueues is not None:
        return (Device("virtio", queues=int(virtqueues)),)
    return kernel.default_devices()


def devices_spec(devices: tuple[Device, ...] | None) -> str | None:
    """``;``-separated ``--device`` specs, or None for the default devices."""
    return None if devices is None else ";".join(d.spec() for d in devices)


def device_allocations(devices: tuple[Device, ...], boot_vcpus: int) -> list[int]:
    """Every coherent allocation the devices' queues make, in probe order. [B]"""
    return [size for d in devices for size in kernel.device_queue_allocations(d, boot_vcpus)]


#: The shape's fields, in order: the configuration columns of datasets and evaluated frames.
SHAPE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(VmShape))


#: Field → the argument of :meth:`VmShape.parse` (and the command-line flag) that sets it.
ARGUMENT_OF = {"memory_bytes": "memory", "hugepage_bytes": "hugepage", "swiotlb_bytes": "swiotlb",
               "lowmem_bytes": "lowmem"}


def _fail(array, bad, where: str, name: str, expected: str, first: int = 0):
    i = int(np.flatnonzero(bad)[0])
    value = array[i].item() if hasattr(array[i], "item") else array[i]
    found = int(value) if float(value).is_integer() else value
    if not where and len(array) == 1 and not first:
        raise InputError(Argument(ARGUMENT_OF.get(name, name)), found, expected)
    raise InputError(f"{where}configuration {first + i}, {name}", found, expected)


def check_columns(columns: Mapping[str, np.ndarray], where: str = "", first: int = 0) -> None:
    """Check resolved shape columns (numbers; None/NaN where the default applies) against
    the model's limits; the error names the configuration (numbered from ``first``, for a
    piece of a larger grid) and the field, and says why.

    One path for one shape (:class:`VmShape`) and for grids (:func:`costmodel.compiled.configurations`).
    """
    def col(name, default=np.nan):
        value = columns.get(name)
        return np.broadcast_to(np.asarray(default if value is None else value, dtype=float), (n,))

    n = max(len(np.atleast_1d(v)) for v in columns.values() if v is not None)
    memory, vcpus = col("memory_bytes"), col("vcpus")
    hugepage = col("hugepage_bytes")
    checks = [
        ("memory_bytes", memory, ~((memory >= MIN_MEMORY) & (memory <= MAX_MEMORY)),
         "a guest memory from 512 MiB (room for the firmware, the kernel and a SWIOTLB below 4 GiB) to 64 TiB"),
        ("memory_bytes", memory, memory < hugepage, "at least one hugepage of guest memory"),
        ("vcpus", vcpus, ~((vcpus >= 1) & (vcpus <= MAX_VCPUS)), f"a whole number of vCPUs from 1 to {MAX_VCPUS} (KVM_MAX_VCPUS)"),
    ]
    boot = col("boot_vcpus")
    checks.append(("boot_vcpus", boot, boot > vcpus, "at most the possible vCPUs (--vcpus)"))
    nodes = col("numa_nodes", 1.0)
    checks += [
        ("numa_nodes", nodes, ~((nodes >= 1) & (nodes <= kernel.MAX_NUMA_NODES)),
         f"1 to {kernel.MAX_NUMA_NODES} NUMA nodes (the model's limit)"),
        ("numa_nodes", nodes, nodes > vcpus, "at most one NUMA node per vCPU (a node needs a CPU)"),
        ("numa_nodes", nodes, memory / nodes < MIN_NODE_MEMORY,
         "at least 256 MiB of memory per NUMA node (its memmap, per-CPU data and early allocations)"),
    ]
    lowmem = col("lowmem_bytes")
    checks += [
        ("lowmem_bytes", lowmem, lowmem > MAX_LOWMEM, "RAM below 4 GiB: at most 4 GiB"),
        ("lowmem_bytes", lowmem, lowmem < MIN_LOWMEM, "RAM below 4 GiB: at least 256 MiB (firmware, kernel, SWIOTLB)"),
        ("lowmem_bytes", lowmem, lowmem > memory, "at most the guest memory"),
    ]
    swiotlb = col("swiotlb_bytes")
    checks.append(("swiotlb_bytes", swiotlb, swiotlb > memory, "a SWIOTLB no larger than guest memory"))
    if "svsm" in columns and columns["svsm"] is not None and "platform" in columns:
        svsm = np.broadcast_to(np.asarray(columns["svsm"], dtype=float), (n,))
        tdx = np.asarray(columns["platform"]).astype(str) == "tdx"
        checks.append(("svsm", svsm, (svsm > 0) & tdx, "no SVSM on TDX (an SVSM is an SEV-SNP component)"))
    for name, array, bad, expected in checks:
        bad = np.asarray(bad)
        if bad.any():  # NaN (a default applies) is never bad: looked at only when a check fails
            bad = bad & ~np.isnan(array)
            if bad.any():
                _fail(array, bad, where, name, expected, first)


def factorize(array: np.ndarray) -> tuple[list, np.ndarray]:
    """``(uniques, codes)`` with ``array[i]`` equal to ``uniques[codes[i]]``: text columns are
    worked on once per distinct value, and mapped back by integer codes (no Python per row:
    the hashing and the lookups run in C). Values of different types are kept apart (``1``
    and ``True`` parse differently); unhashable values (a list of devices) are their own."""
    if array.dtype.kind in "US":
        uniques, codes = np.unique(array, return_inverse=True)
        return uniques.tolist(), codes.reshape(-1)
    if array.dtype == object and len(array) >= _BY_IDENTITY_ROWS:
        found = _by_identity(array)
        if found is not None:
            return found
    pandas = sys.modules.get("pandas")  # its hash table, when something has imported it already
    if pandas is not None and array.dtype == object and pandas.api.types.infer_dtype(array, skipna=False) == "string":
        codes, uniques = pandas.factorize(array, use_na_sentinel=False)  # all text: equal values parse alike
        return uniques.tolist(), codes.astype(np.intp, copy=False)
    values = array.tolist()
    try:
        uniques = list(dict.fromkeys(values))
    except TypeError:  # unhashable cells: one code per row
        return values, np.arange(len(values))
    if len(set(map(type, values))) > 1:  # 1 == 1.0 == True for a dict: key on the type too
        return _by_type_and_value(values)
    index = {u: i for i, u in enumerate(uniques)}
    return uniques, np.fromiter(map(index.__getitem__, values), dtype=np.intp, count=len(values))


#: From how many cells an object column is grouped by its cells' identities first
#: (:func:`costmodel.fused.distinct_objects`, numba), then by value.
_BY_IDENTITY_ROWS = 50_000


def _by_identity(array: np.ndarray) -> tuple[list, np.ndarray] | None:
    """:func:`factorize` of an object column: its distinct objects, then those merged by
    (type, value) as :func:`factorize` keys them (unhashable cells: None, the caller's path)."""
    from costmodel import fused

    found = fused.distinct_objects(array)
    if found is None:
        return None
    first, codes = found
    try:
        uniques, merged = _by_type_and_value(array[first].tolist())
    except TypeError:
        return None
    return uniques, merged[codes]


def _by_type_and_value(values: list) -> tuple[list, np.ndarray]:
    """:func:`factorize` of ``values`` keyed on (type, value), in the order first seen: each
    unique is the first cell of its key. Raises ``TypeError`` for an unhashable cell."""
    index: dict = {}
    codes = np.fromiter((index.setdefault((type(v), v), len(index)) for v in values), dtype=np.intp,
                        count=len(values))
    return [value for _, value in index], codes


def units_per_atom(vcpus: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """:func:`costmodel.model.kernel.percpu_units_per_atom_array` per configuration, read
    from a table of every (vCPUs, nodes) pair the limits allow (computed once per process);
    ``vcpus`` and ``nodes`` are validated: whole, 1–:data:`MAX_VCPUS` and 1–8. [1]"""
    code = vcpus.astype(np.intp) * (kernel.MAX_NUMA_NODES + 1) + nodes.astype(np.intp)
    if len(code) >= 50_000:  # a grid: the whole table
        return _units_table()[code]
    pairs, inverse = np.unique(code, return_inverse=True)  # a few shapes: their pairs alone
    per = kernel.percpu_units_per_atom_array(pairs // (kernel.MAX_NUMA_NODES + 1), pairs % (kernel.MAX_NUMA_NODES + 1))
    return per.astype(float)[inverse.reshape(-1)]


@lru_cache(maxsize=1)
def _units_table() -> np.ndarray:
    cpus = np.repeat(np.arange(MAX_VCPUS + 1), kernel.MAX_NUMA_NODES + 1)
    per = np.tile(np.arange(kernel.MAX_NUMA_NODES + 1), MAX_VCPUS + 1)
    table = np.zeros(len(cpus))
    valid = (cpus >= 1) & (per >= 1) & (per <= cpus)
    table[valid] = kernel.percpu_units_per_atom_array(cpus[valid], per[valid]).astype(float)
    table.flags.writeable = False
    return table
