"""ML.ENERGY LLM files as continuous-batching curves (`envs.model.llm_curve.LlmCurve`),
and the model checked against them at saturation.

Every configuration of one (GPU type, GPUs per replica) is a `CapPoint`; two rows of one
cap (Qwen3-30B-A3B-Instruct-2507 on 2 x H100 at caps 256 and 512: the same
parallelisation, 9 % and 17 % apart in J/request) are two measurements of one setting and
are averaged (`merge_duplicate_caps`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from energy.mlenergy.files import ModelFile, positive_number
from envs.config.errors import ProfileError
from envs.model.llm_curve import CapPoint, LlmCurve, merge_duplicate_caps
from envs.serving.continuous_batching import serve_replica
from envs.workload.lengths import TokenLengths


def llm_configurations(f: ModelFile, gpu: str, num_gpus: int) -> list[tuple[int, dict[str, Any]]]:
    """``(index, configuration)`` of an LLM file on ``num_gpus`` x ``gpu``.

    Args:
        f: A file from `energy.mlenergy.files.read_model_file`.
        gpu: GPU model as the files name it.
        num_gpus: GPUs per replica.

    Raises:
        ProfileError: Not an LLM file, or no configuration on that GPU and count.
    """
    if not f.is_llm:
        raise ProfileError(f"{f.path}: task {f.task!r} is not an LLM task; continuous "
                           "batching curves are built from LLM files")
    chosen = [(i, c) for i, c in enumerate(f.configurations)
              if c["gpu_model"] == gpu and int(c["num_gpus"]) == num_gpus]
    if not chosen:
        have = sorted({(c["gpu_model"], int(c["num_gpus"])) for c in f.configurations})
        raise ProfileError(f"{f.path}: {f.model_id} has no configuration on {num_gpus} x {gpu}; "
                           f"measured (gpu_model, num_gpus): {have}")
    return chosen


def cap_point(f: ModelFile, index: int, c: dict[str, Any]) -> CapPoint:
    """One configuration as a measured point (every field checked, named on error).

    Args:
        f: The file (for messages).
        index: The configuration's index in the file.
        c: The configuration.
    """
    where = f"configurations[{index}]"
    return CapPoint(
        cap=int(positive_number(c, "max_num_seqs", f.path, where)),
        concurrency=positive_number(c, "avg_batch_size", f.path, where),
        tokens_per_s=positive_number(c, "output_throughput_tokens_per_sec", f.path, where),
        power_w=positive_number(c, "avg_power_watts", f.path, where),
        itl_median_ms=positive_number(c, "median_itl_ms", f.path, where),
        itl_p99_ms=positive_number(c, "p99_itl_ms", f.path, where))


def llm_curve(f: ModelFile, gpu: str, num_gpus: int, idle_w_per_gpu: float) -> LlmCurve:
    """The curve of one replica of ``f`` on ``num_gpus`` x ``gpu``.

    Args:
        f: A file from `energy.mlenergy.files.read_model_file`.
        gpu: GPU model as the files name it (``H100``, ``B200``).
        num_gpus: GPUs per replica.
        idle_w_per_gpu: Idle power of one GPU (the hardware's parameter); ``P(0)`` is
            ``num_gpus`` times it.
    """
    points = [cap_point(f, i, c) for i, c in llm_configurations(f, gpu, num_gpus)]
    return LlmCurve(tuple(merge_duplicate_caps(points)), idle_w_per_gpu * num_gpus)


def cap_lengths(f: ModelFile, c: dict[str, Any]) -> TokenLengths:
    """The output lengths measured at one configuration (its own histogram, else the
    file's).

    Args:
        f: The file.
        c: The configuration.
    """
    hist = c.get("output_length_distribution") or f.length_histogram
    if not isinstance(hist, dict) or not isinstance(hist.get("bins"), list) \
            or not isinstance(hist.get("counts"), list):
        raise ProfileError(f"{f.path}: max_num_seqs {c.get('max_num_seqs')} has no "
                           "'output_length_distribution' with 'bins' and 'counts' (nor has the "
                           "file); per-request lengths are drawn from it")
    return TokenLengths.from_histogram(hist["bins"], hist["counts"],
                                       f"{f.path.name} max_num_seqs {c.get('max_num_seqs')}")


@dataclass(frozen=True)
class Saturation:
    """The model driven at saturation against one measured cap.

    Attributes:
        cap: The cap.
        rows: How many measured rows the cap has (2: their mean is the reference).
        joules_per_request: Simulated, and measured (mean of the rows).
        tokens_per_s: Simulated, and measured.
        itl_median_ms: Modelled at the cap's running limit, and measured.
    """

    cap: int
    rows: int
    joules_per_request: tuple[float, float]
    tokens_per_s: tuple[float, float]
    itl_median_ms: tuple[float, float]

    def worst_error(self) -> float:
        """The largest relative error of the three quantities."""
        return max(abs(sim / ref - 1) for sim, ref in
                   (self.joules_per_request, self.tokens_per_s, self.itl_median_ms))


def saturation_checks(f: ModelFile, gpu: str, num_gpus: int, idle_w_per_gpu: float,
                      requests_per_slot: int = 100, seed: int = 0) -> list[Saturation]:
    """Drive the model at every measured cap with more requests than it runs at once.

    ``requests_per_slot`` x the cap's running limit requests arrive at time 0 with
    lengths drawn from the cap's own length histogram (stratified draws, so the drawn
    mean is the histogram's). Saturation lasts until the queue
    empties (the last request starts); over that span the replica runs at its limit, and
    J per request is the span's energy per output token x the mean drawn length, tokens/s
    the span's tokens over its length (the drain after it, with fewer running, is not
    saturation and is left out).

    Args:
        f: An LLM file.
        gpu: GPU model.
        num_gpus: GPUs per replica.
        idle_w_per_gpu: The GPUs' idle power.
        requests_per_slot: Requests per running slot.
        seed: Seed of the length draws.
    """
    curve = llm_curve(f, gpu, num_gpus, idle_w_per_gpu)
    configs = llm_configurations(f, gpu, num_gpus)
    rng = np.random.default_rng(seed)
    out = []
    for cap in curve.caps:
        rows = [c for _, c in configs if int(c["max_num_seqs"]) == cap]
        limit = curve.running_limit(cap)
        n = requests_per_slot * limit
        stratified = rng.permutation((np.arange(n) + rng.random(n)) / n)
        _, tokens = cap_lengths(f, rows[0]).draw(stratified)
        full = serve_replica(curve, cap, np.zeros(n), tokens)
        run = serve_replica(curve, cap, np.zeros(n), tokens, end_s=float(np.max(full.started_s)))
        measured = {k: float(np.mean([float(c[k]) for c in rows])) for k in
                    ("energy_per_request_joules", "output_throughput_tokens_per_sec",
                     "median_itl_ms")}
        out.append(Saturation(
            cap, len(rows),
            (run.energy_j / run.output_tokens * float(np.mean(tokens)),
             measured["energy_per_request_joules"]),
            (run.output_tokens / run.seconds, measured["output_throughput_tokens_per_sec"]),
            (curve.itl_ms(limit), measured["median_itl_ms"])))
    return out
