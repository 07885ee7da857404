"""One prepared GPU check: NVML and Zeus side by side on one stage, and a GPU profile.

Usage (on a machine with an NVIDIA GPU; one short run)::

    python -m energy.gpu_check --out runs/gpu_check/gpu_resnet50.yaml

It

1. opens `NvmlMeter` and `ZeusMeter` (on a machine without a GPU this fails at once with
   the `MeterUnavailableError` message, exit status 2);
2. measures the update period of NVML's energy counter: polls
   ``nvmlDeviceGetTotalEnergyConsumption`` in a tight loop while the GPU works through a
   queue of matrix products, and reports the intervals between changes of its value;
3. profiles one stage (ResNet-50, random weights, 224x224, fp32) at batch 1, 8 and 32:
   latency per batch with ``torch.cuda.synchronize()``, and energy over the same window from
   both meters at once, with their relative difference;
4. writes a profile YAML (dynamic NVML energy: window minus idle power x time) through
   `energy.profile_writer.write_profile`, checks that `envs.profiles.load_pipeline` loads it, and
   writes ``<out>.summary.json`` with everything above.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from energy.errors import MeterUnavailableError
from envs.cli import (
    command_line,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)

STAGE = "classifier"
VARIANT = "resnet50"
INPUT_SIDE = 224


@dataclass(frozen=True)
class SideBySide:
    """One batch size measured with both meters over the same window."""

    batch: int
    reps: int
    latency_mean_ms: float
    latency_p99_ms: float
    nvml_j_per_batch: float
    zeus_j_per_batch: float
    nvml_dynamic_j_per_batch: float
    difference_pct: float


def open_meters() -> tuple[Any, Any, Any]:
    """NVML meter, Zeus meter and the CUDA device; MeterUnavailableError without a GPU."""
    from energy.meters import NvmlMeter, ZeusMeter

    nvml_meter = NvmlMeter(gpu_indices=[0])
    import torch

    if not torch.cuda.is_available():
        nvml_meter.close()
        raise MeterUnavailableError(
            "NVML sees a GPU but torch.cuda.is_available() is False; install a CUDA build of "
            "torch that matches the driver, or run on another machine"
        )
    zeus_meter = ZeusMeter(gpu_indices=[0])
    return nvml_meter, zeus_meter, torch.device("cuda:0")


def counter_update_period(poll_s: float, device: Any) -> dict[str, Any]:
    """Intervals (ms) between changes of NVML's energy counter while the GPU is busy."""
    import pynvml
    import torch

    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    try:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError_NotSupported:
        return {"supported": False, "note": "no energy counter on this GPU (pre-Volta)"}
    a = torch.randn(4096, 4096, device=device)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(5):
        a = (a @ a).tanh_()
    torch.cuda.synchronize()
    one_s = (time.perf_counter() - start) / 5
    stream_done = torch.cuda.Event()
    for _ in range(int(1.5 * poll_s / max(one_s, 1e-5)) + 1):
        a = (a @ a).tanh_()  # queued asynchronously: the GPU stays busy while the CPU polls
    stream_done.record()
    changes: list[float] = []
    polls = 0
    last = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    end = time.perf_counter() + poll_s
    while time.perf_counter() < end:
        value = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        polls += 1
        if value != last:
            changes.append(time.perf_counter())
            last = value
    busy_at_end = not stream_done.query()
    torch.cuda.synchronize()
    intervals = np.diff(changes) * 1e3 if len(changes) > 1 else np.array([])
    return {
        "supported": True,
        "poll_seconds": poll_s,
        "polls": polls,
        "poll_period_us": round(poll_s / max(polls, 1) * 1e6, 2),
        "changes": len(changes),
        "gpu_busy_whole_time": busy_at_end,
        "interval_ms": {
            "median": float(np.median(intervals)) if intervals.size else None,
            "p10": float(np.percentile(intervals, 10)) if intervals.size else None,
            "p90": float(np.percentile(intervals, 90)) if intervals.size else None,
            "min": float(intervals.min()) if intervals.size else None,
            "max": float(intervals.max()) if intervals.size else None,
        },
    }


def idle_power_w(nvml_meter: Any, seconds: float) -> float:
    """Mean GPU power over a sleep window, from the NVML meter."""
    import torch

    torch.cuda.synchronize()
    nvml_meter.begin("idle")
    time.sleep(seconds)
    return float(nvml_meter.end("idle").mean_power_w)


def measure_batch(
    model: Any, batch: int, device: Any, meters: tuple[Any, Any], idle_w: float,
    budget_s: float, min_reps: int, warmup: int,
) -> SideBySide:
    """Latency and energy of one batch size, both meters over the same window."""
    import torch

    nvml_meter, zeus_meter = meters
    x = torch.rand(batch, 3, INPUT_SIDE, INPUT_SIDE, device=device)
    with torch.inference_mode():
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(warmup):
            model(x)
        torch.cuda.synchronize()
        one_s = (time.perf_counter() - start) / max(warmup, 1)
        reps = max(min_reps, int(budget_s / max(one_s, 1e-6)))
        latencies = np.empty(reps)
        zeus_meter.begin("point")  # synchronises CUDA first
        nvml_meter.begin("point")
        for i in range(reps):
            t0 = time.perf_counter()
            model(x)
            torch.cuda.synchronize()
            latencies[i] = time.perf_counter() - t0
        nvml_reading = nvml_meter.end("point")
        zeus_reading = zeus_meter.end("point")
    nvml_j = nvml_reading.total_j / reps
    zeus_j = zeus_reading.total_j / reps
    dynamic = max(nvml_reading.total_j - idle_w * nvml_reading.seconds, 0.0) / reps
    return SideBySide(
        batch=batch,
        reps=reps,
        latency_mean_ms=float(latencies.mean() * 1e3),
        latency_p99_ms=float(np.percentile(latencies, 99) * 1e3),
        nvml_j_per_batch=nvml_j,
        zeus_j_per_batch=zeus_j,
        nvml_dynamic_j_per_batch=dynamic,
        difference_pct=100.0 * (zeus_j - nvml_j) / nvml_j if nvml_j > 0 else float("nan"),
    )


def write_gpu_profile(
    out: Path, rows: list[SideBySide], idle_w: float, gpu_name: str, sla_ms: float
) -> None:
    """Write the NVML measurements as a profile `envs.profiles.load_pipeline` reads.

    ``cores`` is 1 in every row (one GPU; host threads are not varied), and the hardware
    entry names the GPU with its measured idle power as ``device_idle_w``.
    """
    import torch
    import yaml

    from energy.measure import Point, cpu_model, point_key
    from energy.profile_writer import dump_profile, write_profile
    from models.catalog import CatalogPipeline, CatalogStage
    from models.video import video_pipeline

    classifier = next(s for s in video_pipeline().stages if s.name == STAGE)
    variant = next(v for v in classifier.variants if v.name == VARIANT)
    batches = tuple(r.batch for r in rows)
    notes = (
        f"{VARIANT} on {gpu_name} (CUDA, fp32, {INPUT_SIDE}x{INPUT_SIDE}, random weights), "
        "torch.cuda.synchronize() after every batch; energy from NVML's energy counter "
        "(Zeus measured the same windows, see the .summary.json)"
    )
    spec = CatalogPipeline(f"{VARIANT}_gpu", (CatalogStage(STAGE, (variant,)),), sla_ms,
                           batches, notes)
    points = {
        point_key(STAGE, VARIANT, 1, r.batch): Point(
            STAGE, VARIANT, 1, r.batch, r.latency_mean_ms, r.latency_p99_ms,
            r.nvml_dynamic_j_per_batch, r.reps,
        )
        for r in rows
    }
    description = "nvml (nvmlDeviceGetTotalEnergyConsumption counter difference, GPU 0)"
    write_profile(spec, points, out, description, False, idle_w, (1,), batches)
    doc = yaml.safe_load(out.read_text())
    doc["hardware"]["name"] = f"{gpu_name} (GPU 0, host {cpu_model()}, torch {torch.__version__})"
    doc["hardware"].update(device="gpu", devices_per_node=1, device_idle_w=round(idle_w, 3))
    doc["sources"]["idle"]["description"] = "GPU idle power from NVML over a sleep window"
    dump_profile(doc, out)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole check; returns the summary that is also written as JSON."""
    nvml_meter, zeus_meter, device = open_meters()
    import pynvml
    import torch
    from torchvision import models

    from envs.profiles import load_pipeline

    try:
        gpu_name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
        gpu_name = gpu_name.decode() if isinstance(gpu_name, bytes) else str(gpu_name)
        period = counter_update_period(args.poll_s, device)
        print(f"NVML energy counter update period: {json.dumps(period)}", flush=True)
        model = models.get_model(VARIANT, weights=None).eval().to(device)
        idle_w = idle_power_w(nvml_meter, args.idle_s)
        rows = []
        for batch in args.batch_sizes:
            row = measure_batch(model, batch, device, (nvml_meter, zeus_meter), idle_w,
                                args.budget_s, args.min_reps, args.warmup)
            rows.append(row)
            print(
                f"batch {batch:3d}: {row.latency_mean_ms:8.2f} ms (p99 "
                f"{row.latency_p99_ms:.2f}), NVML {row.nvml_j_per_batch:.4f} J, Zeus "
                f"{row.zeus_j_per_batch:.4f} J per batch, Zeus - NVML "
                f"{row.difference_pct:+.2f} %",
                flush=True,
            )
    finally:
        nvml_meter.close()
        zeus_meter.close()
    sla_ms = float(np.ceil(3 * sum(r.latency_p99_ms for r in rows)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_gpu_profile(args.out, rows, idle_w, gpu_name, sla_ms)
    pipeline = load_pipeline(args.out)
    summary = {
        "gpu": gpu_name,
        "torch": torch.__version__,
        "idle_w": idle_w,
        "nvml_counter": period,
        "side_by_side": [asdict(r) for r in rows],
        "profile": str(args.out),
        "profile_loads": pipeline.name,
    }
    args.out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out} and {args.out.with_suffix('.summary.json')}")
    return summary


@command_line("python -m energy.gpu_check")
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exit status 2 when no GPU meter is available."""
    parser = argparse.ArgumentParser(
        prog="python -m energy.gpu_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_check/gpu_resnet50.yaml"))
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--budget-s", type=positive_float, default=3.0,
                        help="seconds per batch size")
    parser.add_argument("--min-reps", type=positive_int, default=20)
    parser.add_argument("--warmup", type=non_negative_int, default=5)
    parser.add_argument("--idle-s", type=non_negative_float, default=3.0)
    parser.add_argument("--poll-s", type=positive_float, default=2.0)
    args = parser.parse_args(argv)
    run(args)  # a missing GPU or NVML is a MeterUnavailableError: one line, exit 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
