"""Decision time of IPA's ILP (HiGHS): median and p99 over many solves at varied rates.

Three pipelines: the shipped video pipeline (``profiles/video.yaml``), a synthetic one of
9 stages x 9 variants (batch sizes 1, 2, 4, 8 at 1, 2 and 4 cores) generated here, and the
A100 + H100 chat fleet (``profiles/llm_chat_a100_h100_loose.yaml``: two device pools, every
model on each, four concurrency caps, up to 32 replicas: one candidate per (variant, cap,
replica count), and with an energy weight an integer powered-nodes column per pool). A
decision is everything `solve_ipa` does: candidates from envs.model.perf, the HiGHS model, the
solve and reading the decision back.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/ilp_decision_time.py            # 500 solves each
    .venv/bin/python benchmarks/ilp_decision_time.py --solves 2000 --video path/to.yaml

Both replica modes are timed: ``minimal`` (replicas fixed to the fewest that reach the rate,
the default) and ``free`` (replicas are integer variables, IPA's own model). Product mode
uses the exact product objective (`ipa_baseline.product`).

Targets (median): minimal video <= 10 ms, 9x9 <= 200 ms; free video <= 5 ms, 9x9 <= 50 ms;
fleet <= 50 ms (IPA($) and the energy-aware ILP alternate, product and sum modes alternate).
The last lines are ``metric=value``: ``video_median_ms``, ``video_p99_ms``,
``s9v9_median_ms``, ``video_free_median_ms``, ``video_free_p99_ms``, ``s9v9_free_median_ms``,
``fleet_median_ms``, ``fleet_p99_ms``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs.config.cli import command_line, positive_int  # noqa: E402
from envs.model.pool_doc import pool_entry  # noqa: E402
from envs.model.profile_doc import (  # noqa: E402
    profile_document,
    synthetic_rows,
    variant_entry,
    write_profile,
)
from envs.model.profiles import load_pipeline  # noqa: E402
from envs.model.spec import Pipeline  # noqa: E402
from envs.workload.day_split import capacity_rps  # noqa: E402
from ipa_baseline import InfeasibleError, solve_ipa  # noqa: E402

BATCHES = (1, 2, 4, 8)
CORES = (1, 2, 4)


def synthetic_doc(n_stages: int = 9, n_variants: int = 9, seed: int = 0) -> dict:
    """A profile document of ``n_stages`` x ``n_variants`` (same format as profiles/*.yaml).

    Args:
        n_stages: Stages of the pipeline.
        n_variants: Variants of each stage.
        seed: Seed of the generated latencies and accuracies.

    Returns:
        The profile document (`envs.model.profile_doc.profile_document`).
    """
    rng = np.random.default_rng(seed)
    stages = []
    for s in range(n_stages):
        variants = []
        base = rng.uniform(8.0, 30.0)
        for v in range(n_variants):
            ms1 = base * (1.0 + 0.35 * v) * rng.uniform(0.9, 1.1)
            rows = synthetic_rows(ms1, batches=BATCHES, cores=CORES, batch_shape=(0.35, 0.65),
                                  core_shape=(0.7, 0.3),
                                  p99_factor=lambda: rng.uniform(1.1, 1.4))
            variants.append(variant_entry(
                f"s{s}v{v}", round(50.0 + 4.0 * v + rng.uniform(0, 2), 2), rows,
                metric="synthetic (%)", source="generated",
                base_cores=int(rng.choice(CORES[:2]))))
        stages.append({"name": f"stage{s}", "variants": variants})
    return profile_document(
        f"synthetic{n_stages}x{n_variants}", sla_ms=150.0 * n_stages, batch_sizes=BATCHES,
        pools=[pool_entry("cpu", "synthetic CPU", devices_per_node=64, nodes=8,
                          allocated_w=1.0, sources={"allocated_w": "idle"})],
        sources={
            "static": {"kind": "assumed", "description": "no node static power"},
            "lat": {"kind": "estimated", "description": "generated for the benchmark"},
            "en": {"kind": "estimated", "description": "3 W per busy core"},
            "idle": {"kind": "estimated", "description": "1 W per core"},
        },
        stages=stages,
    )


def time_solves(pipeline: Pipeline, solves: int, max_replicas: int, seed: int,
                replica_mode: str = "minimal", energy_weight: float = 0.01,
                energy_every: int = 3) -> np.ndarray:
    """Decision times (ms) of ``solves`` solves at rates drawn up to 90 % of the peak.

    Args:
        pipeline: The pipeline.
        solves: How many solves.
        max_replicas: Largest replica count per stage.
        seed: Seed of the rates.
        replica_mode: ``minimal`` or ``free`` (`solve_ipa`).
        energy_weight: ``delta`` of the solves that weigh energy.
        energy_every: Every how many solves one weighs energy.

    Returns:
        One time per solve, milliseconds.
    """
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.0, 0.9 * capacity_rps(pipeline, max_replicas), solves)
    times = []
    infeasible = 0
    for i, rate in enumerate(rates):
        mode = "product" if i % 2 else "sum"
        delta = energy_weight if i % energy_every == 0 else 0.0
        start = time.perf_counter()
        try:
            solve_ipa(pipeline, float(rate), mode=mode, delta=delta, max_replicas=max_replicas,
                      replica_mode=replica_mode)  # type: ignore[arg-type]
        except InfeasibleError:
            infeasible += 1
        times.append((time.perf_counter() - start) * 1e3)
    print(f"  {pipeline.name} ({replica_mode}): {solves} solves, rates 0..{rates.max():.1f} rps, "
          f"{infeasible} infeasible; sum/product modes alternate, delta = {energy_weight:g} "
          f"every {energy_every}")
    return np.asarray(times)


@command_line("python benchmarks/ilp_decision_time.py")
def main() -> None:
    """Time the ILP on the video and the synthetic 9 x 9 pipeline and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default="video", help="shipped pipeline name or profile path")
    parser.add_argument("--solves", type=positive_int, default=500)
    parser.add_argument("--max-replicas", type=positive_int, default=8)
    parser.add_argument("--fleet", default="llm_chat_a100_h100_loose",
                        help="the two-pool fleet (shipped name or profile path)")
    parser.add_argument("--fleet-max-replicas", type=positive_int, default=32)
    args = parser.parse_args()

    video = load_pipeline(args.video)
    with tempfile.TemporaryDirectory() as tmp:
        s9v9 = load_pipeline(write_profile(synthetic_doc(), Path(tmp) / "synthetic9x9.yaml"))
    fleet = load_pipeline(args.fleet)
    solve_ipa(video, 1.0)  # warm-up: imports and HiGHS's first start
    print(f"command: python benchmarks/ilp_decision_time.py --video {args.video} "
          f"--solves {args.solves} --max-replicas {args.max_replicas} --fleet {args.fleet} "
          f"--fleet-max-replicas {args.fleet_max_replicas}")
    times = {
        "video": time_solves(video, args.solves, args.max_replicas, seed=1),
        "s9v9": time_solves(s9v9, args.solves, args.max_replicas, seed=2),
        "video_free": time_solves(video, args.solves, args.max_replicas, 1, "free"),
        "s9v9_free": time_solves(s9v9, args.solves, args.max_replicas, 2, "free"),
        "fleet": time_solves(fleet, args.solves, args.fleet_max_replicas, 3,
                             energy_weight=1e-5, energy_every=2),
    }
    for name, t in times.items():
        print(f"  {name}: median {np.median(t):.2f} ms, p99 {np.percentile(t, 99):.2f} ms, "
              f"max {t.max():.2f} ms")
    for name in ("video", "s9v9", "video_free", "s9v9_free", "fleet"):
        print(f"{name}_median_ms={np.median(times[name]):.3f}")
        if name.startswith(("video", "fleet")):
            print(f"{name}_p99_ms={np.percentile(times[name], 99):.3f}")


if __name__ == "__main__":
    sys.exit(main())
