"""Turns a power sensor into an energy counter by sampling it on a background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

__all__ = ["PowerIntegrator"]


class PowerIntegrator:
    """Integrates sampled power (trapezoid rule) into cumulative joules per channel.

    A daemon thread samples ``read_power_w`` every ``period_s``; :meth:`snapshot` takes one more
    sample at the moment it is called, so a window's start and end are exact sample points and
    windows shorter than the period still get two samples.

    Args:
        read_power_w: Returns the current power of each channel in watts (fixed length).
        period_s: Seconds between background samples.
        clock: Monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        read_power_w: Callable[[], Sequence[float]],
        period_s: float = 0.05,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if period_s <= 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self._read = read_power_w
        self.period_s = period_s
        self._clock = clock
        self._lock = threading.Lock()
        first = [float(p) for p in read_power_w()]
        self._last_t = clock()
        self._last_p = first
        self._cum_j = [0.0] * len(first)
        self.samples = 1
        self.failed_samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="power-integrator", daemon=True)
        self._thread.start()

    def _sample(self) -> tuple[float, list[float]]:
        with self._lock:
            power = [float(p) for p in self._read()]
            now = self._clock()
            dt = now - self._last_t
            for i, (p0, p1) in enumerate(zip(self._last_p, power, strict=True)):
                self._cum_j[i] += 0.5 * (p0 + p1) * dt
            self._last_t, self._last_p = now, power
            self.samples += 1
            return now, list(self._cum_j)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self._sample()
            except Exception:  # a failed sample is retried next period; the trapezoid spans it
                self.failed_samples += 1

    def snapshot(self) -> tuple[float, list[float]]:
        """Sample now and return ``(time_s, cumulative_joules_per_channel)``."""
        return self._sample()

    def stop(self) -> None:
        """Stop the sampling thread (idempotent)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(1.0, 2 * self.period_s))
