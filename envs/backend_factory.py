"""The backend an env config names: the fluid or request-level simulator, or live servers.

Each backend module is imported only when chosen (the live one starts processes and needs
torch).
"""

from __future__ import annotations

from envs.backends.base import Backend, ServingSettings
from envs.config.errors import ConfigError
from envs.model.spec import Pipeline


def build_backend(name: str, pipeline: Pipeline, settings: ServingSettings) -> Backend:
    """The backend called ``name`` over ``pipeline``.

    Args:
        name: ``fluid``, ``requests`` or ``live``.
        pipeline: The pipeline it serves.
        settings: Interval, cold start, drop limit and batch timeout.

    Returns:
        The backend, not yet reset.

    Raises:
        ConfigError: ``name`` is not a backend.
    """
    if name == "fluid":
        from envs.backends.fluid import FluidBackend

        return FluidBackend(pipeline, settings)
    if name == "requests":
        from envs.backends.requests import RequestBackend

        return RequestBackend(pipeline, settings)
    if name == "live":
        from envs.live.backend import LiveBackend

        return LiveBackend(pipeline, settings)
    raise ConfigError(f"unknown backend {name!r}; choose 'fluid', 'requests' or 'live'")
