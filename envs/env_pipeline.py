"""The pipeline an env config plays: the profile with every override the config gives."""

from __future__ import annotations

from envs.env_config import EnvConfig
from envs.model.profiles import load_pipeline
from envs.model.spec import Pipeline


def env_pipeline(config: EnvConfig) -> Pipeline:
    """Load the config's profile with its SLA, knob values, fleet mode, idle power scale and
    node boot and hold times.

    Args:
        config: The env config.

    Returns:
        The pipeline.

    Raises:
        ProfileError: A malformed or unknown profile.
        ConfigError: An impossible override.
    """
    return load_pipeline(config.pipeline, config.sla_ms, config.batch_sizes, config.fleet,
                         config.idle_power_scale, config.node_boot_s, config.node_hold_s)
