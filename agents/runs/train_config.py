"""Typed configuration of a PPO training run: env, validation split, agent, run, tracking.

A YAML file maps one-to-one onto `TrainConfig` through the strict loader of `envs.config.loader`
(unknown keys, wrong types and failed cross-field checks raise `ConfigError` at load).
Everything here is importable without torch, so a bad config fails in well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from agents.runs.residual_config import (
    DEFAULT_MARGIN_LEVELS,
    DEFAULT_RATE_LEVELS,
    ResidualPlannerConfig,
    check_levels,
)
from agents.runs.validation_split import ValidationConfig, resolved_split, split_env_configs
from envs.config.checks import FieldError, check_range
from envs.config.errors import ConfigError
from envs.config.loader import load_config
from envs.env_config import EnvConfig

__all__ = [
    "RESUME_CHANGEABLE",
    "AgentConfig",
    "RunConfig",
    "TrackingConfig",
    "TrainConfig",
    "check_resume_changes",
    "load_train_config",
    "with_run",
]


@dataclass(frozen=True)
class AgentConfig:
    """PPO hyperparameters (stable-baselines3 names and meanings).

    Attributes:
        masked: Use sb3-contrib MaskablePPO with ``env.action_masks()``.
        learning_rate: Adam step size (constant).
        n_steps: Steps collected per env per rollout (rollout = n_steps x run.n_envs).
        batch_size: Minibatch size of each gradient step.
        n_epochs: Passes over each rollout.
        gamma: Discount factor.
        gae_lambda: GAE bias/variance trade-off.
        clip_range: PPO policy clip.
        ent_coef: Entropy bonus weight.
        vf_coef: Value loss weight.
        max_grad_norm: Gradient clipping norm.
        target_kl: Stop an update's epochs early past this KL (None: never).
        net_arch: Hidden layer sizes of the policy and value networks (separate nets).
        activation: Hidden activation.
        normalize_obs: Running mean/std normalisation of observations (VecNormalize).
        normalize_reward: Scale rewards by the running std of the discounted return.
        device: Torch device; the MLPs are small, so cpu is usually fastest.
        violation_budget: Constrained PPO (`agents.training.lagrangian`): the fraction of
            requests allowed to violate the SLA, in (0, 1); a Lagrange multiplier replaces
            the fixed ``env.reward.sla_violation`` weight (which must then be 0). None: off,
            the reward is the env's.
        lagrange_lr: Dual-ascent step size of the multiplier per rollout (assumed default:
            a rollout 0.1 over budget raises it by 0.5).
        lagrange_init: The multiplier at the start of training (>= 0; assumed default).
        lagrange_max: Cap of the multiplier (assumed default: 10x the fixed default weight
            ``reward.sla_violation=10``).
        residual: Train a residual agent: every training and validation env is
            `agents.policies.residual_env.ResidualPlannerEnv`, whose action adjusts IPA's ILP
            (planned rate, SLA margin, kept variants) instead of choosing the configuration;
            it needs ``env.action_mode=absolute`` and a per-env vectorisation (not
            ``run.vec_env=batched``). Evaluation plays such a run folder as ``residual``.
        residual_rate_levels: Planned-rate multipliers of the residual action (> 0, 1.0
            included; `agents.runs.residual_config.check_levels`).
        residual_margin_levels: Latency margins of the residual action, as fractions of the
            SLA (in (0, 1], 1.0 included).
        residual_planner: The weights of the planner the residual agent adjusts.
    """

    masked: bool = False
    learning_rate: float = 3.0e-4
    n_steps: int = 256
    batch_size: int = 256
    n_epochs: int = 5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    net_arch: tuple[int, ...] = (64, 64)
    activation: Literal["tanh", "relu"] = "tanh"
    normalize_obs: bool = True
    normalize_reward: bool = True
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    violation_budget: float | None = None
    lagrange_lr: float = 5.0
    lagrange_init: float = 1.0
    lagrange_max: float = 100.0
    residual: bool = False
    residual_rate_levels: tuple[float, ...] = DEFAULT_RATE_LEVELS
    residual_margin_levels: tuple[float, ...] = DEFAULT_MARGIN_LEVELS
    residual_planner: ResidualPlannerConfig = field(default_factory=ResidualPlannerConfig)

    def __post_init__(self) -> None:
        for name in ("learning_rate", "clip_range", "max_grad_norm"):
            check_range(name, getattr(self, name), low=0, low_open=True)
        for name in ("n_steps", "n_epochs"):
            check_range(name, getattr(self, name), low=1)
        check_range("batch_size", self.batch_size, low=2,
                    fix="advantages are normalised per minibatch")
        check_range("gamma", self.gamma, low=0, low_open=True, high=1)
        check_range("gae_lambda", self.gae_lambda, low=0, high=1)
        check_range("ent_coef", self.ent_coef, low=0)
        check_range("vf_coef", self.vf_coef, low=0)
        check_range("target_kl", self.target_kl, low=0, low_open=True,
                    fix="null never stops an update early")
        if not self.net_arch or any(n <= 0 for n in self.net_arch):
            raise FieldError("net_arch", f"must be a non-empty list of positive sizes, "
                                         f"got {list(self.net_arch)}")
        if self.violation_budget is not None and not 0 < self.violation_budget < 1:
            raise FieldError("violation_budget", f"must be > 0 and < 1 (a fraction of "
                                                 f"requests, e.g. 0.01), got "
                                                 f"{self.violation_budget!r}; null switches "
                                                 "the constraint off")
        check_range("lagrange_lr", self.lagrange_lr, low=0, low_open=True,
                    fix="the multiplier's step size per rollout")
        check_range("lagrange_init", self.lagrange_init, low=0,
                    fix="a Lagrange multiplier is non-negative")
        check_range("lagrange_max", self.lagrange_max, low=self.lagrange_init,
                    fix="the cap must be at least agent.lagrange_init")
        try:
            check_levels(self.residual_rate_levels, self.residual_margin_levels,
                         keys=("residual_rate_levels", "residual_margin_levels"))
        except ConfigError as err:
            key, _, problem = str(err).partition(" ")
            raise FieldError(key, problem) from None
        if self.residual and self.masked:
            raise FieldError("masked", "is true with agent.residual: every residual action "
                                       "is valid, so there is nothing to mask; set "
                                       "agent.masked=false")


@dataclass(frozen=True)
class RunConfig:
    """Budget, seeding and bookkeeping of a run.

    Attributes:
        name: Run folder name under ``output_dir`` (None: ``<pipeline>-s<seed>-<time>``).
        seed: Seeds Python, NumPy, torch, the envs and the evaluation windows.
        total_timesteps: Env steps (summed over envs) to train for.
        n_envs: Parallel training envs (DummyVecEnv, one process).
        eval_freq: Env steps between evaluations (checked at rollout boundaries).
        n_eval_episodes: Validation windows per evaluation (the same windows every time).
        checkpoint_freq: Env steps between checkpoints (checked at rollout boundaries).
        keep_checkpoints: How many of the latest checkpoints to keep.
        output_dir: Parent folder of run folders.
        progress_bar: Show a progress bar with steps/s and the latest evaluation.
        torch_threads: Torch intra-op threads (1 is fastest for small MLPs and reproducible).
        vec_env: How the ``n_envs`` training envs are stepped: ``batched`` (one
            `envs.batched.BatchedPipelineVecEnv`, all envs in array operations; fluid
            backend only), ``dummy`` (N `PipelineEnv`s in one process), ``subproc`` (N
            processes); ``auto``: ``batched`` where it supports the env config, else ``dummy``.
    """

    name: str | None = None
    seed: int = 0
    total_timesteps: int = 100_000
    n_envs: int = 8
    eval_freq: int = 20_480
    n_eval_episodes: int = 4
    checkpoint_freq: int = 20_480
    keep_checkpoints: int = 3
    output_dir: str = "runs"
    progress_bar: bool = True
    torch_threads: int = 1
    vec_env: Literal["auto", "batched", "dummy", "subproc"] = "auto"

    def __post_init__(self) -> None:
        for name in ("total_timesteps", "n_envs", "eval_freq", "n_eval_episodes",
                     "checkpoint_freq", "keep_checkpoints", "torch_threads"):
            check_range(name, getattr(self, name), low=1)
        check_range("seed", self.seed, low=0, fix="NumPy and torch seeds are non-negative")
        if self.name is not None and (not self.name or "/" in self.name or "\0" in self.name
                                      or self.name in (".", "..")):
            raise FieldError("name", f"{self.name!r} must be a plain folder name (no '/'), or "
                                     "null for <pipeline>-s<seed>-<time>")
        if not self.output_dir or "\0" in self.output_dir:
            raise FieldError("output_dir", f"{self.output_dir!r} must be a folder path")


@dataclass(frozen=True)
class TrackingConfig:
    """Experiment tracking with Weights & Biases.

    Attributes:
        mode: ``offline`` (default: a local run under the run folder, upload later with
            ``wandb sync``), ``online`` (needs network; checked before training) or
            ``disabled``.
        project: W&B project.
        entity: W&B entity (user or team); None uses the logged-in default.
        group: W&B run group.
        tags: W&B run tags.
    """

    mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "ipa-energy"
    entity: str | None = None
    group: str | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.project.strip():
            raise FieldError("project", "must be a W&B project name, got an empty string")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run; ``configs/train/default.yaml`` spells out the defaults."""

    env: EnvConfig = field(default_factory=EnvConfig)
    eval: ValidationConfig = field(default_factory=ValidationConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    run: RunConfig = field(default_factory=RunConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self) -> None:
        rollout = self.rollout_size
        if self.agent.batch_size > rollout:
            raise ConfigError(
                f"agent.batch_size ({self.agent.batch_size}) exceeds the rollout "
                f"agent.n_steps x run.n_envs = {self.agent.n_steps} x {self.run.n_envs} = "
                f"{rollout}; lower batch_size or raise n_steps")
        if self.run.total_timesteps < rollout:
            raise ConfigError(
                f"run.total_timesteps ({self.run.total_timesteps}) is below one rollout "
                f"({rollout} = agent.n_steps x run.n_envs); no update would happen")
        if self.agent.violation_budget is not None and self.env.reward.sla_violation != 0:
            raise ConfigError(
                f"agent.violation_budget is set, so the Lagrange multiplier replaces the fixed "
                f"env.reward.sla_violation weight ({self.env.reward.sla_violation:g}); set "
                f"env.reward.sla_violation=0 (no reward_preset), or agent.violation_budget=null")
        if self.agent.residual and self.env.action_mode != "absolute":
            raise ConfigError(
                f"agent.residual plans exact replica counts, which env.action_mode="
                f"{self.env.action_mode} cannot apply; set env.action_mode=absolute")
        if self.agent.residual and self.run.vec_env == "batched":
            raise ConfigError(
                "run.vec_env=batched cannot host agent.residual's planner (an ILP per env "
                "and step); set run.vec_env=auto, dummy or subproc")
        split_env_configs(self.env, self.eval)  # the split's own cross-field checks

    @property
    def rollout_size(self) -> int:
        """Env steps per PPO update (n_steps x n_envs)."""
        return self.agent.n_steps * self.run.n_envs

    @property
    def split(self) -> Literal["seed", "days", "range"]:
        """The validation split in force (``auto`` resolved)."""
        return resolved_split(self.env, self.eval)


def load_train_config(path: str | Path | None = None, overrides: Sequence[str] = (),
                      base: TrainConfig | None = None) -> TrainConfig:
    """Load a `TrainConfig` strictly from an optional YAML file plus ``key=value`` overrides.

    Args:
        path: YAML file; None starts from ``base`` (or the embedded defaults).
        overrides: ``section.key=value`` strings, parsed like YAML values.
        base: Config to start from when ``path`` is None (e.g. a run's saved config).

    Returns:
        The checked `TrainConfig`.

    Raises:
        ConfigError: Unknown keys, wrong types, failed cross-field checks.
    """
    from envs.config.loader import to_dict

    defaults = to_dict(base) if base is not None else None
    if defaults is not None and defaults["env"].get("reward_preset") is not None:
        defaults["env"].pop("reward")  # the preset fills it in again
    return load_config(TrainConfig, path, overrides, defaults=defaults)


RESUME_CHANGEABLE = frozenset({
    "run.total_timesteps", "run.eval_freq", "run.checkpoint_freq", "run.keep_checkpoints",
    "run.progress_bar", "run.torch_threads", "run.vec_env", "tracking.mode",
})
"""Keys an override may change on ``--resume``; the rest are fixed by the checkpoint."""


def check_resume_changes(saved: TrainConfig, new: TrainConfig) -> None:
    """Reject ``--resume`` overrides the checkpointed model or data would silently ignore.

    Args:
        saved: The run's saved config.
        new: The saved config with the ``--resume`` overrides applied.

    Raises:
        ConfigError: A key outside `RESUME_CHANGEABLE` differs from the saved config.
    """
    from envs.config.loader import to_dict

    def flat(node: object, prefix: str = "") -> dict[str, object]:
        if isinstance(node, dict):
            out: dict[str, object] = {}
            for key, value in node.items():
                out.update(flat(value, f"{prefix}{key}."))
            return out
        return {prefix[:-1]: node}

    before, after = flat(to_dict(saved)), flat(to_dict(new))
    changed = sorted(k for k in before if before[k] != after[k] and k not in RESUME_CHANGEABLE)
    if changed:
        raise ConfigError(f"--resume cannot change {changed} (the checkpoint fixes them); "
                          f"start a new run instead, or change only {sorted(RESUME_CHANGEABLE)}")


def with_run(cfg: TrainConfig, **changes: object) -> TrainConfig:
    """A copy with run fields changed.

    Args:
        cfg: The config.
        **changes: `RunConfig` field -> new value.

    Returns:
        The changed copy (``cfg`` is left as it is).
    """
    return replace(cfg, run=replace(cfg.run, **changes))
