"""The evaluation config from ``evaluate.py``'s flags: the config file, the overrides, the
``--trace`` alone as one window, and the agents' trained env under the evaluation's
conditions. Refuses a flag the config does not use."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from agents.evaluation.config import LEARNED, EvalConfig, WindowSpec, refuse_training_overlap
from agents.policies.trained import find_model
from agents.runs.train_config import load_train_config
from envs.config.errors import IpaEnergyError
from envs.config.loader import load_config
from envs.env_config import EnvConfig
from envs.workload.traces import load_trace

__all__ = ["EVALUATION_CONDITIONS", "agent_kind", "check_learned_policies",
           "eval_config_from_flags", "same_env"]

EVALUATION_CONDITIONS = ("backend", "idle_power_scale", "model_load_scale", "fleet",
                         "node_boot_s", "node_hold_s")
"""Env fields the evaluation sets over the agents' trained env: the backend and the
sensitivity knobs (idle power, model load time, fleet mode, node boot and hold times) every
policy is scored under."""


def eval_config_from_flags(config_path: Path | None, trace: Path | None, agents: list[Path],
                           overrides: list[str]) -> EvalConfig:
    """The evaluation config ``evaluate.py`` runs.

    ``trace`` without ``config_path`` (and no ``windows=`` override) evaluates the trace as
    one window: its first ``env.workload.warmup_s`` seconds are the warm-up history, the
    rest is played, undamped. With agents, every policy is evaluated on the env they were
    trained on, under this config's backend and sensitivity conditions; a config (or an
    ``env.pipeline=`` override) naming another pipeline is refused (with ``--trace`` alone
    and no override, the agents' pipeline is evaluated).

    Args:
        config_path: The evaluation config (YAML), or None for the embedded default.
        trace: The ``--trace`` file, or None.
        agents: ``train.py`` run folders, one per training seed (may be empty).
        overrides: ``key.sub=value`` overrides (``--backend`` and ``--name`` included).

    Returns:
        The checked `EvalConfig`.

    Raises:
        IpaEnergyError: A missing or too short trace, a ``--trace`` the config does not
            use, agents trained on different envs, on another pipeline than the config's,
            or on the evaluation's windows, agents of both kinds (`agent_kind`), or agents
            of one kind where the config names the other (`check_learned_policies`).
    """
    if trace is not None and not trace.is_file():
        raise IpaEnergyError(f"trace file {trace} does not exist; check --trace")
    trace_alone = (trace is not None and config_path is None
                   and not any(o.startswith("windows=") for o in overrides))
    if trace_alone:
        assert trace is not None
        # FILE is not IPA's trace: no day split, tuning and sizing from synthetic data.
        overrides = [f"name={trace.stem}", "trace_damping=1.0", "days.train_days=[]",
                     "days.val_days=[]", *overrides]
    config = load_config(EvalConfig, config_path, overrides)
    if agents:
        for folder in agents:
            find_model(folder)
        conditions = {name: getattr(config.env, name) for name in EVALUATION_CONDITIONS}
        trained = same_env(agents)
        pipeline_given = config_path is not None or any(
            o.startswith(("env.pipeline=", "env=")) for o in overrides)
        if pipeline_given and trained.pipeline != config.env.pipeline:
            raise IpaEnergyError(
                f"the agents in {agents[0].parent} were trained on pipeline "
                f"{trained.pipeline!r} but config {config.name!r} evaluates "
                f"{config.env.pipeline!r}; pass an evaluation config for "
                f"{trained.pipeline!r} (or env.pipeline={trained.pipeline}), or agents "
                f"trained on {config.env.pipeline!r}")
        config = replace(config, env=replace(trained, **conditions))
        for folder in agents:
            refuse_training_overlap(load_train_config(folder / "config.yaml"), config,
                                    trace.name if trace else None)
        kind = agent_kind(agents)
        check_learned_policies(config.policies, kind, agents)
        if kind not in config.policies:
            config = replace(config, policies=(kind, *config.policies))
    if trace_alone:
        assert trace is not None
        seconds = len(load_trace(trace))
        warmup = config.env.workload.warmup_s
        if seconds <= warmup + config.env.interval_s:
            raise IpaEnergyError(f"trace {trace} has {seconds} s, too short for "
                                 f"{warmup} s of warm-up history and one interval")
        config = replace(config, windows=(WindowSpec(trace.stem,
                                                     segments=((warmup, seconds),)),))
    elif trace is not None and not config.uses_trace:
        raise IpaEnergyError(f"--trace {trace} is given but config {config.name!r} "
                             "uses no trace (all its windows are synthetic); drop --trace, "
                             "or drop --config to evaluate the trace alone")
    return config


def same_env(run_dirs: list[Path]) -> EnvConfig:
    """The env the agents were trained on.

    They are training seeds of one agent, so their envs must be equal except for the
    training workload's seed.

    Args:
        run_dirs: ``train.py`` run folders.

    Returns:
        The first folder's training env.

    Raises:
        IpaEnergyError: Two folders were trained on different envs.
    """
    envs = [load_train_config(d / "config.yaml").env for d in run_dirs]
    key = [replace(e, workload=replace(e.workload, seed=0)) for e in envs]
    for run_dir, k in zip(run_dirs[1:], key[1:], strict=True):
        if k != key[0]:
            raise IpaEnergyError(
                f"{run_dir} was trained on another env than {run_dirs[0]} (beyond the "
                "workload seed): --agent takes training seeds of one agent; evaluate other "
                "settings (e.g. reward weights) with separate evaluate.py runs")
    return envs[0]


def agent_kind(run_dirs: list[Path]) -> str:
    """Which learned policy the agents play: ``residual`` (saved ``agent.residual: true``)
    or ``ppo``.

    Args:
        run_dirs: ``train.py`` run folders, the training seeds of one agent.

    Returns:
        ``residual`` or ``ppo``.

    Raises:
        IpaEnergyError: The folders mix the two kinds, or residual agents differ in their
            residual settings (levels, planner).
    """
    agents = [load_train_config(d / "config.yaml").agent for d in run_dirs]
    kinds = ["residual" if a.residual else "ppo" for a in agents]
    settings = [(a.residual_rate_levels, a.residual_margin_levels, a.residual_planner)
                for a in agents]
    for run_dir, kind, setting in zip(run_dirs[1:], kinds[1:], settings[1:], strict=True):
        if kind != kinds[0]:
            raise IpaEnergyError(
                f"{run_dir} is a {kind} agent but {run_dirs[0]} a {kinds[0]} one (their "
                "config.yaml's agent.residual): --agent takes training seeds of one agent; "
                "evaluate the other with a separate evaluate.py run")
        if kind == "residual" and setting != settings[0]:
            raise IpaEnergyError(
                f"{run_dir} has other residual settings (agent.residual_rate_levels, "
                f"residual_margin_levels, residual_planner) than {run_dirs[0]}: --agent "
                "takes training seeds of one agent; evaluate the other with a separate "
                "evaluate.py run")
    return kinds[0]


def check_learned_policies(policies: tuple[str, ...], kind: str, run_dirs: list[Path]) -> None:
    """Refuse a config that names the learned policy the agents are not.

    Args:
        policies: The evaluation's policy names.
        kind: The agents' kind (`agent_kind`).
        run_dirs: The agents' folders (for the message).

    Raises:
        IpaEnergyError: The config names ``ppo`` for residual agents, or ``residual`` for
            PPO agents.
    """
    other = next(n for n in LEARNED if n != kind)
    if other in policies:
        flag = "true" if kind == "residual" else "false"
        raise IpaEnergyError(
            f"policies name {other!r} but --agent {run_dirs[0]} is a {kind} agent (its "
            f"config.yaml has agent.residual: {flag}); name {kind!r} in policies instead, or "
            f"pass {other} agents")
