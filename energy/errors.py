"""Exceptions of the energy package. Every message names what is missing and how to fix it."""

from envs.errors import IpaEnergyError

__all__ = [
    "EnergyLogError",
    "MeterPermissionError",
    "MeterReadError",
    "MeterUnavailableError",
    "MeterWindowError",
]


class MeterUnavailableError(IpaEnergyError, RuntimeError):
    """The hardware or library a meter needs is absent on this machine.

    Raised at construction, so a run fails before it starts instead of recording zeros.
    """


class MeterPermissionError(MeterUnavailableError):
    """The energy counters exist but this user may not read them (e.g. RAPL as non-root)."""


class MeterReadError(IpaEnergyError, RuntimeError):
    """A meter that was available returned no usable value for a window."""


class MeterWindowError(IpaEnergyError, LookupError):
    """A window key was ended before it was begun, or begun twice."""


class EnergyLogError(IpaEnergyError, ValueError):
    """An energy log (perf stat, etrace2) is malformed; the message names the line."""
