"""Run every policy on the same windows with the same simulator seeds; collect episodes.

The protocol (docs/protocol.md): every window starts with the history that preceded it
(`Window.warmup`); the static baselines and RIM are sized from training data
(`training_peak`); HPA, Ray Serve, ipa_tuned and ipa_energy are tuned on validation windows
(`tune_baselines`); every policy plays through `agents.episode.run_episode` on the same
simulator seeds (common random numbers); a PPO result is one episode per training seed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from agents.baselines import HpaPolicy, RandomPolicy, RayServePolicy, StaticPolicy
from agents.episode import Episode, run_episode
from agents.eval_config import EvalConfig, WindowSpec
from envs.config import to_dict
from envs.day_split import sample_heldout_starts
from envs.env_config import EnvConfig
from envs.errors import ConfigError
from envs.pipeline_env import PipelineEnv
from envs.traces import load_trace
from envs.workloads import synthetic_trace

PolicyFactory = Callable[[PipelineEnv], Any]


@dataclass(frozen=True)
class Window:
    """One evaluation (or tuning) workload and the history before it.

    Attributes:
        name: Name in the report.
        warmup: Per-second rates before the window (never played; the predictor and every
            policy start from them).
        rates: The window's per-second rates.
        source: Where it comes from, for the report's workload table.
    """

    name: str
    warmup: np.ndarray
    rates: np.ndarray
    source: str


@dataclass(frozen=True)
class Peak:
    """The rate that sizes the static baselines and RIM, and where it comes from."""

    rps: float
    source: str


@lru_cache(maxsize=2)
def full_trace(path: str, damping: float, scale: float = 1.0) -> np.ndarray:
    """The whole ``--trace`` file, damped (IPA's integer floor), then multiplied by
    ``scale`` (`EvalConfig.trace_scale`, fractions kept); loaded once per process."""
    rates = load_trace(path, damping)
    return rates * scale if scale != 1.0 else rates


def _scaled(rates: np.ndarray, scale: float) -> np.ndarray:
    return rates * scale if scale != 1.0 else rates


def window_rates(spec: WindowSpec, trace_path: Path | None, damping: float,
                 warmup_s: int, trace_scale: float = 1.0) -> Window:
    """A window of the config with its warm-up history.

    Trace windows take the ``warmup_s`` seconds before their first segment; synthetic
    ones generate ``warmup_s + window_s`` seconds of their pattern and keep the last
    ``window_s`` (the prefix is the warm-up).

    Raises:
        ConfigError: A trace window without ``--trace``, or a segment outside the trace.
    """
    if not spec.segments:
        both = synthetic_trace(spec.pattern, warmup_s + spec.window_s, spec.seed, spec.scale)
        return Window(spec.name, both[:warmup_s], both[warmup_s:],
                      f"synthetic {spec.pattern}, seed {spec.seed}, scale {spec.scale:g}, "
                      f"{warmup_s} s generated warm-up")
    if trace_path is None:
        raise ConfigError(f"window {spec.name!r} takes segments of a trace; pass --trace "
                          "with the trace file (IPA's workload.txt)")
    full = full_trace(str(trace_path), damping, trace_scale)
    for start, end in spec.segments:
        if not 0 <= start < end <= len(full):
            raise ConfigError(f"window {spec.name!r}: segment [{start}, {end}) is outside "
                              f"the trace's {len(full)} seconds")
    first = spec.segments[0][0]
    if first < warmup_s:
        raise ConfigError(f"window {spec.name!r} starts at second {first}, before "
                          f"{warmup_s} s of warm-up history; start it later")
    rates = np.concatenate([full[a:b] for a, b in spec.segments])
    return Window(spec.name, _scaled(full[first - warmup_s:first], spec.scale),
                  _scaled(rates, spec.scale),
                  f"trace {trace_path.name} seconds {[list(s) for s in spec.segments]}, "
                  f"damping {damping:g}, scale {spec.scale:g}, the {warmup_s} s before as "
                  "warm-up")


def heldout_windows(config: EvalConfig, trace_path: Path | None) -> list[Window]:
    """The windows sampled from held-out days (`EvalConfig.heldout`)."""
    h = config.heldout
    if not h.windows:
        return []
    if trace_path is None:
        raise ConfigError("heldout.windows samples windows of a trace; pass --trace")
    warmup_s = config.env.workload.warmup_s
    full = full_trace(str(trace_path), config.trace_damping, config.trace_scale)
    starts = sample_heldout_starts(full, h.days, h.window_s, h.windows, h.seed, warmup_s,
                                   config.days.day_s)
    out = []
    for i, start in enumerate(starts):
        spec = WindowSpec(f"heldout_{i}", segments=((start, start + h.window_s),))
        window = window_rates(spec, trace_path, config.trace_damping, warmup_s,
                              config.trace_scale)
        out.append(replace(window, source=f"held-out day {start // config.days.day_s} "
                                          f"(seed {h.seed}): {window.source}"))
    return out


def evaluation_windows(config: EvalConfig, trace_path: Path | None) -> list[Window]:
    """Every window the config evaluates: its own, then the held-out ones."""
    warmup_s = config.env.workload.warmup_s
    return [window_rates(s, trace_path, config.trace_damping, warmup_s, config.trace_scale)
            for s in config.windows] + heldout_windows(config, trace_path)


def window_env(base: EnvConfig, window: Window, folder: Path) -> PipelineEnv:
    """An env whose episode is exactly ``window`` after its warm-up (saved under folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{window.name}.txt"
    path.write_text("\n".join(f"{r:.12g}" for r in np.concatenate([window.warmup,
                                                                     window.rates])) + "\n")
    seconds = len(window.rates)
    usable = seconds - seconds % base.interval_s
    workload = replace(base.workload, source="trace", trace_path=str(path), damping=1.0,
                       start_s=None, end_s=None, window_s=usable, scale=1.0,
                       warmup_s=len(window.warmup))
    return PipelineEnv(replace(base, workload=workload))


def training_peak(config: EvalConfig, trace_path: Path | None) -> Peak:
    """The peak rate of the training data: the ``--trace``'s training days when it holds
    them, else the synthetic training trace (all four patterns, ``tuning_seed``)."""
    d = config.days
    if trace_path is not None and config.uses_trace:
        full = full_trace(str(trace_path), config.trace_damping, config.trace_scale)
        if d.train_days and (max(d.train_days) + 1) * d.day_s <= len(full):
            peak = max(float(full[x * d.day_s:(x + 1) * d.day_s].max()) for x in d.train_days)
            return Peak(peak, f"maximum of {trace_path.name} (damping "
                              f"{config.trace_damping:g}, scale {config.trace_scale:g}) over "
                              f"training days "
                              f"{list(d.train_days)}")
    rates = synthetic_trace("mixed", 4 * 1200 * 4, config.tuning_seed)
    return Peak(float(rates.max()), f"maximum of the synthetic mixed training trace (seed "
                                    f"{config.tuning_seed}, {rates.size} s)")


def ipa_family_kwargs(config: EvalConfig) -> dict[str, Any]:
    """The keyword arguments every IPA-family policy of an evaluation shares."""
    from ipa_baseline.rules import IpaRules

    w = config.ipa
    return {"mode": w.mode, "alpha": w.alpha, "beta": w.beta, "gamma": w.gamma,
            "rules": IpaRules(on_infeasible=w.on_infeasible)}


def policy_factories(config: EvalConfig, tuned: dict[str, float], peak_rps: float,
                     names: tuple[str, ...]) -> dict[str, PolicyFactory]:
    """Constructors of the non-learned policies in ``names``, for a given env."""
    from ipa_baseline.policies import FA2Policy, IPAPolicy, RIMPolicy, default_rim_replicas
    from ipa_baseline.tuned import TunedIPAPolicy

    w = config.ipa
    ipa_kwargs = ipa_family_kwargs(config)
    variants = config.baseline_variants

    def rim(env: PipelineEnv) -> RIMPolicy:
        fixed = default_rim_replicas(env.pipeline, peak_rps, env.config.max_replicas)
        return RIMPolicy(env, replicas=fixed, **ipa_kwargs)

    factories: dict[str, PolicyFactory] = {
        "ipa": lambda env: IPAPolicy(env, **ipa_kwargs),
        "ipa_tuned": lambda env: TunedIPAPolicy(env, tuned.get("ipa_tuned", 1.0),
                                                **ipa_kwargs),
        "ipa_energy": lambda env: IPAPolicy(env, **ipa_kwargs,
                                            delta=tuned.get("ipa_energy", w.delta),
                                            use_batch_timeout=True),
        "ipa_oracle": lambda env: IPAPolicy(env, **ipa_kwargs, forecast="oracle"),
        "fa2_low": lambda env: FA2Policy(env, "low", **ipa_kwargs),
        "fa2_high": lambda env: FA2Policy(env, "high", **ipa_kwargs),
        "rim": rim,
        "hpa": lambda env: HpaPolicy(env, tuned.get("hpa", 0.7), variants=variants),
        "ray_serve": lambda env: RayServePolicy(env, tuned.get("ray_serve", 2.0),
                                                variants=variants),
        "static_low": lambda env: StaticPolicy(env, "lowest", peak_rps=peak_rps),
        "static_high": lambda env: StaticPolicy(env, "highest", peak_rps=peak_rps),
        "random": lambda env: RandomPolicy(env, seed=0),
    }
    return {name: factories[name] for name in names if name != "ppo"}


def load_agents(agent_dirs: list[Path], which: str = "final") -> list[tuple[int, Any]]:
    """``(training seed, policy)`` of each agent folder (the training seeds of one agent).

    Raises:
        ConfigError: The folders' envs differ (beyond the training workload's seed) or two
            share a training seed.
    """
    from agents.policy import load_ppo_policy
    from agents.train_config import load_train_config

    out, envs = [], []
    for folder in agent_dirs:
        trained = load_train_config(folder / "config.yaml")
        env = to_dict(trained.env)
        env["workload"].pop("seed")
        envs.append(env)
        out.append((trained.run.seed, load_ppo_policy(folder, which)))  # type: ignore[arg-type]
    if any(e != envs[0] for e in envs[1:]):
        raise ConfigError(f"agents {[str(a) for a in agent_dirs]} were trained on different "
                          "envs; pass the training seeds of one agent configuration")
    seeds = [s for s, _ in out]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"agents share a training seed ({seeds}); pass one folder per seed")
    return out


def tuning_windows(config: EvalConfig, trace_path: Path | None) -> list[Window]:
    """Validation windows for tuning: from the ``--trace``'s validation days when the
    config evaluates trace windows and the trace holds them, else synthetic windows."""
    d = config.days
    warmup_s = config.env.workload.warmup_s
    if trace_path is not None and config.uses_trace:
        full = full_trace(str(trace_path), config.trace_damping, config.trace_scale)
        if d.val_days and (max(d.val_days) + 1) * d.day_s <= len(full):
            starts = sample_heldout_starts(full, d.val_days, d.tuning_window_s,
                                           d.tuning_windows, config.tuning_seed, warmup_s,
                                           d.day_s)
            return [window_rates(WindowSpec(f"val_{s}", segments=((s, s + d.tuning_window_s),)),
                                 trace_path, config.trace_damping, warmup_s,
                                 config.trace_scale) for s in starts]
    return [window_rates(WindowSpec(f"val_{p}", p, config.tuning_seed, window_s=600),
                         None, 1.0, warmup_s) for p in ("bursty", "fluctuating")]


def tune_baselines(config: EvalConfig, work_dir: Path, trace_path: Path | None
                   ) -> dict[str, float]:
    """HPA's utilisation target, Ray Serve's ongoing-request target, ipa_tuned's headroom
    and ipa_energy's energy weight, each the best total reward on the validation windows
    (fluid simulator; the reward is the env's, i.e. the agent's)."""
    from ipa_baseline.policies import IPAPolicy
    from ipa_baseline.tuned import TunedIPAPolicy

    ipa_kwargs = ipa_family_kwargs(config)
    grids: dict[str, tuple[tuple[float, ...], Callable[[PipelineEnv, float], Any]]] = {
        "hpa": (config.hpa_targets,
                lambda env, x: HpaPolicy(env, x, variants=config.baseline_variants)),
        "ray_serve": (config.ray_targets,
                      lambda env, x: RayServePolicy(env, x, variants=config.baseline_variants)),
        "ipa_tuned": (config.ipa_headrooms,
                      lambda env, x: TunedIPAPolicy(env, x, **ipa_kwargs)),
        "ipa_energy": (config.ipa_energy_deltas,
                       lambda env, x: IPAPolicy(env, **ipa_kwargs, delta=x,
                                                use_batch_timeout=True)),
    }
    windows = tuning_windows(config, trace_path)
    base = replace(config.env, backend="fluid", action_mode="absolute")
    tuned: dict[str, float] = {}
    for name, (grid, make) in grids.items():
        if name not in config.policies:
            continue
        scores = {}
        for value in grid:
            total = 0.0
            for window in windows:
                env = window_env(base, window, work_dir / "tuning")
                total += sum(s.reward for s in run_episode(env, make(env, value), name,
                                                           window.name, 0).steps)
                env.close()
            scores[value] = total
        tuned[name] = max(scores, key=lambda v: scores[v])
    return tuned


def evaluate(config: EvalConfig, report_dir: Path, trace_path: Path | None,
             agent_dirs: list[Path], progress: Callable[[str], None] | None = None,
             tuned: dict[str, float] | None = None) -> Iterator[Episode]:
    """Yield one `Episode` per (window, simulator seed, policy, training seed).

    Args:
        config: The evaluation config (its env is the agents' when agents are given).
        report_dir: Where the windows' files and the tuning files go.
        trace_path: The ``--trace`` file.
        agent_dirs: ``train.py`` run folders, one per training seed (``ppo`` needs one).
        progress: Called with a label before each episode.
        tuned: Tuned parameters (default: `tune_baselines`).
    """
    if "ppo" in config.policies and not agent_dirs:
        raise ConfigError("policy 'ppo' needs --agent runs/<name> (train.py run folders, "
                          "one per training seed)")
    agents = load_agents(agent_dirs, config.agent_model) if "ppo" in config.policies else []
    tuned = tune_baselines(config, report_dir, trace_path) if tuned is None else tuned
    (report_dir / "tuning").mkdir(parents=True, exist_ok=True)
    (report_dir / "tuning" / "tuned.json").write_text(json.dumps(tuned, indent=2))
    peak = training_peak(config, trace_path)
    factories = policy_factories(config, tuned, peak.rps, config.policies)
    for window in evaluation_windows(config, trace_path):
        for seed in config.seeds:
            for name in config.policies:
                runs = ([(train_seed, lambda env, p=p: p) for train_seed, p in agents]
                        if name == "ppo" else [(0, factories[name])])
                for train_seed, factory in runs:
                    # Baselines apply exact decisions: absolute mode, whatever the agent's.
                    base = config.env if name == "ppo" else replace(config.env,
                                                                    action_mode="absolute")
                    env = window_env(base, window, report_dir / "workloads")
                    if progress:
                        progress(f"{window.name} seed {seed} {name}")
                    policy = factory(env)
                    yield run_episode(env, policy, name, window.name, seed,
                                      use_masks=bool(getattr(policy, "masked", False)),
                                      train_seed=train_seed)
                    env.close()
