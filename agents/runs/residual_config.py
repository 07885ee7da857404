"""Settings of a residual agent (``agent.residual``): the action levels and the planner.

A residual agent adjusts IPA's ILP instead of choosing the configuration
(`agents.policies.residual_env.ResidualPlannerEnv`). Its settings live in the training
config, so the run folder's ``config.yaml`` rebuilds the same wrapper at evaluation. The
level check lives here, in the lowest room, so that the config loader and the env wrapper
apply the same one (`agents.policies.residual_env` re-exports it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from envs.config.checks import check_range
from envs.config.errors import ConfigError

__all__ = ["DEFAULT_MARGIN_LEVELS", "DEFAULT_RATE_LEVELS", "ResidualPlannerConfig",
           "check_levels"]

DEFAULT_RATE_LEVELS: tuple[float, ...] = (0.8, 0.9, 1.0, 1.1, 1.25, 1.5)  # assumed
DEFAULT_MARGIN_LEVELS: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7)  # assumed


def check_levels(rate_levels: Sequence[float], margin_levels: Sequence[float],
                 keys: tuple[str, str] = ("residual rate_levels", "residual margin_levels")
                 ) -> None:
    """Refuse level lists that are empty, allow a rate <= 0, leave (0, 1] for a margin,
    repeat a level or lack the null level 1.0.

    Args:
        rate_levels: Planned-rate multipliers.
        margin_levels: Latency margins (fractions of the SLA).
        keys: How the message names the two lists (the config passes its keys).

    Raises:
        ConfigError: One of the above, with the fix; the message starts with the key.
    """
    rate_key, margin_key = keys
    for key, levels in ((rate_key, rate_levels), (margin_key, margin_levels)):
        if len(levels) == 0:
            raise ConfigError(f"{key} is empty; give at least one level, 1.0 included (the "
                              "null action)")
        if len(set(levels)) != len(levels):
            raise ConfigError(f"{key} {tuple(levels)} repeat a level; list each level once")
        if 1.0 not in levels:
            raise ConfigError(f"{key} {tuple(levels)} lack 1.0, so no action reproduces the "
                              "planner; add 1.0")
    bad = [r for r in rate_levels if not (math.isfinite(r) and r > 0)]
    if bad:
        raise ConfigError(f"{rate_key} {tuple(rate_levels)} allow a planned rate <= 0 "
                          f"(multiplier {bad[0]}); give finite multipliers > 0")
    bad = [m for m in margin_levels if not 0 < m <= 1]
    if bad:
        raise ConfigError(f"{margin_key} {tuple(margin_levels)} hold {bad[0]} outside (0, 1]; "
                          "the ILP may plan with at most the true SLA, so give fractions in "
                          "(0, 1]")


@dataclass(frozen=True)
class ResidualPlannerConfig:
    """The weights of the planner a residual agent adjusts (`IPAPolicy`'s arguments).

    The defaults are the evaluation's ``ipa`` policy (``agents.evaluation.config.IpaWeights``
    with ``delta`` 0, since ``ipa`` plays without the energy term; a test keeps them equal),
    so the null action plays exactly the ``ipa`` rows of a default evaluation.

    Attributes:
        mode: IPA's accuracy mode, ``sum`` or ``product``.
        alpha: Weight of accuracy.
        beta: Weight of allocated cores.
        gamma: Weight of the sum of batch sizes.
        delta: Weight of the interval's predicted energy in joules (> 0: IPA + energy).
        on_infeasible: ``keep`` the current configuration (IPA's rule) or ``fallback`` to
            the fastest variants at the replica cap when no decision is feasible.
        use_batch_timeout: Cap the batch-fill delay at the env's batch timeout (as
            ``ipa_energy`` does).
    """

    mode: Literal["sum", "product"] = "sum"
    alpha: float = 2.0
    beta: float = 1.0
    gamma: float = 1e-6
    delta: float = 0.0
    on_infeasible: Literal["keep", "fallback"] = "keep"
    use_batch_timeout: bool = False

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma", "delta"):
            check_range(name, getattr(self, name), low=0,
                        fix="the planner's objective weights are non-negative")
