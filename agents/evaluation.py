"""Run every policy on the same windows with the same simulator seeds; collect metrics."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from agents.baselines import HpaPolicy, RandomPolicy, RayServePolicy, StaticPolicy
from agents.eval_config import EvalConfig, WindowSpec
from envs.env_config import EnvConfig
from envs.errors import ConfigError
from envs.pipeline_env import PipelineEnv
from envs.workloads import load_trace, synthetic_trace

PolicyFactory = Callable[[PipelineEnv], Any]


@dataclass(frozen=True)
class StepRecord:
    """One interval of one episode."""

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
    reward: float
    decision_ms: float
    errors: int = 0  # requests the backend failed (live replicas), apart from drops


@dataclass
class Episode:
    """All intervals of one policy on one window with one seed."""

    policy: str
    window: str
    seed: int
    steps: list[StepRecord]
    latencies_ms: np.ndarray
    energy_estimated: bool
    fallbacks: int = 0

    def metrics(self, sla_ms: float) -> dict[str, float]:
        """The per-episode metrics that the summary aggregates across seeds."""
        arrived = sum(s.arrived for s in self.steps)
        served = sum(s.served for s in self.steps)
        energy = sum(s.energy_j for s in self.steps)
        decisions = [s.decision for s in self.steps]
        if self.latencies_ms.size:
            p99 = float(np.percentile(self.latencies_ms, 99))
        else:
            p99 = float(np.nanmax([s.p99_ms for s in self.steps] or [math.nan]))
        times = np.array([s.decision_ms for s in self.steps])
        return {
            "sla_violation_rate": sum(s.sla_violations for s in self.steps) / max(arrived, 1),
            "p99_latency_ms": p99,
            "accuracy": float(np.mean([s.accuracy_sum for s in self.steps])),
            "accuracy_product": float(np.mean([s.accuracy_product for s in self.steps])),
            "cost_core_s": sum(s.cost_core_s for s in self.steps),
            "energy_j": energy,
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


def window_rates(spec: WindowSpec, trace_path: Path | None, damping: float) -> np.ndarray:
    """The per-second rates of one evaluation window."""
    if spec.segments:
        if trace_path is None:
            raise ConfigError(f"window {spec.name!r} takes segments of a trace; pass --trace "
                              "with the trace file (IPA's workload.txt)")
        full = load_trace(trace_path, damping)
        pieces = []
        for start, end in spec.segments:
            if not 0 <= start < end <= len(full):
                raise ConfigError(f"window {spec.name!r}: segment [{start}, {end}) is outside "
                                  f"the trace's {len(full)} seconds")
            pieces.append(full[start:end])
        return np.concatenate(pieces)
    return synthetic_trace(spec.pattern, spec.window_s, spec.seed, spec.scale)


def write_window(rates: np.ndarray, path: Path) -> Path:
    """Save a window as a one-value-a-line trace (the env reads it back by path)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(str(int(r)) for r in rates) + "\n")
    return path


def window_env(base: EnvConfig, trace_file: Path, seconds: int) -> PipelineEnv:
    """An env whose episode is exactly the saved window."""
    usable = seconds - seconds % base.interval_s
    workload = replace(base.workload, source="trace", trace_path=str(trace_file), damping=1.0,
                       start_s=None, end_s=None, window_s=usable, scale=1.0)
    return PipelineEnv(replace(base, workload=workload))


def run_episode(env: PipelineEnv, policy: Any, policy_name: str, window: str, seed: int
                ) -> Episode:
    """Play one episode from the window's first second; time every decision."""
    obs, _ = env.reset(seed=seed, options={"window_start": 0})
    if hasattr(policy, "reset"):
        policy.reset()
    steps: list[StepRecord] = []
    latencies = []
    truncated = False
    episode_start = np.array([True])
    while not truncated:
        t0 = time.perf_counter()
        action, _ = policy.predict(obs, episode_start=episode_start, deterministic=True)
        decision_ms = (time.perf_counter() - t0) * 1e3
        episode_start = np.array([False])
        t_s = len(steps) * env.config.interval_s
        rate = float(env.upcoming_rates().mean())
        obs, reward, _, truncated, info = env.step(np.asarray(action).reshape(-1))
        stats, decision = info["stats"], info["decision"]
        steps.append(StepRecord(
            t_s=t_s, rate_rps=rate, forecast_rps=info["forecast_rps"],
            decision=decision.describe(env.pipeline),
            variants=tuple(c.variant for c in decision.stages),
            replicas=tuple(c.replicas for c in decision.stages),
            batches=tuple(c.batch for c in decision.stages),
            arrived=stats.arrived, served=stats.served, dropped=stats.dropped,
            sla_violations=stats.sla_violations, p99_ms=stats.p99_ms,
            accuracy_sum=stats.accuracy_sum, accuracy_product=stats.accuracy_product,
            cores=stats.cores, cost_core_s=stats.cost_core_s, energy_j=stats.energy_j,
            reward=reward, decision_ms=decision_ms, errors=stats.errors,
        ))
        if stats.latencies_ms is not None:
            latencies.append(stats.latencies_ms)
    return Episode(policy_name, window, seed, steps,
                   np.concatenate(latencies) if latencies else np.empty(0),
                   env.pipeline.energy_estimated, int(getattr(policy, "fallbacks", 0)))


def policy_factories(config: EvalConfig, tuned: dict[str, float],
                     agent_dir: Path | Sequence[Path] | None) -> dict[str, PolicyFactory]:
    """Constructors of every policy the config names, for a given env.

    ``ppo`` is the agent of ``agent_dir``; given several run folders (a sweep's trials,
    `agents.sweep_dirs`), it becomes one policy ``ppo/<trial>`` per folder.
    """
    from ipa_baseline.policies import FA2Policy, IPAPolicy, RIMPolicy

    w = config.ipa
    ipa_kwargs = {"mode": w.mode, "alpha": w.alpha, "beta": w.beta, "gamma": w.gamma}
    variants = config.baseline_variants
    factories: dict[str, PolicyFactory] = {
        "ipa": lambda env: IPAPolicy(env, **ipa_kwargs),
        "ipa_energy": lambda env: IPAPolicy(env, **ipa_kwargs, delta=w.delta,
                                            use_batch_timeout=True),
        "ipa_oracle": lambda env: IPAPolicy(env, **ipa_kwargs, forecast="oracle"),
        "fa2_low": lambda env: FA2Policy(env, "low", **ipa_kwargs),
        "fa2_high": lambda env: FA2Policy(env, "high", **ipa_kwargs),
        "rim": lambda env: RIMPolicy(env, **ipa_kwargs),
        "hpa": lambda env: HpaPolicy(env, tuned.get("hpa", 0.7), variants=variants),
        "ray_serve": lambda env: RayServePolicy(env, tuned.get("ray_serve", 2.0),
                                                variants=variants),
        "static_low": lambda env: StaticPolicy(env, "lowest"),
        "static_high": lambda env: StaticPolicy(env, "highest"),
        "random": lambda env: RandomPolicy(env, seed=0),
    }
    dirs = [agent_dir] if isinstance(agent_dir, Path) else list(agent_dir or ())
    ppo_names: list[str] = []
    if "ppo" in config.policies:
        if not dirs:
            raise ConfigError("policy 'ppo' needs --agent runs/<name> (a train.py run folder)")
        from agents.policy import load_ppo_policy
        from agents.sweep_dirs import ppo_policy_names

        ppo_names = ppo_policy_names(dirs)
        for name, run_dir in zip(ppo_names, dirs, strict=True):
            factories[name] = partial(_loaded, load_ppo_policy(run_dir))
    names = [n for p in config.policies for n in (ppo_names if p == "ppo" else [p])]
    return {name: factories[name] for name in names}


def _loaded(policy: Any, env: Any) -> Any:
    """A factory's answer for an already loaded policy (the same for every env)."""
    del env
    return policy


def tune_baselines(config: EvalConfig, work_dir: Path) -> dict[str, float]:
    """Pick HPA's utilisation target and Ray Serve's ongoing-request target by reward on
    synthetic *training* windows (a seed no evaluation window uses)."""
    tuned: dict[str, float] = {}
    grids = {"hpa": (config.hpa_targets, HpaPolicy), "ray_serve": (config.ray_targets,
                                                                   RayServePolicy)}
    for name, (grid, cls) in grids.items():
        if name not in config.policies:
            continue
        scores = {}
        for target in grid:
            total = 0.0
            for pattern in ("bursty", "fluctuating"):
                rates = synthetic_trace(pattern, 600, config.tuning_seed)
                path = write_window(rates, work_dir / "tuning" / f"{pattern}.txt")
                env = window_env(replace(config.env, backend="fluid"), path, len(rates))
                policy = cls(env, target, variants=config.baseline_variants)
                total += sum(s.reward for s in run_episode(env, policy, name, pattern,
                                                           0).steps)
            scores[target] = total
        tuned[name] = max(scores, key=lambda t: scores[t])
    return tuned


def evaluate(config: EvalConfig, report_dir: Path, trace_path: Path | None,
             agent_dir: Path | Sequence[Path] | None,
             progress: Callable[[str], None] | None = None) -> Iterator[Episode]:
    """Yield one `Episode` per (window, seed, policy)."""
    tuned = tune_baselines(config, report_dir)
    for spec in config.windows:
        rates = window_rates(spec, trace_path, config.trace_damping)
        path = write_window(rates, report_dir / "workloads" / f"{spec.name}.txt")
        for seed in config.seeds:
            for name, factory in policy_factories(config, tuned, agent_dir).items():
                # Baselines apply exact decisions: they act in absolute mode, whatever
                # action mode the agent was trained with (same simulator, same windows).
                base = config.env if name.split("/")[0] == "ppo" else replace(config.env,
                                                                action_mode="absolute")
                env = window_env(base, path, len(rates))
                if progress:
                    progress(f"{spec.name} seed {seed} {name}")
                yield run_episode(env, factory(env), name, spec.name, seed)
                env.close()
