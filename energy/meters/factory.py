"""Build a meter from its command-line name (``--meter rapl|nvml|zeus|tdp``)."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from energy.meters.estimator import TdpEstimator
from energy.meters.nvml import NvmlMeter
from energy.meters.rapl import RaplMeter
from energy.meters.zeus_meter import ZeusMeter
from envs.config.errors import ConfigError
from envs.metering.meter import Meter

__all__ = ["METERS", "make_meter"]

METERS: dict[str, type[Meter]] = {
    "rapl": RaplMeter,
    "nvml": NvmlMeter,
    "zeus": ZeusMeter,
    "tdp": TdpEstimator,
}


def make_meter(name: str, **kwargs: Any) -> Meter:
    """Construct the meter called ``name`` with ``kwargs``.

    Args:
        name: One of ``"rapl"``, ``"nvml"``, ``"zeus"``, ``"tdp"`` (case-insensitive).
        **kwargs: Constructor arguments of that meter, e.g. ``tdp_w=``, ``idle_w=``, ``cores=``
            for ``"tdp"``.

    Returns:
        The meter.

    Raises:
        ConfigError: Unknown name (with a "did you mean" suggestion) or arguments the meter
            does not take.
        MeterUnavailableError: The meter's hardware or library is missing on this machine.
    """
    key = name.strip().lower()
    if key not in METERS:
        choices = ", ".join(sorted(METERS))
        close = difflib.get_close_matches(key, METERS, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown meter {name!r}; {hint}choose one of: {choices}")
    cls = METERS[key]
    signature = inspect.signature(cls)
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        raise ConfigError(f"meter {key!r} takes {signature}, not {kwargs}: {err}") from None
    return cls(**kwargs)
