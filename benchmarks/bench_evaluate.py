"""Evaluation speed: the public API over 10^6 configurations vs SymPy subs vs hand NumPy.

Prints configurations per second for ``evaluate_arrays`` (arrays out) and ``evaluate``
(DataFrame out), the speed-up over evaluating the same outputs with SymPy ``subs`` (timed
on a sample and scaled per configuration), and the ratio to a hand-written NumPy version of
the same formulas (which is also checked to give the same numbers). Floors (issue 2):
≥ 10^6 configurations/s, within 3× of the hand-written NumPy. The last line is one JSON
object with every figure.
"""

from __future__ import annotations

import json
import time

import numpy as np

from costmodel import calibration, evaluate
from costmodel.model import CostModel
from costmodel.model.variables import COEFFICIENTS, OUTPUTS, symbol

N_CONFIGS = 1_000_000
N_SUBS_SAMPLE = 20
REPEATS = 3
KIB, MIB, GIB = 1024, 1024**2, 1024**3


def grid(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "memory_bytes": rng.integers(1, 1025, n) * GIB,
        "vcpus": rng.integers(1, 513, n),
        "virtqueues": rng.integers(1, 600, n),
        "hugepage_bytes": rng.choice([4 * KIB, 2 * MIB, GIB], n),
        "platform": rng.choice(np.array(["snp", "tdx"], dtype=object), n),
    }


def hand_numpy(cfg: dict, c: dict) -> dict[str, np.ndarray]:
    """The status-quo formulas of costmodel.model (default form), written out by hand."""
    M, N, Q, H = (cfg[k].astype(float) for k in ("memory_bytes", "vcpus", "virtqueues", "hugepage_bytes"))
    snp = (cfg["platform"] == "snp").astype(float)
    S = np.minimum(GIB, np.maximum(64 * MIB, 2.0 ** np.ceil(np.log2(0.06 * M))))
    P = np.minimum(4 * MIB, np.maximum(128 * KIB, 2.0 ** np.ceil(np.log2(M / 8192))))
    regions = (snp * (np.ceil(c["ghcb_spacing_bytes"] * N / H) + np.ceil(c["percpu_unit_bytes"] * N / H) + 1 + 3)
               + np.minimum(1, np.maximum(0, N - 64)) + 3 * np.ceil(P / H)
               + 1 + c["ring_locality"] * (Q - 1) + c["remainder_regions"])
    B = np.maximum(1, np.minimum(M, c["placement_span_bytes"]) / H)
    Btr = np.maximum(1, np.minimum(M, c["transient_span_bytes"]) / H)
    hS = np.ceil(S / H) + c["swiotlb_misalignment"]
    huge = H > 4 * KIB
    splits = np.where(huge, np.minimum(np.ceil(M / H), hS + B * (1 - (1 - 1 / B) ** regions)), 0.0)
    merges = np.where(huge, np.minimum(np.maximum(0, splits - hS),
                                       Btr * (1 - (1 - 1 / Btr) ** c["transient_regions"])), 0.0)
    event = c["split_fixed_cycles"] + c["split_subpage_cycles"] * H / (4 * KIB)
    sm_cycles = (splits + merges) * event
    ops = c["conversion_ops_fixed"] + c["conversion_ops_per_gib"] * M / GIB
    cycles = c["conversion_op_cycles"] * ops + sm_cycles
    shared = S + 3 * P + 4 * KIB * (2 * Q + snp * (2 * N + 3))
    kept = np.minimum(H / 64, 4 * KIB)
    vmemmap = M / H * kept + (splits - merges) * (H / 64 - kept)
    return {
        "swiotlb_bytes": S, "splits": splits, "merges": merges, "conversion_ops": ops,
        "split_merge_cycles": sm_cycles, "conversion_cycles": cycles, "split_merge_share": sm_cycles / cycles,
        "shared_bytes": shared, "vmemmap_unsplit_bytes": M / H * kept, "vmemmap_bytes": vmemmap, "pageless_saving_bytes": vmemmap - shared / 64,
        "huge_mapped_fraction": np.where(huge, np.maximum(0, 1 - splits * H / M), 0.0),
    }


def best_of(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def subs_seconds_per_config(cfg: dict, cal) -> float:
    model = CostModel(cal.form)
    overrides = {"promotion": 0, "pageless": 0}
    exprs = [model.expand(name, overrides) for name in OUTPUTS]
    coefficients = {symbol(k): cal.values[k] for k in COEFFICIENTS}
    start = time.perf_counter()
    for i in range(N_SUBS_SAMPLE):
        M = int(cfg["memory_bytes"][i])
        bind = {**coefficients, symbol("memory_bytes"): M, symbol("vcpus"): int(cfg["vcpus"][i]),
                symbol("virtqueues"): int(cfg["virtqueues"][i]), symbol("hugepage_bytes"): int(cfg["hugepage_bytes"][i]),
                symbol("is_snp"): int(cfg["platform"][i] == "snp"),
                symbol("swiotlb_bytes"): min(GIB, max(64 * MIB, 2 ** int(np.ceil(np.log2(0.06 * M)))))}
        [float(e.subs(bind)) for e in exprs]
    return (time.perf_counter() - start) / N_SUBS_SAMPLE


def main() -> dict:
    cal = calibration.default()
    cfg = grid(N_CONFIGS)
    evaluate.evaluate_arrays({k: v[:10] for k, v in cfg.items()}, cal)  # compile once, outside the timing

    t_arrays = best_of(lambda: evaluate.evaluate_arrays(cfg, cal))
    t_frame = best_of(lambda: evaluate.evaluate(cfg, cal))
    t_hand = best_of(lambda: hand_numpy(cfg, cal.values))

    ours = evaluate.evaluate_arrays(cfg, cal)
    hand = hand_numpy(cfg, cal.values)
    worst = max(float(np.max(np.abs(ours[k] - hand[k]) / np.maximum(1.0, np.abs(hand[k])))) for k in hand)
    t_subs = subs_seconds_per_config(cfg, cal)

    result = {
        "configurations": N_CONFIGS,
        "evaluate_arrays_configs_per_s": round(N_CONFIGS / t_arrays),
        "evaluate_frame_configs_per_s": round(N_CONFIGS / t_frame),
        "speedup_vs_sympy_subs": round(t_subs * N_CONFIGS / t_arrays),
        "ratio_to_hand_numpy": round(t_arrays / t_hand, 2),
        "ratio_to_hand_numpy_frame": round(t_frame / t_hand, 2),
        "max_relative_difference_to_hand_numpy": float(f"{worst:.3g}"),
        "floor_configs_per_s": 1_000_000,
        "floor_ratio_to_hand_numpy": 3.0,
    }
    print(f"evaluate_arrays: {result['evaluate_arrays_configs_per_s']:,} configurations/s "
          f"({t_arrays:.3f} s for {N_CONFIGS:,})")
    print(f"evaluate (DataFrame): {result['evaluate_frame_configs_per_s']:,} configurations/s ({t_frame:.3f} s)")
    print(f"hand-written NumPy: {t_hand:.3f} s  → ratio {result['ratio_to_hand_numpy']} "
          f"(DataFrame path {result['ratio_to_hand_numpy_frame']}); max relative difference {worst:.2e}")
    print(f"SymPy subs: {t_subs * 1e3:.1f} ms per configuration → {result['speedup_vs_sympy_subs']:,}× slower")
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
