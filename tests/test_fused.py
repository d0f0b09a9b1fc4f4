"""The fused kernel's exact rewrites (costmodel.fused_source) give bit for bit the numbers of
the code as printed; a row outside what they hold for is evaluated by the NumPy program."""

import ast
import math

import numpy as np
import pytest

from costmodel import compiled, fused, fused_source
from costmodel.evaluate import coefficients_by_platform

EDGES = [0.0, -0.0, -1.0, 1e-310, 5e-324, 0.5, 1.0, 1.5, 2.0, 3.0, 4095.0, 4096.0, 4097.0, 2.0**53 + 2,
         1.7976931348623157e308, math.inf, -math.inf, math.nan]


def _near_powers_of_two():
    values = []
    for k in range(-1070, 1023, 7):
        x = math.ldexp(1.0, k)
        values += [x, np.nextafter(x, 0.0), np.nextafter(x, math.inf)]
        y = x
        for _ in range(64):
            y = np.nextafter(y, math.inf)
        values += [y, x * (1 + 2.0**-30), x * (1 + 2.0**-29)]
    return np.array(values + EDGES)


def _same(a, b):
    return np.array_equal(np.asarray(a, dtype=float).view(np.int64), np.asarray(b, dtype=float).view(np.int64))


def test_exp2_and_ceil_log2_are_bitwise_the_library_calls():
    numba = pytest.importorskip("numba")
    exp2, ceil_log2 = (numba.njit(f) for f in (fused.exp2, fused.ceil_log2))
    reference_exp2 = numba.njit(lambda y: 2.0**y)
    reference_ceil_log2 = numba.njit(lambda x: np.ceil(np.log2(x)))
    powers = np.concatenate([np.arange(-1100.0, 1100.0), np.random.default_rng(3).uniform(-60, 60, 500), EDGES])
    assert _same([exp2(y) for y in powers], [reference_exp2(y) for y in powers])
    values = np.concatenate([_near_powers_of_two(), np.exp(np.random.default_rng(4).uniform(-700, 700, 5000))])
    got = [ceil_log2(x) for x in values]
    assert _same(got, [reference_ceil_log2(x) for x in values])
    assert any(ceil_log2(x) == k for k in range(10) for x in [np.nextafter(2.0**k, math.inf)])  # the library decides


def _run(lines, env):
    scope = dict(env, np=np, _exp2=lambda y: 2.0**y, _ceil_log2=lambda x: np.ceil(np.log2(x)))
    exec("\n".join(lines), scope)  # noqa: S102 - the test's own source
    return scope


def test_rewrites_keep_every_operation_and_its_operands():
    statements = ["a = np.floor((1/2097152)*x/h)*2.0**np.ceil(np.log2(y))",
                  "b = (np.floor((1/2097152)*x/h) + 1.0) if (y > 3.0) else (x/h - np.ceil(np.log2(y)))",
                  "c = max(np.floor((1/2097152)*x/h), x/h)*2.0**(-np.ceil(np.log2(x/h)))",
                  "if s_0 >= 0:\n    out[s_0, 0] = b*(x/h) + (np.floor((1/2097152)*x/h) + 1.0)"]
    tree = ast.parse("\n".join(statements))
    rewritten = [fused_source._Exact(("h",)).visit(s) for s in tree.body]
    rewritten = fused_source._common_subexpressions(rewritten)
    lines = [ast.unparse(ast.fix_missing_locations(s)) for s in rewritten]
    assert any(line.startswith("_c") for line in lines) and "/ h" not in "".join(lines)
    rng = np.random.default_rng(5)
    for x, y, h in zip(rng.uniform(0, 1e12, 200), rng.uniform(0.1, 1e6, 200), 2.0 ** rng.integers(12, 31, 200)):
        env = {"x": x, "y": y, "h": h, "_inv_h": 1.0 / h, "s_0": 0}
        before = _run(statements, dict(env, out=np.zeros((1, 1))))
        after = _run(lines, dict(env, out=np.zeros((1, 1))))
        assert _same([before[k] for k in "abc"] + [before["out"][0, 0]], [after[k] for k in "abc"] + [after["out"][0, 0]])


@pytest.mark.skipif(not fused.available(), reason="numba not installed")
def test_a_hugepage_not_a_power_of_two_is_evaluated_by_the_numpy_program(reference_calibration):
    from test_compiled_equivalence import shapes

    arrays = compiled.configurations(shapes(2000))
    arrays["hugepage_bytes"] = arrays["hugepage_bytes"].copy()
    arrays["hugepage_bytes"][7] = 3 * 1024**2
    outputs = ("splits", "merges", "vmemmap_bytes")
    coefficients = coefficients_by_platform(reference_calibration)
    numpy_values = compiled.compile_outputs(outputs, reference_calibration.form, fused=False)(arrays, coefficients)
    fused_values = compiled.compile_outputs(outputs, reference_calibration.form, fused=True)(arrays, coefficients)
    for name in outputs:
        assert _same(fused_values[name], numpy_values[name]), name


@pytest.mark.skipif(not fused.available(), reason="numba not installed")
def test_object_columns_grouped_by_identity_as_by_value(monkeypatch):
    from costmodel import shape

    rng = np.random.default_rng(6)
    pool = np.array([1, 1.0, True, "1", None, math.nan, "a", "a" * 2, "aa", "".join(["a", "a"]), "snp"], dtype=object)
    columns = [pool[rng.integers(0, len(pool), 3000)], np.array(["tdx", "snp"] * 1500, dtype=object),
               np.array([str(v) for v in rng.integers(0, 500, 3000)], dtype=object)]  # equal text, distinct objects
    for column in columns:
        monkeypatch.setattr(shape, "_BY_IDENTITY_ROWS", 10**12)
        by_value = shape.factorize(column)
        monkeypatch.setattr(shape, "_BY_IDENTITY_ROWS", 1)
        by_identity = shape.factorize(column)
        assert [repr(u) for u in by_identity[0]] == [repr(u) for u in by_value[0]]
        np.testing.assert_array_equal(by_identity[1], by_value[1])
    words = np.arange(5000, dtype=np.uint64) * np.uint64(16)  # the table grows past its first sizes
    first, codes = fused.distinct_words(np.concatenate([words, words[::-1]]))
    np.testing.assert_array_equal(first, np.arange(5000))
    np.testing.assert_array_equal(codes, np.concatenate([np.arange(5000), np.arange(5000)[::-1]]))


@pytest.mark.skipif(not fused.available(), reason="numba not installed")
def test_pieces_written_at_an_offset_into_one_array_equal_one_call(reference_calibration):
    from test_compiled_equivalence import shapes

    arrays = compiled.configurations(shapes(3000, seed=8))
    outputs = ("splits", "merges")
    coefficients = coefficients_by_platform(reference_calibration)
    program = compiled.compile_outputs(outputs, reference_calibration.form, fused=True)
    whole = program(arrays, coefficients)
    out = np.full((2, 3500), -1.0)
    for start, stop in ((0, 1200), (1200, 3000)):
        part = {k: (v[start:stop] if np.ndim(v) and len(v) == 3000 else v) for k, v in arrays.items()}
        values = program(part, coefficients, out=out, offset=start + 500)
        assert np.shares_memory(values["splits"], out)
    assert (out[:, :500] == -1).all()
    for r, name in enumerate(outputs):
        assert _same(out[r, 500:], whole[name]), name
