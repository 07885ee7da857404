"""Assemble a GPU profile (the mapping `envs.model.profiles.load_pipeline` reads) from
ML.ENERGY files, a quality file and the power figures the files do not have.

How latency and dynamic energy are derived is in `energy.mlenergy.points`; the
continuous-batching block of an LLM variant (``--continuous``) in `energy.mlenergy.continuous`.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energy.mlenergy.continuous import continuous_block, trace_histogram
from energy.mlenergy.files import ModelFile, read_model_file
from energy.mlenergy.points import MeasuredPoint, dynamic_j, select_points
from envs.config.errors import ConfigError, ProfileError
from envs.config.loader import from_dict, read_yaml_file
from envs.model.pool_doc import pool_entry
from envs.model.profile_data import FILE_SOURCE_KINDS, FileSourceKind
from envs.model.profile_doc import profile_document, stage_entry, variant_entry

PROVENANCE_KINDS = FILE_SOURCE_KINDS

@dataclass(frozen=True)
class QualityEntry:
    """A variant's published quality score, as the ``--quality`` file gives it."""

    accuracy: float
    accuracy_metric: str
    accuracy_source: str


@dataclass(frozen=True)
class PowerParam:
    """A power figure the files do not have, with its provenance."""

    watts: float
    kind: FileSourceKind
    why: str


def slug(text: str) -> str:
    """A source-id-safe name: ``meta-llama/Llama-3.1-8B-Instruct`` -> ``llama_3_1_8b_instruct``.

    Args:
        text: A model id.

    Returns:
        The part after the last ``/``, lower case, runs of other characters as ``_``.
    """
    return re.sub(r"[^a-z0-9]+", "_", text.split("/")[-1].lower()).strip("_")


def load_quality(path: str | Path) -> dict[str, QualityEntry]:
    """Read the ``--quality`` file: ``model_id: {accuracy, accuracy_metric, accuracy_source}``.

    Args:
        path: The YAML file.

    Returns:
        Model id -> its quality entry.

    Raises:
        ConfigError: Missing file, unknown or missing keys, wrong types.
    """
    data = read_yaml_file(path)
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: expected a mapping of model_id -> {{accuracy, "
                          "accuracy_metric, accuracy_source}}")
    return {str(k): from_dict(QualityEntry, v, f"{path}: {k}") for k, v in data.items()}


def quality_entry(quality: dict[str, QualityEntry], model_id: str) -> QualityEntry:
    """A model's published quality from the ``--quality`` file.

    Args:
        quality: Model id -> entry (`load_quality`).
        model_id: The model.

    Returns:
        Its entry.

    Raises:
        ProfileError: The file has none (names the fix).
    """
    if model_id not in quality:
        raise ProfileError(f"no quality entry for {model_id!r}; add its published score with "
                           "the source to the --quality file")
    return quality[model_id]


def measured_variant(f: ModelFile, points: list[MeasuredPoint], quality: QualityEntry,
                     gpu: str, idle_w: float, release: str, sources: dict[str, Any], *,
                     source_prefix: str | None = None, idle_fix: str = "lower --idle-w",
                     ) -> dict[str, Any]:
    """One variant of the profile, adding a source per row to ``sources``.

    Args:
        f: The variant's ML.ENERGY file.
        points: Its measured points (`select_points`), ascending batch.
        quality: Its published quality score.
        gpu: GPU model as the files name it.
        idle_w: Idle power of one GPU (the profile's ``device_idle_w``).
        release: Dataset version, written into every source.
        sources: The profile's sources, extended in place.
        source_prefix: Start of the rows' source ids (default ``mlenergy_<model>``; a fleet
            gives each pool's its own).
        idle_fix: How to fix an idle power above a row's measured power.

    Returns:
        The variant mapping of the profile (`envs.model.profile_doc.variant_entry`).

    Raises:
        ProfileError: A row whose dynamic energy would be negative at this idle power.
    """
    rows = []
    for p in points:
        dyn = dynamic_j(p.total_energy_j, idle_w, p.num_gpus, p.latency_mean_ms)
        if dyn < 0:
            raise ProfileError(
                f"{f.path}: row batch {p.batch} on {p.num_gpus} x {gpu}: idle power "
                f"{idle_w:g} W x {p.num_gpus} GPUs exceeds the measured mean power "
                f"{p.avg_power_w:.0f} W, so dynamic energy would be {dyn:.1f} J < 0; "
                f"{idle_fix}")
        knob = "c" if f.is_llm else "b"
        sid = f"{source_prefix or 'mlenergy_' + slug(f.model_id)}_{knob}{p.batch}"
        sources[sid] = {"kind": "measured", "description": (
            f"{release}, file {f.path.name}, task {f.task}, {p.num_gpus} x {gpu}, {p.detail}; "
            f"dynamic = measured GPU energy x batch ({p.total_energy_j:.2f} J) minus "
            f"device_idle_w {idle_w:g} W x {p.num_gpus} GPU(s) x latency_mean")}
        rows.append([p.batch, p.num_gpus, round(p.latency_mean_ms, 4),
                     round(p.latency_p99_ms, 4), round(dyn, 6), sid, sid])
    return variant_entry(f.model_id.split("/")[-1], quality.accuracy, rows,
                         metric=quality.accuracy_metric, source=quality.accuracy_source,
                         base_cores=points[0].num_gpus, weights_gb=round(f.weights_gb, 3))


def build_profile(args: argparse.Namespace, stages: list[tuple[str, list[Path]]]) -> dict:
    """The whole profile as a YAML-ready mapping.

    Args:
        args: The checked command line of ``python -m energy.import_mlenergy``.
        stages: (stage name, its ML.ENERGY files) in request order.

    Returns:
        The profile mapping.

    Raises:
        ProfileError: Bad data files (named), missing quality entries, negative dynamic energy.
        ConfigError: A bad quality file, or --continuous without a stage of LLM files.
    """
    quality = load_quality(args.quality)
    idle = PowerParam(args.idle_w, args.idle_kind, args.idle_why)
    static = PowerParam(args.node_static_w, args.static_kind, args.static_why)
    sources: dict[str, Any] = {
        "gpu_idle": {"kind": idle.kind, "description": idle.why},
        "node_static": {"kind": static.kind, "description": static.why},
    }
    if args.load_gb_per_s:
        sources["model_load"] = {"kind": args.load_kind, "description": args.load_why}
    batches_of = stage_batches(getattr(args, "stage_batches", []) or [],
                               [name for name, _ in stages])
    gpus_of = replica_gpus(args.replica_gpus)
    lengths_path = getattr(args, "output_lengths", None)
    trace_lengths = None if lengths_path is None else trace_histogram(lengths_path)
    out_stages = []
    for name, paths in stages:
        batches = batches_of.get(name) or tuple(sorted(set(args.batches or ())))
        if not batches:
            raise ConfigError(f"stage {name!r} has no batch sizes; give --batches (every "
                              f"stage) or --stage-batches {name}=B,B,...")
        variants = []
        llm = []
        llm_files = []
        for path in paths:
            f = read_model_file(path)
            llm.append(f.is_llm)
            if f.model_id not in quality:
                raise ProfileError(f"{args.quality}: no quality entry for {f.model_id!r} (from "
                                   f"{path}); add its published score with the source")
            gpus = gpus_of.get(f.model_id, args.gpus_per_replica)
            points = [p for p in select_points(f, args.gpu, gpus, None, args.length_quantile)
                      if p.batch <= max(batches)]
            have = {p.batch for p in points}
            missing = [b for b in batches if b not in have]
            if missing:
                raise ProfileError(f"{path}: {f.model_id} on {gpus} x "
                                   f"{args.gpu} has no measured batch {missing} of --batches; "
                                   f"measured: {sorted(have)}")
            variants.append(measured_variant(f, points, quality[f.model_id], args.gpu,
                                             idle.watts, args.release, sources))
            llm_files.append((f, gpus))
        if getattr(args, "continuous", False) and all(llm):
            for variant, (f, gpus) in zip(variants, llm_files, strict=True):
                variant["continuous"] = continuous_block(
                    f, args.gpu, gpus, idle.watts, batches, args.release,
                    f"mlenergy_{slug(f.model_id)}", sources, trace_lengths)
        variants.sort(key=lambda v: v["accuracy"])
        out_stages.append(stage_entry(name, variants, batches, "cap" if all(llm) else "batch"))
    if trace_lengths is not None and not getattr(args, "continuous", False):
        raise ConfigError("--output-lengths sets the lengths of the continuous-batching "
                          "block; add --continuous or drop --output-lengths")
    if getattr(args, "continuous", False) and not any(s.get("knob") == "cap"
                                                      for s in out_stages):
        raise ConfigError("--continuous writes the continuous-batching block of LLM stages, "
                          "but no stage has only LLM files; drop --continuous or give LLM "
                          "files (lm-arena-chat, gpqa, sourcegraph-fim)")
    pool_sources = {"node_static_w": "node_static", "device_idle_w": "gpu_idle"}
    if args.load_gb_per_s:
        pool_sources["load_gb_per_s"] = "model_load"
    pool = pool_entry(
        getattr(args, "pool_name", None) or args.gpu.lower(),
        args.hardware_name or f"NVIDIA {args.gpu} (ML.ENERGY gpu_model)",
        device="gpu", devices_per_node=args.devices_per_node, nodes=args.fleet_nodes,
        always_on=args.fleet_nodes if args.fleet == "fixed" else 0,
        node_static_w=static.watts, device_idle_w=idle.watts,
        load_gb_per_s=float(args.load_gb_per_s or 0.0), sources=pool_sources,
    )
    return profile_document(args.pipeline or Path(args.out).stem, sla_ms=float(args.sla_ms),
                            notes=args.notes, pools=[pool], sources=sources,
                            stages=out_stages)


def stage_batches(specs: list[str], stage_names: list[str]) -> dict[str, tuple[int, ...]]:
    """Parse ``--stage-batches NAME=B,B,...`` options (one stage's own knob values).

    Args:
        specs: The option values.
        stage_names: The pipeline's stages, to name an unknown one.

    Returns:
        Stage name -> its sorted knob values.

    Raises:
        ConfigError: A value that is not ``NAME=B[,B...]`` with each B >= 1, or an unknown
            stage.
    """
    out = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        parts = values.split(",")
        if not sep or not all(v.strip().isdigit() and int(v) >= 1 for v in parts):
            raise ConfigError(f"--stage-batches {spec!r}: expected STAGE=B[,B...] with each "
                              "B >= 1, e.g. chat=8,16,32")
        if name not in stage_names:
            raise ConfigError(f"--stage-batches {spec!r}: no stage {name!r}; stages: "
                              f"{stage_names}")
        out[name] = tuple(sorted({int(v) for v in parts}))
    return out


def replica_gpus(specs: list[str]) -> dict[str, int]:
    """Parse ``--replica-gpus MODEL_ID=N`` options.

    Args:
        specs: The option values.

    Returns:
        Model id -> GPUs per replica.

    Raises:
        ConfigError: A value that is not ``MODEL_ID=N`` with N >= 1.
    """
    out = {}
    for spec in specs:
        model, sep, n = spec.rpartition("=")
        if not sep or not model or not n.isdigit() or int(n) < 1:
            raise ConfigError(f"--replica-gpus {spec!r}: expected MODEL_ID=N with N >= 1")
        out[model] = int(n)
    return out

