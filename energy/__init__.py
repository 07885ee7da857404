"""Energy measurement: meters for live windows (RAPL, NVML, Zeus, TDP estimator), importers
for perf/etrace2 logs and ML.ENERGY data, the profiler and the CPU power calibration.

May import: ``envs`` (the `Meter` protocol, the profile format) and ``models``.
"""

from energy.errors import (
    EnergyLogError,
    MeterPermissionError,
    MeterReadError,
    MeterUnavailableError,
    MeterWindowError,
)
from energy.importers import (
    PerfInterval,
    parse_etrace2,
    parse_perf_stat_intervals,
    total_energy_from_perf,
)
from energy.meters import (
    METERS,
    Meter,
    NvmlMeter,
    PowerIntegrator,
    RaplMeter,
    RaplZone,
    TdpEstimator,
    ZeusMeter,
    make_meter,
)
from envs.metering.reading import EnergyReading

__all__ = [
    "METERS",
    "EnergyLogError",
    "EnergyReading",
    "Meter",
    "MeterPermissionError",
    "MeterReadError",
    "MeterUnavailableError",
    "MeterWindowError",
    "NvmlMeter",
    "PerfInterval",
    "PowerIntegrator",
    "RaplMeter",
    "RaplZone",
    "TdpEstimator",
    "ZeusMeter",
    "make_meter",
    "parse_etrace2",
    "parse_perf_stat_intervals",
    "total_energy_from_perf",
]
