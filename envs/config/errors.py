"""Exception classes of the package. Every message names the problem and the fix."""


class IpaEnergyError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(IpaEnergyError, ValueError):
    """A configuration file or override is malformed, mistyped or inconsistent."""


class ProfileError(IpaEnergyError, ValueError):
    """A profile file is malformed or does not cover what the configuration needs."""


class TraceError(IpaEnergyError, ValueError):
    """A workload trace file holds unusable values (NaN, negative, non-numeric, empty)."""


class ActionError(IpaEnergyError, ValueError):
    """An action or decision is out of range for the pipeline."""


# Meter errors live here, beside the Meter protocol (envs/metering/meter.py) that raises them;
# energy/errors.py re-exports them for the meter implementations.


class MeterUnavailableError(IpaEnergyError, RuntimeError):
    """The hardware or library a meter needs is absent on this machine.

    Raised at construction, so a run fails before it starts instead of recording zeros.
    """


class MeterPermissionError(MeterUnavailableError):
    """The energy counters exist but this user may not read them (e.g. RAPL as non-root)."""


class MeterReadError(IpaEnergyError, RuntimeError):
    """A meter that was available returned no usable value for a window."""


class MeterCounterError(MeterReadError, ValueError):
    """A meter's counter went backwards over a window (reset, or wrapped more than once).

    A `MeterReadError` (the window has no usable value) and a `ValueError` (the reading
    built from it is invalid), so handlers of either catch it.
    """


class MeterWindowError(IpaEnergyError, LookupError):
    """A window key was ended before it was begun, or begun twice."""


class SuspiciousSettingWarning(UserWarning):
    """A setting is legal but probably not what was meant (SB3-style ``warnings.warn``).

    Silence one deliberately with
    ``warnings.filterwarnings("ignore", category=SuspiciousSettingWarning)``.
    """
