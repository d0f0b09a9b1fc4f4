"""The VM shape: the one description of a confidential guest that every part of costmodel
takes (evaluation, fitting data, ingest, the sweep driver, reports).

:class:`VmShape` holds one guest's inputs to the model, each in its unit; its field names
are the quantity names of :mod:`costmodel.model.variables` and the column names of
datasets and evaluated frames (:data:`SHAPE_COLUMNS` is derived from the fields, never
listed by hand). Optional fields left None take the default the model derives (QEMU's
virtqueues, the kernel's SWIOTLB rule).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from costmodel import parse
from costmodel.units import GiB, MiB


@dataclass(frozen=True, kw_only=True)
class VmShape:
    """One confidential guest, as the model sees it.

    Parameters
    ----------
    memory_bytes : int
        Guest memory. [B]
    vcpus : int
        Possible vCPUs. [1]
    virtqueues : int or None
        Virtqueues of the guest's virtio devices; None: QEMU's default (a virtio-blk
        queue per vCPU plus virtio-net rx, tx and ctrl). [1]
    hugepage_bytes : int or None
        guest_memfd hugepage size, 4 KiB (no hugepages), 2 MiB or 1 GiB; None only where
        it is read later (ingest takes it from the collector's header). [B]
    platform : str
        ``snp`` (AMD SEV-SNP) or ``tdx`` (Intel TDX).
    swiotlb_bytes : int or None
        SWIOTLB pool size set on the guest command line (``swiotlb=``); None: the kernel's
        rule. [B]
    """

    memory_bytes: int = 16 * GiB
    vcpus: int = 16
    virtqueues: int | None = None
    hugepage_bytes: int | None = 2 * MiB
    platform: str = "snp"
    swiotlb_bytes: int | None = None

    @classmethod
    def parse(cls, *, memory=None, vcpus=None, virtqueues=None, hugepage=None, platform=None, swiotlb=None,
              where: str = "") -> "VmShape":
        """A shape from the forms users type (``16GiB``, ``2M``, ``SNP``); ``None`` or ``""``
        takes the field's default. Errors name ``where`` and the field (``--memory`` when
        ``where`` is empty: the flag that sets it)."""
        from costmodel.errors import Argument

        def at(name):
            return f"{where}, {name}" if where else Argument(name)

        def given(value):
            return value is not None and value != ""

        default = cls()
        return cls(
            memory_bytes=parse.size(memory, at("memory")) if given(memory) else default.memory_bytes,
            vcpus=parse.count(vcpus, at("vcpus")) if given(vcpus) else default.vcpus,
            virtqueues=parse.count(virtqueues, at("virtqueues")) if given(virtqueues) else None,
            hugepage_bytes=parse.hugepage(hugepage, at("hugepage")) if given(hugepage) else default.hugepage_bytes,
            platform=parse.platform(platform, at("platform")) if given(platform) else default.platform,
            swiotlb_bytes=parse.size(swiotlb, at("swiotlb")) if given(swiotlb) else None,
        )

    def replace(self, **changes) -> "VmShape":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Field name → value, in :data:`SHAPE_COLUMNS` order."""
        return asdict(self)


#: The shape's fields, in order: the configuration columns of datasets and evaluated frames.
SHAPE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(VmShape))
