"""Measurement of one operating point: wall-clock latency and dynamic energy per batch.

Energy per batch is the *dynamic* energy: the meter's reading over the repetitions minus
the idle power (measured once, with the same meter, while sleeping) times the wall time,
divided by the number of batches (`envs.model.power.dynamic_from_measured_j`).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.metering.meter import Meter
from envs.metering.reading import EnergyReading
from envs.model import power


def point_key(stage: str, variant: str, threads: int, batch: int) -> str:
    """The key of an operating point in the profiler's point log and tables.

    Args:
        stage: Stage name.
        variant: Variant name.
        threads: Torch threads (cores).
        batch: Batch size.

    Returns:
        ``"<stage>/<variant>/t<threads>/b<batch>"``.
    """
    return f"{stage}/{variant}/t{threads}/b{batch}"


@dataclass(frozen=True)
class Point:
    """One measured operating point.

    Attributes:
        stage: Stage name.
        variant: Variant name.
        threads: Torch threads (the row's ``cores``).
        batch: Batch size.
        latency_mean_ms: Mean wall-clock time per batch (measured).
        latency_p99_ms: 99th percentile of the same (measured).
        energy_per_batch_j: Dynamic energy per batch (measured or estimated by the meter).
        reps: Repetitions timed.
    """

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
        """This point's `point_key`."""
        return point_key(self.stage, self.variant, self.threads, self.batch)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _no_sync() -> None:
    """Nothing to wait for: CPU work is done when the call returns."""


def measure_idle_w(meter: Meter, seconds: float, sync: Callable[[], None] = _no_sync
                   ) -> float:
    """Average power of the meter's domains while this process sleeps.

    Args:
        meter: The meter the points are measured with.
        seconds: Length of the sleep window.
        sync: Waits for queued device work before the window opens
            (``torch.cuda.synchronize`` on a GPU).

    Returns:
        Mean power over the window, watts.
    """
    sync()
    meter.begin("idle")
    time.sleep(seconds)
    return meter.end("idle").mean_power_w


def meter_estimated(meter: Meter) -> bool:
    """Whether the meter's readings are estimates (a zero-length probe window).

    Args:
        meter: The meter to probe.

    Returns:
        The probe reading's ``estimated`` flag.
    """
    meter.begin("probe")
    return meter.end("probe").estimated


def time_batches(
    model: Any,
    x: Any,
    meters: Sequence[Meter],
    budget_s: float,
    min_reps: int,
    max_reps: int | None,
    warmup: int,
    sync: Callable[[], None] = _no_sync,
) -> tuple[np.ndarray, list[EnergyReading]]:
    """Run ``model`` on ``x`` repeatedly, timing each batch, every meter over the same window.

    Args:
        model: The model in eval mode.
        x: The input batch.
        meters: Meters opened in this order over the timed repetitions (closed in reverse).
        budget_s: Time the repetitions should take, which sets their number.
        min_reps: Fewest repetitions.
        max_reps: Most repetitions (None: no cap).
        warmup: Untimed runs first (their mean time sets the repetitions).
        sync: Waits for the model's queued work; called after the warm-up and after every
            timed batch (``torch.cuda.synchronize`` on a GPU).

    Returns:
        Each repetition's latency (s) and each meter's reading, in ``meters`` order.
    """
    with torch.inference_mode():
        sync()
        start = time.perf_counter()
        for _ in range(warmup):
            model(x)
        sync()
        one_s = (time.perf_counter() - start) / max(warmup, 1)
        reps = int(np.clip(budget_s / max(one_s, 1e-6), min_reps, max_reps))
        latencies = np.empty(reps)
        for meter in meters:
            meter.begin("point")
        for i in range(reps):
            t0 = time.perf_counter()
            model(x)
            sync()
            latencies[i] = time.perf_counter() - t0
        readings = [meter.end("point") for meter in reversed(meters)][::-1]
    return latencies, readings


def dynamic_per_batch_j(reading: EnergyReading, idle_w: float, reps: int) -> float:
    """Dynamic energy per batch: the reading minus idle power x its time, over ``reps``.

    Args:
        reading: The meter's reading over the repetitions.
        idle_w: Idle power of the meter's domains (`measure_idle_w`).
        reps: Batches in the window.

    Returns:
        Joules per batch, >= 0.
    """
    return max(power.dynamic_from_measured_j(reading.total_j, idle_w, reading.seconds),
               0.0) / reps


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
    """Time ``model`` on one batch size and measure its dynamic energy.

    Args:
        model: The model in eval mode.
        make_input: Returns an input batch of a given size.
        batch: Batch size.
        meter: Energy meter over the timed repetitions.
        idle_w: Idle power of the meter's domains (`measure_idle_w`).
        budget_s: Time the repetitions should take, which sets their number.
        min_reps: Fewest repetitions.
        max_reps: Most repetitions.
        warmup: Untimed runs first (their mean time sets the repetitions).

    Returns:
        Mean latency (ms), p99 latency (ms), dynamic energy per batch (J, >= 0), reps.
    """
    latencies, (reading,) = time_batches(model, make_input(batch), (meter,), budget_s,
                                         min_reps, max_reps, warmup)
    return (
        float(latencies.mean() * 1e3),
        float(np.percentile(latencies, 99) * 1e3),
        dynamic_per_batch_j(reading, idle_w, latencies.size),
        latencies.size,
    )
