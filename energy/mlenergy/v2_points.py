"""ML.ENERGY **v2** LLM chat measurements as continuous-batching points
(`envs.model.llm_curve.CapPoint`).

Source: Chung et al., "The ML.ENERGY Benchmark", NeurIPS 2025 Datasets and Benchmarks;
leaderboard v2 data, commit c3af7f31 (github ml-energy/leaderboard-v2, ``data/``). One file
per (GPU, model, batch cap, parallelism):
``llm_text_generation/chat/<GPU dir>/<org>/<model>/bs{B}+tp{T}+pp{P}.json`` with
``Energy/req (J)``, ``Avg TPOT (s)``, ``Token tput (tok/s)``, ``Avg Output Tokens``,
``Avg BS (reqs)`` and ``Max BS (reqs)``; ``models.json`` beside the GPU folders gives each
model's parameter count (billions, rounded as in its nickname).

What v2 has and lacks compared with v3 (`energy.mlenergy.files`):

* no inter-token-latency quantiles: only the **mean** time per output token (TPOT), used
  here for both ``itl_median_ms`` and ``itl_p99_ms`` (an **approximation**: the median is
  about right under steady decoding, the p99 is under-estimated);
* no output-length histogram: only the mean output length per file;
* no power: ``power_w`` is **derived** as J/request x requests/s, with requests/s =
  ``Token tput`` / ``Avg Output Tokens`` (the mean power of the replica's GPUs, summed);
* caps start at 32 to 64 (v3 starts at 8), with a few odd caps as published (63, 127);
* energy is GPU energy only, measured with Zeus (NVML counters): no CPU, DRAM or node,
  and no idle power.

Only pipeline-parallel 1 files are read (in the ``pp2`` files ``Max BS`` is twice the
``bs`` of the name).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from energy.mlenergy.files import read_json_object
from envs.config.errors import ProfileError
from envs.config.suggest import did_you_mean
from envs.model.llm_curve import CapPoint, merge_duplicate_caps

V2_GPU_DIRS = {"A100-40GB": "A100-SXM4-40GB", "H100": "H100 80GB HBM3"}
CHAT_DIR = ("llm_text_generation", "chat")
BF16_BYTES_PER_PARAM = 2.0
_NAME = re.compile(r"bs(\d+)\+tp(\d+)\+pp(\d+)\.json")
_FIELDS = ("Energy/req (J)", "Avg TPOT (s)", "Token tput (tok/s)", "Avg Output Tokens",
           "Avg BS (reqs)", "Max BS (reqs)", "TP")


def v2_chat_dir(root: Path) -> Path:
    """The chat folder of the v2 data.

    Args:
        root: The v2 ``data`` folder (holding ``llm_text_generation``).

    Returns:
        ``root/llm_text_generation/chat``.
    """
    return Path(root).joinpath(*CHAT_DIR)


def run_name(path: Path) -> tuple[int, int, int]:
    """``(bs, tp, pp)`` from a v2 file name ``bs{B}+tp{T}+pp{P}.json``.

    Args:
        path: The file.

    Returns:
        The batch cap, tensor-parallel and pipeline-parallel degrees of the name.

    Raises:
        ProfileError: The name does not have that form.
    """
    match = _NAME.fullmatch(Path(path).name)
    if match is None:
        raise ProfileError(f"{path}: the file name must be bs{{B}}+tp{{T}}+pp{{P}}.json "
                           "(an ML.ENERGY v2 llm_text_generation file)")
    bs, tp, pp = (int(g) for g in match.groups())
    return bs, tp, pp


def _positive(data: dict[str, Any], key: str, path: Path) -> float:
    """A required field that must be a finite number > 0."""
    if key not in data or data[key] is None:
        raise ProfileError(f"{path}: no field {key!r}; is this an ML.ENERGY v2 "
                           "llm_text_generation file?")
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProfileError(f"{path}: field {key!r} must be a finite number, got {value!r}")
    if value <= 0:
        raise ProfileError(f"{path}: field {key!r} must be > 0, got {value!r}")
    return float(value)


def read_v2_fields(path: Path) -> dict[str, float]:
    """The checked numeric fields of one v2 pp1 file.

    Args:
        path: A ``bs{B}+tp{T}+pp1.json`` file.

    Returns:
        Each of the file's numeric fields (``Energy/req (J)``, ..., ``TP``) as a float.

    Raises:
        ProfileError: A bad name, pp other than 1, a missing file, invalid JSON, a field
            missing or not a finite number > 0, or ``Max BS``/``TP`` unlike the name.
    """
    path = Path(path)
    bs, tp, pp = run_name(path)
    if pp != 1:
        raise ProfileError(f"{path}: pp{pp} files are not read (their Max BS is pp x bs); "
                           "use a pp1 file")
    data = read_json_object(path, f"ML.ENERGY v2 file {path} does not exist; check the path",
                            f"the fields {list(_FIELDS)}")
    fields = {key: _positive(data, key, path) for key in _FIELDS}
    cap = fields["Max BS (reqs)"]
    if cap != int(cap) or int(cap) != bs:
        raise ProfileError(f"{path}: 'Max BS (reqs)' is {data['Max BS (reqs)']!r} but the file "
                           f"name says bs{bs}; the file is misnamed or corrupt")
    if fields["TP"] != tp:
        raise ProfileError(f"{path}: field 'TP' is {data['TP']!r} but the file name says tp{tp}; "
                           "the file is misnamed or corrupt")
    return fields


def v2_cap_point(path: Path) -> CapPoint:
    """One v2 file as a measured point.

    ``cap`` is ``Max BS (reqs)`` (checked against the ``bs`` of the name), ``concurrency``
    ``Avg BS (reqs)``, ``tokens_per_s`` ``Token tput (tok/s)``; ``power_w`` is derived:
    ``Energy/req (J)`` x ``Token tput`` / ``Avg Output Tokens`` (J/request x requests/s:
    the mean power of all the replica's GPUs, summed). v2 publishes only the **mean** time
    per output token, no quantiles: ``itl_median_ms`` and ``itl_p99_ms`` are both
    ``Avg TPOT (s)`` x 1000, a labelled approximation (the p99 is under-estimated).

    Args:
        path: A ``bs{B}+tp{T}+pp1.json`` file.

    Returns:
        The point.

    Raises:
        ProfileError: Any problem of `read_v2_fields`, or a mean concurrency above the cap.
    """
    f = read_v2_fields(path)
    tpot_ms = f["Avg TPOT (s)"] * 1000.0
    try:
        return CapPoint(
            cap=int(f["Max BS (reqs)"]),
            concurrency=f["Avg BS (reqs)"],
            tokens_per_s=f["Token tput (tok/s)"],
            power_w=f["Energy/req (J)"] * f["Token tput (tok/s)"] / f["Avg Output Tokens"],
            itl_median_ms=tpot_ms,
            itl_p99_ms=tpot_ms)
    except ProfileError as err:
        raise ProfileError(f"{path}: {err}") from None


def v2_run_files(root: Path, gpu: str, model_id: str, tensor_parallel: int) -> list[Path]:
    """The pp1 files of one (GPU, model, tensor-parallel degree), sorted by cap.

    Args:
        root: The v2 ``data`` folder (holding ``llm_text_generation``).
        gpu: Short GPU name, a key of `V2_GPU_DIRS`.
        model_id: ``org/model`` as the folders name it (``meta-llama/Meta-Llama-3.1-8B-Instruct``).
        tensor_parallel: GPUs per replica (``tp`` of the file names).

    Returns:
        The files, by increasing ``bs``.

    Raises:
        ProfileError: Unknown GPU, no such GPU or model folder, a file not named
            ``bs{B}+tp{T}+pp{P}.json``, or no pp1 file at that tensor-parallel degree.
    """
    if gpu not in V2_GPU_DIRS:
        raise ProfileError(f"unknown ML.ENERGY v2 GPU {gpu!r}; known: {sorted(V2_GPU_DIRS)}")
    gpu_dir = v2_chat_dir(root) / V2_GPU_DIRS[gpu]
    if not gpu_dir.is_dir():
        raise ProfileError(f"{gpu_dir} does not exist; root must be the ML.ENERGY v2 'data' "
                           "folder (holding llm_text_generation/chat)")
    model_dir = gpu_dir / model_id
    if model_id.count("/") != 1 or not model_dir.is_dir():
        models = sorted(f"{org.name}/{m.name}" for org in gpu_dir.iterdir() if org.is_dir()
                        for m in org.iterdir() if m.is_dir())
        raise ProfileError(f"no ML.ENERGY v2 chat model {model_id!r} on {gpu}"
                           f"{did_you_mean(model_id, models)}; models on {gpu}: {models}")
    runs = sorted((run_name(p), p) for p in model_dir.glob("*.json"))
    files = [p for (_, tp, pp), p in runs if tp == tensor_parallel and pp == 1]
    if not files:
        tps = sorted({tp for (_, tp, pp), _ in runs if pp == 1})
        other = sorted({f"tp{tp}+pp{pp}" for (_, tp, pp), _ in runs if pp != 1})
        raise ProfileError(f"{model_id} on {gpu} has no bs*+tp{tensor_parallel}+pp1.json file; "
                           f"tensor-parallel degrees with pp1 files: {tps}"
                           + (f" (pp > 1 files, not read: {other})" if other else ""))
    return files


def v2_points(root: Path, gpu: str, model_id: str, tensor_parallel: int) -> list[CapPoint]:
    """Every measured cap of one (GPU, model, tensor-parallel degree).

    Args:
        root: The v2 ``data`` folder.
        gpu: Short GPU name, a key of `V2_GPU_DIRS`.
        model_id: ``org/model``.
        tensor_parallel: GPUs per replica.

    Returns:
        The points sorted by cap, duplicates merged (`merge_duplicate_caps`).

    Raises:
        ProfileError: As `v2_run_files` and `v2_cap_point`.
    """
    return merge_duplicate_caps([v2_cap_point(p) for p in
                                 v2_run_files(root, gpu, model_id, tensor_parallel)])


def v2_weights_gb(root: Path, model_id: str) -> float:
    """Weights size in GB: 2 bytes per parameter (bf16) x ``params`` of ``models.json``.

    ``params`` is the nickname's rounded size in billions (8 for Llama 3.1 8B, 27 for
    Gemma 2 27B), so this is an **approximation** of the true size.

    Args:
        root: The v2 ``data`` folder.
        model_id: ``org/model`` as in ``models.json``.

    Returns:
        ``2 x params`` (GB).

    Raises:
        ProfileError: ``models.json`` missing or invalid, the model absent from it, or its
            ``params`` not a finite number > 0.
    """
    path = v2_chat_dir(root) / "models.json"
    models = read_json_object(path, f"{path} does not exist; root must be the ML.ENERGY v2 "
                              "'data' folder", "one entry per model id")
    if not isinstance(models.get(model_id), dict):
        known = sorted(models)
        raise ProfileError(f"{path}: no model {model_id!r}{did_you_mean(model_id, known)}; "
                           f"models: {known}")
    return BF16_BYTES_PER_PARAM * _positive(models[model_id], "params", path)
