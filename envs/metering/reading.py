"""The result of one energy measurement window."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from envs.config.errors import MeterCounterError

__all__ = ["EnergyReading"]

_DOMAINS = ("gpu_j", "cpu_package_j", "dram_j")


@dataclass(frozen=True)
class EnergyReading:
    """Energy consumed during one window, split by domain.

    A domain is ``None`` when the source does not cover it (e.g. RAPL knows nothing of GPUs),
    which is different from ``0.0`` (covered, and nothing was consumed). At least one domain
    must be covered. The domains do not overlap: ``cpu_package_j`` already contains the
    core/uncore subzones, and platform-wide counters (RAPL ``psys``) are never put in a domain.

    Attributes:
        seconds: Wall-clock length of the window.
        source: Where the numbers came from, e.g. ``"rapl:/sys/class/powercap"``,
            ``"nvml:counter"``, ``"nvml:integrated"``, ``"zeus"``, ``"perf-stat-log"``,
            ``"etrace2-log"``, ``"tdp-estimate"``.
        estimated: True when the joules are modelled rather than read from a hardware counter
            or power sensor (only the TDP estimator sets it).
        method: How the numbers were obtained, in words.
        gpu_j: Joules of all measured GPUs together, or None.
        cpu_package_j: Joules of all CPU packages (RAPL ``package-N``), or None.
        dram_j: Joules of all DRAM domains, or None.
        components: Per-device breakdown, e.g. ``{"gpu0": 12.0, "intel-rapl:1 package-1": 30.1}``;
            informative only, its values add up to the domains above.
    """

    seconds: float
    source: str
    estimated: bool
    method: str
    gpu_j: float | None = None
    cpu_package_j: float | None = None
    dram_j: float | None = None
    components: Mapping[str, float] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        """Validate the fields and freeze ``components``.

        Raises:
            MeterCounterError: A domain is negative (a counter reset or wrapped; it is a
                `MeterReadError` and a `ValueError`).
            ValueError: A non-finite or negative length, a non-finite domain, no domain.
        """
        if not math.isfinite(self.seconds) or self.seconds < 0:
            raise ValueError(f"EnergyReading.seconds must be finite and >= 0, got {self.seconds}")
        covered = 0
        for name in _DOMAINS:
            value = getattr(self, name)
            if value is None:
                continue
            covered += 1
            if not math.isfinite(value):
                raise ValueError(f"EnergyReading.{name} must be finite and >= 0, got {value} "
                                 f"(source {self.source!r})")
            if value < 0:
                raise MeterCounterError(
                    f"EnergyReading.{name} must be finite and >= 0, got {value} "
                    f"(source {self.source!r}); a negative delta means a counter was reset or "
                    "wrapped more than once during the window: measure the window again"
                )
        if covered == 0:
            raise ValueError(
                f"EnergyReading from {self.source!r} covers no domain; set at least one of "
                "gpu_j, cpu_package_j, dram_j"
            )
        object.__setattr__(self, "components", MappingProxyType(dict(self.components)))

    @property
    def total_j(self) -> float:
        """Sum of the covered domains in joules."""
        return sum(v for v in (self.gpu_j, self.cpu_package_j, self.dram_j) if v is not None)

    @property
    def mean_power_w(self) -> float:
        """Average power over the window in watts (0.0 for a zero-length window)."""
        return self.total_j / self.seconds if self.seconds > 0 else 0.0

    @property
    def domains(self) -> dict[str, float]:
        """The covered domains as ``{"gpu": J, "cpu_package": J, "dram": J}`` (None left out)."""
        return {
            name.removesuffix("_j"): value
            for name in _DOMAINS
            if (value := getattr(self, name)) is not None
        }
