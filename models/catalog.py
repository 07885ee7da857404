"""The models the profiler can build, grouped into the pipelines the package ships.

Every model is built from code with random weights (latency and energy do not depend
on weight values); each variant's accuracy is cited next to the number.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from models.errors import CatalogError

TORCHVISION_META = (
    "torchvision {version} weight metadata ({weights}.meta['_metrics'], read offline)"
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


def _image_batch(size: int) -> Callable[[int], torch.Tensor]:
    def make(batch: int) -> torch.Tensor:
        return torch.rand(batch, 3, size, size)

    return make


def _image_list(size: int) -> Callable[[int], list[torch.Tensor]]:
    def make(batch: int) -> list[torch.Tensor]:
        return [torch.rand(3, size, size) for _ in range(batch)]

    return make


DETECTOR_INPUT = 320
CLASSIFIER_INPUT = 224


def _torchvision_variant(
    name: str,
    weights_enum: str,
    metric_key: tuple[str, str],
    metric: str,
    builder_kwargs: dict[str, object],
    make_input: Callable[[int], object],
    base_cores: int,
) -> CatalogVariant:
    import torchvision
    from torchvision import models

    weights = models.get_weight(weights_enum)
    dataset, key = metric_key
    accuracy = float(weights.meta["_metrics"][dataset][key])

    def build() -> nn.Module:
        return models.get_model(name, weights=None, **builder_kwargs).eval()

    source = TORCHVISION_META.format(version=torchvision.__version__, weights=weights_enum)
    return CatalogVariant(name, build, make_input, accuracy, metric, source, base_cores)


def video_pipeline() -> CatalogPipeline:
    """IPA's video pipeline: an object detector, then an image classifier.

    IPA used YOLOv5n..x, which no offline library here builds; torchvision's detectors
    stand in, run at 320x320 input so that batch 8 is affordable on two cores (the
    cited mAP is at each model's native input size).
    """
    det_kwargs: dict[str, object] = {"weights_backbone": None}
    sized = {**det_kwargs, "min_size": DETECTOR_INPUT, "max_size": DETECTOR_INPUT}
    detectors = (
        (
            "ssdlite320_mobilenet_v3_large",
            "SSDLite320_MobileNet_V3_Large_Weights.COCO_V1",
            det_kwargs,
        ),
        (
            "fasterrcnn_mobilenet_v3_large_320_fpn",
            "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1",
            sized,
        ),
        (
            "fasterrcnn_mobilenet_v3_large_fpn",
            "FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1",
            sized,
        ),
        ("retinanet_resnet50_fpn", "RetinaNet_ResNet50_FPN_Weights.COCO_V1", sized),
        ("retinanet_resnet50_fpn_v2", "RetinaNet_ResNet50_FPN_V2_Weights.COCO_V1", sized),
    )
    classifiers = (
        ("resnet18", "ResNet18_Weights.IMAGENET1K_V1"),
        ("resnet34", "ResNet34_Weights.IMAGENET1K_V1"),
        ("resnet50", "ResNet50_Weights.IMAGENET1K_V1"),
        ("resnet101", "ResNet101_Weights.IMAGENET1K_V1"),
        ("resnet152", "ResNet152_Weights.IMAGENET1K_V1"),
    )
    detector = CatalogStage(
        "detector",
        tuple(
            _torchvision_variant(
                name,
                weights,
                ("COCO-val2017", "box_map"),
                "COCO val2017 box mAP (%)",
                kwargs,
                _image_list(DETECTOR_INPUT),
                base_cores=1,
            )
            for name, weights, kwargs in detectors
        ),
    )
    classifier = CatalogStage(
        "classifier",
        tuple(
            _torchvision_variant(
                name,
                weights,
                ("ImageNet-1K", "acc@1"),
                "ImageNet-1K top-1 (%)",
                {},
                _image_batch(CLASSIFIER_INPUT),
                base_cores=1,
            )
            for name, weights in classifiers
        ),
    )
    return CatalogPipeline(
        name="video",
        stages=(detector, classifier),
        sla_ms=2000.0,
        batch_sizes=(1, 2, 4, 8),
        notes=(
            f"detectors at {DETECTOR_INPUT}x{DETECTOR_INPUT} input, classifiers at "
            f"{CLASSIFIER_INPUT}x{CLASSIFIER_INPUT}; random weights; cited accuracies are "
            "at each model's native input size"
        ),
    )


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
            CatalogVariant(f"tiny{w}", tiny(w), _image_batch(16), acc, "placeholder", cite)
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
    "video": video_pipeline,
    "tiny": tiny_pipeline,
    "sam": _lazy("models.sam", "sam_pipeline"),
    "llm": _lazy("models.llm", "llm_pipeline"),
    "audio_qa": _lazy("models.ipa_models", "audio_qa_pipeline"),
    "audio_sent": _lazy("models.ipa_models", "audio_sent_pipeline"),
    "sum_qa": _lazy("models.ipa_models", "sum_qa_pipeline"),
    "nlp": _lazy("models.ipa_models", "nlp_pipeline"),
}


def catalog_pipeline(name: str) -> CatalogPipeline:
    """The catalog entry ``name``; CatalogError with a hint for an unknown name."""
    try:
        return PIPELINES[name]()
    except KeyError:
        raise CatalogError(
            f"unknown pipeline {name!r}{_did_you_mean(name, PIPELINES)}; "
            f"the profiler can build: {sorted(PIPELINES)}"
        ) from None


def _did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
