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
