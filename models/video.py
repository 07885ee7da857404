"""IPA's video pipeline built from torchvision detectors and classifiers, random weights.

Each variant's accuracy is read offline from torchvision's weight metadata (the weights
themselves are never downloaded).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from models.catalog import CatalogPipeline, CatalogStage, CatalogVariant, image_batch

TORCHVISION_META = (
    "torchvision {version} weight metadata ({weights}.meta['_metrics'], read offline)"
)

def _image_list(size: int) -> Callable[[int], list[torch.Tensor]]:
    def make(batch: int) -> list[torch.Tensor]:
        return [torch.rand(3, size, size) for _ in range(batch)]

    return make


DETECTOR_INPUT = 320
CLASSIFIER_INPUT = 224
#: 1.5 x the slowest path (retinanet_resnet50_fpn_v2 695.9 ms + resnet152 361.1 ms, batch-1
#: p99 at 1 core, measured in profiles/video.yaml: 1057.0 ms), rounded up to a whole second,
#: as for the other CPU pipelines (`models.ipa_pipelines.SLA_MS`).
VIDEO_SLA_MS = 2000.0


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
                image_batch(CLASSIFIER_INPUT),
                base_cores=1,
            )
            for name, weights in classifiers
        ),
    )
    return CatalogPipeline(
        name="video",
        stages=(detector, classifier),
        sla_ms=VIDEO_SLA_MS,
        batch_sizes=(1, 2, 4, 8),
        notes=(
            f"detectors at {DETECTOR_INPUT}x{DETECTOR_INPUT} input, classifiers at "
            f"{CLASSIFIER_INPUT}x{CLASSIFIER_INPUT}; random weights; cited accuracies are "
            "at each model's native input size. SLA = 1.5 x the slowest path (sum over "
            "stages of the slowest variant's batch-1 p99 at 1 core, measured here), rounded "
            "up to a whole second: every variant combination fits at batch 1"
        ),
    )


