"""The documented fallback when IPA's ILP is infeasible: the most throughput allowed."""

from __future__ import annotations

from envs.model import perf
from envs.model.spec import Decision, Pipeline, StageDecision
from ipa_baseline.restriction import Restriction

__all__ = ["fallback_decision"]


def fallback_decision(pipeline: Pipeline, max_replicas: int,
                      restriction: Restriction | None = None) -> Decision:
    """The highest-throughput decision the restriction allows (base cores).

    Per stage: the allowed (variant, batch) with the highest `perf.replica_throughput_rps`,
    at ``max_replicas`` (or the restriction's fixed replicas).

    Args:
        pipeline: The pipeline.
        max_replicas: Replicas per stage where the restriction fixes none.
        restriction: What the baseline may not change (None: nothing).

    Returns:
        The fallback `Decision`.
    """
    restriction = restriction or Restriction()
    choices = []
    for s, stage in enumerate(pipeline.stages):
        options = [(v, b) for v in restriction.allowed_variants(s, stage)
                   for b in stage.batch_sizes]
        v, b = max(options, key=lambda vb: perf.replica_throughput_rps(
            stage.variants[vb[0]], vb[1], stage.variants[vb[0]].base_cores))
        replicas = restriction.fixed_replicas(s) or max_replicas
        choices.append(StageDecision(v, b, replicas, stage.variants[v].base_cores))
    return Decision(tuple(choices))
