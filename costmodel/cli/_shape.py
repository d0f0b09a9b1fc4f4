"""The VM-shape flags shared by ``predict`` and ``simulate``: one value, a list or a range each.

Every flag's ``dest`` is the argument of :meth:`costmodel.shape.VmShape.parse` it sets, so a
library error about that argument is shown with the flag (``costmodel.cli.as_flag``).
"""

from __future__ import annotations

from costmodel import parse

#: dest → parser of one value (the grid forms wrap it).
GRID_FLAGS = {
    "memory": parse.size, "vcpus": parse.count, "boot_vcpus": parse.count, "numa_nodes": parse.count,
    "lowmem": parse.size, "virtqueues": parse.count, "hugepage": parse.hugepage, "platform": parse.platform,
    "swiotlb": parse.size,
}
#: The shape column each dest sets.
COLUMN_OF = {"memory": "memory_bytes", "vcpus": "vcpus", "boot_vcpus": "boot_vcpus", "numa_nodes": "numa_nodes",
             "lowmem": "lowmem_bytes", "virtqueues": "virtqueues", "hugepage": "hugepage_bytes",
             "platform": "platform", "swiotlb": "swiotlb_bytes"}


def add_shape_arguments(p) -> None:
    """The shape flags, with the reference guest's defaults."""
    p.add_argument("--memory", default="16GiB", metavar="SIZE", help="guest memory (default 16GiB)")
    p.add_argument("--vcpus", default="16", metavar="N", help="possible vCPUs (default 16)")
    add_placement_arguments(p)
    p.add_argument("--hugepage", default="2M", metavar="SIZE", help="hugepage size: 4K (none), 2M or 1G (default 2M)")
    p.add_argument("--platform", default="snp", metavar="NAME", help="snp or tdx (default snp)")


def add_placement_arguments(p) -> None:
    """The flags of the shape beyond memory, vCPUs, hugepage and platform (all optional)."""
    p.add_argument("--boot-vcpus", dest="boot_vcpus", default=None, metavar="N",
                   help="vCPUs online at boot (default: all; QEMU sizes virtio-blk queues by them)")
    p.add_argument("--numa-nodes", dest="numa_nodes", default=None, metavar="K", help="NUMA nodes, 1-8 (default 1)")
    p.add_argument("--lowmem", default=None, metavar="SIZE",
                   help="RAM below 4 GiB (default q35's: all of it below 2.75 GiB, else 2 GiB)")
    p.add_argument("--device", dest="devices", action="append", default=None, metavar="SPEC",
                   help="a device, repeatable: KIND[:queues=Q,size=S,layout=split|packed] with KIND virtio-blk, "
                   "virtio-net (queues = pairs), virtio-scsi, virtio-vsock, nvme or virtio "
                   "(default: one virtio-blk with a queue per boot vCPU and one virtio-net)")
    p.add_argument("--virtqueues", default=None, metavar="Q",
                   help="shortcut for one virtio device with Q queues of 256 (instead of --device)")
    p.add_argument("--swiotlb", default=None, metavar="SIZE", help="swiotlb= size (default: the kernel's rule)")
    p.add_argument("--no-kaslr", dest="kaslr", action="store_false", help="the kernel at 16 MiB (nokaslr)")
    p.add_argument("--svsm", action="store_true", help="SEV-SNP under an SVSM")
    p.add_argument("--no-atomic-pools", dest="atomic_pools", action="store_false",
                   help="a kernel without the DMA atomic pools (TDX-only build, no AMD_MEM_ENCRYPT)")


def shape_grid(args) -> dict:
    """Shape column → the list of its values the flags ask for (one value: a list of one)."""
    grid = {}
    for dest, parse_one in GRID_FLAGS.items():
        text = getattr(args, dest)
        if text is None:
            continue
        flag = "--" + dest.replace("_", "-")
        values = ([parse.platform(v, flag) for v in text.split(",")] if dest == "platform"
                  else parse.grid(text, parse_one, flag))
        grid[COLUMN_OF[dest]] = values
    if args.devices:
        grid["devices"] = [";".join(str(parse.device(d, "--device").spec()) for d in args.devices)]
    grid["kaslr"] = [bool(args.kaslr)]
    grid["svsm"] = [bool(args.svsm)]
    grid["atomic_pools"] = [bool(args.atomic_pools)]
    return grid
