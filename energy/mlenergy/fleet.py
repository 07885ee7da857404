"""Write a fleet profile: LLM variants on several GPU pools, served by continuous batching,
from ML.ENERGY measurements (v2: A100-SXM4-40GB and H100; v3: H100 and B200).

Usage::

    python -m energy.mlenergy.fleet configs/fleet/llm_chat_a100_h100.yaml --target tight \\
        --data ../shared/data/mlenergy/v2/data \\      (v3 fleets: ../shared/data/mlenergy/v3)
        --output-lengths ../shared/data/azure_llm_2023/AzureLLMInferenceTrace_conv.csv \\
        --quality profiles/quality/mlenergy_v2_quality.yaml \\
        --out profiles/llm_chat_a100_h100_tight.yaml

Per variant (a model on a pool with its GPUs per replica; named ``<model>@<pool>``):

* **points** (measured): every measured cap of the model on that GPU and tensor-parallel
  degree (`energy.mlenergy.fleet_data`: concurrency, tokens/s, power, inter-token latency;
  v2 gives only the mean time per output token, used as the median and the p99);
* **admission limit** (``max_running``, from the targets): the most requests a replica runs
  at once with its inter-token latency within ``tpot_ms``
  (`envs.model.llm_curve.tpot_running_limit`); a variant that misses the target even at its
  smallest measured concurrency is left out, and the notes say so;
* **output lengths** (measured): the trace's, the same for every variant (assumed: each
  model writes the trace's lengths);
* **load tables** (estimated): simulated per cap with the admission limit
  (`envs.serving.load_table.load_table`, as `energy.mlenergy.continuous` does);
* **image stages** (``knob: batch``, v3): the measured batches of each model on each pool
  (`energy.mlenergy.fleet_images`);
* **rows** (estimated, kept for tools that read rows): at cap ``c`` with ``n`` running
  (`LlmCurve.running_limit`), request rate ``R(n) / mean length``, ``latency_mean = c /
  rate``, ``latency_p99 = ITL(n) x the lengths' p99``, dynamic energy ``(P(n) - P(0)) x
  latency_mean``.

Exit codes: 0 written, 2 bad input (one line naming the problem and the fix).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from energy.mlenergy.continuous import (
    REQUESTS,
    SEED,
    TABLE_DIGITS,
    TraceLengths,
    rounded_points,
    trace_histogram,
)
from energy.mlenergy.fleet_data import MeasuredLlm, dataset_gpu, measured_llm
from energy.mlenergy.fleet_images import image_stage
from energy.mlenergy.fleet_spec import FleetSpec, FleetVariant, pool_document, read_fleet_spec
from energy.mlenergy.profile import QualityEntry, load_quality, quality_entry, slug
from envs.config.cli import argument_parser, command_line
from envs.config.errors import ConfigError, ProfileError
from envs.model.llm_curve import LlmCurve, tpot_running_limit
from envs.model.profile_doc import (
    continuous_entry,
    load_table_entry,
    profile_document,
    stage_entry,
    variant_entry,
    write_profile,
)
from envs.serving.load_table import load_table
from envs.workload.lengths import TokenLengths

PROG = "python -m energy.mlenergy.fleet"
def build_fleet(spec: FleetSpec, target: str, data: Path, lengths_csv: Path,
                quality: dict[str, QualityEntry]) -> dict[str, Any]:
    """The fleet profile as a YAML-ready mapping (module docstring).

    Args:
        spec: The fleet spec.
        target: Which of its targets.
        data: The dataset's folder (v2: its ``data``; v3: its root).
        lengths_csv: A trace with a ``GeneratedTokens`` column.
        quality: Model id -> published quality.

    Returns:
        The profile mapping.

    Raises:
        ProfileError: Missing measurements or quality, a cap not measured, a stage whose
            every variant misses the per-token target.
        ConfigError: An unknown target.
    """
    if target not in spec.targets:
        raise ConfigError(f"no target {target!r} in the spec; targets: {sorted(spec.targets)}")
    goal = spec.targets[target]
    trace = trace_histogram(lengths_csv)
    sources: dict[str, Any] = {k: {"kind": v.kind, "description": v.description}
                               for k, v in spec.sources.items()}
    pools = {p.name: p for p in spec.pools}
    left_out: list[str] = []
    stages = []
    for stage in spec.stages:
        if stage.knob == "batch":
            stages.append(image_stage(spec, stage, data, quality, sources))
            continue
        variants = []
        for v in stage.variants:
            pool = pools[v.pool]
            gpu = dataset_gpu(spec.dataset, pool.device_name)
            q = quality_entry(quality, v.model)
            reading = measured_llm(spec.dataset, data, pool.device_name, v.model, v.gpus,
                                   pool.device_idle_w, spec.release)
            measured = reading.curve
            limit = tpot_running_limit(measured, goal.tpot_ms)
            name = f"{v.model.split('/')[-1]}@{v.pool}"
            if limit is None:
                left_out.append(f"{name} (mean TPOT {measured.points[0].itl_median_ms:.0f} ms "
                                f"at its smallest measured concurrency, above {goal.tpot_ms:g})")
                continue
            curve = LlmCurve(rounded_points(measured), measured.idle_w, limit)
            missing = [c for c in stage.caps if c not in curve.caps]
            if missing:
                raise ProfileError(f"{v.model} on {v.gpus} x {gpu} has no measured cap "
                                   f"{missing}; measured: {list(curve.caps)}; choose the "
                                   "stage's caps among every variant's")
            variants.append(fleet_variant(spec, goal.tpot_ms, v, curve, reading, trace, q,
                                          stage.caps, sources))
        if not variants:
            raise ProfileError(f"stage {stage.name!r}: every variant misses the per-token "
                               f"target {goal.tpot_ms:g} ms; loosen tpot_ms")
        variants.sort(key=lambda entry: entry["accuracy"])
        stages.append(stage_entry(stage.name, variants, stage.caps, "cap"))
    notes = spec.notes.strip()
    if left_out:
        notes += " Left out by the per-token target: " + "; ".join(left_out) + "."
    return profile_document(f"{spec.pipeline}_{target}", sla_ms=goal.sla_ms, notes=notes,
                            pools=[pool_document(p) for p in spec.pools], sources=sources,
                            stages=stages)


def fleet_variant(spec: FleetSpec, tpot_ms: float, v: FleetVariant, curve: LlmCurve,
                  reading: MeasuredLlm, trace: TraceLengths, quality: QualityEntry,
                  caps: tuple[int, ...], sources: dict[str, Any]) -> dict[str, Any]:
    """One variant's mapping, adding its sources to ``sources``.

    Args:
        spec: The fleet spec.
        tpot_ms: The per-token target.
        v: The variant.
        curve: Its curve, points rounded, with its admission limit.
        reading: Its measurements (description, weights).
        trace: The output lengths (`energy.mlenergy.continuous.trace_histogram`).
        quality: Its published quality.
        caps: The stage's caps.
        sources: The profile's sources, extended in place.

    Returns:
        The variant mapping.
    """
    sid = f"mlenergy_{spec.dataset}_{slug(v.model)}_{v.pool}"
    lengths = TokenLengths.from_histogram(trace.bins, trace.counts, "output lengths")
    sources[f"{sid}_points"] = {"kind": "measured", "description": (
        f"{reading.description}; output_lengths: {trace.description}")}
    sources[f"{sid}_tables"] = {"kind": "estimated", "description": (
        f"simulated, not measured: envs.serving.load_table.load_table(curve, cap, lengths, "
        f"requests={REQUESTS}, seed={SEED}) for caps {list(caps)}, curve = the points with "
        f"idle {curve.idle_w:g} W and admission limit max_running={curve.max_running} (the "
        f"most running requests with median inter-token latency <= {tpot_ms:g} ms, source "
        f"{spec.targets_source}); values at {TABLE_DIGITS} significant digits")}
    sources[f"{sid}_rows"] = {"kind": "estimated", "description": (
        "derived from the points (energy.mlenergy.fleet): at cap c with n running, rate = "
        "R(n) / mean output length, latency_mean = c / rate, latency_p99 = ITL(n) x the "
        "lengths' p99, dynamic energy = (P(n) - P(0)) x latency_mean")}
    tables = [load_table_entry(cap, load_table(curve, cap, lengths, requests=REQUESTS,
                                               seed=SEED), TABLE_DIGITS) for cap in caps]
    _, drawn = lengths.draw((np.arange(10_000) + 0.5) / 10_000)
    mean_len, p99_len = float(np.mean(drawn)), float(np.percentile(drawn, 99))
    rows = []
    for cap in caps:
        n = curve.running_limit(cap)
        rate = curve.tokens_per_s(n) / mean_len
        mean_ms = 1e3 * cap / rate
        rows.append([cap, v.gpus, round(mean_ms, 4),
                     round(max(mean_ms, curve.itl_ms(n, "p99") * p99_len), 4),
                     round((curve.power_w(n) - curve.idle_w) * mean_ms / 1e3, 6),
                     f"{sid}_rows", f"{sid}_rows"])
    block = continuous_entry(curve.points, trace.bins, trace.counts, tables,
                             points_source=f"{sid}_points", tables_source=f"{sid}_tables",
                             idle_w=curve.idle_w,
                             max_running=curve.max_running)
    entry = variant_entry(f"{v.model.split('/')[-1]}@{v.pool}", quality.accuracy, rows,
                          metric=quality.accuracy_metric, source=quality.accuracy_source,
                          base_cores=v.gpus, weights_gb=round(reading.weights_gb, 3),
                          continuous=block)
    entry["pool"] = v.pool
    return entry


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; see the module docstring.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The parsed arguments.
    """
    p = argument_parser(PROG, __doc__)
    p.add_argument("spec", type=Path, help="the fleet spec (YAML)")
    p.add_argument("--target", required=True, help="which of the spec's targets")
    p.add_argument("--data", type=Path, required=True,
                   help="the spec's dataset: ML.ENERGY v2's data folder, or v3's root")
    p.add_argument("--output-lengths", type=Path, required=True, metavar="CSV",
                   help="a trace with a GeneratedTokens column (e.g. Azure's 2023 trace)")
    p.add_argument("--quality", type=Path, required=True,
                   help="YAML: model_id -> accuracy, metric, source")
    p.add_argument("--out", type=Path, required=True, help="profile to write")
    return p.parse_args(argv)


@command_line(PROG)
def main(argv: list[str] | None = None) -> int:
    """Build and write the profile (only once it loads).

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        0 (errors exit 2 through `command_line`).
    """
    args = parse_args(argv)
    doc = build_fleet(read_fleet_spec(args.spec), args.target, args.data,
                      args.output_lengths, load_quality(args.quality))
    write_profile(doc, args.out, style="rows", check=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
