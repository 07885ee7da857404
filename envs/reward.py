"""Named reward terms, each scaled to about [0, 1], and their weighted sum."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from envs.backends.base import IntervalStats
from envs.env_config import RewardWeights
from envs.model import node_power, power
from envs.model.spec import Decision, Pipeline

Term = TypeVar("Term", float, np.ndarray)


@dataclass(frozen=True)
class RewardScales:
    """Normalisers that bring every term to about [0, 1] for a pipeline.

    Attributes:
        max_cores: Cores of the largest decision.
        max_power_w: Power of the largest decision with every device busy (static power
            of the nodes it needs included).
        max_batch: Largest batch size a policy may choose.
    """

    max_cores: float
    max_power_w: float
    max_batch: int

    @staticmethod
    def for_pipeline(pipeline: Pipeline, max_replicas: int) -> RewardScales:
        """The largest cores and power a decision of ``pipeline`` can reach.

        Args:
            pipeline: The pipeline (profiles and power model).
            max_replicas: Largest replica count per stage.

        Returns:
            The scales.
        """
        max_cores = 0.0
        busiest_w_per_core = 0.0
        devices = [0.0] * len(pipeline.fleet.pools)
        for stage in pipeline.stages:
            largest = max(stage.variants, key=lambda v: v.base_cores)
            for v in stage.variants:
                for b in stage.batch_sizes:
                    for c in v.profile.core_counts:
                        busiest_w_per_core = max(busiest_w_per_core,
                                                 power.busy_dynamic_power_w(v, b, c))
            max_cores += largest.base_cores * max_replicas
            devices[largest.pool] += largest.base_cores * max_replicas
        # The power model over one second (joules = watts) with every core busy.
        one_s = node_power.energy_parts(pipeline.fleet, [(1.0, tuple(devices))],
                                   busiest_w_per_core * max_cores)
        max_power_w = one_s.total_j
        return RewardScales(max_cores, max_power_w,
                            max(s.batch_sizes[-1] for s in pipeline.stages))


def reward_terms(
    pipeline: Pipeline, stats: IntervalStats, decision: Decision, previous: Decision | None,
    scales: RewardScales,
) -> dict[str, float]:
    """The unweighted terms of one interval (larger is better for accuracy only).

    Args:
        pipeline: The pipeline.
        stats: The interval's statistics.
        decision: The decision that served it.
        previous: The decision before it (None: no switching term).
        scales: Normalisation of cores and power.

    Returns:
        Term name -> value, each about [0, 1].
    """
    n = len(pipeline.stages)
    switches = 0 if previous is None else sum(
        a.variant != b.variant for a, b in zip(decision.stages, previous.stages, strict=True))
    return {
        "accuracy": stats.accuracy_rank_sum / n,
        "sla_violation": stats.sla_violation_rate,
        "cost": stats.cores / scales.max_cores,
        "energy": stats.power_w / scales.max_power_w,
        "switching": switches / n,
        "batch": sum(c.batch for c in decision.stages) / (n * scales.max_batch),
    }


def weighted_reward(terms: Mapping[str, Term], weights: RewardWeights) -> Term:
    """The reward: accuracy is a gain; every other term is a penalty.

    Args:
        terms: `reward_terms`' values (floats, or arrays of one value per env: the batched
            env passes its terms as arrays, element-wise the same sum).
        weights: One weight per term.

    Returns:
        The weighted sum (an array for array terms).
    """
    return (
        weights.accuracy * terms["accuracy"]
        - weights.sla_violation * terms["sla_violation"]
        - weights.cost * terms["cost"]
        - weights.energy * terms["energy"]
        - weights.switching * terms["switching"]
        - weights.batch * terms["batch"]
    )
