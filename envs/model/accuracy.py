"""Pipeline accuracy in IPA's two modes (arXiv 2308.12871, section 4): the sum of the
stages' rank-normalised accuracies (``sum``) and the product of their raw accuracies
(``product``). The one definition the simulators, the ILP, the reward and the reports use."""

from __future__ import annotations

import math
from collections.abc import Sequence

from envs.model.spec import Decision, Pipeline

__all__ = ["accuracy_product", "accuracy_rank_sum", "decision_accuracy"]


def accuracy_rank_sum(pipeline: Pipeline, variants: Sequence[int]) -> float:
    """IPA's "sum" accuracy: the sum of the stages' rank-normalised accuracies.

    Args:
        pipeline: The pipeline.
        variants: Variant index per stage.

    Returns:
        The sum, between 0 and the number of stages.
    """
    return sum(
        stage.accuracy_ranks[v] for stage, v in zip(pipeline.stages, variants, strict=True)
    )


def accuracy_product(pipeline: Pipeline, variants: Sequence[int]) -> float:
    """IPA's "product" accuracy: the product of raw accuracies as fractions (% / 100).

    Args:
        pipeline: The pipeline.
        variants: Variant index per stage.

    Returns:
        The product, in [0, 1].
    """
    return math.prod(
        stage.variants[v].accuracy / 100.0
        for stage, v in zip(pipeline.stages, variants, strict=True)
    )


def decision_accuracy(pipeline: Pipeline, decision: Decision, mode: str = "sum") -> float:
    """Pipeline accuracy of a decision in IPA's ``sum`` or ``product`` mode.

    Args:
        pipeline: The pipeline.
        decision: One choice per stage.
        mode: ``sum`` (`accuracy_rank_sum`) or ``product`` (`accuracy_product`).

    Returns:
        The accuracy.

    Raises:
        ValueError: An unknown mode.
    """
    variants = [c.variant for c in decision.stages]
    if mode == "sum":
        return accuracy_rank_sum(pipeline, variants)
    if mode == "product":
        return accuracy_product(pipeline, variants)
    raise ValueError(f"accuracy mode must be 'sum' or 'product', got {mode!r}")
