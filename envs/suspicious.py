"""Warnings for legal but suspicious settings, raised once when a `PipelineEnv` is built.

Impossible settings raise (`envs.config.errors.ConfigError`); settings that are legal but
probably a mistake warn with `envs.config.errors.SuspiciousSettingWarning`, naming the setting
and the fix (as stable-baselines3's ``check_env`` and constructors do):

* an SLA below the sum over stages of the fastest variant's p99 latency at batch 8 (the
  pipeline's batch 8, else its largest batch <= 8, else its smallest), each at its base
  cores: even the fastest variants miss it at that batch;
* a reward weight of 0 on a term that is on by default (``accuracy``, ``sla_violation``,
  ``energy``, ``switching``): the term is switched off. Zeros that come from a named
  ``reward_preset`` are deliberate and do not warn; ``cost`` and ``batch`` are off by
  default, so a 0 there changes nothing.
"""

from __future__ import annotations

import warnings
from dataclasses import fields

from envs.config.errors import SuspiciousSettingWarning
from envs.env_config import EnvConfig, RewardWeights
from envs.model.perf import fastest_latency_ms
from envs.model.spec import Pipeline

SLA_CHECK_BATCH = 8  # the batch of the rule ("the fastest variant's p99 at batch 8")


def sla_check_batch(batch_sizes: tuple[int, ...]) -> int:
    """The batch the SLA check uses: 8 if offered, else the largest <= 8, else the smallest.

    Args:
        batch_sizes: A stage's batch sizes.

    Returns:
        The batch size.
    """
    at_most = [b for b in batch_sizes if b <= SLA_CHECK_BATCH]
    return max(at_most) if at_most else min(batch_sizes)


def suspicious_settings(config: EnvConfig, pipeline: Pipeline) -> list[str]:
    """The messages of every suspicious setting of ``config`` over ``pipeline``.

    Args:
        config: The env's configuration.
        pipeline: The pipeline it loaded (SLA and batch-size overrides applied).

    Returns:
        One message per suspicious setting, each naming the setting and the fix; empty
        when nothing is suspicious.
    """
    out = []
    batches = [sla_check_batch(s.batch_sizes) for s in pipeline.stages]
    need_ms = fastest_latency_ms(pipeline, batches)
    at = (f"batch {batches[0]}" if len(set(batches)) == 1
          else "batches " + ", ".join(f"{s.name} {b}" for s, b in zip(pipeline.stages, batches,
                                                                      strict=True)))
    if pipeline.sla_ms < need_ms:
        out.append(
            f"sla_ms={pipeline.sla_ms:g} of pipeline {pipeline.name!r} is below {need_ms:.1f} ms, "
            f"the sum over stages of the fastest variant's p99 at {at}: even the "
            f"fastest variants miss it there; raise sla_ms (in the config or the "
            f"profile) or check that it is in milliseconds")
    if config.reward_preset is None:
        defaults = RewardWeights()
        for f in fields(RewardWeights):
            if getattr(config.reward, f.name) == 0 and getattr(defaults, f.name) != 0:
                out.append(
                    f"reward.{f.name} is 0: the {f.name!r} term is switched off, so the "
                    f"reward ignores it; set reward.{f.name} > 0 (default "
                    f"{getattr(defaults, f.name):g}), or use a reward_preset whose objective "
                    f"leaves it out (e.g. 'ipa' has no energy or switching term)")
    return out


def warn_suspicious_settings(config: EnvConfig, pipeline: Pipeline, stacklevel: int = 3
                             ) -> None:
    """Warn once for each of `suspicious_settings`.

    Args:
        config: The env's configuration.
        pipeline: The pipeline it loaded.
        stacklevel: Passed to `warnings.warn` (3: the caller of the env's constructor).

    Warns:
        SuspiciousSettingWarning: For each suspicious setting.
    """
    for message in suspicious_settings(config, pipeline):
        warnings.warn(message, SuspiciousSettingWarning, stacklevel=stacklevel)
