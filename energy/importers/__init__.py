"""Energy totals from logs of external tools: ``perf stat -I`` and ``etrace2``."""

from energy.importers.etrace2 import parse_etrace2
from energy.importers.perf_stat import (
    PerfInterval,
    parse_perf_stat_intervals,
    total_energy_from_perf,
)

__all__ = [
    "PerfInterval",
    "parse_etrace2",
    "parse_perf_stat_intervals",
    "total_energy_from_perf",
]
