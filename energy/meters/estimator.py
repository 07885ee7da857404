"""A modelled CPU energy figure for machines without any energy counter."""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable

from envs.metering.meter import Meter
from envs.metering.reading import EnergyReading

__all__ = ["TdpEstimator", "process_cpu_seconds"]


def process_cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class TdpEstimator(Meter):
    """Estimates CPU package energy as ``(idle_w + (tdp_w - idle_w) * u) * seconds``.

    ``u`` is the utilisation over the window: by default the CPU time this process and its
    waited-for children used during the window divided by ``wall seconds * cores`` (clamped to
    [0, 1]), so work of other processes on the machine is not seen. A callable may supply ``u``
    instead (called once, when the window ends). Readings are always ``estimated=True``; this
    meter is only used when chosen explicitly, never as a silent fallback for a missing counter.

    Args:
        tdp_w: Package power at full load, e.g. the CPU's TDP in watts.
        idle_w: Package power when idle, in watts (``0 <= idle_w <= tdp_w``).
        cores: Logical CPUs the utilisation is normalised by (>= 1).
        utilisation: Optional callable returning the window's utilisation in [0, 1].

    Raises:
        ValueError: The parameters are out of range.
    """

    name = "tdp"

    def __init__(
        self,
        tdp_w: float,
        idle_w: float,
        cores: int,
        utilisation: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        if not (math.isfinite(tdp_w) and math.isfinite(idle_w) and 0 <= idle_w <= tdp_w):
            raise ValueError(
                f"TdpEstimator needs 0 <= idle_w <= tdp_w, got idle_w={idle_w}, tdp_w={tdp_w}"
            )
        if int(cores) != cores or cores < 1:
            raise ValueError(f"TdpEstimator needs cores >= 1 (an integer), got {cores}")
        self.tdp_w = float(tdp_w)
        self.idle_w = float(idle_w)
        self.cores = int(cores)
        self._utilisation = utilisation

    def _open(self, key: str) -> tuple[float, float]:
        return time.perf_counter(), process_cpu_seconds()

    def _close(self, key: str, state: tuple[float, float]) -> EnergyReading:
        t1, cpu1 = time.perf_counter(), process_cpu_seconds()
        t0, cpu0 = state
        seconds = t1 - t0
        if self._utilisation is not None:
            u = float(self._utilisation())
            if not (math.isfinite(u) and 0.0 <= u <= 1.0):
                raise ValueError(f"the utilisation callable returned {u}; it must be in [0, 1]")
            how = "utilisation from the supplied callable"
        else:
            busy = (cpu1 - cpu0) / (seconds * self.cores) if seconds > 0 else 0.0
            u = min(1.0, max(0.0, busy))
            how = f"utilisation = process CPU time / (wall time x {self.cores} cores)"
        power_w = self.idle_w + (self.tdp_w - self.idle_w) * u
        return EnergyReading(
            seconds=seconds,
            source="tdp-estimate",
            estimated=True,
            method=(
                f"TDP model: (idle {self.idle_w:g} W + (TDP {self.tdp_w:g} W - idle) x "
                f"utilisation {u:.4f}) x seconds; {how}"
            ),
            cpu_package_j=power_w * seconds,
        )
