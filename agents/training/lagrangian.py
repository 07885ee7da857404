"""Constrained PPO: a Lagrange multiplier that keeps the SLA-violation rate under a budget.

The fixed penalty weight ``env.reward.sla_violation`` trades violations against quality and
energy at a rate nobody chose. With ``agent.violation_budget`` set, the weight is 0 and the
problem is the constrained one

    maximise  E[sum_t gamma^t r_t]   subject to   violation rate <= budget,

solved by Lagrangian relaxation and dual ascent, as PPO-Lagrangian (Ray, Achiam & Amodei
2019, "Benchmarking Safe Exploration in Deep Reinforcement Learning", the Safety Gym
report) and RCPO (Tessler, Mankowitz & Mannor 2019, "Reward Constrained Policy
Optimization", ICLR) do:

* Primal (the policy): `LagrangianVecEnv` hands PPO the reward
  ``r_t - lambda * c_t``, where ``r_t`` is the env's weighted reward and ``c_t`` is the
  step's ``info["reward_terms"]["sla_violation"]`` (`envs.reward.reward_terms`: the
  interval's SLA violations per arrived request, in [0, 1]). lambda is constant within a
  rollout, so PPO optimises an ordinary reward.
* Dual (the multiplier): `LagrangianCallback`, after each rollout, takes the rollout's
  violation rate ``v`` (violations / arrivals pooled over every env and step, the fraction
  of requests the budget is stated in, the same figure as ``charts/sla_violation_rate``)
  and sets ``lambda <- clip(lambda + lagrange_lr * (v - budget), 0, lagrange_max)``: lambda
  rises while the constraint is violated and falls towards 0 while it holds with slack.

The penalty weights every interval equally, the dual step weights every request; both move
together (more violating requests, larger terms), and the budget is checked in requests.

Wrap order: ``VecNormalize(LagrangianVecEnv(VecMonitor or Monitor'd envs))``. VecNormalize
sees (and scales) the penalised reward, so the return statistics it normalises by are those
PPO learns from; the monitors see the env's own reward, so ``charts/episode_reward`` stays
comparable with unconstrained runs. lambda is logged as ``charts/lagrange_multiplier`` (its
value after the rollout's update, the one the next rollout uses), the rollout's rate as
``charts/constraint_violation_rate``, and it is saved in each checkpoint's ``state.json``
(``lagrange_multiplier``), so a resumed run continues with it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, unwrap_vec_wrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from agents.runs.train_config import AgentConfig
from envs.config.errors import SuspiciousSettingWarning

__all__ = ["STATE_KEY", "LagrangianCallback", "LagrangianVecEnv", "dual_update",
           "make_lagrangian_callback", "penalty_replaced"]

STATE_KEY = "lagrange_multiplier"
"""The multiplier's key in a checkpoint's ``state.json`` and in ``summary.json``."""

VIOLATION_TERM = "sla_violation"
"""The reward term (`envs.reward.reward_terms`) the multiplier weighs."""


def dual_update(multiplier: float, violation_rate: float, budget: float, lr: float,
                cap: float) -> float:
    """One dual-ascent step: ``clip(multiplier + lr * (violation_rate - budget), 0, cap)``.

    Args:
        multiplier: The current lambda (>= 0).
        violation_rate: The rollout's fraction of requests that violated the SLA.
        budget: The allowed fraction (``agent.violation_budget``).
        lr: Step size (``agent.lagrange_lr``).
        cap: Largest lambda (``agent.lagrange_max``).

    Returns:
        The new lambda.
    """
    return float(min(max(multiplier + lr * (violation_rate - budget), 0.0), cap))


def selection_key(mean_reward: float, violation_rate: float, budget: float | None
                  ) -> tuple[float, float]:
    """How a validation result ranks for ``best/`` (larger is better).

    Without a budget: the mean reward. With one, the reward no longer counts violations,
    so a result within the budget beats every result outside it; among those within, the
    higher reward wins, and among those outside, the lower violation rate.

    Args:
        mean_reward: The validation's mean episode return.
        violation_rate: Its pooled SLA-violation rate.
        budget: The run's violation budget, or None.

    Returns:
        ``(within the budget: 1 or 0, reward or minus the violation rate)``; ``(1,
        reward)`` without a budget.
    """
    if budget is None or violation_rate <= budget:
        return (1.0, mean_reward)
    return (0.0, -violation_rate)


class LagrangianVecEnv(VecEnvWrapper):
    """Rewards ``r - multiplier * info["reward_terms"]["sla_violation"]`` per env and step.

    Args:
        venv: The training envs (any VecEnv whose infos hold ``reward_terms``: N monitored
            `PipelineEnv`s or the batched env).
        multiplier: The initial lambda; `LagrangianCallback` changes it between rollouts.
    """

    def __init__(self, venv: VecEnv, multiplier: float) -> None:
        super().__init__(venv)
        self.multiplier = float(multiplier)

    def reset(self) -> VecEnvObs:
        """Reset every env (unchanged).

        Returns:
            The first observations.
        """
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        """Step the envs and subtract the Lagrangian penalty from each reward.

        Returns:
            Observations, penalised rewards, dones and the envs' own infos.
        """
        obs, rewards, dones, infos = self.venv.step_wait()
        violation = np.array([info["reward_terms"][VIOLATION_TERM] for info in infos],
                             dtype=np.float64)
        penalised = (rewards - self.multiplier * violation).astype(rewards.dtype)
        return obs, penalised, dones, infos


class LagrangianCallback(BaseCallback):
    """Updates the wrapper's lambda after each rollout by dual ascent; logs and saves it.

    Args:
        wrapper: The `LagrangianVecEnv` whose multiplier this callback owns.
        budget: Allowed fraction of requests violating the SLA, in (0, 1).
        lr: Step size of the multiplier.
        cap: Largest multiplier.
        state: A checkpoint's ``state.json``; its ``lagrange_multiplier``, if present,
            replaces the wrapper's initial value (a resumed run continues with it).
    """

    def __init__(self, wrapper: LagrangianVecEnv, budget: float, lr: float, cap: float,
                 state: Mapping[str, Any] | None = None) -> None:
        super().__init__(verbose=0)
        self.wrapper, self.budget, self.lr, self.cap = wrapper, budget, lr, cap
        if state and STATE_KEY in state:
            wrapper.multiplier = float(state[STATE_KEY])
        self.violations = self.arrived = 0
        self.last_violation_rate = float("nan")

    @property
    def multiplier(self) -> float:
        """The current lambda (held by the wrapper)."""
        return self.wrapper.multiplier

    def observe(self, violations: int, arrived: int) -> None:
        """Count one env step's requests into the current rollout.

        Args:
            violations: Requests of the step's interval that violated the SLA.
            arrived: Requests that arrived in it.
        """
        self.violations += violations
        self.arrived += arrived

    def end_rollout(self) -> tuple[float, float]:
        """Apply `dual_update` with the rollout's violation rate; start a new rollout.

        Returns:
            The rollout's violation rate (0 when nothing arrived) and the new lambda.
        """
        rate = self.violations / self.arrived if self.arrived else 0.0
        self.wrapper.multiplier = dual_update(self.multiplier, rate, self.budget, self.lr,
                                              self.cap)
        self.violations = self.arrived = 0
        self.last_violation_rate = rate
        return rate, self.multiplier

    def state(self) -> dict[str, float]:
        """What a resumed run needs: ``{"lagrange_multiplier": lambda}``.

        Returns:
            The entry for a checkpoint's ``state.json``.
        """
        return {STATE_KEY: self.multiplier}

    # -- sb3 hooks -------------------------------------------------------------------------
    def _on_rollout_start(self) -> None:
        self.violations = self.arrived = 0

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            stats = info["stats"]
            self.observe(stats.sla_violations, stats.arrived)
        return True

    def _on_rollout_end(self) -> None:
        rate, multiplier = self.end_rollout()
        self.logger.record("charts/constraint_violation_rate", rate)
        self.logger.record("charts/lagrange_multiplier", multiplier)


def make_lagrangian_callback(agent: AgentConfig, venv: VecEnv,
                             state: Mapping[str, Any] | None = None
                             ) -> LagrangianCallback | None:
    """The callback of a constrained run (None when ``agent.violation_budget`` is unset).

    Args:
        agent: The agent config (``violation_budget``, ``lagrange_lr``, ``lagrange_max``).
        venv: The training envs, with a `LagrangianVecEnv` somewhere inside
            (`agents.training.vec_envs.make_normalized_venv` puts it there).
        state: A checkpoint's ``state.json`` (its multiplier is restored), or None.

    Returns:
        The callback bound to the wrapper, or None for an unconstrained run.
    """
    if agent.violation_budget is None:
        return None
    wrapper = unwrap_vec_wrapper(venv, LagrangianVecEnv)
    if not isinstance(wrapper, LagrangianVecEnv):
        raise TypeError("constrained PPO needs a LagrangianVecEnv inside the training envs; "
                        "build them with agents.training.vec_envs.make_normalized_venv")
    return LagrangianCallback(wrapper, agent.violation_budget, agent.lagrange_lr,
                              agent.lagrange_max, state=state)


@contextmanager
def penalty_replaced(agent: AgentConfig) -> Iterator[None]:
    """Within it, a constrained run's envs do not warn that ``reward.sla_violation`` is 0.

    `envs.suspicious` warns that a 0 weight switches the term off; with
    ``agent.violation_budget`` set the multiplier weighs it instead, so the warning is
    wrong there (envs built in subprocesses, ``run.vec_env=subproc``, still print it).

    Args:
        agent: The agent config; without a budget nothing is silenced.

    Yields:
        Nothing; the warning filter holds inside the ``with`` block.
    """
    with warnings.catch_warnings():
        if agent.violation_budget is not None:
            warnings.filterwarnings("ignore", message=r"reward\.sla_violation is 0",
                                    category=SuspiciousSettingWarning)
        yield
