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
   latency per batch with ``torch.cuda.synchronize()`` (the profiler's timing loop,
   `energy.measure.time_batches`, with a CUDA sync), and energy over the same window from
   both meters at once, with their relative difference;
4. writes a profile YAML (dynamic NVML energy: window minus idle power x time) through
   `energy.profile_writer.write_profile`, checks that `envs.model.profiles.load_pipeline` loads
   it, and
   writes ``<out>.summary.json`` with everything above.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from energy.gpu_measure import (
    INPUT_SIDE,
    SideBySide,
    counter_update_period,
    measure_batch,
    open_meters,
)
from envs.config.cli import (
    argument_parser,
    command_line,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)

PROG = "python -m energy.gpu_check"

STAGE = "classifier"
VARIANT = "resnet50"


def write_gpu_profile(
    out: Path, rows: list[SideBySide], idle_w: float, gpu_name: str, sla_ms: float
) -> None:
    """Write the NVML measurements as a profile `envs.model.profiles.load_pipeline` reads.

    ``cores`` is 1 in every row (one GPU; host threads are not varied), and the hardware
    entry names the GPU with its measured idle power as ``device_idle_w``.

    Args:
        out: The profile to write.
        rows: One measurement per batch size.
        idle_w: Measured GPU idle power (W).
        gpu_name: The GPU's name as NVML gives it.
        sla_ms: End-to-end SLA to write into the profile.
    """
    import torch

    from energy.measure import Point, cpu_model, point_key
    from energy.profile_writer import IDLE_SOURCE, write_profile
    from envs.model.pool_doc import pool_entry
    from models.catalog import CatalogPipeline, CatalogStage
    from models.video import video_pipeline

    classifier = next(s for s in video_pipeline().stages if s.name == STAGE)
    variant = next(v for v in classifier.variants if v.name == VARIANT)
    batches = tuple(r.batch for r in rows)
    reps = sorted(r.reps for r in rows)
    setup = (f"{VARIANT} on {gpu_name} (CUDA, fp32, {INPUT_SIDE}x{INPUT_SIDE}, random "
             "weights), torch.cuda.synchronize() after every batch")
    notes = (
        f"{setup}; energy from NVML's energy counter (Zeus measured the same windows, see "
        "the .summary.json). SLA = 3 x the sum of the measured p99 latencies over the "
        "batch sizes, rounded up to 1 ms (assumed: a loose bound so that every batch "
        "size fits; this profile checks the meters, not a serving target)"
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
    pool = pool_entry(
        "gpu", f"{gpu_name} (GPU 0, host {cpu_model()}, torch {torch.__version__})",
        device="gpu", device_idle_w=round(idle_w, 3), sources={"device_idle_w": IDLE_SOURCE})
    latency = (f"wall-clock per batch (time.perf_counter) of {setup}, torch "
               f"{torch.__version__}, {reps[0]}-{reps[-1]} repetitions per batch size "
               "after warm-up")
    description = "nvml (nvmlDeviceGetTotalEnergyConsumption counter difference, GPU 0)"
    write_profile(spec, points, out, description, False, idle_w, (1,), batches,
                  pool=pool, latency_description=latency,
                  idle_description="GPU idle power from NVML over a sleep window")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the whole check and write the profile and its summary.

    Args:
        args: The parsed command line (see `main`).

    Returns:
        The summary that is also written as ``<out>.summary.json``.

    Raises:
        MeterUnavailableError: No usable GPU meter.
    """
    nvml_meter, zeus_meter, device = open_meters()
    import pynvml
    import torch
    from torchvision import models

    from energy.measure import measure_idle_w
    from envs.model.profiles import load_pipeline

    try:
        gpu_name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
        gpu_name = gpu_name.decode() if isinstance(gpu_name, bytes) else str(gpu_name)
        period = counter_update_period(args.poll_s, device)
        print(f"NVML energy counter update period: {json.dumps(period)}", flush=True)
        model = models.get_model(VARIANT, weights=None).eval().to(device)
        idle_w = float(measure_idle_w(nvml_meter, args.idle_s, sync=torch.cuda.synchronize))
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


@command_line(PROG)
def main(argv: list[str] | None = None) -> int:
    """Run the GPU check from the command line (see the module docstring).

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit code: 0 done; 2 when no GPU meter is available (one line).
    """
    parser = argument_parser(PROG, __doc__)
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
