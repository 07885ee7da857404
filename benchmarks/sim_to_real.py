"""Sim-to-real gap: the same decisions and trace on the live pipeline and both simulators.

    .venv/bin/python benchmarks/sim_to_real.py                      # video models, ~2.5 min
    .venv/bin/python benchmarks/sim_to_real.py --catalog tiny --rate 40

Steps: (1) profile the models the run uses on this machine (`energy.profiler`, TDP meter:
4 W per busy core, 1 W per idle core) into a temporary file; (2) load it as the
simulators' pipeline; (3) play a steady trace (``--rate`` requests/s) through three phases
of two intervals each (batch 1; batch 2; a larger first-stage variant at batch 1) on the
live backend (real servers on 127.0.0.1, energy estimated from the replicas' CPU time with
the same 4 W / 1 W figures), the request-level and the fluid simulator.

Prints, per interval and overall, throughput, p50 / p99 latency, drops and energy of each
backend and the simulators' relative error against live ((sim - live) / live). The last
two lines are ``p99_error=<fraction>`` and ``energy_error=<fraction>``: the absolute
relative error of the request-level simulator against live, over the whole run (p99 of
all requests; total energy).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from energy.meters import make_meter  # noqa: E402
from energy.profiler import profile_pipeline  # noqa: E402
from envs.backends.base import Backend, IntervalStats, ServingSettings  # noqa: E402
from envs.backends.fluid import FluidBackend  # noqa: E402
from envs.backends.requests import RequestBackend  # noqa: E402
from envs.config.cli import command_line, positive_float, positive_int  # noqa: E402
from envs.live.backend import LiveBackend  # noqa: E402
from envs.model.profiles import load_pipeline  # noqa: E402
from envs.model.spec import Decision, Pipeline, StageDecision  # noqa: E402
from models.catalog import CatalogPipeline, catalog_pipeline  # noqa: E402

# the models each catalog run uses: the two cheapest variants of every stage
SUBSETS = {
    "video": {"detector": ("ssdlite320_mobilenet_v3_large",
                           "fasterrcnn_mobilenet_v3_large_320_fpn"),
              "classifier": ("resnet18", "resnet34")},
    "tiny": {"tiny": ("tiny4", "tiny16")},
}
TDP_W_PER_CORE = 4.0
IDLE_W_PER_CORE = 1.0


def subset(name: str) -> CatalogPipeline:
    """The catalog pipeline cut down to the variants this benchmark runs, batch 1 and 2."""
    spec = catalog_pipeline(name)
    keep = SUBSETS[name]
    stages = tuple(dataclasses.replace(s, variants=tuple(v for v in s.variants
                                                         if v.name in keep[s.name]))
                   for s in spec.stages)
    return dataclasses.replace(spec, stages=stages, batch_sizes=(1, 2))


def measure_profile(spec: CatalogPipeline, out: Path, budget_s: float) -> Pipeline:
    cores = os.cpu_count() or 1
    meter = make_meter("tdp", tdp_w=TDP_W_PER_CORE * cores, idle_w=IDLE_W_PER_CORE * cores,
                       cores=cores)
    description = (f"tdp estimate ({TDP_W_PER_CORE} W/core busy, {IDLE_W_PER_CORE} W/core "
                   "idle, process CPU time)")
    profile_pipeline(spec, out, meter, description, (1,), idle_s=1.0, budget_s=budget_s,
                     max_reps=200, progress=False)
    return load_pipeline(out)


def decisions(pipeline: Pipeline, per_phase: int) -> list[Decision]:
    """Batch 1 cheapest variants; batch 2; the first stage's second variant at batch 1."""
    n = len(pipeline.stages)
    phases = [
        Decision(tuple(StageDecision(0, 1, 1, 1) for _ in range(n))),
        Decision(tuple(StageDecision(0, 2, 1, 1) for _ in range(n))),
        Decision((StageDecision(1, 1, 1, 1),
                  *(StageDecision(0, 1, 1, 1) for _ in range(n - 1)))),
    ]
    return [d for d in phases for _ in range(per_phase)]


def play(backend: Backend, plan: list[Decision], trace: list[np.ndarray],
         seed: int) -> list[IntervalStats]:
    backend.reset(plan[0], seed=seed)
    out, current = [], plan[0]
    for decision, arrivals in zip(plan, trace, strict=True):
        if decision != current:
            backend.apply(decision)
            current = decision
        out.append(backend.run_interval(arrivals))
    return out


def rel(sim: float, live: float) -> float:
    if math.isnan(sim) or math.isnan(live) or live == 0:
        return math.nan
    return (sim - live) / live


def overall_p99(stats: list[IntervalStats]) -> float:
    lat = [s.latencies_ms for s in stats if s.latencies_ms is not None]
    if lat:
        joined = np.concatenate(lat)
        return float(np.percentile(joined, 99)) if joined.size else math.nan
    served = [s.served for s in stats]  # fluid: the served-weighted mean of interval p99s
    return float(np.average([s.p99_ms for s in stats], weights=served)) if sum(served) else 0.0


def report(pipeline: Pipeline, plan: list[Decision], results: dict[str, list[IntervalStats]]
           ) -> tuple[float, float]:
    live = results["live"]
    head = (f"{'int':>3} {'backend':>8} {'thr/s':>6} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'drops':>5} {'energy J':>9} {'util':>12} {'stage p99 ms':>18}  err thr/p50/p99/E")
    print(head)
    for i, decision in enumerate(plan):
        print(f"--- interval {i}: {decision.describe(pipeline)}")
        for name, stats in results.items():
            s, ref = stats[i], live[i]
            errs = ""
            if name != "live":
                errs = "  " + " ".join(f"{rel(a, b):+.1%}" for a, b in (
                    (s.served / s.seconds, ref.served / ref.seconds), (s.p50_ms, ref.p50_ms),
                    (s.p99_ms, ref.p99_ms), (s.energy_j, ref.energy_j)))
            util = "/".join(f"{u:.2f}" for u in s.stage_utilisation)
            stage = "/".join(f"{p:.0f}" for p in s.stage_p99_ms)
            print(f"{i:>3} {name:>8} {s.served / s.seconds:6.2f} {s.p50_ms:8.1f} "
                  f"{s.p99_ms:8.1f} {s.dropped:5d} {s.energy_j:9.2f} {util:>12} "
                  f"{stage:>18}{errs}")
    print("--- overall")
    summary = {}
    for name, stats in results.items():
        seconds = sum(s.seconds for s in stats)
        summary[name] = (sum(s.served for s in stats) / seconds, overall_p99(stats),
                         sum(s.dropped for s in stats), sum(s.energy_j for s in stats))
        thr, p99, drops, energy = summary[name]
        line = f"{name:>8}: throughput {thr:.2f}/s, p99 {p99:.1f} ms, drops {drops}, " \
               f"energy {energy:.1f} J"
        if name != "live":
            ref = summary["live"]
            line += (f"  (vs live: throughput {rel(thr, ref[0]):+.1%}, p99 "
                     f"{rel(p99, ref[1]):+.1%}, energy {rel(energy, ref[3]):+.1%})")
        print(line)
    return (abs(rel(summary["requests"][1], summary["live"][1])),
            abs(rel(summary["requests"][3], summary["live"][3])))


@command_line("python benchmarks/sim_to_real.py")
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", choices=sorted(SUBSETS), default="video")
    parser.add_argument("--rate", type=positive_float, default=4.0, help="requests per second")
    parser.add_argument("--interval-s", type=positive_int, default=10)
    parser.add_argument("--per-phase", type=positive_int, default=2, help="intervals per decision")
    parser.add_argument("--profile-budget-s", type=positive_float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sim2real-") as tmp:
        spec = subset(args.catalog)
        pipeline = measure_profile(spec, Path(tmp) / f"{spec.name}.yaml", args.profile_budget_s)
        print(f"# profiled {spec.name} in {time.monotonic() - started:.0f} s; "
              f"idle {pipeline.fleet.pools[0].device_idle_w:.3f} W/core; command: "
              f"python benchmarks/sim_to_real.py {' '.join(sys.argv[1:])}")
        settings = ServingSettings.for_pipeline(pipeline, args.interval_s, cold_start_s=0.5)
        plan = decisions(pipeline, args.per_phase)
        trace = [np.full(args.interval_s, args.rate) for _ in plan]
        results: dict[str, list[IntervalStats]] = {}
        live = LiveBackend(pipeline, settings, catalog=args.catalog,
                           dynamic_w_per_core=TDP_W_PER_CORE - IDLE_W_PER_CORE)
        try:
            results["live"] = play(live, plan, trace, args.seed)
            events = live.last_events
        finally:
            live.close()
        results["requests"] = play(RequestBackend(pipeline, settings), plan, trace, args.seed)
        results["fluid"] = play(FluidBackend(pipeline, settings), plan, trace, args.seed)
    p99_error, energy_error = report(pipeline, plan, results)
    if events:
        print(f"# live events in the last interval: {events}")
    print(f"# total {time.monotonic() - started:.0f} s")
    print(f"p99_error={p99_error:.4f}")
    print(f"energy_error={energy_error:.4f}")


if __name__ == "__main__":
    sys.exit(main())
