"""The models the profiler can build, grouped into the pipelines the package ships.

Every model is built from code with random weights (latency and energy do not depend
on weight values); each variant's accuracy is cited next to the number.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from models.errors import CatalogError

#: Why the shipped profiles have 1-core rows only (in every catalog_* pipeline's notes).
ONE_CORE = (
    "profiled at 1 core only: on the 2-core machine shared with other jobs, 2-thread "
    "timings measured the neighbours' load (up to 7x slower than 1 thread); points whose "
    "wall time exceeded their process CPU time by more than 10 % were measured again"
)


@dataclass(frozen=True)
class CatalogVariant:
    """A buildable model variant with its cited accuracy.

    Attributes:
        name: Variant name.
        build: Returns the model in eval mode with random weights.
        make_input: Returns an input batch of the given size.
        accuracy: Published accuracy.
        accuracy_metric: What the accuracy measures.
        accuracy_source: Citation.
        base_cores: Cores per replica in IPA's base allocation.
    """

    name: str
    build: Callable[[], nn.Module]
    make_input: Callable[[int], object]
    accuracy: float
    accuracy_metric: str
    accuracy_source: str
    base_cores: int = 1


@dataclass(frozen=True)
class CatalogStage:
    """One stage of a catalog pipeline.

    Attributes:
        name: Stage name.
        variants: Candidate variants, in the order the profile lists them.
    """

    name: str
    variants: tuple[CatalogVariant, ...]


@dataclass(frozen=True)
class CatalogPipeline:
    """A pipeline the profiler can measure end to end.

    Attributes:
        name: Pipeline name; the profile is written to ``profiles/<name>.yaml``.
        stages: Stages in request order.
        sla_ms: End-to-end SLA to write into the profile.
        batch_sizes: Batch sizes to measure (policies may choose any of them).
        notes: Measurement conditions a reader must know (input sizes, ...).
    """

    name: str
    stages: tuple[CatalogStage, ...]
    sla_ms: float
    batch_sizes: tuple[int, ...]
    notes: str


def cited_stage(
    name: str,
    accuracies: Mapping[str, float],
    builder: Callable[[str], Callable[[], nn.Module]],
    make_input: Callable[[int], object],
    metric: str,
    source: str,
    base_cores: int = 1,
) -> CatalogStage:
    """A stage whose variants share one input, one metric and one citation.

    Args:
        name: Stage name.
        accuracies: Variant name -> its cited accuracy, in stage order.
        builder: Variant name -> the zero-argument builder of its model.
        make_input: Input batch of a given size, shared by every variant.
        metric: What the accuracies measure.
        source: Citation of the accuracies.
        base_cores: Cores per replica in IPA's base allocation.

    Returns:
        The stage.
    """
    return CatalogStage(
        name,
        tuple(
            CatalogVariant(variant, builder(variant), make_input, accuracy, metric, source,
                           base_cores=base_cores)
            for variant, accuracy in accuracies.items()
        ),
    )


def image_batch(size: int) -> Callable[[int], torch.Tensor]:
    """``make_input`` for image models: uniform random ``size`` x ``size`` RGB images.

    Args:
        size: Side in pixels.

    Returns:
        A function of the batch size returning a ``(batch, 3, size, size)`` tensor.
    """

    def make(batch: int) -> torch.Tensor:
        return torch.rand(batch, 3, size, size)

    return make


def tiny_pipeline() -> CatalogPipeline:
    """Two stages of very small CNNs, for tests of the profiler and the live backend."""

    def tiny(width: int) -> Callable[[], nn.Module]:
        def build() -> nn.Module:
            return nn.Sequential(
                nn.Conv2d(3, width, 3, padding=1),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(width, 10),
            ).eval()

        return build

    cite = "synthetic test model; accuracy is a placeholder, not a published figure"
    stage = CatalogStage(
        "tiny",
        tuple(
            CatalogVariant(f"tiny{w}", tiny(w), image_batch(16), acc, "placeholder", cite)
            for w, acc in ((4, 50.0), (16, 60.0))
        ),
    )
    return CatalogPipeline(
        "tiny", (stage,), sla_ms=1000.0, batch_sizes=(1, 2), notes="16x16 inputs, test-only"
    )


def _lazy(module: str, function: str) -> Callable[[], CatalogPipeline]:
    """A builder that imports ``module`` (which imports this one) only when called."""

    def build() -> CatalogPipeline:
        import importlib

        return getattr(importlib.import_module(module), function)()

    build.__name__ = function
    return build


PIPELINES: dict[str, Callable[[], CatalogPipeline]] = {
    "video": _lazy("models.video", "video_pipeline"),
    "tiny": tiny_pipeline,
    "sam": _lazy("models.sam", "sam_pipeline"),
    "llm": _lazy("models.llm", "llm_pipeline"),
    "audio_qa": _lazy("models.ipa_pipelines", "audio_qa_pipeline"),
    "audio_sent": _lazy("models.ipa_pipelines", "audio_sent_pipeline"),
    "sum_qa": _lazy("models.ipa_pipelines", "sum_qa_pipeline"),
    "nlp": _lazy("models.ipa_pipelines", "nlp_pipeline"),
}


def catalog_pipeline(name: str) -> CatalogPipeline:
    """Build the catalog entry ``name``.

    Args:
        name: A key of `PIPELINES`.

    Returns:
        The pipeline.

    Raises:
        CatalogError: An unknown name (the message suggests the closest one).
    """
    builder = PIPELINES.get(name)
    if builder is None:
        raise CatalogError(
            f"unknown pipeline {name!r}{_did_you_mean(name, PIPELINES)}; "
            f"the profiler can build: {sorted(PIPELINES)}"
        )
    return builder()  # a KeyError inside a builder is a bug, not an unknown name


def _did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
