"""GPU measurements of the prepared GPU check (`energy.gpu_check`): NVML and Zeus over
the same windows, and the update period of NVML's energy counter."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from energy.errors import MeterUnavailableError

INPUT_SIDE = 224


@dataclass(frozen=True)
class SideBySide:
    """One batch size measured with both meters over the same window.

    Attributes:
        batch: Batch size.
        reps: Repetitions timed.
        latency_mean_ms: Mean latency per batch, after ``torch.cuda.synchronize()``.
        latency_p99_ms: 99th percentile of the same.
        nvml_j_per_batch: NVML energy per batch (whole GPU, idle included).
        zeus_j_per_batch: Zeus energy per batch over the same window.
        nvml_dynamic_j_per_batch: NVML energy minus idle power x time, per batch (>= 0).
        difference_pct: (Zeus - NVML) / NVML, percent.
    """

    batch: int
    reps: int
    latency_mean_ms: float
    latency_p99_ms: float
    nvml_j_per_batch: float
    zeus_j_per_batch: float
    nvml_dynamic_j_per_batch: float
    difference_pct: float


def open_meters() -> tuple[Any, Any, Any]:
    """Open the NVML and Zeus meters on GPU 0.

    Returns:
        NVML meter, Zeus meter and the CUDA device.

    Raises:
        MeterUnavailableError: No GPU, no NVML, no zeus, or a torch without CUDA.
    """
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
    """Intervals (ms) between changes of NVML's energy counter while the GPU is busy.

    Args:
        poll_s: How long to poll the counter.
        device: The CUDA device kept busy with queued matrix products.

    Returns:
        A JSON-ready summary (``supported`` False on GPUs without the counter).
    """
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


def measure_batch(
    model: Any, batch: int, device: Any, meters: tuple[Any, Any], idle_w: float,
    budget_s: float, min_reps: int, warmup: int,
) -> SideBySide:
    """Latency and energy of one batch size, both meters over the same window
    (`energy.measure.time_batches` with ``torch.cuda.synchronize`` after every batch).

    Args:
        model: The model on ``device``, eval mode.
        batch: Batch size.
        device: The CUDA device.
        meters: The NVML and the Zeus meter.
        idle_w: Idle GPU power (`energy.measure.measure_idle_w` with the CUDA sync).
        budget_s: Time the repetitions should take, which sets their number.
        min_reps: Fewest repetitions.
        warmup: Untimed runs first.

    Returns:
        The side-by-side measurement.
    """
    import torch

    from energy.measure import dynamic_per_batch_j, time_batches

    nvml_meter, zeus_meter = meters
    x = torch.rand(batch, 3, INPUT_SIDE, INPUT_SIDE, device=device)
    # Zeus opens first (its begin synchronises CUDA), NVML inside it; closed in reverse
    latencies, (zeus_reading, nvml_reading) = time_batches(
        model, x, (zeus_meter, nvml_meter), budget_s, min_reps, None, warmup,
        sync=torch.cuda.synchronize)
    reps = latencies.size
    nvml_j = nvml_reading.total_j / reps
    zeus_j = zeus_reading.total_j / reps
    return SideBySide(
        batch=batch,
        reps=reps,
        latency_mean_ms=float(latencies.mean() * 1e3),
        latency_p99_ms=float(np.percentile(latencies, 99) * 1e3),
        nvml_j_per_batch=nvml_j,
        zeus_j_per_batch=zeus_j,
        nvml_dynamic_j_per_batch=dynamic_per_batch_j(nvml_reading, idle_w, reps),
        difference_pct=100.0 * (zeus_j - nvml_j) / nvml_j if nvml_j > 0 else float("nan"),
    )
