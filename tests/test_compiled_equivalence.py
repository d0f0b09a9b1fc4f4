"""The fast paths give the numbers of the reference paths.

On a fixed random set of 10⁴ shapes over every input (memory 512 MiB–64 TiB, 1–4096 vCPUs,
1–8 NUMA nodes, device specs and the virtqueues shortcut, 4K/2M/1G, SEV-SNP/TDX, KASLR,
SVSM, atomic pools): the fused numba loop equals the NumPy program on every output to
1e-9 relative, and the vectorised resolution of devices and per-CPU units equals the
scalar sizing rules row by row.
"""

import numpy as np
import pytest

from costmodel import compiled, fused, parse
from costmodel.evaluate import coefficients_by_platform
from costmodel.model import kernel
from costmodel.shape import device_allocations, resolve_devices

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4
DEVICES = np.array(["", "", "virtio-blk:queues=1", "virtio-net:queues=8;virtio-blk",
                    "nvme:queues=4,size=1024;virtio-vsock", "virtio-scsi;virtio-net:queues=2,layout=packed"],
                   dtype=object)


def shapes(n: int, seed: int = 20261203) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    huge = rng.choice([4 * KIB, 2 * MIB, GIB], n).astype(float)
    memory = np.exp(rng.uniform(np.log(512 * MIB), np.log(64 * TIB), n))
    memory = np.minimum(np.maximum(np.ceil(memory / huge), np.ceil(512 * MIB / huge)) * huge, 64 * TIB)
    vcpus = rng.integers(1, 4097, n)
    nodes = np.minimum(rng.integers(1, 9, n), np.minimum(vcpus, memory // (256 * MIB)))
    platform = rng.choice(np.array(["snp", "tdx"], dtype=object), n)
    devices = DEVICES[rng.integers(0, len(DEVICES), n)]
    virtqueues = np.where((devices == "") & (rng.random(n) < 0.5), rng.integers(1, 300, n), np.nan)
    return {"memory_bytes": memory, "vcpus": vcpus, "numa_nodes": nodes, "hugepage_bytes": huge,
            "platform": platform, "devices": devices, "virtqueues": virtqueues,
            "boot_vcpus": np.where(rng.random(n) < 0.2, np.maximum(1, vcpus // 2), np.nan),
            "kaslr": rng.integers(0, 2, n), "svsm": np.where(platform == "snp", rng.integers(0, 2, n), 0),
            "atomic_pools": rng.integers(0, 2, n)}


@pytest.fixture(scope="module")
def arrays():
    return compiled.configurations(shapes(10_000))


@pytest.mark.skipif(not fused.available(), reason="numba not installed: the NumPy program is the only path")
def test_fused_loop_equals_numpy_program(arrays, reference_calibration):
    outputs = tuple(compiled.available_outputs(reference_calibration.form))
    coefficients = coefficients_by_platform(reference_calibration)
    numpy_values = compiled.compile_outputs(outputs, reference_calibration.form, fused=False)(arrays, coefficients)
    fused_values = compiled.compile_outputs(outputs, reference_calibration.form, fused=True)(arrays, coefficients)
    assert np.count_nonzero(numpy_values["splits"]) > 1000  # the set exercises the union
    for name in outputs:
        a, b = numpy_values[name], fused_values[name]
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=0, equal_nan=True, err_msg=name)


def test_vectorised_resolution_equals_scalar_rules(arrays):
    rows = np.random.default_rng(1).choice(len(arrays["vcpus"]), 300, replace=False)
    for i in rows:
        boot, nodes = int(arrays["boot_vcpus"][i]), int(arrays["numa_nodes"][i])
        spec = arrays["devices"][i]
        found = resolve_devices(tuple(parse.device(d) for d in spec.split(";")), None)
        sizes = device_allocations(found, boot)
        assert arrays["device_bytes"][i] == sum(sizes)
        assert arrays["device_allocations"][i] == len(sizes)
        assert arrays["virtqueues"][i] == sum(kernel.virtqueue_count(d, boot) for d in found)
        expected = kernel.percpu_units_per_atom(kernel.node_cpus(int(arrays["vcpus"][i]), nodes), kernel.PERCPU_UNIT_MIN)
        assert arrays["percpu_units_per_atom"][i] == expected


def test_per_cpu_units_vectorised_on_every_pair():
    vcpus = np.repeat(np.arange(1, 4097), 8)
    nodes = np.tile(np.arange(1, 9), 4096)
    keep = nodes <= vcpus
    every = kernel.percpu_units_per_atom_array(vcpus[keep], nodes[keep])
    some = np.flatnonzero(keep)[::97]
    expected = [kernel.percpu_units_per_atom(kernel.node_cpus(int(vcpus[i]), int(nodes[i])), kernel.PERCPU_UNIT_MIN)
                for i in some]
    assert len(set(every.tolist())) > 1  # the rule picks different units across the pairs
    np.testing.assert_array_equal(every[np.searchsorted(np.flatnonzero(keep), some)], expected)
