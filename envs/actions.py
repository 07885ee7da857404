"""The action space of `envs.pipeline_env.PipelineEnv`: decoding actions into decisions and
back, masking replica counts over the core budget, and repairing decisions that exceed it
(the table is in `PipelineEnv`'s docstring)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from envs.config.errors import ActionError, ConfigError
from envs.env_config import EnvConfig
from envs.model import perf
from envs.model.spec import Decision, ModelVariant, Pipeline, StageDecision


def check_core_budget(max_cores: int | None, pipeline: Pipeline) -> None:
    """Reject a core budget below one replica per stage at its fewest cores, at construction
    (it would otherwise fail only at the first reset).

    Args:
        max_cores: The budget (None: no budget).
        pipeline: The pipeline.

    Raises:
        ConfigError: The budget is below that minimum.
    """
    if max_cores is None:
        return
    need = sum(min(v.base_cores for v in s.variants) for s in pipeline.stages)
    if max_cores < need:
        raise ConfigError(f"max_cores={max_cores} is below one replica per stage at its fewest "
                          f"cores ({need} for {pipeline.name}); set max_cores >= {need} or null")


class ActionCodec:
    """Maps ``MultiDiscrete`` actions to `Decision`s for one pipeline and config.

    Args:
        pipeline: The pipeline.
        config: The env's config (``action_mode``, ``max_replicas``, ``headroom_levels``,
            ``max_cores``).
    """

    def __init__(self, pipeline: Pipeline, config: EnvConfig) -> None:
        self.pipeline = pipeline
        self.config = config
        replica_values = (config.max_replicas if config.action_mode == "absolute"
                          else len(config.headroom_levels))
        self.space = spaces.MultiDiscrete(
            [n for s in pipeline.stages
             for n in (len(s.variants), len(s.batch_sizes), replica_values)])

    def decode(self, action: np.ndarray, forecast_rps: float) -> Decision:
        """The `Decision` an action stands for.

        Args:
            action: One ``[variant, batch index, replicas or headroom index]`` per stage.
            forecast_rps: The forecast the ``headroom`` mode sizes replicas for.

        Returns:
            The decision (cores per replica: each variant's base allocation).

        Raises:
            ActionError: The action is outside the space.
        """
        action = np.asarray(action).reshape(-1)
        nvec = self.space.nvec
        if action.shape != nvec.shape or not (
                np.issubdtype(action.dtype, np.integer) or np.all(action == np.round(action))
        ) or not np.all((action >= 0) & (action < nvec)):
            raise ActionError(
                f"action {action.tolist()} is outside {self.space}; give one "
                "[variant, batch index, replicas - 1] triple per stage")
        choices = []
        for i, stage in enumerate(self.pipeline.stages):
            v, b, r = (int(x) for x in action[3 * i: 3 * i + 3])
            variant = stage.variants[v]
            batch = stage.batch_sizes[b]
            replicas = r + 1 if self.config.action_mode == "absolute" else self.headroom_replicas(
                variant, batch, self.config.headroom_levels[r], forecast_rps)
            choices.append(StageDecision(v, batch, replicas, variant.base_cores))
        return Decision(tuple(choices))

    def headroom_replicas(self, variant: ModelVariant, batch: int, level: float,
                          forecast_rps: float) -> int:
        """Fewest replicas that serve ``forecast_rps`` x ``level`` (at most max_replicas).

        Args:
            variant: The stage's variant.
            batch: Its batch size.
            level: The headroom factor.
            forecast_rps: The forecast rate.

        Returns:
            The replica count.
        """
        need = perf.replicas_for_rate(variant, batch, variant.base_cores, forecast_rps * level)
        return min(need, self.config.max_replicas)

    def encode(self, decision: Decision, forecast_rps: float) -> np.ndarray:
        """The action that stands for ``decision`` (inverse of `decode`).

        In ``headroom`` mode replicas are only approximated (the level whose replica count
        is closest); baselines that must apply exact decisions run in ``absolute`` mode.

        Args:
            decision: The decision.
            forecast_rps: The forecast the ``headroom`` mode sizes replicas for.

        Returns:
            The action, of the space's dtype.

        Raises:
            ActionError: A stage has more than ``max_replicas`` replicas.
        """
        levels = self.config.headroom_levels
        out = []
        for stage, c in zip(self.pipeline.stages, decision.stages, strict=True):
            if c.replicas > self.config.max_replicas:
                raise ActionError(f"{c.replicas} replicas exceed max_replicas="
                                  f"{self.config.max_replicas}")
            replica_index = c.replicas - 1
            if self.config.action_mode == "headroom":
                variant = stage.variants[c.variant]
                replica_index = min(range(len(levels)), key=lambda k: abs(
                    self.headroom_replicas(variant, c.batch, levels[k], forecast_rps)
                    - c.replicas))
            out += [c.variant, stage.batch_sizes.index(c.batch), replica_index]
        return np.array(out, dtype=self.space.dtype)

    def masks(self) -> np.ndarray:
        """Valid values of each action dimension, flattened (for sb3-contrib MaskablePPO).

        Returns:
            One boolean per value of every dimension.
        """
        masks = [np.ones(n, dtype=bool) for n in self.space.nvec]
        budget = self.config.max_cores
        if budget is not None and self.config.action_mode == "absolute":
            min_cores = [min(v.base_cores for v in s.variants) for s in self.pipeline.stages]
            for i, stage_min in enumerate(min_cores):
                others = sum(min_cores) - stage_min
                r = np.arange(1, self.config.max_replicas + 1)
                masks[3 * i + 2] = r * stage_min <= budget - others
        return np.concatenate(masks)

    def repair(self, decision: Decision) -> tuple[Decision, int]:
        """Remove replicas from the largest stages until ``max_cores`` holds.

        Args:
            decision: The decision.

        Returns:
            The repaired decision and how many replicas were removed.

        Raises:
            ActionError: Even one replica per stage exceeds ``max_cores``.
        """
        budget = self.config.max_cores
        if budget is None:
            return decision, 0
        stages = list(decision.stages)
        repairs = 0
        while sum(perf.stage_cores(c) for c in stages) > budget:
            i = max(range(len(stages)), key=lambda k: perf.stage_cores(stages[k]))
            if stages[i].replicas == 1:
                raise ActionError(f"even one replica per stage exceeds max_cores={budget}; "
                                  "raise max_cores")
            c = stages[i]
            stages[i] = StageDecision(c.variant, c.batch, c.replicas - 1, c.cores)
            repairs += 1
        return Decision(tuple(stages)), repairs

    def initial_decision(self, rate_rps: float) -> Decision:
        """Cheapest variants at each stage's smallest batch, with enough replicas for
        ``rate_rps``.

        Args:
            rate_rps: The rate to size replicas for.

        Returns:
            The decision, repaired to ``max_cores``.
        """
        choices = []
        for stage in self.pipeline.stages:
            v, b = stage.variants[0], stage.batch_sizes[0]
            replicas = min(perf.replicas_for_rate(v, b, v.base_cores, rate_rps),
                           self.config.max_replicas)
            choices.append(StageDecision(0, b, replicas, v.base_cores))
        return self.repair(Decision(tuple(choices)))[0]
