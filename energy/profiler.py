"""Profiler: measure latency and energy per batch of every variant of a catalog pipeline.

Usage::

    python -m energy.profiler --pipeline video --out profiles/video.yaml \
        --meter tdp --tdp-w-per-core 4.0 --idle-w-per-core 1.0 --threads 1 2

Every measured point is appended to ``<out>.partial.jsonl`` as soon as it is done, so a
killed run resumes where it stopped. The final YAML is the format `envs.profiles` loads.

Energy per batch is the *dynamic* energy: the meter's reading over the repetitions minus
the idle power (measured once, at the start, with the same meter, while sleeping) times
the wall time, divided by the number of batches.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from energy.meters import Meter, make_meter
from envs import power
from envs.cli import command_line, non_negative_float, positive_float, positive_int
from envs.errors import ConfigError
from models.catalog import CatalogPipeline, catalog_pipeline
from models.errors import CatalogError

LATENCY_SOURCE = "latency"
ENERGY_SOURCE = "energy"
IDLE_SOURCE = "idle"
STATIC_SOURCE = "static"


@dataclass(frozen=True)
class Point:
    """One measured operating point."""

    stage: str
    variant: str
    threads: int
    batch: int
    latency_mean_ms: float
    latency_p99_ms: float
    energy_per_batch_j: float
    reps: int

    @property
    def key(self) -> str:
        return f"{self.stage}/{self.variant}/t{self.threads}/b{self.batch}"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def measure_idle_w(meter: Meter, seconds: float) -> float:
    """Average power of the meter's domains while this process sleeps."""
    meter.begin("idle")
    time.sleep(seconds)
    return meter.end("idle").mean_power_w


def measure_point(
    model: torch.nn.Module,
    make_input: Any,
    batch: int,
    meter: Meter,
    idle_w: float,
    budget_s: float,
    min_reps: int,
    max_reps: int,
    warmup: int,
) -> tuple[float, float, float, int]:
    """Time ``model`` on a batch; return mean ms, p99 ms, dynamic J per batch, reps."""
    x = make_input(batch)
    with torch.inference_mode():
        start = time.perf_counter()
        for _ in range(warmup):
            model(x)
        one_s = (time.perf_counter() - start) / max(warmup, 1)
        reps = int(np.clip(budget_s / max(one_s, 1e-6), min_reps, max_reps))
        latencies = np.empty(reps)
        meter.begin("point")
        for i in range(reps):
            t0 = time.perf_counter()
            model(x)
            latencies[i] = time.perf_counter() - t0
        reading = meter.end("point")
    dynamic_j = max(power.dynamic_from_measured_j(reading.total_j, idle_w, reading.seconds),
                    0.0) / reps
    return (
        float(latencies.mean() * 1e3),
        float(np.percentile(latencies, 99) * 1e3),
        dynamic_j,
        reps,
    )


def _load_partial(path: Path, meta: dict[str, Any]) -> dict[str, Point]:
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    if not lines:
        return {}
    saved_meta = json.loads(lines[0]).get("meta")
    if saved_meta != meta:
        raise ConfigError(
            f"{path} was measured with different settings ({saved_meta}) than this run "
            f"({meta}); delete it to start over, or rerun with the same settings"
        )
    points = {}
    for line in lines[1:]:
        if line.strip():
            try:
                point = Point(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue  # a line cut short by a kill; that point is measured again
            points[point.key] = point
    return points


def profile_pipeline(
    spec: CatalogPipeline,
    out: Path,
    meter: Meter,
    meter_description: str,
    threads: tuple[int, ...],
    batch_sizes: tuple[int, ...] | None = None,
    idle_s: float = 2.0,
    budget_s: float = 2.0,
    min_reps: int = 5,
    max_reps: int = 50,
    warmup: int = 2,
    progress: bool = True,
) -> Path:
    """Measure every (variant, threads, batch) point of ``spec`` and write ``out``.

    Returns:
        The path of the written profile.
    """
    batch_sizes = batch_sizes or spec.batch_sizes
    meta = {
        "pipeline": spec.name,
        "meter": meter_description,
        "threads": list(threads),
        "batch_sizes": list(batch_sizes),
        "torch": torch.__version__,
    }
    partial = out.with_suffix(".partial.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    points = _load_partial(partial, meta)
    if not partial.exists() or not partial.read_text().strip():
        partial.write_text(json.dumps({"meta": meta}) + "\n")
    idle_w = measure_idle_w(meter, idle_s)
    todo = [
        (stage, variant, t, b)
        for stage in spec.stages
        for variant in stage.variants
        for t in threads
        for b in batch_sizes
    ]
    bar = tqdm(todo, desc=f"profiling {spec.name}", disable=not progress, unit="point")
    models: dict[str, torch.nn.Module] = {}
    text = partial.read_text()
    if text and not text.endswith("\n"):  # a line cut short by a kill: start a fresh one
        with partial.open("a") as log:
            log.write("\n")
    with partial.open("a") as log:
        for stage, variant, t, b in bar:
            key = f"{stage.name}/{variant.name}/t{t}/b{b}"
            if key in points:
                continue
            bar.set_postfix_str(key)
            torch.set_num_threads(t)
            if variant.name not in models:
                models.clear()
                models[variant.name] = variant.build()
            mean_ms, p99_ms, energy_j, reps = measure_point(
                models[variant.name],
                variant.make_input,
                b,
                meter,
                idle_w,
                budget_s,
                min_reps,
                max_reps,
                warmup,
            )
            point = Point(stage.name, variant.name, t, b, mean_ms, p99_ms, energy_j, reps)
            points[key] = point
            log.write(json.dumps(point.__dict__) + "\n")
            log.flush()
            os.fsync(log.fileno())
    write_profile(
        spec, points, out, meter_description, meter_estimated(meter), idle_w, threads, batch_sizes
    )
    return out


def meter_estimated(meter: Meter) -> bool:
    """Whether the meter's readings are estimates (a zero-length probe window)."""
    meter.begin("probe")
    return meter.end("probe").estimated


def write_profile(
    spec: CatalogPipeline,
    points: dict[str, Point],
    out: Path,
    meter_description: str,
    estimated: bool,
    idle_w: float,
    threads: tuple[int, ...],
    batch_sizes: tuple[int, ...],
) -> None:
    """Write the profile YAML that `envs.profiles.load_pipeline` reads."""
    cores_total = os.cpu_count() or 1
    reps = sorted({p.reps for p in points.values()})
    energy_kind = "estimated" if estimated else "measured"
    doc: dict[str, Any] = {
        "pipeline": spec.name,
        "sla_ms": spec.sla_ms,
        "batch_sizes": list(batch_sizes),
        "notes": spec.notes,
        "hardware": {
            "name": f"{cpu_model()} ({cores_total} logical CPUs)",
            "device": "cpu_core",
            "devices_per_node": cores_total,
            "node_static_w": 0.0,
            "device_idle_w": round(idle_w / cores_total, 4),
            "static_source": STATIC_SOURCE,
            "idle_source": IDLE_SOURCE,
            "fleet": "fixed",
            "fleet_nodes": 1,
        },
        "sources": {
            LATENCY_SOURCE: {
                "kind": "measured",
                "description": (
                    f"wall-clock per batch (time.perf_counter) on {cpu_model()}, torch "
                    f"{torch.__version__}, torch.set_num_threads(cores), "
                    f"{reps[0]}-{reps[-1]} repetitions per point after warm-up; "
                    f"{spec.notes}"
                ),
            },
            ENERGY_SOURCE: {
                "kind": energy_kind,
                "description": f"dynamic energy per batch from meter {meter_description} "
                "minus idle power x wall time, per batch",
            },
            STATIC_SOURCE: {
                "kind": "assumed",
                "description": "node static power not separated by the profiler: the "
                "whole idle power measured over a sleep window is attributed to the "
                "devices (device_idle_w); calibrate a node/device split on whole-run "
                "measurements (benchmarks/energy_calibration.py) where one is needed",
            },
            IDLE_SOURCE: {
                "kind": energy_kind,
                "description": f"idle power from meter {meter_description} over a sleep "
                f"window, divided by {cores_total} logical CPUs",
            },
        },
        "row_columns": [
            "batch",
            "cores",
            "latency_mean_ms",
            "latency_p99_ms",
            "energy_per_batch_j",
            "latency_source",
            "energy_source",
        ],
        "stages": [],
    }
    for stage in spec.stages:
        variants = []
        for variant in stage.variants:
            rows = []
            for t in threads:
                for b in batch_sizes:
                    p = points.get(f"{stage.name}/{variant.name}/t{t}/b{b}")
                    if p is None:
                        continue
                    rows.append(
                        [
                            b,
                            t,
                            round(p.latency_mean_ms, 3),
                            round(p.latency_p99_ms, 3),
                            round(p.energy_per_batch_j, 5),
                            LATENCY_SOURCE,
                            ENERGY_SOURCE,
                        ]
                    )
            variants.append(
                {
                    "name": variant.name,
                    "accuracy": variant.accuracy,
                    "accuracy_metric": variant.accuracy_metric,
                    "accuracy_source": variant.accuracy_source,
                    "base_cores": variant.base_cores,
                    "rows": rows,
                }
            )
        doc["stages"].append({"name": stage.name, "variants": variants})
    out.write_text(yaml.safe_dump(doc, sort_keys=False, width=100, default_flow_style=None))


@command_line("python -m energy.profiler")
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (2: a package error, one line)."""
    parser = argparse.ArgumentParser(
        prog="python -m energy.profiler",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pipeline", default="video", help="catalog pipeline name")
    parser.add_argument("--out", type=Path, help="profile path (default profiles/<name>.yaml)")
    parser.add_argument("--meter", default="tdp", help="rapl | nvml | zeus | tdp")
    parser.add_argument(
        "--tdp-w-per-core",
        type=positive_float,
        default=4.0,
        help="tdp meter: package power per core at full load",
    )
    parser.add_argument(
        "--idle-w-per-core",
        type=non_negative_float,
        default=1.0,
        help="tdp meter: package power per core when idle",
    )
    parser.add_argument("--rapl-root", type=Path, default=Path("/sys/class/powercap"))
    parser.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=None)
    parser.add_argument(
        "--budget-s", type=positive_float, default=2.0,
        help="time per point that sets the repetitions",
    )
    parser.add_argument("--min-reps", type=positive_int, default=5)
    parser.add_argument("--max-reps", type=positive_int, default=50)
    parser.add_argument("--idle-s", type=non_negative_float, default=2.0)
    args = parser.parse_args(argv)
    try:
        spec = catalog_pipeline(args.pipeline)
    except CatalogError as err:
        raise ConfigError(f"--pipeline: {err}") from None
    cores = os.cpu_count() or 1
    if args.meter == "tdp":
        meter = make_meter(
            "tdp",
            tdp_w=args.tdp_w_per_core * cores,
            idle_w=args.idle_w_per_core * cores,
            cores=cores,
        )
        description = (
            f"tdp estimate ({args.tdp_w_per_core} W/core busy, "
            f"{args.idle_w_per_core} W/core idle, process CPU time)"
        )
    elif args.meter == "rapl":
        meter = make_meter("rapl", root=args.rapl_root)
        description = f"rapl ({args.rapl_root})"
    else:
        meter = make_meter(args.meter)
        description = args.meter
    out = args.out or Path("profiles") / f"{spec.name}.yaml"
    profile_pipeline(
        spec,
        out,
        meter,
        description,
        tuple(args.threads),
        tuple(args.batch_sizes) if args.batch_sizes else None,
        idle_s=args.idle_s,
        budget_s=args.budget_s,
        min_reps=args.min_reps,
        max_reps=args.max_reps,
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
