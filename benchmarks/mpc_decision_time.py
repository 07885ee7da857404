"""Decision time of the receding-horizon planner (`ipa_baseline.mpc.solve_mpc`, HiGHS) for
horizons 1, 3 and 6, beside IPA's one-interval ILP (`solve_ipa`) timed in the same run.

Two shipped pipelines: ``video`` and ``chat_to_image_h100``. Each runs a seeded random walk
of rates between a floor (where the SLA is reachable) and 90 % of the pipeline's capacity at
``--max-replicas``; at step ``i`` the MPC plans the next H rates of the walk (a multi-step
forecast, so the intervals differ) from the decision it applied at step ``i - 1``, as a
policy does. Settings: sum accuracy, delta 0.01 (energy, and the loading energy of new
replicas with the env's default cold start: 2 s + weights / load bandwidth), free replicas.
``solve_ipa`` is timed on the same rates, in its default (``minimal``) and in ``free``
replica mode (the MPC's); the ratio is MPC median / free ILP median. A decision is
everything the function does: candidates, the HiGHS model, the solve, the read-back.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/mpc_decision_time.py              # 200 decisions each
    .venv/bin/python benchmarks/mpc_decision_time.py --solves 1000

The last lines are ``metric=value``: per pipeline ``p`` (``video``, ``chat``),
``ipa_{p}_ms_median``, ``ipa_free_{p}_ms_median`` and, per horizon ``h``,
``mpc_h{h}_{p}_ms_median``, ``mpc_h{h}_{p}_ms_p99``, ``mpc_h{h}_{p}_ratio``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs.config.cli import command_line, positive_int  # noqa: E402
from envs.model.profiles import load_pipeline  # noqa: E402
from envs.model.spec import Pipeline  # noqa: E402
from envs.workload.day_split import capacity_rps  # noqa: E402
from ipa_baseline import InfeasibleError, solve_ipa  # noqa: E402
from ipa_baseline.mpc import solve_mpc  # noqa: E402

HORIZONS = (1, 3, 6)
PIPELINES = {"video": ("video", 1.0), "chat": ("chat_to_image_h100", 0.3)}  # name, floor rps
DELTA = 0.01


def rate_walk(low: float, high: float, n: int, seed: int) -> np.ndarray:
    """A seeded random walk of rates in [low, high] (steps of up to 15 % of the range).

    Args:
        low: Smallest rate.
        high: Largest rate.
        n: Length.
        seed: Seed.

    Returns:
        ``n`` rates (requests/s).
    """
    rng = np.random.default_rng(seed)
    steps = rng.uniform(-0.15, 0.15, n) * (high - low)
    out, rate = [], rng.uniform(low, high)
    for step in steps:
        rate = float(np.clip(rate + step, low, high))
        out.append(rate)
    return np.asarray(out)


def timed(fn: Callable[[], object]) -> tuple[float, object | None]:
    """Wall time of ``fn()`` in ms and its result (None when infeasible)."""
    start = time.perf_counter()
    try:
        out = fn()
    except InfeasibleError:
        out = None
    return (time.perf_counter() - start) * 1e3, out


def time_pipeline(pipeline: Pipeline, floor_rps: float, solves: int, max_replicas: int,
                  seed: int) -> dict[str, np.ndarray]:
    """Decision times (ms) of the ILP and the MPC at every horizon on one rate walk.

    Args:
        pipeline: The pipeline.
        floor_rps: Lowest rate of the walk.
        solves: Decisions per method.
        max_replicas: Replica limit per stage.
        seed: Seed of the walk.

    Returns:
        ``{"ipa": ..., "ipa_free": ..., "mpc_h1": ..., ...}``: one time per decision.
    """
    high = 0.9 * capacity_rps(pipeline, max_replicas)
    rates = rate_walk(floor_rps, high, solves + max(HORIZONS), seed)
    times: dict[str, list[float]] = {"ipa": [], "ipa_free": []}
    infeasible = dict.fromkeys(["ipa", *(f"mpc_h{h}" for h in HORIZONS)], 0)
    for i in range(solves):
        rate = float(rates[i])
        for key, mode in (("ipa", "minimal"), ("ipa_free", "free")):
            ms, out = timed(lambda r=rate, m=mode: solve_ipa(
                pipeline, r, delta=DELTA, max_replicas=max_replicas, replica_mode=m))
            times[key].append(ms)
            if key == "ipa" and out is None:
                infeasible["ipa"] += 1
    for h in HORIZONS:
        key, current = f"mpc_h{h}", None
        times[key] = []
        for i in range(solves):
            forecast = [float(r) for r in rates[i: i + h]]
            ms, out = timed(lambda f=forecast, c=current, h=h: solve_mpc(
                pipeline, f, c, horizon=h, delta=DELTA, max_replicas=max_replicas))
            times[key].append(ms)
            if out is None:
                infeasible[key] += 1
            else:
                current = out.decision  # type: ignore[attr-defined]
    print(f"  {pipeline.name}: {solves} decisions each, rates {floor_rps:.2f}..{high:.2f} rps, "
          f"infeasible: {infeasible}")
    return {k: np.asarray(v) for k, v in times.items()}


@command_line("python benchmarks/mpc_decision_time.py")
def main() -> None:
    """Time the MPC at H in {1, 3, 6} and the ILP on video and chat_to_image_h100."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solves", type=positive_int, default=200)
    parser.add_argument("--max-replicas", type=positive_int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"command: python benchmarks/mpc_decision_time.py --solves {args.solves} "
          f"--max-replicas {args.max_replicas} --seed {args.seed}")
    results = {}
    for short, (name, floor) in PIPELINES.items():
        pipeline = load_pipeline(name)
        solve_mpc(pipeline, [2 * floor], None, horizon=1)  # warm-up: HiGHS's first start
        results[short] = time_pipeline(pipeline, floor, args.solves, args.max_replicas,
                                       args.seed)
        for key, t in results[short].items():
            print(f"  {short} {key}: median {np.median(t):.2f} ms, p99 "
                  f"{np.percentile(t, 99):.2f} ms, max {t.max():.2f} ms")
    for short, times in results.items():
        base = float(np.median(times["ipa_free"]))
        print(f"ipa_{short}_ms_median={np.median(times['ipa']):.3f}")
        print(f"ipa_free_{short}_ms_median={base:.3f}")
        for h in HORIZONS:
            t = times[f"mpc_h{h}"]
            print(f"mpc_h{h}_{short}_ms_median={np.median(t):.3f}")
            print(f"mpc_h{h}_{short}_ms_p99={np.percentile(t, 99):.3f}")
            print(f"mpc_h{h}_{short}_ratio={np.median(t) / base:.2f}")


if __name__ == "__main__":
    sys.exit(main())
