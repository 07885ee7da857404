"""Read and check ML.ENERGY benchmark files (``models/<org>__<model>__<task>.json``).

ML.ENERGY (Chung et al., "The ML.ENERGY Benchmark", NeurIPS 2025 Datasets and Benchmarks;
leaderboard at ml.energy) publishes one JSON file per model and task with a
``configurations`` list: one entry per measured setting (GPU model, GPUs per replica,
concurrency cap or batch size). How a configuration becomes a profile row is in
`energy.mlenergy.points`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.config.errors import ProfileError

LLM_TASKS = ("lm-arena-chat", "gpqa", "sourcegraph-fim")
IMAGE_TASKS = ("text-to-image",)
_LLM_KEYS = ("gpu_model", "num_gpus", "max_num_seqs", "avg_output_len",
             "energy_per_request_joules", "avg_power_watts", "median_itl_ms", "p99_itl_ms",
             "output_throughput_tokens_per_sec")
_IMAGE_KEYS = ("gpu_model", "num_gpus", "batch_size", "batch_latency_s",
               "energy_per_image_joules", "avg_power_watts")


@dataclass(frozen=True)
class ModelFile:
    """One ML.ENERGY model file.

    Attributes:
        path: Where it was read from.
        model_id: ``org/name`` as in the file.
        task: ML.ENERGY task id (``lm-arena-chat``, ``text-to-image``, ...).
        configurations: The raw configuration entries.
        length_histogram: Model-level output-length histogram (``bins``, ``counts``), if any.
        weights_gb: Size of the weights: ``total_params_billions`` x bytes per parameter
            of ``weight_precision`` (0 where the file gives neither).
    """

    path: Path
    model_id: str
    task: str
    configurations: tuple[dict[str, Any], ...]
    length_histogram: dict[str, Any] | None
    weights_gb: float = 0.0

    @property
    def is_llm(self) -> bool:
        """Whether the task is a language-model task (`LLM_TASKS`)."""
        return self.task in LLM_TASKS

    @property
    def gpus(self) -> tuple[str, ...]:
        """The GPU models measured in this file, sorted."""
        return tuple(sorted({str(c.get("gpu_model")) for c in self.configurations}))


def need(entry: dict[str, Any], key: str, path: Path, where: str) -> Any:
    """The value of a key the ML.ENERGY format requires.

    Args:
        entry: A file or configuration object.
        key: The key.
        path: The file, for the message.
        where: Which object of the file, for the message.

    Returns:
        The value (not None).

    Raises:
        ProfileError: The key is missing or null.
    """
    if key not in entry or entry[key] is None:
        raise ProfileError(f"{path}: {where} has no key {key!r}; is this an ML.ENERGY v3 "
                           "models/*.json file?")
    return entry[key]


def positive_number(entry: dict[str, Any], key: str, path: Path, where: str) -> float:
    """The value of a required key that must be a finite number > 0.

    Args:
        entry: A configuration object.
        key: The key.
        path: The file, for the message.
        where: Which object of the file, for the message.

    Returns:
        The value as a float.

    Raises:
        ProfileError: Missing, not a finite number, or not above 0.
    """
    value = need(entry, key, path, where)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProfileError(f"{path}: {where} key {key!r} must be a finite number, got {value!r}")
    if value <= 0:
        raise ProfileError(f"{path}: {where} key {key!r} must be > 0, got {value!r}")
    return float(value)


def read_json_object(path: Path, missing: str, shape: str) -> dict[str, Any]:
    """A JSON file that must hold an object, each problem one line.

    Args:
        path: The file.
        missing: The message when it does not exist.
        shape: What the object should hold, for the message when it is not one.

    Returns:
        The parsed object.

    Raises:
        ProfileError: A missing file, invalid JSON or another JSON value.
    """
    if not path.is_file():
        raise ProfileError(missing)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ProfileError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a JSON object with {shape}")
    return data


def read_model_file(path: str | Path) -> ModelFile:
    """Read and check one ML.ENERGY ``models/*.json`` file.

    Args:
        path: The file.

    Returns:
        The parsed file.

    Raises:
        ProfileError: Missing file, invalid JSON, an unknown task or a missing key
            (the message names the file and the key).
    """
    path = Path(path)
    data = read_json_object(path, f"ML.ENERGY file {path} does not exist; check the path",
                            "'model_id' and 'configurations'")
    model_id = str(need(data, "model_id", path, "the file"))
    task = str(need(data, "task", path, "the file"))
    if task not in LLM_TASKS + IMAGE_TASKS:
        raise ProfileError(f"{path}: task {task!r} is not supported; supported tasks: "
                           f"{list(LLM_TASKS + IMAGE_TASKS)}")
    configs = need(data, "configurations", path, "the file")
    if not isinstance(configs, list) or not configs:
        raise ProfileError(f"{path}: 'configurations' must be a non-empty list")
    keys = _LLM_KEYS if task in LLM_TASKS else _IMAGE_KEYS
    for i, entry in enumerate(configs):
        if not isinstance(entry, dict):
            raise ProfileError(f"{path}: configurations[{i}] is not an object")
        for key in keys:
            need(entry, key, path, f"configurations[{i}]")
    hist = data.get("output_length_distribution")
    return ModelFile(path, model_id, task, tuple(configs), hist if isinstance(hist, dict) else None,
                     weights_gb(data, path))


BYTES_PER_PARAM = {"bfloat16": 2.0, "float16": 2.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0,
                   "float32": 4.0}


def weights_gb(data: dict[str, Any], path: Path) -> float:
    """Weights size in GB from ``total_params_billions`` and ``weight_precision``.

    Args:
        data: The file's top-level object.
        path: The file, for the message.

    Returns:
        Parameters (billions) x bytes per parameter; 0 where either key is absent.

    Raises:
        ProfileError: A precision this table does not know.
    """
    params = data.get("total_params_billions")
    precision = data.get("weight_precision")
    if params is None or precision is None:
        return 0.0
    if precision not in BYTES_PER_PARAM:
        raise ProfileError(f"{path}: weight_precision {precision!r} is unknown; known: "
                           f"{sorted(BYTES_PER_PARAM)}")
    return float(params) * BYTES_PER_PARAM[precision]
