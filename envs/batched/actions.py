"""`PipelineEnv`'s action decoding and core-budget repair for N envs at once, and the
`Decision` each env's arrays stand for."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium.spaces import MultiDiscrete

from envs.batched import array_perf as ap
from envs.batched.tables import Tables
from envs.config.errors import ActionError
from envs.env_config import EnvConfig
from envs.model.spec import Decision, StageDecision


def decode_actions(actions: np.ndarray, space: MultiDiscrete, config: EnvConfig,
                   tables: Tables, forecast_rps: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`PipelineEnv.decode` of every env's action.

    Args:
        actions: ``(envs, 3 x stages)``: per stage, variant, batch index and the replica
            action (``replicas - 1`` in the ``absolute`` mode, a headroom level's index in
            the ``headroom`` mode).
        space: The env's action space.
        config: The env config (action mode, headroom levels, replica cap).
        tables: The pipeline's per-configuration throughput.
        forecast_rps: Each env's forecast rate (what the headroom mode sizes for).

    Returns:
        ``(variant, batch index, replicas)``, each ``(envs, stages)``.

    Raises:
        ActionError: If an action does not fit the action space.
    """
    actions = np.asarray(actions)
    n_envs, nvec = len(forecast_rps), space.nvec
    if actions.shape != (n_envs, len(nvec)) or not (
            np.issubdtype(actions.dtype, np.integer) or np.all(actions == np.round(actions))
    ) or not np.all((actions >= 0) & (actions < nvec)):
        raise ActionError(
            f"actions of shape {actions.shape} do not fit {n_envs} envs of "
            f"{space}; give one [variant, batch index, replicas - 1] triple "
            "per stage per env")
    actions = actions.astype(np.int64)
    v, bi, replica_action = actions[:, 0::3], actions[:, 1::3], actions[:, 2::3]
    if config.action_mode == "absolute":
        return v, bi, replica_action + 1
    tp = tables.throughput_rps[np.arange(v.shape[1]), v, bi]
    headroom = np.asarray(config.headroom_levels)[replica_action]
    rate = forecast_rps[:, None] * headroom
    return v, bi, np.minimum(ap.replicas_for_rate(tp, rate), config.max_replicas)


def repair_replicas(v: np.ndarray, r: np.ndarray, tables: Tables,
                    max_cores: int | None) -> np.ndarray:
    """`envs.actions.ActionCodec.repair` for every env: replicas removed (in place) until each env's
    decision fits ``max_cores``, widest stage first.

    Args:
        v: ``(envs, stages)`` variant indices.
        r: ``(envs, stages)`` replicas; reduced in place.
        tables: The pipeline's per-variant cores.
        max_cores: The core budget (None: no budget).

    Returns:
        How many replicas each env lost.

    Raises:
        ActionError: If even one replica per stage exceeds the budget.
    """
    repairs = np.zeros(len(r), dtype=np.int64)
    if max_cores is None:
        return repairs
    cores = tables.cores[np.arange(v.shape[1]), v]
    rows = np.arange(len(r))
    while np.any(over := (r * cores).sum(axis=1) > max_cores):
        widest = np.argmax(r * cores, axis=1)
        if np.any(r[rows, widest][over] == 1):
            raise ActionError(f"even one replica per stage exceeds max_cores={max_cores}; "
                              "raise max_cores")
        r[rows[over], widest[over]] -= 1
        repairs += over
    return repairs


class Decisions:
    """The `Decision` of one env's arrays, its `StageDecision`s cached per stage.

    Args:
        batch_sizes: Each stage's batch sizes (by index).
        cores: ``[stage, variant]`` cores per replica (`Tables.cores`).
    """

    def __init__(self, batch_sizes: Sequence[Sequence[int]], cores: np.ndarray) -> None:
        self.batch_sizes = batch_sizes
        self.cores = cores
        self._cache: list[dict[tuple[int, int, int], StageDecision]] = [
            {} for _ in range(cores.shape[0])]

    def decision(self, v: Sequence[int], bi: Sequence[int], r: Sequence[int]) -> Decision:
        """The decision of per-stage variant, batch index and replicas.

        Args:
            v: Variant index per stage.
            bi: Batch-size index per stage.
            r: Replicas per stage.

        Returns:
            The decision (its stage choices shared with earlier calls).
        """
        stages = []
        for k, key in enumerate(zip(v, bi, r, strict=True)):
            cache = self._cache[k]
            choice = cache.get(key)
            if choice is None:
                choice = cache[key] = StageDecision(key[0], self.batch_sizes[k][key[1]], key[2],
                                                    int(self.cores[k, key[0]]))
            stages.append(choice)
        return Decision(tuple(stages))
