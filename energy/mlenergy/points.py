"""Turn the measurements of an ML.ENERGY file into profile rows.

ML.ENERGY (Chung et al., "The ML.ENERGY Benchmark", NeurIPS 2025 Datasets and Benchmarks;
leaderboard at ml.energy) publishes one JSON file per model and task
(``models/<org>__<model>__<task>.json``) with a ``configurations`` list: one entry per
measured setting (GPU model, GPUs per replica, concurrency cap or batch size). Energy is
GPU energy measured with Zeus (NVML counters) over the whole run, divided by requests.

Row mapping (one row = one replica serving one "batch" of ``batch`` requests):

* LLM (vLLM, continuous batching; the batch knob is the cap ``max_num_seqs``): the
  request throughput is ``output_throughput_tokens_per_sec / avg_output_len``, and
  ``latency_mean_ms = 1000 x cap / request throughput``, so that ``batch / latency``
  equals the measured request throughput. (Cross-check written into each source: median
  ITL x mean output length.) ``latency_p99_ms`` = p99 ITL x the ``q`` quantile of the
  file's output-length histogram: an upper bound, without prefill (TTFT) or queueing.
* Diffusion: ``latency_mean_ms = batch_latency_s x 1000``; the files give no latency
  distribution, so ``latency_p99_ms`` equals the mean (stated in the source).
* Energy: ``energy_per_batch_j`` is dynamic energy, the measured GPU energy of the batch
  minus the idle power of the replica's GPUs over the batch latency (see `dynamic_j`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energy.mlenergy.files import ModelFile, positive_number
from envs.config.errors import ProfileError, TraceError
from envs.model import power
from envs.workload.lengths import TokenLengths


@dataclass(frozen=True)
class MeasuredPoint:
    """One measured setting, reduced to what a profile row needs.

    Attributes:
        batch: Concurrency cap (LLM) or batch size (diffusion).
        num_gpus: GPUs per replica.
        latency_mean_ms: Time one replica takes for ``batch`` requests (module docstring).
        latency_p99_ms: Upper bound on a request's p99 latency (module docstring).
        total_energy_j: Measured GPU energy of ``batch`` requests (J/request x batch).
        energy_per_request_j: Measured GPU energy per request (or image).
        avg_power_w: Measured mean power over all GPUs of the replica, summed.
        detail: Human-readable provenance of the derived figures.
    """

    batch: int
    num_gpus: int
    latency_mean_ms: float
    latency_p99_ms: float
    total_energy_j: float
    energy_per_request_j: float
    avg_power_w: float
    detail: str


def length_quantile(histogram: dict[str, Any], q: float, path: Path) -> float:
    """The ``q`` quantile of an output-length histogram, interpolated within its bin.

    Args:
        histogram: ``{"bins": [edges...], "counts": [n...]}`` with ``len(bins) == len(counts)+1``.
        q: Quantile in (0, 1].
        path: The file, for error messages.

    Returns:
        Output length in tokens.

    Raises:
        ProfileError: A malformed histogram.
    """
    bins, counts = histogram.get("bins"), histogram.get("counts")
    if not isinstance(bins, list) or not isinstance(counts, list):
        raise ProfileError(f"{path}: output_length_distribution needs 'bins' (edges) and "
                           "'counts' lists")
    try:
        lengths = TokenLengths.from_histogram(bins, counts, str(path))
    except TraceError as err:
        raise ProfileError(str(err)) from None
    return float(lengths.output_quantile(q))


def dynamic_j(total_energy_j: float, idle_w_per_device: float, devices: int,
              latency_ms: float) -> float:
    """Dynamic energy of a batch: measured energy minus the replica's idle power x time.

    Args:
        total_energy_j: Measured GPU energy of the batch.
        idle_w_per_device: Idle power of one allocated GPU (W).
        devices: GPUs of the replica.
        latency_ms: Batch latency.

    Returns:
        ``total_energy_j - idle_w_per_device x devices x latency_ms / 1000`` (may be < 0;
        the caller decides what a negative value means).
    """
    return power.dynamic_from_measured_j(total_energy_j, idle_w_per_device * devices,
                                        latency_ms / 1000.0)


def _llm_point(f: ModelFile, c: dict[str, Any], q: float, where: str) -> MeasuredPoint:
    cap = int(positive_number(c, "max_num_seqs", f.path, where))
    out_len = positive_number(c, "avg_output_len", f.path, where)
    rps = positive_number(c, "output_throughput_tokens_per_sec", f.path, where) / out_len
    median_itl = positive_number(c, "median_itl_ms", f.path, where)
    p99_itl = positive_number(c, "p99_itl_ms", f.path, where)
    hist = c.get("output_length_distribution") or f.length_histogram
    if not isinstance(hist, dict):
        raise ProfileError(f"{f.path}: {where} has no key 'output_length_distribution' (nor "
                           "has the file); it sets the p99 latency bound")
    len_q = length_quantile(hist, q, f.path)
    mean_ms = 1000.0 * cap / rps
    p99_ms = max(mean_ms, p99_itl * len_q)
    e_req = positive_number(c, "energy_per_request_joules", f.path, where)
    detail = (f"max_num_seqs {cap}: {e_req:.2f} J/request, {rps:.3f} requests/s, mean output "
              f"{out_len:.0f} tokens; latency_mean = cap / request throughput = {mean_ms:.0f} ms "
              f"(cross-check: median ITL {median_itl:.2f} ms x mean output = "
              f"{median_itl * out_len:.0f} ms); latency_p99 = p99 ITL {p99_itl:.2f} ms x "
              f"p{q * 100:g} output length {len_q:.0f} tokens = {p99_itl * len_q:.0f} ms, an "
              "upper bound without prefill (TTFT) or queueing")
    return MeasuredPoint(cap, int(c["num_gpus"]), mean_ms, p99_ms, e_req * cap, e_req,
                         positive_number(c, "avg_power_watts", f.path, where), detail)


def _image_point(f: ModelFile, c: dict[str, Any], where: str) -> MeasuredPoint:
    batch = int(positive_number(c, "batch_size", f.path, where))
    mean_ms = 1000.0 * positive_number(c, "batch_latency_s", f.path, where)
    e_img = positive_number(c, "energy_per_image_joules", f.path, where)
    size = f"{c.get('image_width', '?')}x{c.get('image_height', '?')}"
    detail = (f"batch {batch}: {e_img:.2f} J/image, batch latency {mean_ms:.0f} ms, "
              f"{c.get('inference_steps', '?')} steps, {size} px; the file gives only the "
              "mean batch latency, so latency_p99 = latency_mean (fixed step count)")
    return MeasuredPoint(batch, int(c["num_gpus"]), mean_ms, mean_ms, e_img * batch, e_img,
                         positive_number(c, "avg_power_watts", f.path, where), detail)


def select_points(f: ModelFile, gpu: str, num_gpus: int, batches: tuple[int, ...] | None,
                  length_q: float = 0.99) -> list[MeasuredPoint]:
    """The measured points of ``f`` on ``gpu`` with ``num_gpus`` GPUs per replica.

    Args:
        f: A file from `read_model_file`.
        gpu: GPU model as the files name it (``H100``, ``B200``, ...).
        num_gpus: GPUs per replica (tensor/expert parallel degree).
        batches: Caps or batch sizes to keep, all of which must be measured; None keeps all.
        length_q: Output-length quantile for the LLM p99 bound.

    Returns:
        One point per batch, ascending. Where a setting was measured more than once
        (different parallelisations), the lowest-energy entry is kept and its
        ``parallelization`` is named in ``detail``.

    Raises:
        ProfileError: Unknown GPU, GPU count or batch for this file.
    """
    if gpu not in f.gpus:
        raise ProfileError(f"{f.path}: unknown GPU {gpu!r} for {f.model_id}; the file has "
                           f"{list(f.gpus)} (key 'gpu_model')")
    on_gpu = [(i, c) for i, c in enumerate(f.configurations) if c["gpu_model"] == gpu]
    chosen = [(i, c) for i, c in on_gpu if int(c["num_gpus"]) == num_gpus]
    if not chosen:
        have = sorted({int(c["num_gpus"]) for _, c in on_gpu})
        raise ProfileError(f"{f.path}: {f.model_id} has no {gpu} configuration with num_gpus "
                           f"{num_gpus}; measured GPU counts: {have}")
    key = "max_num_seqs" if f.is_llm else "batch_size"
    energy_key = "energy_per_request_joules" if f.is_llm else "energy_per_image_joules"
    best: dict[int, tuple[int, dict[str, Any], int]] = {}
    for i, c in chosen:
        b = int(c[key])
        n_same = best[b][2] + 1 if b in best else 1
        if b not in best or float(c[energy_key]) < float(best[b][1][energy_key]):
            best[b] = (i, c, n_same)
        else:
            best[b] = (best[b][0], best[b][1], n_same)
    wanted = tuple(sorted(best)) if batches is None else tuple(sorted(batches))
    missing = [b for b in wanted if b not in best]
    if missing:
        raise ProfileError(f"{f.path}: {f.model_id} on {num_gpus} x {gpu} has no {key} "
                           f"{missing}; measured: {sorted(best)}")
    points = []
    for b in wanted:
        i, c, n_same = best[b]
        where = f"configurations[{i}]"
        point = _llm_point(f, c, length_q, where) if f.is_llm else _image_point(f, c, where)
        if n_same > 1:
            par = c.get("parallelization", {})
            point = MeasuredPoint(**{**point.__dict__, "detail": point.detail + (
                f"; lowest-energy of {n_same} entries at this setting (parallelization {par})")})
        points.append(point)
    return points
