"""Which env configs `envs.batched.BatchedPipelineVecEnv` runs exactly: the ``fluid``
backend, the ``reactive`` predictor, ``cold_start_s <= interval_s <= 600``, no
size-dependent model loading and no node power states (boot or hold times)."""

from __future__ import annotations

from envs.backends.nodes import has_power_states
from envs.env_config import EnvConfig
from envs.model import perf
from envs.model.spec import Pipeline
from envs.observation import PREDICTOR_HISTORY_S


def settings_reason(config: EnvConfig) -> str | None:
    """The part of `unsupported_reason` that needs the config only (no profile loaded).

    Args:
        config: The env config to check.

    Returns:
        The reason, naming the setting and what would make it runnable; None if the
        settings are supported.
    """
    if config.backend != "fluid":
        return f"env.backend is {config.backend!r}, and the batched env simulates 'fluid' only"
    if config.predictor != "reactive":
        return f"env.predictor is {config.predictor!r}, and the batched env has 'reactive' only"
    if not 0.0 <= config.cold_start_s <= config.interval_s:
        return (f"env.cold_start_s={config.cold_start_s} exceeds env.interval_s="
                f"{config.interval_s} (the batched env's replica groups assume it does not)")
    if config.interval_s > PREDICTOR_HISTORY_S:
        return f"env.interval_s={config.interval_s} exceeds {PREDICTOR_HISTORY_S} s"
    return None


def unsupported_reason(config: EnvConfig, pipeline: Pipeline | None = None) -> str | None:
    """Why `BatchedPipelineVecEnv` cannot run ``config`` exactly.

    Args:
        config: The env config to check.
        pipeline: The config's pipeline, already loaded (None: loaded here, only if the
            settings are supported).

    Returns:
        The reason, naming the setting and what would make it runnable; None if it can.
    """
    reason = settings_reason(config)
    if reason is not None:
        return reason
    if pipeline is None:
        from envs.env_pipeline import env_pipeline

        pipeline = env_pipeline(config)
    if config.model_load_scale > 0 and any(perf.model_load_s(pipeline, v) > 0
           for stage in pipeline.stages for v in stage.variants):
        return ("the profile's variants load their weights for a size-dependent time "
                "(envs.model.perf.model_load_s), and the batched env has one cold start for all; "
                "env.model_load_scale=0 turns loading off")
    if has_power_states(pipeline.fleet):
        return ("the profile's device pools boot or hold their nodes (boot_s, hold_s; "
                "envs.backends.nodes), which the batched env does not simulate; set them to 0 "
                "or train on the scalar envs")
    return None
