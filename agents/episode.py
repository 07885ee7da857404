"""The one episode loop: evaluation, training-time validation and the benchmarks use it.

`run_episode` plays any policy with stable-baselines3's ``predict()`` on a `PipelineEnv`
from one window start and records every interval (`StepRecord`); `Episode.metrics` turns
the records into the figures every report uses, with one definition of each (p99 latency:
`episode_p99_ms`; accuracy both averaged over time and weighted by requests served).
`evaluate_windows` pools several episodes for training-time validation (`EvalResult`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs.backends.base import IntervalStats, weighted_quantile
from envs.pipeline_env import PipelineEnv

__all__ = [
    "ENERGY_COLUMNS",
    "EvalResult",
    "Episode",
    "StepRecord",
    "energy_method",
    "episode_p99_ms",
    "evaluate_windows",
    "run_episode",
]

ENERGY_COLUMNS: tuple[str, ...] = ("energy_j", "static_j", "idle_j", "dynamic_j")
"""`IntervalStats` fields of energy (joules) that every step, summary row and report
carries. The total comes first; the power model's split (static, idle, dynamic; issue 11)
is added here by name when `IntervalStats` gains those fields."""


@dataclass(frozen=True)
class StepRecord:
    """One interval of one episode.

    ``rate_rps`` is the interval's true mean arrival rate, recorded for reports only (no
    policy reads it); ``forecast_rps`` is what the env's predictor forecast before it.
    """

    t_s: int
    rate_rps: float
    forecast_rps: float
    decision: str
    variants: tuple[int, ...]
    replicas: tuple[int, ...]
    batches: tuple[int, ...]
    arrived: int
    served: int
    dropped: int
    sla_violations: int
    p99_ms: float
    accuracy_sum: float
    accuracy_product: float
    cores: float
    cost_core_s: float
    energy_j: float
    energy_estimated: bool
    reward: float
    decision_ms: float
    energy: dict[str, float] = field(default_factory=dict)
    terms: dict[str, float] = field(default_factory=dict)
    errors: int = 0  # requests the backend failed (live replicas), apart from drops
    energy_method: str = ""  # how the backend obtained this interval's energy


def step_record(env: PipelineEnv, t_s: int, rate_rps: float, reward: float,
                decision_ms: float, info: dict[str, Any]) -> StepRecord:
    """The record of one `PipelineEnv.step` from its ``info``."""
    stats: IntervalStats = info["stats"]
    decision = info["decision"]
    return StepRecord(
        t_s=t_s, rate_rps=rate_rps, forecast_rps=info["forecast_rps"],
        decision=decision.describe(env.pipeline),
        variants=tuple(c.variant for c in decision.stages),
        replicas=tuple(c.replicas for c in decision.stages),
        batches=tuple(c.batch for c in decision.stages),
        arrived=stats.arrived, served=stats.served, dropped=stats.dropped,
        sla_violations=stats.sla_violations, p99_ms=stats.p99_ms,
        accuracy_sum=stats.accuracy_sum, accuracy_product=stats.accuracy_product,
        cores=stats.cores, cost_core_s=stats.cost_core_s, energy_j=stats.energy_j,
        energy_estimated=bool(stats.energy_estimated), reward=reward,
        decision_ms=decision_ms,
        energy={name: float(getattr(stats, name)) for name in ENERGY_COLUMNS},
        terms=dict(info["reward_terms"]),
        errors=stats.errors, energy_method=stats.energy_method,
    )


def episode_p99_ms(steps: list[StepRecord], latencies_ms: np.ndarray) -> float:
    """The p99 end-to-end latency of an episode, the one definition every report uses.

    The 99th percentile of every served request's latency when the backend reports them
    (request simulator, live); otherwise (fluid simulator) the 99th percentile of the
    intervals' p99s weighted by requests served. NaN when nothing was served.
    """
    if latencies_ms.size:
        return float(np.percentile(latencies_ms, 99))
    kept = [(s.p99_ms, s.served) for s in steps if s.served and not math.isnan(s.p99_ms)]
    if not kept:
        return math.nan
    return weighted_quantile([p for p, _ in kept], [w for _, w in kept], 0.99)


def energy_method(env: PipelineEnv) -> str:
    """How the env's backend obtains energy, for the report beside measured/estimated."""
    meter = getattr(env.backend, "meter", None)
    if env.config.backend == "live":
        return (f"meter {type(meter).__name__}" if meter is not None
                else "CPU-time estimate (envs/live/energy.py)")
    return "simulated from the profile's energy rows (see the profile's sources)"


def reported_method(steps: list[StepRecord]) -> str:
    """The energy methods the backend reported for the intervals, joined when they differ."""
    return "; ".join(dict.fromkeys(s.energy_method for s in steps if s.energy_method))


@dataclass
class Episode:
    """All intervals of one policy on one window with one simulator seed.

    Attributes:
        train_seed: Training seed of a learned policy (0 for rules, which have none).
        energy_method: How the backend obtained energy (`energy_method`).
    """

    policy: str
    window: str
    seed: int
    steps: list[StepRecord]
    latencies_ms: np.ndarray
    energy_method: str = ""
    fallbacks: int = 0
    train_seed: int = 0

    @property
    def energy_estimated(self) -> bool:
        """Whether any interval's energy was estimated, as the backend reported it."""
        return any(s.energy_estimated for s in self.steps)

    def metrics(self, sla_ms: float) -> dict[str, float]:
        """The per-episode metrics that the summary aggregates.

        ``accuracy`` is the mean over intervals of the decision's accuracy (time-averaged);
        ``accuracy_requests`` weights each interval by the requests it served.
        """
        arrived = sum(s.arrived for s in self.steps)
        served = sum(s.served for s in self.steps)
        energy = sum(s.energy_j for s in self.steps)
        decisions = [s.decision for s in self.steps]
        times = np.array([s.decision_ms for s in self.steps])
        weighted = (sum(s.accuracy_sum * s.served for s in self.steps) / served if served
                    else math.nan)
        out = {
            "sla_violation_rate": sum(s.sla_violations for s in self.steps) / max(arrived, 1),
            "p99_latency_ms": episode_p99_ms(self.steps, self.latencies_ms),
            "accuracy": float(np.mean([s.accuracy_sum for s in self.steps])),
            "accuracy_requests": weighted,
            "accuracy_product": float(np.mean([s.accuracy_product for s in self.steps])),
            "cost_core_s": sum(s.cost_core_s for s in self.steps),
            "energy_per_request_j": energy / max(served, 1),
            "reconfigurations": float(sum(a != b for a, b in zip(decisions, decisions[1:],
                                                                 strict=False))),
            "decision_ms_median": float(np.median(times)),
            "decision_ms_p99": float(np.percentile(times, 99)),
            "dropped": float(sum(s.dropped for s in self.steps)),
            "errors": float(sum(s.errors for s in self.steps)),
            "fallbacks": float(self.fallbacks),
            "reward": sum(s.reward for s in self.steps),
            "sla_ms": sla_ms,
        }
        for name in ENERGY_COLUMNS:
            out[name] = sum(s.energy[name] for s in self.steps)
        return out


def run_episode(env: PipelineEnv, policy: Any, policy_name: str, window: str, seed: int,
                window_start: int = 0, use_masks: bool = False, train_seed: int = 0
                ) -> Episode:
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

    Returns:
        The `Episode`.
    """
    obs, _ = env.reset(seed=seed, options={"window_start": window_start})
    if hasattr(policy, "reset"):
        policy.reset()
    steps: list[StepRecord] = []
    latencies = []
    truncated = False
    episode_start = np.array([True])
    while not truncated:
        kwargs = {"action_masks": env.action_masks()} if use_masks else {}
        t0 = time.perf_counter()
        action, _ = policy.predict(obs, None, episode_start, True, **kwargs)
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
                   int(getattr(policy, "fallbacks", 0)), train_seed)


@dataclass(frozen=True)
class EvalResult:
    """Domain metrics of a policy over validation windows (training-time evaluation).

    Attributes:
        episodes: Windows played.
        mean_reward: Mean episode return (sum of env rewards).
        std_reward: Standard deviation of the episode returns.
        sla_violation_rate: Violations over arrivals, all windows pooled.
        energy_j: Mean energy per episode (joules).
        power_w: Mean power over all intervals.
        accuracy: Mean per-stage accuracy term over intervals.
        cores: Mean cores allocated per interval.
        p99_ms: Mean over episodes of `episode_p99_ms`.
        energy_estimated: Whether any energy figure was estimated rather than measured.
        reward_terms: Mean of each unweighted reward term per interval.
    """

    episodes: int
    mean_reward: float
    std_reward: float
    sla_violation_rate: float
    energy_j: float
    power_w: float
    accuracy: float
    cores: float
    p99_ms: float
    energy_estimated: bool
    reward_terms: dict[str, float]

    def metrics(self, prefix: str = "eval/") -> dict[str, float]:
        """Flat ``{prefix + name: value}`` for logging (booleans as 0/1)."""
        out = {
            "mean_reward": self.mean_reward, "std_reward": self.std_reward,
            "sla_violation_rate": self.sla_violation_rate, "energy_j": self.energy_j,
            "power_w": self.power_w, "accuracy": self.accuracy, "cores": self.cores,
            "p99_ms": self.p99_ms, "energy_estimated": float(self.energy_estimated),
        }
        out.update({f"term_{k}": v for k, v in self.reward_terms.items()})
        return {prefix + k: float(v) for k, v in out.items()}


def evaluate_windows(policy: Any, env: PipelineEnv, window_starts: list[int], seed: int = 0,
                     deterministic: bool = True, use_masks: bool = False) -> EvalResult:
    """Play ``policy`` once over each window with `run_episode` and pool the metrics.

    Args:
        policy: Anything with ``predict`` (raw observations in, env actions out).
        env: An unwrapped `PipelineEnv`.
        window_starts: Trace second at which each episode starts.
        seed: Episode ``i`` resets with ``seed + i`` (the backend's randomness).
        deterministic: Kept for the callers' signature; `run_episode` is always greedy.
        use_masks: Pass ``env.action_masks()`` to ``predict`` (MaskablePPO policies).

    Returns:
        The pooled `EvalResult`.
    """
    del deterministic  # validation always plays the greedy policy
    episodes = [run_episode(env, policy, "policy", str(start), seed + i, start, use_masks)
                for i, start in enumerate(window_starts)]
    steps = [s for ep in episodes for s in ep.steps]
    returns = [sum(s.reward for s in ep.steps) for ep in episodes]
    energy = [sum(s.energy_j for s in ep.steps) for ep in episodes]
    arrived = sum(s.arrived for s in steps)
    seconds = len(steps) * env.config.interval_s
    n = max(len(steps), 1)
    terms: dict[str, float] = {}
    for s in steps:
        for k, v in s.terms.items():
            terms[k] = terms.get(k, 0.0) + v
    p99s = [p for ep in episodes if not math.isnan(p := episode_p99_ms(ep.steps,
                                                                        ep.latencies_ms))]
    return EvalResult(
        episodes=len(episodes),
        mean_reward=float(np.mean(returns)) if returns else math.nan,
        std_reward=float(np.std(returns)) if returns else math.nan,
        sla_violation_rate=sum(s.sla_violations for s in steps) / arrived if arrived else 0.0,
        energy_j=float(np.mean(energy)) if energy else math.nan,
        power_w=float(sum(energy)) / seconds if seconds else 0.0,
        accuracy=sum(s.terms.get("accuracy", 0.0) for s in steps) / n,
        cores=sum(s.cores for s in steps) / n,
        p99_ms=float(np.mean(p99s)) if p99s else math.nan,
        energy_estimated=any(ep.energy_estimated for ep in episodes),
        reward_terms={k: v / n for k, v in terms.items()},
    )
