"""Energy measurement: meters for live windows and importers for perf/etrace2 logs."""

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
from envs.meter_reading import EnergyReading

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
