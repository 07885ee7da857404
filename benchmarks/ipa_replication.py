"""Replication check: IPA and its baselines on IPA's own video-pipeline CPU profile fragments.

Builds a profile of IPA's video pipeline (yolov5n..x detectors, resnet18..152 classifiers)
from the fragments of IPA's CPU profiles (Xeon Gold 6126) in the shared reference data,
runs IPA, FA2-low, FA2-high and RIM over IPA's bursty Twitter window (damped by 8) through
`PipelineEnv`, and checks IPA's qualitative result: higher accuracy than FA2-low at about
the same cost, and lower cost than FA2-high.

The fragments are incomplete (IPA never published its full profiles), so rows are marked:
``ipa`` where mean and p99 latency come straight from a fragment, ``ipa_scaled`` where
they are derived from the fragments (a missing p99 = mean x the family reference's
p99/mean at that batch; a missing batch = the variant's batch-1 latency x the reference's
batch shape; an unprofiled variant = the reference x (GFLOPs ratio)^k, with k fitted to
the family's two measured batch-1 latencies). Energy is estimated (no energy in the
fragments). The reference data is read at run time and never copied into the repository.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/ipa_replication.py [--backend requests|fluid]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import tempfile
from pathlib import Path

import gymnasium
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import envs  # noqa: E402,F401  (registers ipa/Pipeline-v0)
from envs.cli import command_line, positive_int  # noqa: E402
from ipa_baseline import FA2Policy, IPAPolicy, RIMPolicy  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BATCHES = (1, 2, 8)
SLA_FACTOR = 5.0  # IPA's video configuration
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


def family_rows(points: dict, ref: str, members: list) -> dict[str, list[list]]:
    """Rows of every member at its base cores, at BATCHES (see the module docstring)."""

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
        for b in BATCHES:
            ref_mean, ref_p99 = ref_at(b, cores)
            mean, p99 = points.get((name, b, cores), (None, None))
            cited = mean is not None and p99 is not None
            mean = mean if mean is not None else anchor * ref_mean / ref_at(1, cores)[0]
            p99 = p99 if p99 is not None else mean * ref_p99 / ref_mean
            energy = BUSY_W_PER_CORE * cores * mean / 1e3
            rows.append([b, cores, round(mean, 3), round(max(p99, mean), 3), round(energy, 5),
                         "ipa" if cited else "ipa_scaled", "tdp"])
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
        "hardware": {"name": "Intel Xeon Gold 6126 (IPA's)", "idle_w_per_core":
                     round(IDLE_W_PER_CORE, 3), "source": "idle"},
        "sources": {
            "ipa": {"kind": "cited", "description": "IPA CPU profile fragments (notebooks)"},
            "ipa_scaled": {"kind": "estimated", "description":
                           "derived from IPA's fragments by reference ratios / GFLOPs^k"},
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
            "energy_kj": energy / 1e3, "fallbacks": policy.fallbacks,
            "decision_ms": float(np.median(policy.decision_times_ms))}


@command_line("python benchmarks/ipa_replication.py")
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="requests", choices=("requests", "fluid"))
    parser.add_argument("--max-replicas", type=positive_int, default=16)
    args = parser.parse_args()
    fragments = DATA / "ipa" / "profile_fragments"
    trace = DATA / "twitter" / "window_bursty_damped8.txt"
    if not (fragments.is_dir() and trace.is_file()):
        print(f"reference data not found under {DATA}; nothing to check")
        sys.exit(0)
    accuracies = yaml.safe_load((DATA / "ipa" / "accuracies.yaml").read_text())["video"]
    doc, cited, scaled = profile_doc(read_fragments(fragments), accuracies)
    print(f"command: python benchmarks/ipa_replication.py --backend {args.backend} "
          f"--max-replicas {args.max_replicas}")
    print(f"profile: {cited} rows cited from IPA's fragments, {scaled} derived; "
          f"SLA {doc['sla_ms']:.0f} ms (IPA's sla_factor {SLA_FACTOR:g} x mean batch-1 p99)")
    weights = {"alpha": 2.0, "beta": 1.0, "gamma": 1e-6}  # IPA's video weights
    policies = {
        "ipa": lambda e: IPAPolicy(e, **weights),
        "fa2_low": lambda e: FA2Policy(e, "low", **weights),
        "fa2_high": lambda e: FA2Policy(e, "high", **weights),
        "rim": lambda e: RIMPolicy(e, **weights),
        # Not in IPA's paper: IPA + energy (delta ~ beta / one core's idle joules per 10 s).
        "ipa_energy": lambda e: IPAPolicy(e, delta=0.02, **weights),
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ipa_video.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        for name, make in policies.items():
            env = gymnasium.make("ipa/Pipeline-v0", pipeline=str(path), workload=str(trace),
                                 backend=args.backend, max_replicas=args.max_replicas)
            results[name] = r = run(env, make(env))
            print(f"  {name:9s} accuracy {r['accuracy']:.3f} (product {r['accuracy_product']:.3f})"
                  f"  cores {r['cores']:5.2f}  SLA violations {100 * r['violation_rate']:5.2f} %"
                  f"  energy {r['energy_kj']:6.1f} kJ (estimated)  fallbacks {r['fallbacks']}"
                  f"  decision {r['decision_ms']:.1f} ms")
    ipa, low, high = results["ipa"], results["fa2_low"], results["fa2_high"]
    holds = (ipa["accuracy"] > low["accuracy"] and ipa["cores"] <= 1.25 * low["cores"]
             and ipa["cores"] < high["cores"])
    print("  (accuracy: mean rank-normalised accuracy per stage, rank / (n - 1), in [0, 1];"
          " product: mean product of raw accuracies)")
    print(f"qualitative result (IPA more accurate than FA2-low at <= 1.25x its cores, and "
          f"cheaper than FA2-high): {'holds' if holds else 'does NOT hold'}")
    for name, r in results.items():
        for key in ("accuracy", "cores", "violation_rate", "energy_kj"):
            print(f"{name}_{key}={r[key]:.4f}")
    print(f"qualitative_holds={int(holds)}")


if __name__ == "__main__":
    sys.exit(main())
