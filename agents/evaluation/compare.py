"""Run every policy on the same windows with the same simulator seeds; collect episodes.

The protocol (docs/protocol.md): every window starts with the history that preceded it
(`Window.warmup`); the static baselines and RIM are sized from training data
(`training_peak`); HPA, Ray Serve, ipa_tuned and ipa_energy are tuned on validation windows
(`tune_baselines`); every policy plays through `agents.evaluation.episode.run_episode` on the same
simulator seeds (common random numbers); a learned agent's result (``ppo`` or ``residual``)
is one episode per training seed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from agents.evaluation.config import LEARNED, EvalConfig
from agents.evaluation.episode import Episode, run_episode
from agents.evaluation.registry import PolicyFactory, policy_factories
from agents.evaluation.windows import (
    Window,
    evaluation_windows,
    training_peak,
    tuning_windows,
    window_env,
)
from envs.config.errors import ConfigError, IpaEnergyError
from envs.env_pipeline import env_pipeline
from envs.workload.day_split import fleet_capacity_rps

if TYPE_CHECKING:
    from agents.policies.trained import NormalizedPolicy


def load_agents(agent_dirs: list[Path], which: str = "final",
                learned: tuple[str, ...] = ("ppo",)) -> list[tuple[int, PolicyFactory]]:
    """``(training seed, policy factory)`` of each agent folder (the training seeds of one
    agent).

    A PPO agent's factory returns its `NormalizedPolicy` for any env; a residual agent's
    (``agent.residual: true`` in its saved config) wraps the episode's env in the saved
    `ResidualPlannerEnv` settings (`agents.policies.residual_agent.ResidualAgentPolicy`).

    Args:
        agent_dirs: ``train.py`` run folders, one per training seed.
        which: The model of each folder to load: ``final``, ``best`` or ``latest``.
        learned: The learned policies the evaluation names (`LEARNED`).

    Returns:
        ``(training seed, factory)`` per folder, in the order given.

    Raises:
        IpaEnergyError: The folders' envs differ (beyond the training workload's seed,
            `agents.evaluation.setup.same_env`), their kinds or residual settings differ
            (`agents.evaluation.setup.agent_kind`), ``learned`` names the other kind, or
            two share a training seed.
    """
    from agents.evaluation.setup import agent_kind, check_learned_policies, same_env
    from agents.policies.residual_agent import ResidualAgentPolicy
    from agents.policies.trained import load_ppo_policy
    from agents.runs.train_config import load_train_config

    same_env(agent_dirs)
    check_learned_policies(learned, agent_kind(agent_dirs), agent_dirs)
    out: list[tuple[int, PolicyFactory]] = []
    for folder in agent_dirs:
        cfg = load_train_config(folder / "config.yaml")
        policy = load_ppo_policy(folder, which)  # type: ignore[arg-type]
        if cfg.agent.residual:
            out.append((cfg.run.seed, lambda env, p=policy, a=cfg.agent, f=folder:
                        ResidualAgentPolicy(env, check_observation(p, env, f), a)))
        else:
            out.append((cfg.run.seed, lambda env, p=policy, f=folder:
                        check_observation(p, env, f)))
    seeds = [s for s, _ in out]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"agents share a training seed ({seeds}); pass one folder per seed")
    return out


def check_observation(policy: NormalizedPolicy, env: gym.Env, folder: Path) -> NormalizedPolicy:
    """``policy`` if its network reads the observations ``env`` gives, else one line.

    Args:
        policy: A loaded agent.
        env: The episode's env.
        folder: The agent's run folder (named in the error).

    Returns:
        The policy.

    Raises:
        IpaEnergyError: The observation shapes differ (e.g. a run saved before observation
            version 2 whose config.yaml does not say ``observation_version: 1``).
    """
    want, got = policy.model.observation_space.shape, env.observation_space.shape
    if want != got:
        version = env.unwrapped.config.observation_version
        raise IpaEnergyError(
            f"the agent in {folder} reads observations of shape {want}, but the evaluated env "
            f"(observation_version {version}) gives {got}; set env.observation_version in "
            f"{folder / 'config.yaml'} to the version it was trained with (1 before "
            "ipa/Pipeline-v2), or evaluate it on the pipeline it was trained on")
    return policy


TUNED_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "hpa": (0.0, 1.0, True), "ray_serve": (0.0, math.inf, True),
    "ipa_tuned": (1.0, math.inf, False), "ipa_energy": (0.0, math.inf, False),
    "mpc": (0.0, math.inf, False)}
"""Valid range of each tuned parameter: ``(low, high, low excluded)``; HPA's utilisation
target is a fraction of a replica's capacity, Ray Serve's target is positive, ipa_tuned's
headroom at least 1 (below it plans for less than the forecast), the energy weight at
least 0."""


def tune_baselines(config: EvalConfig, work_dir: Path, trace_path: Path | None
                   ) -> dict[str, float]:
    """Tune the baselines' one parameter each on the validation windows.

    HPA's utilisation target, Ray Serve's ongoing-request target, ipa_tuned's headroom and
    ipa_energy's energy weight: each the best total reward (the env's, i.e. the agent's)
    over the validation windows and `TuningConfig.seeds`, played on the evaluation's own
    simulator (``env.backend``), ties going to the lower energy (`best_setting`); a grid
    whose best value lies on its edge grows by a step (`next_grid_value`) up to
    ``tuning.max_extensions`` times. Each candidate is built by the evaluation's own
    constructor (`policy_factories`) with the candidate value. The grids as played are
    written to ``tuning/grids.json``.

    Args:
        config: The evaluation config (its grids, tuning settings and policies).
        work_dir: Where the tuning windows' files go (``tuning/``).
        trace_path: The ``--trace`` file (validation days), or None.

    Returns:
        ``{policy name: chosen value}`` for the tuned policies the config evaluates.
    """
    grids = {"hpa": config.hpa_targets, "ray_serve": config.ray_targets,
             "ipa_tuned": config.ipa_headrooms, "ipa_energy": config.ipa_energy_deltas,
             "mpc": config.mpc_switch_weights}
    windows = tuning_windows(config, trace_path)
    base = replace(config.env, action_mode="absolute")
    tuned: dict[str, float] = {}
    played: dict[str, dict[str, object]] = {}

    def score(name: str, value: float) -> tuple[float, float]:
        make = policy_factories(config, {**tuned, name: value}, 0.0, (name,))[name]
        reward, energy = 0.0, 0.0
        for window in windows:
            for seed in config.tuning.seeds:
                env = window_env(base, window, work_dir / "tuning")
                steps = run_episode(env, make(env), name, window.name, seed).steps
                reward += sum(s.reward for s in steps)
                energy += sum(s.stats.energy_j for s in steps)
                env.close()
        return reward, energy

    for name, grid in grids.items():
        if name not in config.policies:
            continue
        if len(grid) == 1:  # nothing to choose: the value as configured
            tuned[name] = grid[0]
            played[name] = {"grid": list(grid), "chosen": grid[0], "at_edge": False}
            continue
        scores = {value: score(name, value) for value in grid}
        grown = {"low": 0, "high": 0}
        while True:
            extra = next_grid_value(sorted(scores), best_setting(scores), TUNED_BOUNDS[name])
            side = "low" if extra is not None and extra < min(scores) else "high"
            if extra is None or grown[side] >= config.tuning.max_extensions:
                break
            grown[side] += 1
            scores[extra] = score(name, extra)
        tuned[name] = best_setting(scores)
        played[name] = {"grid": sorted(scores), "chosen": tuned[name],
                        "at_edge": tuned[name] in (min(scores), max(scores))}
    (work_dir / "tuning").mkdir(parents=True, exist_ok=True)
    (work_dir / "tuning" / "grids.json").write_text(json.dumps(
        {"backend": base.backend, "seeds": list(config.tuning.seeds), "grids": played},
        indent=2))
    return tuned


def next_grid_value(grid: list[float], chosen: float, bounds: tuple[float, float, bool]
                    ) -> float | None:
    """The next value past the grid's edge when the chosen one lies on it.

    One step beyond the edge: the edge's spacing (arithmetic), or its ratio when every
    value is positive and the grid spans 10x or more (geometric).

    Args:
        grid: The values played, increasing (two or more to have a step).
        chosen: The best of them.
        bounds: ``(low, high, low excluded)``: the parameter's valid range.

    Returns:
        The value to play next, or None (not at an edge, or the step leaves the range).
    """
    if len(grid) < 2 or chosen not in (grid[0], grid[-1]):
        return None
    geometric = grid[0] > 0 and grid[-1] / grid[0] >= 10.0
    if chosen == grid[0]:
        value = grid[0] ** 2 / grid[1] if geometric else grid[0] - (grid[1] - grid[0])
    else:
        value = grid[-1] ** 2 / grid[-2] if geometric else grid[-1] + (grid[-1] - grid[-2])
    low, high, low_excluded = bounds
    inside = (value > low if low_excluded else value >= low) and value <= high
    return round(value, 12) if inside else None


def best_setting(scores: dict[float, tuple[float, float]]) -> float:
    """The grid value with the highest total reward; a tie (rewards equal to 1e-9
    relative) goes to the one that used the least energy, then to the first in the grid.

    Args:
        scores: Grid value -> (total reward, total energy in joules) on the tuning windows.
    """
    top = max(reward for reward, _ in scores.values())
    tied = [v for v, (reward, _) in scores.items()
            if math.isclose(reward, top, rel_tol=1e-9, abs_tol=1e-12)]
    return min(tied, key=lambda v: scores[v][1])


def check_fleet_holds(config: EvalConfig, windows: list[Window]) -> None:
    """Refuse windows whose peak no configuration of the fleet can serve.

    Args:
        config: The evaluation config (its env's pipeline, pools and replica limit).
        windows: The evaluation windows (`evaluation_windows`).

    Raises:
        ConfigError: The peak exceeds `envs.workload.day_split.fleet_capacity_rps`.
    """
    peak = max(float(np.max(w.rates)) for w in windows)
    capacity = fleet_capacity_rps(env_pipeline(config.env), config.env.max_replicas)
    if peak > capacity:
        raise ConfigError(
            f"the windows' peak {peak:.1f} req/s (after trace_scale {config.trace_scale:g} and "
            f"each window's scale) exceeds what the whole fleet serves ({capacity:.1f} req/s "
            f"with env.max_replicas={config.env.max_replicas} and the pools' sizes); lower "
            "trace_scale or a window's scale, or give the pools more nodes")


def evaluate(config: EvalConfig, report_dir: Path, trace_path: Path | None,
             agent_dirs: list[Path], progress: Callable[[str], None] | None = None,
             tuned: dict[str, float] | None = None, windows: list[Window] | None = None,
             ) -> Iterator[Episode]:
    """Yield one `Episode` per (window, simulator seed, policy, training seed).

    Args:
        config: The evaluation config (its env is the agents' when agents are given).
        report_dir: Where the windows' files and the tuning files go.
        trace_path: The ``--trace`` file.
        agent_dirs: ``train.py`` run folders, one per training seed (``ppo`` and
            ``residual`` need them).
        progress: Called with a label before each episode.
        tuned: Tuned parameters (default: `tune_baselines`).
        windows: The evaluation windows, if already read (default: `evaluation_windows`).

    Yields:
        Each `Episode` as soon as it has played.

    Raises:
        ConfigError: ``ppo`` or ``residual`` is evaluated without agent folders, or the
            agents differ or are of the other kind (see `load_agents`).
    """
    learned = tuple(n for n in LEARNED if n in config.policies)
    if learned and not agent_dirs:
        raise ConfigError(f"policy {learned[0]!r} needs --agent runs/<name> (train.py run "
                          "folders, one per training seed)")
    agents = load_agents(agent_dirs, config.agent_model, learned) if learned else []
    windows = evaluation_windows(config, trace_path) if windows is None else windows
    tuned = tune_baselines(config, report_dir, trace_path) if tuned is None else tuned
    (report_dir / "tuning").mkdir(parents=True, exist_ok=True)
    (report_dir / "tuning" / "tuned.json").write_text(json.dumps(tuned, indent=2))
    peak = training_peak(config, trace_path)
    factories = policy_factories(config, tuned, peak.rps, config.policies)
    for window in windows:
        for seed in config.seeds:
            for name in config.policies:
                runs = agents if name in LEARNED else [(0, factories[name])]
                for train_seed, factory in runs:
                    # Baselines apply exact decisions: absolute mode, whatever the agent's
                    # (a residual agent was trained in absolute mode).
                    base = config.env if name in LEARNED else replace(config.env,
                                                                      action_mode="absolute")
                    env = window_env(base, window, report_dir / "workloads")
                    if progress:
                        progress(f"{window.name} seed {seed} {name}")
                    policy = factory(env)
                    yield run_episode(env, policy, name, window.name, seed,
                                      use_masks=bool(getattr(policy, "masked", False)),
                                      train_seed=train_seed)
                    env.close()
