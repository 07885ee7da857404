"""The vectorised training envs of a PPO run: batched fluid, dummy or subprocess, under
VecNormalize (restored from a checkpoint when a run resumes).

With ``agent.residual`` set, each env is a `ResidualPlannerEnv` around a `PipelineEnv`
(`agents.policies.residual_agent.make_training_env`); the batched env cannot host its
planner, so ``auto`` picks ``dummy``.

With ``agent.violation_budget`` set, `agents.training.lagrangian.LagrangianVecEnv` sits
between the envs and VecNormalize, so VecNormalize normalises the penalised reward."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecMonitor,
    VecNormalize,
)
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from agents.policies.residual_agent import make_training_env
from agents.runs.checkpoints import CHECKPOINT_FIX
from agents.runs.run_files import load_normalizer
from agents.runs.train_config import TrainConfig
from agents.training.lagrangian import LagrangianVecEnv
from envs.batched import BatchedPipelineVecEnv, unsupported_reason
from envs.config.errors import ConfigError
from envs.env_config import EnvConfig

__all__ = ["InfoSharingDummyVecEnv", "make_normalized_venv", "make_training_vec_env",
           "vec_env_kind"]


class InfoSharingDummyVecEnv(DummyVecEnv):
    """DummyVecEnv that hands out the envs' info dicts instead of deep copies of them.

    `PipelineEnv` builds fresh info dicts every step, so nothing is shared between steps;
    the deep copy of `IntervalStats` and `Decision` objects cost more than the simulator.
    """

    def step_wait(self) -> VecEnvStepReturn:
        """Step every env with its pending action (DummyVecEnv's, without the deep copy).

        Returns:
            The batched observations, rewards, dones and the envs' own info dicts.
        """
        for i, env in enumerate(self.envs):
            obs, self.buf_rews[i], terminated, truncated, info = env.step(self.actions[i])
            self.buf_dones[i] = terminated or truncated
            info["TimeLimit.truncated"] = truncated and not terminated
            if self.buf_dones[i]:
                info["terminal_observation"] = obs
                obs, self.reset_infos[i] = env.reset()
            self.buf_infos[i] = info
            self._save_obs(i, obs)
        return (self._obs_from_buf(), np.copy(self.buf_rews), np.copy(self.buf_dones),
                list(self.buf_infos))


def vec_env_kind(cfg: TrainConfig, env_cfg: EnvConfig) -> str:
    """``run.vec_env`` resolved: ``batched``, ``dummy`` or ``subproc``.

    Args:
        cfg: The training config.
        env_cfg: The training env's config (the batched env supports only some).

    Returns:
        The kind of vectorised env to build.

    Raises:
        ConfigError: ``batched`` was asked for and the env config is one it cannot run, or
            the agent is residual (the batched env cannot host its planner).
    """
    kind = cfg.run.vec_env
    reason = unsupported_reason(env_cfg)
    if cfg.agent.residual:
        reason = "it cannot host agent.residual's planner (an ILP per env and step)"
    if kind == "auto":
        return "batched" if reason is None else "dummy"
    if kind == "batched" and reason is not None:
        raise ConfigError(f"run.vec_env=batched: {reason}; use run.vec_env=dummy or auto")
    return kind


def make_training_vec_env(cfg: TrainConfig, env_cfg: EnvConfig, seed: int) -> VecEnv:
    """The ``run.n_envs`` training envs (monitored, not normalised).

    Args:
        cfg: The training config (``run.vec_env``, ``run.n_envs``).
        env_cfg: The training env's config.
        seed: Env ``i`` is seeded ``seed + i`` at its first reset.

    Returns:
        The vectorised envs.

    Raises:
        ConfigError: See `vec_env_kind`.
    """
    kind = vec_env_kind(cfg, env_cfg)
    if kind == "batched":
        venv = VecMonitor(BatchedPipelineVecEnv(env_cfg, cfg.run.n_envs))
        venv.seed(seed)
        return venv
    vec_cls = InfoSharingDummyVecEnv if kind == "dummy" else SubprocVecEnv
    return make_vec_env(partial(make_training_env, env_cfg, cfg.agent), n_envs=cfg.run.n_envs,
                        seed=seed, vec_env_cls=vec_cls)


def make_normalized_venv(cfg: TrainConfig, env_cfg: EnvConfig, seed: int,
                          resume_from: Path | None) -> VecNormalize:
    """The training envs under VecNormalize, with a checkpoint's statistics when resuming.

    Args:
        cfg: The training config.
        env_cfg: The training env's config.
        seed: Seed of the first env (see `make_training_vec_env`).
        resume_from: A checkpoint folder whose ``vecnormalize.pkl`` is loaded, or None.

    Returns:
        The normalised vectorised envs (in training mode); with ``agent.violation_budget``
        set, a `LagrangianVecEnv` (multiplier ``agent.lagrange_init``) wraps the envs
        inside VecNormalize.
    """
    venv: VecEnv = make_training_vec_env(cfg, env_cfg, seed)
    if cfg.agent.violation_budget is not None:
        venv = LagrangianVecEnv(venv, cfg.agent.lagrange_init)
    norm = resume_from / "vecnormalize.pkl" if resume_from is not None else None
    if norm is not None and norm.is_file():
        venv = load_normalizer(norm, CHECKPOINT_FIX, venv)
        venv.training = True
        return venv
    return VecNormalize(venv, norm_obs=cfg.agent.normalize_obs,
                        norm_reward=cfg.agent.normalize_reward, gamma=cfg.agent.gamma)
