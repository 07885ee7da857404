"""Replication check: IPA and its baselines on IPA's own video-pipeline CPU profile fragments.

Builds a profile of IPA's video pipeline (yolov5n..x detectors, resnet18..152 classifiers)
from the fragments of IPA's CPU profiles (Xeon Gold 6126) in the shared reference data,
applies IPA's own rules (`ipa_baseline.rules.preset("ipa")`: SLA rule, base allocation,
keep-current on infeasibility, FA2-high = yolov5s + resnet101, RIM = 3 replicas, replica
cap 100), runs IPA, FA2-low, FA2-high and RIM over IPA's four Twitter windows (damped by
8) through `PipelineEnv`, and checks IPA's qualitative claims: higher accuracy than
FA2-low at about the same cost, and lower cost than FA2-high. ``--deviations`` also runs
the preset with one rule at a time at the package default (bursty window).

The fragments are incomplete (IPA never published its full profiles), so rows are marked:
``ipa`` where mean and p99 latency come straight from a fragment, ``ipa_scaled`` where
they are derived from the fragments (a missing p99 = mean x the family reference's
p99/mean at that batch; a missing batch = the variant's batch-1 latency x the reference's
batch shape; an unprofiled variant = the reference x (GFLOPs ratio)^k, with k fitted to
the family's two measured batch-1 latencies). Energy is estimated (no energy in the
fragments). The reference data is read at run time and never copied into the repository.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/ipa_replication.py [--data ../shared/data]
        [--backend fluid|requests] [--deviations]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import gymnasium
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import envs  # noqa: E402,F401  (registers ipa/Pipeline-v0)
from envs.profile_doc import hardware_entry  # noqa: E402
from envs.profiles import load_pipeline  # noqa: E402
from ipa_baseline import FA2Policy, IPAPolicy, RIMPolicy  # noqa: E402
from ipa_baseline.rules import IpaRules, preset, write_ipa_profile  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BATCHES = (1, 2, 8)
CORES = (1, 2, 4)  # rows at every core count, for IPA's base-allocation rule
_DATA = [DATA]  # set by main(): --data
WINDOWS = ("bursty", "steady_low", "steady_high", "fluctuating")
SLA_FACTOR = 5.0  # IPA's video configuration (sla_factor in video-*.yaml)
IDLE_W_PER_CORE = 73.0 / 12  # ipa_ext: idle package ~73 W over the 6126's 12 cores
BUSY_W_PER_CORE = (125.0 - 73.0) / 12  # TDP 125 W above idle, per core
# (name, GFLOPs, base cores). GFLOPs: ultralytics yolov5 README (640 px), torchvision docs.
FAMILIES = {
    "crop": ("yolov5n", [("yolov5n", 4.5, 1), ("yolov5s", 16.5, 1), ("yolov5m", 49.0, 1),
                         ("yolov5l", 109.1, 2), ("yolov5x", 205.7, 4)]),
    "classification": ("resnet18", [("resnet18", 1.81, 2), ("resnet34", 3.66, 2),
                                    ("resnet50", 4.09, 2), ("resnet101", 7.80, 2),
                                    ("resnet152", 11.51, 2)]),
}
Point = tuple[float, float | None]  # mean ms, p99 ms (None: not in the fragment)


def read_fragments(folder: Path) -> dict[tuple[str, int, int], Point]:
    """(variant, batch, cores) -> latency at the highest profiled load (batches fill)."""
    best: dict[tuple[str, int, int], tuple[float, Point]] = {}
    for path in sorted(folder.glob("*.csv")):
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                try:
                    key = (row["model_variant"], int(row["max_batch_size"]),
                           int(row["cpu_request"]))
                    load, mean = float(row["load"]), float(row["model_latencies_avg"]) * 1e3
                except (KeyError, ValueError, TypeError):
                    continue
                p99_text = row.get("model_latencies_p99") or ""
                p99 = float(p99_text) * 1e3 if p99_text else None
                if math.isfinite(mean) and (key not in best or load > best[key][0]):
                    best[key] = (load, (mean, p99))
    return {k: v for k, (_, v) in best.items()}


def core_ratio(points: dict, ref: str) -> float:
    """Measured latency ratio per doubling of cores of the family's reference (mean over
    the batches profiled at c and 2c), capped at 1 (assumed: more cores are never
    slower; the fragments' resnet rows come from different loads)."""
    pairs = [points[(ref, b, 2 * c)][0] / points[(ref, b, c)][0]
             for (name, b, c) in points if name == ref and (ref, b, 2 * c) in points]
    return min(1.0, sum(pairs) / len(pairs)) if pairs else 1.0


def family_rows(points: dict, ref: str, members: list) -> dict[str, list[list]]:
    """Rows of every member at CORES and BATCHES (see the module docstring): computed at
    the member's fragment cores, scaled to other core counts by `core_ratio`."""
    ratio = core_ratio(points, ref)

    def ref_at(batch: int, cores: int) -> Point:
        hits = [points.get((ref, batch, c)) for c in (cores, 2, 1, 4)]
        return next(h for h in hits if h and h[1] is not None)

    ref_cores = members[0][2]
    measured_b1 = [(gf, points[(n, 1, c)][0]) for n, gf, c in members
                   if c == ref_cores and (n, 1, c) in points]
    (g0, l0), (g1, l1) = measured_b1[0], measured_b1[-1]
    k = math.log(l1 / l0) / math.log(g1 / g0)
    ref_gflops = members[0][1]
    out = {}
    for name, gflops, cores in members:
        anchor = points.get((name, 1, cores), (None, None))[0]
        if anchor is None:
            anchor = ref_at(1, cores)[0] * (gflops / ref_gflops) ** k
        rows = []
        for c_out in CORES:
            scale = ratio ** math.log2(c_out / cores)
            for b in BATCHES:
                ref_mean, ref_p99 = ref_at(b, cores)
                mean, p99 = points.get((name, b, c_out), (None, None))
                cited = mean is not None and p99 is not None
                if not cited:
                    mean, p99 = points.get((name, b, cores), (None, None))
                    mean = (mean if mean is not None else
                            anchor * ref_mean / ref_at(1, cores)[0]) * scale
                    p99 = p99 * scale if p99 is not None else mean * ref_p99 / ref_mean
                energy = BUSY_W_PER_CORE * c_out * mean / 1e3
                rows.append([b, c_out, round(mean, 3), round(max(p99, mean), 3),
                             round(energy, 5), "ipa" if cited else "ipa_scaled", "tdp"])
        out[name] = rows
    return out


def profile_doc(points: dict, accuracies: dict) -> tuple[dict, int, int]:
    """The profile document, and how many rows are cited / scaled."""
    stages, b1_p99 = [], []
    for stage, (ref, members) in FAMILIES.items():
        rows = family_rows(points, ref, members)
        variants = [{"name": n, "accuracy": float(accuracies[stage][n]),
                     "accuracy_metric": "COCO mAP@0.5" if stage == "crop" else "top-1 (%)",
                     "accuracy_source": "IPA accuracies.yaml", "base_cores": c,
                     "rows": rows[n]} for n, _, c in members]
        stages.append({"name": stage, "variants": variants})
        b1_p99.append(np.mean([rows[n][0][3] for n, _, _ in members]))
    all_rows = [r for s in stages for v in s["variants"] for r in v["rows"]]
    cited = sum(r[5] == "ipa" for r in all_rows)
    doc = {
        "pipeline": "ipa_video_fragments",
        "sla_ms": round(float(SLA_FACTOR * sum(b1_p99)), 1),
        "batch_sizes": list(BATCHES),
        "hardware": hardware_entry("Intel Xeon Gold 6126 (IPA's)", devices_per_node=12,
                                   device_idle_w=round(IDLE_W_PER_CORE, 3)),
        "sources": {
            "static": {"kind": "assumed", "description": "idle package power is all "
                       "attributed to allocated cores in this benchmark"},
            "ipa": {"kind": "cited", "description": "IPA CPU profile fragments (notebooks)"},
            "ipa_scaled": {"kind": "estimated", "description":
                           "derived from IPA's fragments by reference ratios / GFLOPs^k and "
                           "the family's measured per-doubling core ratio"},
            "tdp": {"kind": "estimated", "description":
                    f"{BUSY_W_PER_CORE:.2f} W per busy core (TDP 125 W above idle)"},
            "idle": {"kind": "estimated", "description": "ipa_ext idle package 73 W / 12 cores"},
        },
        "row_columns": ["batch", "cores", "latency_mean_ms", "latency_p99_ms",
                        "energy_per_batch_j", "latency_source", "energy_source"],
        "stages": stages,
    }
    return doc, cited, len(all_rows) - cited


def run(env: gymnasium.Env, policy: IPAPolicy) -> dict[str, float]:
    obs, _ = env.reset(seed=0, options={"window_start": 0})
    acc, prod, cores, energy, viol, arrived, done = [], [], [], 0.0, 0, 0, False
    while not done:
        action, _ = policy.predict(obs)
        obs, _, terminated, truncated, info = env.step(action)
        s = info["stats"]
        acc.append(s.accuracy_sum / 2)
        prod.append(s.accuracy_product)
        cores.append(s.cores)
        energy += s.energy_j
        viol += s.sla_violations
        arrived += s.arrived
        done = terminated or truncated
    return {"accuracy": float(np.mean(acc)), "accuracy_product": float(np.mean(prod)),
            "cores": float(np.mean(cores)), "violation_rate": viol / max(arrived, 1),
            "energy_kj": energy / 1e3, "fallbacks": policy.fallbacks, "kept": policy.kept,
            "decision_ms": float(np.median(policy.decision_times_ms))}


PAPER = (
    "IPA paper (arXiv 2308.12871v3), abstract: IPA improves end-to-end accuracy by up to 21 % "
    "over its baselines 'with a minimal cost increase'; its per-window figures (video "
    "pipeline: accuracy and cost of IPA, FA2-low, FA2-high, RIM-high on the four Twitter "
    "windows) give no numbers in the stored text we could read, so only the qualitative "
    "claims are checked")


def policies(rules: IpaRules) -> dict[str, Callable[[gymnasium.Env], IPAPolicy]]:
    w = {"alpha": 2.0, "beta": 1.0, "gamma": 1e-6, "rules": rules}  # video-1.yaml
    return {"ipa": lambda e: IPAPolicy(e, **w), "fa2_low": lambda e: FA2Policy(e, "low", **w),
            "fa2_high": lambda e: FA2Policy(e, "high", **w),
            "rim": lambda e: RIMPolicy(e, **w)}


def make_env(profile: Path, window: str, backend: str, max_replicas: int) -> gymnasium.Env:
    trace = _DATA[0] / "twitter" / f"window_{window}_damped8.txt"
    return gymnasium.make("ipa/Pipeline-v0", pipeline=str(profile), workload=str(trace),
                          backend=backend, max_replicas=max_replicas)


def deviations(base: Path, tmp: Path, backend: str) -> None:
    """IPA's preset with one rule at the package default, IPA (or the affected baseline) on
    the bursty window: one line per deviation."""
    ipa = preset("ipa", "video")
    cases = {
        "ipa preset": (ipa, "ipa"),
        "sla_rule=profile": (replace(ipa, sla_rule="profile"), "ipa"),
        "base_allocation=profile": (replace(ipa, base_allocation="profile"), "ipa"),
        "on_infeasible=fallback": (replace(ipa, on_infeasible="fallback"), "ipa"),
        "max_replicas=24 (env default)": (replace(ipa, max_replicas=24), "ipa"),
        "fa2_high=most_accurate": (replace(ipa, fa2_high="most_accurate"), "fa2_high"),
        "rim_replicas=peak": (replace(ipa, rim_replicas="peak"), "rim"),
    }
    for k, (label, (rules, policy)) in enumerate(cases.items()):
        path = write_ipa_profile(base, tmp / f"dev{k}.yaml", rules)
        env = make_env(path, "bursty", backend, rules.max_replicas or 24)
        r = run(env, policies(rules)[policy](env))
        print(f"  deviation {label}: {policy} accuracy {r['accuracy']:.3f} "
              f"cores {r['cores']:.2f} SLA violations {100 * r['violation_rate']:.2f} % "
              f"infeasible kept {r['kept']} fallbacks {r['fallbacks']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="fluid", choices=("requests", "fluid"))
    parser.add_argument("--data", type=Path, default=_DATA[0],
                        help="the shared reference data folder (default ../shared/data)")
    parser.add_argument("--deviations", action="store_true",
                        help="also run the preset with one rule at a time at its default")
    args = parser.parse_args()
    _DATA[0] = data = args.data
    fragments = data / "ipa" / "profile_fragments"
    if not (fragments.is_dir() and (data / "twitter").is_dir()):
        print(f"reference data not found under {data}; nothing to check")
        sys.exit(0)
    accuracies = yaml.safe_load((data / "ipa" / "accuracies.yaml").read_text())["video"]
    doc, cited, scaled = profile_doc(read_fragments(fragments), accuracies)
    rules = preset("ipa", "video")
    print(f"command: python benchmarks/ipa_replication.py --backend {args.backend}"
          f"{' --deviations' if args.deviations else ''}")
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        base = tmp / "ipa_video_fragments.yaml"
        base.write_text(yaml.safe_dump(doc, sort_keys=False))
        path = write_ipa_profile(base, tmp / "ipa_video_ipa.yaml", rules)
        world = load_pipeline(path)
        cores = {v.name: v.base_cores for s in world.stages for v in s.variants}
        print(f"profile: {cited} rows cited from IPA's fragments, {scaled} derived; preset "
              f"'ipa': SLA {world.sla_ms:.0f} ms (IPA's rule, sla_factor {rules.sla_factor:g}), "
              f"base cores {cores} (threshold {rules.threshold_rps:g} rps), "
              f"replica cap {rules.max_replicas}")
        for window in WINDOWS:
            for name, make in policies(rules).items():
                env = make_env(path, window, args.backend, rules.max_replicas or 24)
                results.setdefault(window, {})[name] = r = run(env, make(env))
                print(f"  {window:11s} {name:8s} accuracy {r['accuracy']:.3f} (product "
                      f"{r['accuracy_product']:.3f})  cores {r['cores']:6.2f}  SLA violations "
                      f"{100 * r['violation_rate']:5.2f} %  kept {r['kept']}  fallbacks "
                      f"{r['fallbacks']}")
        if args.deviations:
            deviations(base, tmp, args.backend)
    print("  (accuracy: mean rank-normalised accuracy per stage, rank / (n - 1), in [0, 1];"
          " product: mean product of raw accuracies; cores: mean allocated cores)")
    print(f"paper: {PAPER}")
    claims = {
        "ipa_more_accurate_than_fa2_low": all(
            r["ipa"]["accuracy"] > r["fa2_low"]["accuracy"] for r in results.values()),
        "ipa_cheaper_than_fa2_high": all(
            r["ipa"]["cores"] < r["fa2_high"]["cores"] for r in results.values()),
        "ipa_cost_within_1.25x_fa2_low": all(
            r["ipa"]["cores"] <= 1.25 * r["fa2_low"]["cores"] for r in results.values()),
        "ipa_product_gain_over_fa2_low_le_21pct": all(
            r["ipa"]["accuracy_product"] <= 1.21 * r["fa2_low"]["accuracy_product"]
            for r in results.values()),
    }
    for claim, holds in claims.items():
        print(f"claim {claim}: {'holds' if holds else 'does NOT hold'} (all four windows)")
    for window, by_policy in results.items():
        for name, r in by_policy.items():
            for key in ("accuracy", "cores", "violation_rate"):
                print(f"{window}_{name}_{key}={r[key]:.4f}")
    for claim, holds in claims.items():
        print(f"{claim}={int(holds)}")


if __name__ == "__main__":
    main()
