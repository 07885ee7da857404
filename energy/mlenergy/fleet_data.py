"""The measured curve of one fleet variant, from ML.ENERGY v2 or v3 (one dataset per fleet:
the two releases ran different software, so their points are never mixed).

* v2 (A100-SXM4-40GB, H100; `energy.mlenergy.v2_points`): each cap's concurrency, tokens/s
  and power; its mean time per output token stands for the median and p99 inter-token
  latency (v2 publishes no quantiles).
* v3 (H100, B200; `energy.mlenergy.curves`): each cap's concurrency, tokens/s, power and
  median and p99 inter-token latency, from ``<data>/models/<org>__<model>__lm-arena-chat.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from energy.mlenergy.curves import llm_configurations, llm_curve
from energy.mlenergy.files import read_model_file
from energy.mlenergy.v2_points import v2_points, v2_run_files, v2_weights_gb
from envs.config.errors import ProfileError
from envs.model.llm_curve import LlmCurve

Dataset = Literal["v2", "v3"]
GPUS: dict[str, dict[str, str]] = {
    "v2": {"NVIDIA A100-SXM4-40GB": "A100-40GB", "NVIDIA H100 80GB HBM3": "H100"},
    "v3": {"NVIDIA H100 80GB HBM3": "H100", "NVIDIA B200": "B200"},
}
"""Per dataset: a pool's ``device_name`` -> the GPU's name in the dataset's reader."""
V3_TASK = "lm-arena-chat"


@dataclass(frozen=True)
class MeasuredLlm:
    """One variant's measurements.

    Attributes:
        curve: Its curve (points as measured, the pool's idle power as ``P(0)``).
        description: Where the points come from, for the profile's sources.
        weights_gb: Its weights' size.
    """

    curve: LlmCurve
    description: str
    weights_gb: float


def dataset_gpu(dataset: Dataset, device_name: str) -> str:
    """The GPU's name in the dataset for a pool's device.

    Args:
        dataset: ``v2`` or ``v3``.
        device_name: The pool's ``device_name``.

    Returns:
        The short name (``A100-40GB``, ``H100``, ``B200``).

    Raises:
        ProfileError: The dataset did not measure that device.
    """
    names = GPUS[dataset]
    if device_name not in names:
        raise ProfileError(f"ML.ENERGY {dataset} has no data for device {device_name!r}; its "
                           f"devices: {sorted(names)}")
    return names[device_name]


def measured_llm(dataset: Dataset, data: Path, device_name: str, model: str, gpus: int,
                 idle_w_per_gpu: float, release: str) -> MeasuredLlm:
    """Read one variant's points.

    Args:
        dataset: ``v2`` (``data`` is v2's ``data`` folder) or ``v3`` (its root, holding
            ``models/``).
        data: The dataset's folder.
        device_name: The pool's device.
        model: The model id (``org/name``).
        gpus: GPUs per replica.
        idle_w_per_gpu: The pool's idle power per GPU.
        release: The dataset's version, for the description.

    Returns:
        The measurements.

    Raises:
        ProfileError: Missing files or configurations (named).
    """
    gpu = dataset_gpu(dataset, device_name)
    if dataset == "v2":
        curve = LlmCurve(tuple(v2_points(data, gpu, model, gpus)), idle_w_per_gpu * gpus)
        files = [p.name for p in v2_run_files(data, gpu, model, gpus)]
        return MeasuredLlm(curve, (
            f"{release}: {model} on {gpus} x {gpu}, files {files}, as [cap, Avg BS, Token "
            "tput, power = Energy/req x Token tput / Avg Output Tokens (all GPUs), mean TPOT, "
            "mean TPOT] (energy.mlenergy.v2_points; v2 gives no ITL quantiles: the mean stands "
            "for the median and the p99)"), v2_weights_gb(data, model))
    path = data / "models" / f"{model.replace('/', '__')}__{V3_TASK}.json"
    f = read_model_file(path)
    curve = llm_curve(f, gpu, gpus, idle_w_per_gpu)
    caps = sorted({int(c["max_num_seqs"]) for _, c in llm_configurations(f, gpu, gpus)})
    return MeasuredLlm(curve, (
        f"{release}: file {path.name}, {gpus} x {gpu}: every measured max_num_seqs {caps} as "
        "[cap, avg_batch_size, output_throughput_tokens_per_sec, avg_power_watts (all GPUs), "
        "median_itl_ms, p99_itl_ms] (energy.mlenergy.curves; two rows of one cap averaged)"),
        f.weights_gb)
