"""``gymnasium.make("ipa/Pipeline-v2", **kwargs)`` keywords merged into an `EnvConfig`."""

from __future__ import annotations

from typing import Any

from envs.config.loader import apply_overrides, from_dict, to_dict
from envs.env_config import EnvConfig


def config_from_kwargs(config: EnvConfig | None, overrides: dict[str, Any]) -> EnvConfig:
    """Merge ``gymnasium.make`` keyword arguments into a config, strictly.

    ``workload="bursty"`` is short for a synthetic pattern and ``workload="path.txt"``
    for a trace file; other keys are config fields (dotted keys reach nested ones).

    Args:
        config: The base config (None: the defaults).
        overrides: Keyword arguments, field name (or dotted path) -> value.

    Returns:
        The merged config.

    Raises:
        ConfigError: An unknown key or a value of the wrong type (the strict loader's
            message, with a "did you mean" hint).
    """
    base = to_dict(config or EnvConfig())
    items = []
    for key, value in overrides.items():
        if key == "workload" and isinstance(value, str):
            if value.endswith((".txt", ".csv")) or "/" in value:
                items += ["workload.source=trace", f"workload.trace_path={value}"]
            else:
                items += ["workload.source=synthetic", f"workload.pattern={value}"]
        elif key == "reward_preset" and value is not None:
            base.pop("reward", None)
            items.append(f"reward_preset={value}")
        else:
            items.append(f"{key}={value}")
    return from_dict(EnvConfig, apply_overrides(base, items))
