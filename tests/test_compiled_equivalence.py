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


def test_numpy_program_in_chunks_equals_one_pass(arrays, reference_calibration, monkeypatch):
    outputs = tuple(compiled.available_outputs(reference_calibration.form))
    coefficients = coefficients_by_platform(reference_calibration)
    program = compiled.compile_outputs(outputs, reference_calibration.form, fused=False)
    whole = program(arrays, coefficients)  # 10⁴ rows: one pass
    monkeypatch.setattr(compiled, "CHUNK_ROWS", 997)  # chunks that split the union's rows unevenly
    chunked = program(arrays, coefficients)
    for name in outputs:
        np.testing.assert_array_equal(chunked[name], whole[name], err_msg=name)


def _closed_form(row: dict, outputs, form: str, coefficients: dict) -> dict[str, float]:
    """The plan's SymPy expressions with one configuration's numbers substituted, step by
    step, in exact arithmetic (the union of hugepage ranges evaluated on the numbers)."""
    import sympy as sp

    from costmodel.model.union import NewPages, new_pages

    steps = compiled.plan(outputs, form, "status_quo")

    def number(v):
        v = float(v)
        return sp.Integer(int(v)) if v.is_integer() else sp.Float(v, 30)

    env = {sp.Symbol(k): number(row[k]) for k in compiled.INPUTS}
    for k, v in coefficients.items():
        env[sp.Symbol(k)] = number(v[int(row["is_snp"])] if isinstance(v, tuple) else v)

    def value(expr):
        expr = expr.xreplace(env)
        unions = {a: new_pages(int(a.args[0]), int(a.args[1]), *(np.array([float(x)]) for x in a.args[2:]))[0]
                  for a in expr.atoms(NewPages)}
        return expr.xreplace({a: number(v) for a, v in unions.items()}) if unions else expr

    for name, expr in steps.steps:
        env[sp.Symbol(name)] = value(expr)
    return {name: float(sp.N(value(expr), 30)) for name, expr in zip(outputs, steps.results)}


def test_compiled_paths_equal_the_closed_form_on_random_shapes(arrays, reference_calibration):
    from costmodel.model.variables import OUTPUTS

    outputs = ("swiotlb_bytes", *OUTPUTS)
    coefficients = coefficients_by_platform(reference_calibration)
    paths = [compiled.compile_outputs(outputs, reference_calibration.form, fused=False)(arrays, coefficients)]
    if fused.available():
        paths.append(compiled.compile_outputs(outputs, reference_calibration.form, fused=True)(arrays, coefficients))
    rows = np.random.default_rng(7).choice(len(arrays["vcpus"]), 6, replace=False)
    checked = 0
    for i in rows:
        exact = _closed_form({k: arrays[k][i] for k in compiled.INPUTS}, outputs, reference_calibration.form,
                             coefficients)
        for name in outputs:
            for values in paths:
                assert values[name][i] == pytest.approx(exact[name], rel=1e-9, abs=1e-9), (name, i)
                checked += 1
    assert checked == len(rows) * len(outputs) * len(paths)


def _text_version(cfg: dict) -> dict:
    """The same shapes as users type them: sizes and switches as text, platforms in any
    case, unset cells empty, None or NaN."""
    n = len(cfg["vcpus"])
    rng = np.random.default_rng(3)
    out = dict(cfg)
    out["platform"] = np.where(rng.random(n) < 0.5, cfg["platform"], np.char.upper(cfg["platform"].astype(str)))
    out["platform"] = out["platform"].astype(object)
    out["hugepage_bytes"] = np.array(["4K", "2M", "1G"], dtype=object)[
        np.searchsorted([4 * KIB, 2 * MIB, GIB], cfg["hugepage_bytes"])]
    out["memory_bytes"] = np.array([f"{int(m) // KIB}K" for m in cfg["memory_bytes"]], dtype=object)
    out["kaslr"] = np.array(["off", "on"], dtype=object)[cfg["kaslr"]]
    boot = cfg["boot_vcpus"].astype(object)
    boot[np.isnan(cfg["boot_vcpus"])] = ""
    out["boot_vcpus"] = boot
    devices = cfg["devices"].copy()
    blank = devices == ""
    devices[blank & (rng.random(n) < 0.3)] = None
    devices[blank & (rng.random(n) < 0.3)] = np.nan
    out["devices"] = devices
    return out


def test_text_columns_resolve_as_their_numbers():
    cfg = shapes(5_000, seed=11)
    numbers, text = compiled.configurations(cfg), compiled.configurations(_text_version(cfg))
    assert set(numbers) == set(text)
    for name in numbers:
        assert numbers[name].tolist() == text[name].tolist(), name


@pytest.mark.parametrize("column, values, parse_one", [
    ("memory_bytes", [GIB, "1GiB", True, 2.0 * GIB, "1GiB", 2 * GIB], parse.size),
    ("kaslr", [1, True, "on", 1.0, 0, "off"], parse.boolean),
    ("vcpus", [4, 4.0, "4", np.int64(4), 4.5, "4"], parse.count),
])
def test_text_parsed_once_per_value_as_row_by_row(column, values, parse_one):
    """1, 1.0 and True are equal as dict keys but parse differently: each parses as itself."""
    array = np.array(values, dtype=object)
    expected, error = [], None
    for i, v in enumerate(values):
        try:
            expected.append(float(parse_one(v, f"configuration {i}, {column}")))
        except Exception as e:  # noqa: BLE001 - the error the row-by-row parse gives
            error = str(e)
            break
    if error is None:
        assert compiled._parse_column(array, parse_one, column).tolist() == expected
    else:
        with pytest.raises(Exception) as found:
            compiled._parse_column(array, parse_one, column)
        assert str(found.value) == error


def _grid_with_bad_row(column: str, bad, n: int = 1_000_000, row: int = 700_001) -> dict:
    cfg = {"memory_bytes": np.full(n, 16.0 * GIB), "vcpus": np.full(n, 16), "hugepage_bytes": np.full(n, 2.0 * MIB),
           "platform": np.array(["snp", "tdx"], dtype=object)[np.arange(n) % 2],
           "devices": np.array(["", "virtio-net:queues=4"], dtype=object)[np.arange(n) % 3 // 2],
           "virtqueues": np.full(n, np.nan)}
    values = cfg[column].astype(object) if column != "platform" else cfg[column]
    values[row] = bad
    cfg[column] = values
    return cfg


@pytest.mark.parametrize("column, bad, found", [
    ("platform", "arm", "arm"),
    ("memory_bytes", "16 gigs", "16 gigs"),
    ("hugepage_bytes", "3M", "3M"),
    ("memory_bytes", 100 * MIB, "104857600"),
    ("vcpus", 5000, "5000"),
    ("virtqueues", 4, "4"),  # beside a devices spec: one or the other
])
def test_a_bad_value_in_row_700001_is_named_before_any_kernel_runs(column, bad, found, monkeypatch,
                                                                    reference_calibration):
    from costmodel.errors import InputError
    from costmodel.evaluate import evaluate_arrays

    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel ran before the input was checked")

    monkeypatch.setattr(fused, "run", no_kernel)
    monkeypatch.setattr(compiled.Compiled, "_numpy", no_kernel)
    cfg = _grid_with_bad_row(column, bad)
    if column == "virtqueues":
        cfg["devices"][700_001] = "virtio-blk"
    with pytest.raises(InputError) as error:
        evaluate_arrays(cfg, reference_calibration)
    assert "configuration 700001" in str(error.value) and column in str(error.value)
    assert found in str(error.value)


def test_a_stream_names_the_grids_row(reference_calibration):
    from costmodel.errors import InputError
    from costmodel.evaluate import iter_evaluate_arrays

    cfg = _grid_with_bad_row("platform", "arm", n=60_000, row=50_001)
    pieces = iter_evaluate_arrays(cfg, reference_calibration, piece=20_000, outputs=("splits",))
    assert len(next(pieces)["splits"]) == 20_000
    assert len(next(pieces)["splits"]) == 20_000
    with pytest.raises(InputError, match="configuration 50001, platform"):
        next(pieces)


def test_evaluate_arrays_in_pieces_equals_one_piece(reference_calibration, monkeypatch):
    from costmodel import evaluate

    cfg = shapes(10_000, seed=5)
    whole = evaluate.evaluate_arrays(cfg, reference_calibration)
    monkeypatch.setattr(evaluate, "PIECE", 3_001)  # four pieces, the last one short
    pieces = evaluate.evaluate_arrays(cfg, reference_calibration)
    assert list(pieces) == list(whole)
    for name, values in whole.items():
        assert pieces[name].dtype == values.dtype, name
        assert pieces[name].tolist() == values.tolist(), name


def test_without_numba_grids_run_the_numpy_program_in_chunks(reference_calibration, monkeypatch):
    from costmodel import evaluate

    cfg = shapes(compiled.FUSED_MIN_ROWS + 1, seed=9)
    monkeypatch.setattr(fused, "available", lambda: False)
    calls = []
    one_pass = compiled.Compiled._numpy
    monkeypatch.setattr(compiled.Compiled, "_numpy", lambda self, *a: calls.append(len(a[0]["vcpus"])) or
                        one_pass(self, *a))
    values = evaluate.evaluate_arrays(cfg, reference_calibration, outputs=("splits",))
    assert max(calls) <= compiled.CHUNK_ROWS and sum(calls) == len(cfg["vcpus"])
    assert np.count_nonzero(values["splits"]) > 1000
