"""Which env configs `envs.batched.BatchedPipelineVecEnv` runs exactly (the ``fluid``
backend, the ``reactive`` predictor, ``interval_s <= 600``), and which of its two replica
forms a config needs: three groups per stage (`envs.batched.fluid.BatchedFluid`) while every
replica a decision adds serves within the interval, else per-env groups and node states
(`envs.batched.groups.BatchedGroupFluid`)."""

from __future__ import annotations

from envs.backends.nodes import has_power_states
from envs.env_config import EnvConfig
from envs.model import perf
from envs.model.spec import Pipeline
from envs.observation import PREDICTOR_HISTORY_S


def unsupported_reason(config: EnvConfig) -> str | None:
    """Why `BatchedPipelineVecEnv` cannot run ``config`` exactly.

    Args:
        config: The env config to check.

    Returns:
        The reason, naming the setting and what would make it runnable; None if it can.
    """
    if config.backend != "fluid":
        return f"env.backend is {config.backend!r}, and the batched env simulates 'fluid' only"
    if config.predictor != "reactive":
        return f"env.predictor is {config.predictor!r}, and the batched env has 'reactive' only"
    if config.interval_s > PREDICTOR_HISTORY_S:
        return f"env.interval_s={config.interval_s} exceeds {PREDICTOR_HISTORY_S} s"
    return None


def needs_replica_groups(config: EnvConfig, pipeline: Pipeline) -> bool:
    """Whether a supported config needs the per-env replica groups of
    `envs.batched.groups.BatchedGroupFluid`: a cold start longer than the interval, weights
    loaded for a size-dependent time (`envs.model.perf.model_load_s`) or pools that boot or
    hold their nodes (`envs.backends.nodes`).

    Args:
        config: The env config (supported: `unsupported_reason` is None).
        pipeline: Its loaded pipeline.

    Returns:
        True when the three-group form of `envs.batched.fluid.BatchedFluid` is not exact.
    """
    if config.cold_start_s > config.interval_s or has_power_states(pipeline.fleet):
        return True
    return config.model_load_scale > 0 and any(perf.model_load_s(pipeline, v) > 0
                                               for stage in pipeline.stages
                                               for v in stage.variants)
