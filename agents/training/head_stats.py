"""Entropy of each action head of a ``MultiDiscrete`` policy, logged after every rollout.

The policy of `PipelineEnv` has three heads per stage (variant, batch size, replicas or
headroom); a residual agent's has a rate head, a margin head and one keep head per stage
(`agents.policies.residual_env.ResidualPlannerEnv`). `HeadStatsCallback` records, per head,
the mean entropy (nats) over the rollout's observations as ``heads/<name>/entropy`` and the
mean entropy relative to its maximum as ``heads/<name>/entropy_norm`` (1: uniform over the
choices allowed, 0: one choice certain), e.g. ``heads/stage0/replicas/entropy_norm``.
`agents.training.metrics_log.MetricsLog` writes them to ``metrics.csv`` under the columns
`head_columns` names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["HeadEntropy", "HeadStatsCallback", "head_columns", "head_entropies", "head_names",
           "rollout_rows"]

MAX_ROWS = 2048
"""Observations of a rollout that `HeadStatsCallback` evaluates at most."""


class HeadEntropy(NamedTuple):
    """One head's entropy over a batch of observations.

    Attributes:
        entropy: Mean entropy in nats.
        entropy_norm: Mean of entropy / log(allowed choices) over the rows with more than
            one allowed choice (NaN when there is none, e.g. a head with one choice).
    """

    entropy: float
    entropy_norm: float


def head_names(nvec: Sequence[int], action_mode: str | None = None,
               residual: bool = False) -> list[str]:
    """Names of the heads of a ``MultiDiscrete`` action space, in action order.

    Args:
        nvec: Choices per head (``action_space.nvec``).
        action_mode: The env's ``action_mode`` (``absolute``: the third head of a stage is
            ``replicas``; ``headroom``: ``headroom``); None: unknown, heads are ``head<j>``.
        residual: The space is a `ResidualPlannerEnv`'s: ``rate``, ``margin``, then
            ``stage<i>/keep`` per stage.

    Returns:
        One name per head, e.g. ``stage0/variant``, ``stage0/batch``, ``stage0/replicas``;
        ``head<j>`` for every head when the layout does not fit ``nvec``.
    """
    n = len(nvec)
    if residual and n >= 2:
        return ["rate", "margin", *(f"stage{i}/keep" for i in range(n - 2))]
    third = {"absolute": "replicas", "headroom": "headroom"}.get(action_mode or "")
    if residual or third is None or n % 3:
        return [f"head{j}" for j in range(n)]
    return [f"stage{j // 3}/{('variant', 'batch', third)[j % 3]}" for j in range(n)]


def head_columns(names: Sequence[str]) -> list[str]:
    """The ``metrics.csv`` columns of the heads ``names``.

    Args:
        names: Head names (`head_names`).

    Returns:
        ``heads/<name>/entropy`` and ``heads/<name>/entropy_norm`` for each head, in order.
    """
    return [f"heads/{name}/{stat}" for name in names for stat in ("entropy", "entropy_norm")]


def head_entropies(model: Any, obs: np.ndarray, names: Sequence[str] | None = None,
                   masks: np.ndarray | None = None) -> dict[str, HeadEntropy]:
    """Mean entropy of each head of the policy's distribution at the observations ``obs``.

    The distribution is the policy network's (``policy.get_distribution``; for MaskablePPO
    without masks). With ``masks``, each head's distribution is the masked one MaskablePPO
    samples from: renormalised over the allowed choices, whose number is the maximum
    entropy's log; without, every choice counts.

    Args:
        model: A stable-baselines3 PPO or sb3-contrib MaskablePPO over a ``MultiDiscrete``
            action space.
        obs: Observations as the policy sees them (normalised by VecNormalize, as the
            rollout buffer holds them), shape ``(rows, *observation_shape)``.
        names: One name per head (`head_names`); None: ``head<j>``.
        masks: Allowed actions, shape ``(rows, sum(nvec))`` (MaskablePPO's layout), or None.

    Returns:
        Head name to its `HeadEntropy`, in action order.

    Raises:
        ValueError: The action space is not ``MultiDiscrete`` or ``names`` does not have
            one name per head.
    """
    space = model.action_space
    if not isinstance(space, spaces.MultiDiscrete):
        raise ValueError(f"per-head entropy needs a MultiDiscrete action space, got {space}")
    nvec = [int(n) for n in space.nvec]
    names = list(names) if names is not None else head_names(nvec)
    if len(names) != len(nvec):
        raise ValueError(f"{len(names)} head names for {len(nvec)} heads ({nvec})")
    policy = model.policy
    with torch.no_grad():
        obs_t, _ = policy.obs_to_tensor(obs)
        dist = policy.get_distribution(obs_t)
    heads = getattr(dist, "distributions", None) or dist.distribution
    mask_parts = (np.split(np.asarray(masks, dtype=bool), np.cumsum(nvec)[:-1], axis=1)
                  if masks is not None else [None] * len(nvec))
    return {name: _entropy(head.logits.double().cpu().numpy(), mask)
            for name, head, mask in zip(names, heads, mask_parts, strict=True)}


def _entropy(logits: np.ndarray, mask: np.ndarray | None) -> HeadEntropy:
    if mask is None:
        mask = np.ones(logits.shape, dtype=bool)
    z = np.where(mask, logits, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    logp = np.where(mask, z - np.log(np.exp(z).sum(axis=1, keepdims=True)), 0.0)
    h = -(np.exp(logp) * logp).sum(axis=1)
    allowed = mask.sum(axis=1)
    several = allowed > 1
    norm = (float(np.mean(h[several] / np.log(allowed[several]))) if several.any()
            else float("nan"))
    return HeadEntropy(float(h.mean()), norm)


def rollout_rows(buffer: Any, max_rows: int = MAX_ROWS
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Observations (and action masks) of a rollout buffer, at most ``max_rows`` of them.

    Args:
        buffer: The model's ``rollout_buffer`` (MaskablePPO's holds ``action_masks``).
        max_rows: Most rows returned; a fuller buffer gives evenly spaced rows (no random
            draw, so logging leaves training's random streams alone).

    Returns:
        Observations ``(rows, *observation_shape)`` and masks ``(rows, mask size)`` or None.
    """
    # (steps, envs, ...) at a rollout's end; sb3's update flattens a full buffer in place
    obs = buffer.observations.reshape(-1, *buffer.obs_shape)
    masks = getattr(buffer, "action_masks", None)
    if masks is not None:
        masks = masks.reshape(len(obs), -1)
    if not buffer.full:
        obs = obs[:buffer.pos * buffer.n_envs]
        masks = masks[:len(obs)] if masks is not None else None
    if len(obs) > max_rows:
        keep = np.linspace(0, len(obs) - 1, max_rows).round().astype(int)
        obs = obs[keep]
        masks = masks[keep] if masks is not None else None
    return obs, masks


class HeadStatsCallback(BaseCallback):
    """Records each head's entropy on the rollout's observations at every rollout's end.

    The values go to the model's logger as ``heads/<name>/entropy`` and
    ``heads/<name>/entropy_norm`` (`head_entropies`, with MaskablePPO's masks), so they
    are dumped with the rollout's ``charts/`` metrics: the policy that collected it, before
    its update.

    Args:
        names: One name per head (`head_names`).
        max_rows: Most rollout observations evaluated (`rollout_rows`).
    """

    def __init__(self, names: Sequence[str], max_rows: int = MAX_ROWS) -> None:
        super().__init__(verbose=0)
        self.names = list(names)
        self.max_rows = max_rows

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        obs, masks = rollout_rows(self.model.rollout_buffer, self.max_rows)
        if not len(obs):
            return
        for name, head in head_entropies(self.model, obs, self.names, masks).items():
            self.logger.record(f"heads/{name}/entropy", head.entropy)
            self.logger.record(f"heads/{name}/entropy_norm", head.entropy_norm)
