"""The one episode loop: evaluation, training-time validation and the benchmarks use it.

`run_episode` plays any policy with stable-baselines3's ``predict()`` on a `PipelineEnv`
from one window start and records every interval (`StepRecord`); `Episode.metrics` turns
the records into the figures every report uses, with one definition of each (p99 latency:
`episode_p99_ms`; accuracy both averaged over time and weighted by requests served).
`agents.training.validation.evaluate_windows` pools several episodes for training-time validation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from envs.backends.base import IntervalStats, weighted_quantile
from envs.pipeline_env import PipelineEnv

__all__ = [
    "ENERGY_COLUMNS",
    "Episode",
    "StepRecord",
    "energy_method",
    "episode_p99_ms",
    "run_episode",
]

ENERGY_COLUMNS: tuple[str, ...] = ("energy_j", "static_j", "idle_j", "dynamic_j")
"""`IntervalStats` fields of energy (joules) that every summary row and report carries:
the total, then the power model's split (static, idle, dynamic)."""


@dataclass(frozen=True)
class StepRecord:
    """One interval of one episode: what the policy decided and what the backend reported.

    Attributes:
        t_s: Second of the window at which the interval starts.
        rate_rps: The interval's true mean arrival rate, recorded for reports only (no
            policy reads it).
        forecast_rps: What the env's predictor forecast before the interval.
        decision: The decision applied, as text (`Decision.describe`).
        variants: Variant index per stage.
        replicas: Replicas per stage.
        batches: Batch size per stage.
        reward: The env's reward for the interval.
        decision_ms: Wall time of the policy's ``predict``.
        stats: The backend's `IntervalStats` (without per-request latencies, which the
            `Episode` keeps once).
        terms: The reward's unweighted terms.
    """

    t_s: int
    rate_rps: float
    forecast_rps: float
    decision: str
    variants: tuple[int, ...]
    replicas: tuple[int, ...]
    batches: tuple[int, ...]
    reward: float
    decision_ms: float
    stats: IntervalStats
    terms: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, object]:
        """The record as one flat row: its own fields, every scalar `IntervalStats` field,
        then the reward terms as ``term_<name>``.

        Returns:
            Column name to value (per-request latencies left out).
        """
        own = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("stats", "terms")}
        stats = {f.name: getattr(self.stats, f.name) for f in fields(self.stats)
                 if isinstance(getattr(self.stats, f.name), bool | int | float | str)}
        return {**own, **stats, **{f"term_{k}": v for k, v in self.terms.items()}}


def step_record(env: PipelineEnv, t_s: int, rate_rps: float, reward: float,
                decision_ms: float, info: dict[str, Any]) -> StepRecord:
    """The record of one `PipelineEnv.step`.

    Args:
        env: The env that stepped.
        t_s: Second of the window at which the interval started.
        rate_rps: The interval's true mean rate (for reports).
        reward: The step's reward.
        decision_ms: Wall time of the decision.
        info: The step's ``info`` (``stats``, ``decision``, ``forecast_rps``,
            ``reward_terms``).

    Returns:
        The `StepRecord`.
    """
    stats: IntervalStats = info["stats"]
    decision = info["decision"]
    return StepRecord(
        t_s=t_s, rate_rps=rate_rps, forecast_rps=info["forecast_rps"],
        decision=decision.describe(env.pipeline),
        variants=tuple(c.variant for c in decision.stages),
        replicas=tuple(c.replicas for c in decision.stages),
        batches=tuple(c.batch for c in decision.stages),
        reward=reward, decision_ms=decision_ms,
        stats=replace(stats, latencies_ms=None,
                      energy_estimated=bool(stats.energy_estimated)),
        terms=dict(info["reward_terms"]),
    )


def episode_p99_ms(steps: list[StepRecord], latencies_ms: np.ndarray) -> float:
    """The p99 end-to-end latency of an episode, the one definition every report uses.

    The 99th percentile of every served request's latency when the backend reports them
    (request simulator, live); otherwise (fluid simulator) the 99th percentile of the
    intervals' p99s weighted by requests served. NaN when nothing was served.

    Args:
        steps: The episode's interval records.
        latencies_ms: Every served request's latency (empty for the fluid simulator).

    Returns:
        The p99 latency in ms, or NaN.
    """
    if latencies_ms.size:
        return float(np.percentile(latencies_ms, 99))
    kept = [(s.stats.p99_ms, s.stats.served) for s in steps
            if s.stats.served and not math.isnan(s.stats.p99_ms)]
    if not kept:
        return math.nan
    return weighted_quantile([p for p, _ in kept], [w for _, w in kept], 0.99)


def energy_method(env: PipelineEnv) -> str:
    """How the env's backend obtains energy, for the report beside measured/estimated.

    Args:
        env: The env the episode ran on.

    Returns:
        A short description: the live meter's class, the CPU-time estimate, or the
        simulator's profile rows.
    """
    meter = getattr(env.backend, "meter", None)
    if env.config.backend == "live":
        return (f"meter {type(meter).__name__}" if meter is not None
                else "CPU-time estimate (envs/live/energy.py)")
    return "simulated from the profile's energy rows (see the profile's sources)"


def reported_method(steps: list[StepRecord]) -> str:
    """The energy methods the backend reported for the intervals, joined when they differ.

    Args:
        steps: The episode's interval records.

    Returns:
        The distinct ``energy_method`` values in order of first use, joined by ``"; "``
        (empty if none was reported).
    """
    return "; ".join(dict.fromkeys(s.stats.energy_method for s in steps
                                   if s.stats.energy_method))


@dataclass
class Episode:
    """All intervals of one policy on one window with one simulator seed.

    Attributes:
        train_seed: Training seed of a learned policy (0 for rules, which have none).
        energy_method: How the backend obtained energy (`energy_method`).
        fallbacks: Decisions that fell back to the policy's documented default.
        kept: Infeasible intervals in which the policy kept its configuration (IPA's rule).
    """

    policy: str
    window: str
    seed: int
    steps: list[StepRecord]
    latencies_ms: np.ndarray
    energy_method: str = ""
    fallbacks: int = 0
    train_seed: int = 0
    kept: int = 0

    @property
    def energy_estimated(self) -> bool:
        """Whether any interval's energy was estimated, as the backend reported it."""
        return any(s.stats.energy_estimated for s in self.steps)

    def metrics(self, sla_ms: float) -> dict[str, float]:
        """The per-episode metrics that the summary aggregates.

        ``accuracy`` is the mean over intervals of the decision's accuracy (time-averaged);
        ``accuracy_requests`` weights each interval by the requests it served.

        Args:
            sla_ms: The end-to-end SLA, recorded beside the metrics as ``sla_ms``.

        Returns:
            Metric name to value (SLA violation rate, p99 latency, accuracies, cost,
            energy columns, reconfigurations, decision times, reward, ...).
        """
        stats = [s.stats for s in self.steps]
        arrived = sum(s.arrived for s in stats)
        served = sum(s.served for s in stats)
        energy = sum(s.energy_j for s in stats)
        decisions = [s.decision for s in self.steps]
        times = np.array([s.decision_ms for s in self.steps])
        weighted = (sum(s.accuracy_rank_sum * s.served for s in stats) / served if served
                    else math.nan)
        out = {
            "sla_violation_rate": sum(s.sla_violations for s in stats) / max(arrived, 1),
            "p99_latency_ms": episode_p99_ms(self.steps, self.latencies_ms),
            "accuracy": float(np.mean([s.accuracy_rank_sum for s in stats])),
            "accuracy_requests": weighted,
            "accuracy_product": float(np.mean([s.accuracy_product for s in stats])),
            "cost_core_s": sum(s.cost_core_s for s in stats),
            "energy_per_request_j": energy / max(served, 1),
            "reconfigurations": float(sum(a != b for a, b in zip(decisions, decisions[1:],
                                                                 strict=False))),
            "decision_ms_median": float(np.median(times)),
            "decision_ms_p99": float(np.percentile(times, 99)),
            "dropped": float(sum(s.dropped for s in stats)),
            "errors": float(sum(s.errors for s in stats)),
            "fallbacks": float(self.fallbacks),
            "kept": float(self.kept),
            "reward": sum(s.reward for s in self.steps),
            "sla_ms": sla_ms,
        }
        for name in ENERGY_COLUMNS:
            out[name] = sum(float(getattr(s, name)) for s in stats)
        return out


def run_episode(env: PipelineEnv, policy: Any, policy_name: str, window: str, seed: int,
                window_start: int = 0, use_masks: bool = False, train_seed: int = 0,
                deterministic: bool = True) -> Episode:
    """Play one episode and time every decision.

    Args:
        env: The env (its warm-up history precedes ``window_start``).
        policy: Anything with ``predict(obs, state, episode_start, deterministic)``.
        policy_name: Name in the records.
        window: Workload name in the records.
        seed: Reset seed: with the request simulator it fixes every arrival time and
            service draw (common random numbers across policies).
        window_start: Second of the env's trace at which the episode starts.
        use_masks: Pass ``env.action_masks()`` (MaskablePPO policies).
        train_seed: Training seed of a learned policy, recorded in the episode.
        deterministic: Passed to ``predict``: the greedy action (evaluation), or sampled
            (a learned policy's stochastic play).

    Returns:
        The `Episode`.
    """
    obs, _ = env.reset(seed=seed, options={"window_start": window_start})
    steps: list[StepRecord] = []
    latencies = []
    truncated = False
    episode_start = np.array([True])
    while not truncated:
        kwargs = {"action_masks": env.action_masks()} if use_masks else {}
        t0 = time.perf_counter()
        action, _ = policy.predict(obs, None, episode_start, deterministic, **kwargs)
        decision_ms = (time.perf_counter() - t0) * 1e3
        episode_start = np.array([False])
        t_s = len(steps) * env.config.interval_s
        rate = float(env.upcoming_rates().mean())  # recorded, never shown to the policy
        obs, reward, _, truncated, info = env.step(np.asarray(action).reshape(-1))
        steps.append(step_record(env, t_s, rate, float(reward), decision_ms, info))
        if info["stats"].latencies_ms is not None:
            latencies.append(info["stats"].latencies_ms)
    return Episode(policy_name, window, seed, steps,
                   np.concatenate(latencies) if latencies else np.empty(0),
                   reported_method(steps) or energy_method(env),
                   int(getattr(policy, "fallbacks", 0)), train_seed,
                   int(getattr(policy, "kept", 0)))
