"""Exceptions of the energy package. Every message names what is missing and how to fix it.

The meter errors are defined beside the `Meter` protocol in ``envs`` (the ground floor
that the live backend imports) and re-exported here.
"""

from envs.config.errors import (
    IpaEnergyError,
    MeterPermissionError,
    MeterReadError,
    MeterUnavailableError,
    MeterWindowError,
)

__all__ = [
    "EnergyLogError",
    "MeterPermissionError",
    "MeterReadError",
    "MeterUnavailableError",
    "MeterWindowError",
]


class EnergyLogError(IpaEnergyError, ValueError):
    """An energy log (perf stat, etrace2) is malformed; the message names the line."""
