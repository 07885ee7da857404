"""What a baseline may not change in IPA's ILP: the ILP restricted, not a copy of it (FA2 fixes
the variants, RIM the replicas, the matched-accuracy policy the accuracy level)."""

from __future__ import annotations

from dataclasses import dataclass

from envs.model.spec import Decision, Pipeline, Stage


@dataclass(frozen=True)
class Restriction:
    """What a baseline may not change: the ILP restricted, not a copy of it.

    Attributes:
        variants: Per stage, the variant indices allowed (None: all). FA2 allows one.
        replicas: Per stage, a fixed replica count (None: replicas adapt). RIM fixes them.
    """

    variants: tuple[tuple[int, ...] | None, ...] | None = None
    replicas: tuple[int, ...] | None = None

    def allowed_variants(self, stage_index: int, stage: Stage) -> tuple[int, ...]:
        """The variant indices a stage may use.

        Args:
            stage_index: The stage's index in the pipeline.
            stage: The stage.

        Returns:
            The allowed indices (all of the stage's when unrestricted).
        """
        allowed = None if self.variants is None else self.variants[stage_index]
        return tuple(range(len(stage.variants))) if allowed is None else tuple(allowed)

    def admits(self, pipeline: Pipeline, decision: Decision) -> bool:
        """Whether a decision lies within the restriction (allowed variants, fixed replicas).

        Args:
            pipeline: The pipeline.
            decision: One choice per stage.

        Returns:
            True when every stage uses an allowed variant and its fixed replica count.
        """
        for s, (stage, choice) in enumerate(zip(pipeline.stages, decision.stages,
                                                strict=True)):
            fixed = self.fixed_replicas(s)
            if choice.variant not in self.allowed_variants(s, stage) or (
                    fixed is not None and choice.replicas != fixed):
                return False
        return True

    def fixed_replicas(self, stage_index: int) -> int | None:
        """The replica count a stage is fixed at.

        Args:
            stage_index: The stage's index in the pipeline.

        Returns:
            The fixed count, or None when replicas adapt.
        """
        return None if self.replicas is None else int(self.replicas[stage_index])
