"""The rule baselines (Kubernetes HPA, Ray Serve, static, random) as `DecidingPolicy`.

* `HpaPolicy`: Kubernetes' Horizontal Pod Autoscaler rule per stage,
  ``desired = ceil(current * metric / target)`` with a tolerance of 0.1 and a scale-down
  stabilisation window of 300 s (the largest recommendation of the window wins); both
  cited: Kubernetes' defaults (``--horizontal-pod-autoscaler-tolerance=0.1``, HPA
  ``behavior.scaleDown.stabilizationWindowSeconds=300``); the target utilisation is
  tuned. The metric is the stage's utilisation, the variant and batch are fixed.
* `RayServePolicy`: Ray Serve's request-based autoscaling per stage,
  ``desired = ceil(ongoing requests / target_ongoing_requests)`` with upscale and
  downscale delays; ongoing requests are the stage's queue plus those in service
  (arrival rate x stage latency, Little's law). Defaults cited from Ray Serve's
  ``AutoscalingConfig`` (Ray >= 2.32): ``target_ongoing_requests=2`` (tuned here),
  ``upscale_delay_s=30``, ``downscale_delay_s=600``.
* `StaticPolicy`: one fixed decision (``static_low``: cheapest variants; ``static_high``:
  most accurate variants; both sized for the peak rate of the *training* data, which the
  evaluation passes; never for the evaluation window's).

Every policy starts an episode from the decision the env put in force (sized for the
forecast on the warm-up history) and sees nothing of the window ahead.
* `RandomPolicy`: uniformly random actions.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Literal

import numpy as np

from agents.policies.protocol import DecidingPolicy
from envs.config.errors import ActionError
from envs.model import perf
from envs.model.spec import Decision, StageDecision

VariantChoice = Literal["lowest", "highest"] | tuple[int, ...]
BatchChoice = int | tuple[int, ...] | None


class RulePolicy(DecidingPolicy):
    """Base of the rule baselines: variant, batch and replica helpers over the env's model."""

    def __init__(self, env: Any) -> None:
        """Bind the policy to an env.

        Args:
            env: A `PipelineEnv` (wrappers allowed).
        """
        super().__init__(env)
        self.pipeline = self.env.pipeline

    def variants(self, choice: VariantChoice) -> tuple[int, ...]:
        """One variant index per stage.

        Args:
            choice: ``lowest`` (index 0), ``highest`` (the last) or the indices themselves.

        Returns:
            The variant index of every stage.
        """
        if choice == "lowest":
            return tuple(0 for _ in self.pipeline.stages)
        if choice == "highest":
            return tuple(len(s.variants) - 1 for s in self.pipeline.stages)
        return tuple(choice)

    def batch_sizes(self, batch: BatchChoice) -> tuple[int, ...]:
        """One batch size per stage: ``batch`` for every stage, one per stage, or each
        stage's smallest when None.

        Args:
            batch: A batch size every stage offers, one per stage, or None.

        Returns:
            The batch size of each stage.

        Raises:
            ActionError: A size a stage does not offer, or a list of the wrong length.
        """
        stages = self.pipeline.stages
        if batch is None:
            return tuple(s.batch_sizes[0] for s in stages)
        sizes = (batch,) * len(stages) if isinstance(batch, int) else tuple(batch)
        if len(sizes) != len(stages):
            raise ActionError(f"batch {list(sizes)} has {len(sizes)} sizes for "
                              f"{len(stages)} stages; give one per stage, one for all, or None")
        for stage, b in zip(stages, sizes, strict=True):
            if b not in stage.batch_sizes:
                raise ActionError(f"batch {b!r} is not one of stage {stage.name!r}'s batch "
                                  f"sizes {list(stage.batch_sizes)}; pick one of them or None")
        return sizes

    def replicas_for(self, variant: int, stage: int, batch: int, rate_rps: float) -> int:
        """Fewest replicas of ``variant`` that serve ``rate_rps`` (within max_replicas).

        Args:
            variant: Variant index in ``stage``.
            stage: Stage index.
            batch: Batch size.
            rate_rps: Arrival rate to serve (requests/s).

        Returns:
            The replica count, capped at the env's ``max_replicas``.
        """
        v = self.pipeline.stages[stage].variants[variant]
        return min(perf.replicas_for_rate(v, batch, v.base_cores, rate_rps),
                   self.env.config.max_replicas)


class HpaPolicy(RulePolicy):
    """Kubernetes HPA on stage utilisation (variant and batch fixed)."""

    def __init__(self, env: Any, target_utilisation: float = 0.7, tolerance: float = 0.1,
                 stabilisation_s: float = 300.0, variants: VariantChoice = "lowest",
                 batch: BatchChoice = None) -> None:
        """Create the policy.

        Args:
            env: The env.
            target_utilisation: HPA's target of the stage utilisation metric, in (0, 1].
            tolerance: Ratios within ``1 +- tolerance`` of the target keep the replicas.
            stabilisation_s: Scale-down stabilisation window (seconds).
            variants: ``lowest``, ``highest`` or one variant index per stage.
            batch: Batch size of every stage, one per stage, or None (each stage's
                smallest).

        Raises:
            ValueError: ``target_utilisation`` outside (0, 1].
        """
        super().__init__(env)
        if not 0.0 < target_utilisation <= 1.0:
            raise ValueError(f"target_utilisation must be in (0, 1], got {target_utilisation}")
        self.target = target_utilisation
        self.tolerance = tolerance
        self.window = max(1, int(round(stabilisation_s / self.env.config.interval_s)))
        self.fixed_variants = self.variants(variants)
        self.batches = self.batch_sizes(batch)
        self.reset()

    def reset(self) -> None:
        """Forget the stabilisation window's recommendations."""
        self.recommendations = [deque(maxlen=self.window) for _ in self.pipeline.stages]

    def decide(self, obs: np.ndarray) -> Decision:
        """HPA's rule per stage on the observed utilisation (see `DecidingPolicy.decide`).

        Args:
            obs: One observation of ``env`` (its stage utilisations and last rate).

        Returns:
            The fixed variants and batch with each stage's stabilised replicas.
        """
        current = self.env.decision
        choices = []
        for i, stage in enumerate(self.pipeline.stages):
            v = self.fixed_variants[i]
            replicas = current.stages[i].replicas if current is not None else 1
            if current is not None and current.stages[i].variant != v:
                replicas = self.replicas_for(v, i, self.batches[i],
                                             self.env.layout.last_rate_rps(obs))
            ratio = self.env.layout.stage(obs, i)["utilisation"] / self.target
            desired = replicas if abs(ratio - 1.0) <= self.tolerance else math.ceil(
                replicas * ratio)
            self.recommendations[i].append(max(desired, 1))
            stabilised = max(self.recommendations[i])  # scale down only after the window
            replicas = int(min(stabilised, self.env.config.max_replicas))
            choices.append(StageDecision(v, self.batches[i], replicas,
                                         stage.variants[v].base_cores))
        return Decision(tuple(choices))


class RayServePolicy(RulePolicy):
    """Ray Serve's autoscaler on ongoing requests per replica (variant and batch fixed)."""

    def __init__(self, env: Any, target_ongoing_requests: float = 2.0,
                 upscale_delay_s: float = 30.0, downscale_delay_s: float = 600.0,
                 variants: VariantChoice = "lowest", batch: BatchChoice = None) -> None:
        """Create the policy.

        Args:
            env: The env.
            target_ongoing_requests: Ray Serve's target of ongoing requests per replica.
            upscale_delay_s: How long a higher recommendation must last before scaling up.
            downscale_delay_s: How long a lower recommendation must last before scaling down.
            variants: ``lowest``, ``highest`` or one variant index per stage.
            batch: Batch size of every stage, one per stage, or None (each stage's
                smallest).
        """
        super().__init__(env)
        self.target = target_ongoing_requests
        interval = self.env.config.interval_s
        self.up_after = max(1, int(round(upscale_delay_s / interval)))
        self.down_after = max(1, int(round(downscale_delay_s / interval)))
        self.fixed_variants = self.variants(variants)
        self.batches = self.batch_sizes(batch)
        self.reset()

    def reset(self) -> None:
        """Forget the upscale and downscale delay counters."""
        n = len(self.pipeline.stages)
        self.want_up = [0] * n
        self.want_down = [0] * n

    def decide(self, obs: np.ndarray) -> Decision:
        """Ray Serve's rule per stage on ongoing requests (see `DecidingPolicy.decide`).

        Args:
            obs: One observation of ``env`` (its stage queues and last rate).

        Returns:
            The fixed variants and batch with each stage's delayed replicas.
        """
        layout = self.env.layout
        rate = layout.last_rate_rps(obs)
        current = self.env.decision
        choices = []
        for i, stage in enumerate(self.pipeline.stages):
            v = self.fixed_variants[i]
            variant = stage.variants[v]
            replicas = current.stages[i].replicas if current is not None else 1
            queue = layout.queue_rps(obs, i) * self.env.config.interval_s
            in_service = rate * perf.stage_latency_ms(
                variant, self.batches[i], variant.base_cores, rate,
                self.env.settings.batch_timeout_ms) / 1e3
            desired = max(1, math.ceil((queue + in_service) / self.target))
            self.want_up[i] = self.want_up[i] + 1 if desired > replicas else 0
            self.want_down[i] = self.want_down[i] + 1 if desired < replicas else 0
            if self.want_up[i] >= self.up_after or self.want_down[i] >= self.down_after:
                replicas = desired
                self.want_up[i] = self.want_down[i] = 0
            replicas = int(min(replicas, self.env.config.max_replicas))
            choices.append(StageDecision(v, self.batches[i], replicas, variant.base_cores))
        return Decision(tuple(choices))


class StaticPolicy(RulePolicy):
    """One decision for the whole episode, sized for a peak rate fixed beforehand."""

    def __init__(self, env: Any, variants: VariantChoice = "lowest", batch: BatchChoice = None,
                 peak_rps: float | None = None) -> None:
        """Create the policy.

        Args:
            env: The env.
            variants: ``lowest``, ``highest`` or one variant index per stage.
            batch: Batch size of every stage, one per stage, or None (each stage's
                smallest).
            peak_rps: Rate the decision serves: the training data's peak (the evaluation
                passes it). Default: the env's configured observation scale
                (``rate_scale_rps``), never the episode's rates.
        """
        super().__init__(env)
        batches = self.batch_sizes(batch)
        peak = peak_rps if peak_rps is not None else self.env.layout.rate_scale
        chosen = self.variants(variants)
        self.decision = Decision(tuple(
            StageDecision(v, batches[i], self.replicas_for(v, i, batches[i], peak),
                          self.pipeline.stages[i].variants[v].base_cores)
            for i, v in enumerate(chosen)))

    def decide(self, obs: np.ndarray) -> Decision:
        """The fixed decision (see `DecidingPolicy.decide`).

        Args:
            obs: One observation of ``env`` (ignored).

        Returns:
            The decision sized at construction.
        """
        return self.decision


class RandomPolicy(RulePolicy):
    """Uniformly random valid actions (seeded)."""

    def __init__(self, env: Any, seed: int = 0) -> None:
        """Create the policy.

        Args:
            env: The env.
            seed: Seed of the action draws.
        """
        super().__init__(env)
        self.rng = np.random.default_rng(seed)

    def decide(self, obs: np.ndarray) -> Decision:
        """A uniformly drawn action, decoded (see `DecidingPolicy.decide`).

        Args:
            obs: One observation of ``env`` (ignored).

        Returns:
            The decoded random action.
        """
        nvec = self.env.action_space.nvec
        return self.env.decode(self.rng.integers(nvec))
