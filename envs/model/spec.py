"""The pipeline model: the one definition shared by the simulator, the ILP, the agents
and the reports.

A `Pipeline` is an ordered tuple of `Stage`s with an end-to-end SLA. Each stage offers
`ModelVariant`s; each variant carries its accuracy (with the source of the number) and
a `Profile` of measured rows (`envs.model.profile_data`). Each stage has its own knob values
(`Stage.batch_sizes`: the batch sizes of a statically batched stage, the concurrency caps
of an LLM stage). A `Decision` picks, per stage, a variant, one of the stage's knob
values, a replica count and the cores of each replica.

Profiles are dense after loading: for every profiled core count the latency and energy
of every integer batch size from 1 to the largest measured one is available, and rows
that were filled in by interpolation are marked as such (the request-level simulator
needs them for partial batches). Batch sizes a policy may choose must be measured.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from envs.config.errors import ActionError, ProfileError
from envs.config.suggest import did_you_mean
from envs.model.continuous import ContinuousServing
from envs.model.fleet import POWER_QUANTITIES, DevicePool, Fleet
from envs.model.profile_data import SOURCE_KINDS, Profile, Source

KnobKind = Literal["batch", "cap"]


@dataclass(frozen=True)
class ModelVariant:
    """A model that can serve a stage.

    Attributes:
        name: Variant name, unique within its stage.
        accuracy: Task accuracy in the metric's own units (e.g. top-1 %, mAP).
        accuracy_metric: What ``accuracy`` measures.
        accuracy_source: Citation of the number.
        base_cores: Cores per replica in IPA's base allocation.
        profile: Latency and energy rows.
        weights_gb: Size of the model's weights, for the size-dependent part of a cold
            start (`envs.model.perf.model_load_s`); 0 where the profile does not give it.
        continuous: How it serves under continuous batching (an LLM of a ``cap`` stage:
            measured points, output lengths, a load table per cap); None where the profile
            gives only static rows.
        pool: Index of the `DevicePool` its replicas run on (`Pipeline.fleet`).
    """

    name: str
    accuracy: float
    accuracy_metric: str
    accuracy_source: str
    base_cores: int
    profile: Profile
    weights_gb: float = 0.0
    continuous: ContinuousServing | None = None
    pool: int = 0


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline and its candidate variants (ordered by accuracy).

    Attributes:
        name: Stage name.
        variants: The variants, ordered by accuracy.
        batch_sizes: The knob values a policy may choose for this stage, increasing (each
            measured for every variant at every profiled core count).
        knob: What a value means: ``batch`` (a static batch size) or ``cap`` (an LLM
            server's concurrency cap, vLLM's ``max_num_seqs``).
    """

    name: str
    variants: tuple[ModelVariant, ...]
    batch_sizes: tuple[int, ...]
    knob: KnobKind = "batch"

    def variant_index(self, name: str) -> int:
        """Index of the variant called ``name``.

        Args:
            name: Variant name.

        Returns:
            Its index in `variants`.

        Raises:
            ProfileError: No such variant (with a "did you mean" hint).
        """
        names = [v.name for v in self.variants]
        if name in names:
            return names.index(name)
        raise ProfileError(
            f"stage {self.name!r} has no variant {name!r}{did_you_mean(name, names)}; "
            f"variants: {names}"
        )

    @functools.cached_property
    def accuracy_ranks(self) -> tuple[float, ...]:
        """IPA's rank-normalised accuracy of each variant: rank / (n - 1), in [0, 1]
        (1 for a single variant), as IPA's code computes it
        (``Task.variants_accuracies_normalized``). Variants of equal accuracy (one model on
        two device pools) share a rank, ``n`` counting distinct accuracies; without ties
        this is IPA's rank exactly."""
        distinct = sorted({v.accuracy for v in self.variants})
        if len(distinct) == 1:
            return tuple(1.0 for _ in self.variants)
        return tuple(distinct.index(v.accuracy) / (len(distinct) - 1) for v in self.variants)


@dataclass(frozen=True)
class Pipeline:
    """Ordered stages with an end-to-end latency SLA.

    Attributes:
        name: Pipeline name (e.g. ``video``).
        stages: The stages in request order.
        sla_ms: End-to-end latency objective.
        fleet: The device pools replicas run on, and their power model.
        sources: Every `Source` the profile rows and pools refer to.
    """

    name: str
    stages: tuple[Stage, ...]
    sla_ms: float
    fleet: Fleet
    sources: Mapping[str, Source]

    def pool_of(self, variant: ModelVariant) -> DevicePool:
        """The pool a variant's replicas run on.

        Args:
            variant: A variant of one of the stages.

        Returns:
            Its `DevicePool`.
        """
        return self.fleet.pools[variant.pool]

    def stage_index(self, name: str) -> int:
        """Index of the stage called ``name``.

        Args:
            name: Stage name.

        Returns:
            Its index in `stages`.

        Raises:
            ProfileError: No such stage (with a "did you mean" hint).
        """
        names = [s.name for s in self.stages]
        if name in names:
            return names.index(name)
        raise ProfileError(
            f"pipeline {self.name!r} has no stage {name!r}{did_you_mean(name, names)}"
        )

    @property
    def energy_kinds(self) -> tuple[str, ...]:
        """Provenance kinds of every number in the power model (static, idle, dynamic),
        in `SOURCE_KINDS` order."""
        kinds = {self.sources[ref].kind for pool in self.fleet.pools
                 for q, ref in pool.sources.items() if q in POWER_QUANTITIES}
        for stage in self.stages:
            for variant in stage.variants:
                kinds |= variant.profile.energy_kinds
        return tuple(k for k in SOURCE_KINDS if k in kinds)

    @property
    def energy_estimated(self) -> bool:
        """True unless every number of the power model was measured."""
        return self.energy_kinds != ("measured",)

    def validate(self, decision: Decision) -> None:
        """Check that ``decision`` fits this pipeline.

        Args:
            decision: One choice per stage.

        Raises:
            ActionError: Wrong stage count, a variant index out of range, no replicas, or a
                (batch, cores) pair the profile lacks.
        """
        if len(decision.stages) != len(self.stages):
            raise ActionError(
                f"decision has {len(decision.stages)} stages, pipeline {self.name!r} has "
                f"{len(self.stages)}; give one StageDecision per stage"
            )
        for stage, choice in zip(self.stages, decision.stages, strict=True):
            if not 0 <= choice.variant < len(stage.variants):
                raise ActionError(
                    f"stage {stage.name!r}: variant index {choice.variant} out of range "
                    f"0..{len(stage.variants) - 1}"
                )
            if choice.replicas < 1:
                raise ActionError(f"stage {stage.name!r}: replicas must be >= 1")
            variant = stage.variants[choice.variant]
            if not variant.profile.has(choice.batch, choice.cores):
                raise ActionError(
                    f"stage {stage.name!r}, variant {variant.name!r}: batch {choice.batch} "
                    f"at {choice.cores} cores is not profiled; profiled core counts: "
                    f"{variant.profile.core_counts}, the stage's {stage.knob} values: "
                    f"{list(stage.batch_sizes)}"
                )


@dataclass(frozen=True)
class StageDecision:
    """The configuration of one stage: variant index, batch size, replicas, cores each."""

    variant: int
    batch: int
    replicas: int
    cores: int


@dataclass(frozen=True)
class Decision:
    """One `StageDecision` per stage, in pipeline order."""

    stages: tuple[StageDecision, ...]

    def describe(self, pipeline: Pipeline) -> str:
        """One line for reports: ``stage=variant bB xR (Cc)`` per stage.

        Args:
            pipeline: The pipeline the decision is for (variant names).

        Returns:
            The line.
        """
        parts = []
        for stage, c in zip(pipeline.stages, self.stages, strict=True):
            name = stage.variants[c.variant].name
            parts.append(f"{stage.name}={name} b{c.batch} x{c.replicas} ({c.cores}c)")
        return ", ".join(parts)

    @staticmethod
    def base(pipeline: Pipeline, variants: tuple[int, ...], batches: tuple[int, ...],
             replicas: tuple[int, ...]) -> Decision:
        """A decision whose cores per replica are each variant's base allocation.

        Args:
            pipeline: The pipeline.
            variants: Variant index per stage.
            batches: Batch size per stage.
            replicas: Replicas per stage.

        Returns:
            The decision.
        """
        return Decision(
            tuple(
                StageDecision(v, b, r, stage.variants[v].base_cores)
                for stage, v, b, r in zip(pipeline.stages, variants, batches, replicas,
                                          strict=True)
            )
        )
