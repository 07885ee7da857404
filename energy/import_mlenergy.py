"""Write a GPU profile (``profiles/<name>.yaml``) from measured ML.ENERGY files.

Usage::

    python -m energy.import_mlenergy PATH... --gpu H100 --out profiles/NAME.yaml \\
        --batches 8 16 32 64 --quality profiles/quality/mlenergy_quality.yaml \\
        --release 'ML.ENERGY v3 (leaderboard commit 0cd52dab)' --sla-ms 60000 \\
        --notes '...why this SLA...' --idle-w 75 --idle-kind assumed --idle-why '...' \\
        --node-static-w 1000 --static-kind assumed --static-why '...' \\
        --devices-per-node 8 --fleet elastic --fleet-nodes 4

    # a two-stage pipeline: one --stage NAME=PATH[,PATH...] per stage, in request order
    python -m energy.import_mlenergy --stage chat=a.json,b.json --stage image=c.json ...

Every PATH is an ML.ENERGY ``models/*.json`` file (read from anywhere). The rows of a
variant are all its measured settings on ``--gpu`` with ``--gpus-per-replica`` GPUs up to
the largest of ``--batches``; each of ``--batches`` must be measured. How latency and
dynamic energy are derived is in `energy.mlenergy`. GPU idle power and node static power
are not in the files: give each with its provenance kind and why.

Exit codes: 0 written, 2 bad input (one line on stderr naming the problem and the fix).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

import yaml

from energy.mlenergy import MeasuredPoint, ModelFile, dynamic_j, read_model_file, select_points
from envs.config import from_dict
from envs.errors import ConfigError, IpaEnergyError, ProfileError
from envs.yaml_io import read_yaml_file

EXIT_BAD_INPUT = 2
PROVENANCE_KINDS = ("measured", "calibrated", "cited", "assumed", "estimated")
ROW_COLUMNS = ["batch", "cores", "latency_mean_ms", "latency_p99_ms", "energy_per_batch_j",
               "latency_source", "energy_source"]
_REQUIRED = ("gpu", "out", "batches", "quality", "release", "sla_ms", "notes", "idle_w",
             "idle_kind", "idle_why", "node_static_w", "static_kind", "static_why",
             "devices_per_node", "fleet", "fleet_nodes")


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
    kind: Literal["measured", "calibrated", "cited", "assumed", "estimated"]
    why: str


class _Flow(list):  # type: ignore[type-arg]
    """A list written in YAML flow style (one profile row per line)."""


def _flow_representer(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Flow, _flow_representer)


def slug(text: str) -> str:
    """``meta-llama/Llama-3.1-8B-Instruct`` -> ``llama_3_1_8b_instruct``."""
    return re.sub(r"[^a-z0-9]+", "_", text.split("/")[-1].lower()).strip("_")


def load_quality(path: str | Path) -> dict[str, QualityEntry]:
    """Read the ``--quality`` file: ``model_id: {accuracy, accuracy_metric, accuracy_source}``.

    Raises:
        ConfigError: Missing file, unknown or missing keys, wrong types.
    """
    data = read_yaml_file(path)
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: expected a mapping of model_id -> {{accuracy, "
                          "accuracy_metric, accuracy_source}}")
    return {str(k): from_dict(QualityEntry, v, f"{path}: {k}") for k, v in data.items()}


def variant_entry(f: ModelFile, points: list[MeasuredPoint], quality: QualityEntry,
                  gpu: str, idle: PowerParam, release: str, sources: dict[str, Any],
                  ) -> dict[str, Any]:
    """One variant of the profile, adding a source per row to ``sources``.

    Raises:
        ProfileError: A row whose dynamic energy would be negative at this idle power.
    """
    rows = []
    for p in points:
        dyn = dynamic_j(p.total_energy_j, idle.watts, p.num_gpus, p.latency_mean_ms)
        if dyn < 0:
            raise ProfileError(
                f"{f.path}: row batch {p.batch} on {p.num_gpus} x {gpu}: idle power "
                f"{idle.watts:g} W x {p.num_gpus} GPUs exceeds the measured mean power "
                f"{p.avg_power_w:.0f} W, so dynamic energy would be {dyn:.1f} J < 0; lower "
                "--idle-w")
        knob = "c" if f.is_llm else "b"
        sid = f"mlenergy_{slug(f.model_id)}_{knob}{p.batch}"
        sources[sid] = {"kind": "measured", "description": (
            f"{release}, file {f.path.name}, task {f.task}, {p.num_gpus} x {gpu}, {p.detail}; "
            f"dynamic = measured GPU energy x batch ({p.total_energy_j:.2f} J) minus "
            f"device_idle_w {idle.watts:g} W x {p.num_gpus} GPU(s) x latency_mean")}
        rows.append(_Flow([p.batch, p.num_gpus, round(p.latency_mean_ms, 4),
                           round(p.latency_p99_ms, 4), round(dyn, 6), sid, sid]))
    return {"name": f.model_id.split("/")[-1], "accuracy": quality.accuracy,
            "accuracy_metric": quality.accuracy_metric,
            "accuracy_source": quality.accuracy_source,
            "base_cores": points[0].num_gpus, "weights_gb": round(f.weights_gb, 3),
            "rows": rows}


def build_profile(args: argparse.Namespace, stages: list[tuple[str, list[Path]]]) -> dict:
    """The whole profile as a YAML-ready mapping.

    Raises:
        ProfileError: Bad data files (named), missing quality entries, negative dynamic energy.
        ConfigError: A bad quality file.
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
    batches = tuple(sorted(set(args.batches)))
    replica_gpus = _replica_gpus(args.replica_gpus)
    out_stages = []
    for name, paths in stages:
        variants = []
        for path in paths:
            f = read_model_file(path)
            if f.model_id not in quality:
                raise ProfileError(f"{args.quality}: no quality entry for {f.model_id!r} (from "
                                   f"{path}); add its published score with the source")
            gpus = replica_gpus.get(f.model_id, args.gpus_per_replica)
            points = [p for p in select_points(f, args.gpu, gpus, None, args.length_quantile)
                      if p.batch <= max(batches)]
            have = {p.batch for p in points}
            missing = [b for b in batches if b not in have]
            if missing:
                raise ProfileError(f"{path}: {f.model_id} on {gpus} x "
                                   f"{args.gpu} has no measured batch {missing} of --batches; "
                                   f"measured: {sorted(have)}")
            variants.append(variant_entry(f, points, quality[f.model_id], args.gpu, idle,
                                          args.release, sources))
        variants.sort(key=lambda v: v["accuracy"])
        out_stages.append({"name": name, "variants": variants})
    return {
        "pipeline": args.pipeline or Path(args.out).stem,
        "sla_ms": float(args.sla_ms),
        "batch_sizes": _Flow(batches),
        "notes": args.notes,
        "hardware": {
            "name": args.hardware_name or f"NVIDIA {args.gpu} (ML.ENERGY gpu_model)",
            "device": "gpu", "devices_per_node": args.devices_per_node,
            "node_static_w": static.watts, "device_idle_w": idle.watts,
            "static_source": "node_static", "idle_source": "gpu_idle",
            "fleet": args.fleet, "fleet_nodes": args.fleet_nodes,
            **({"load_gb_per_s": args.load_gb_per_s, "load_source": "model_load"}
               if args.load_gb_per_s else {}),
        },
        "sources": sources,
        "row_columns": _Flow(ROW_COLUMNS),
        "stages": out_stages,
    }


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see python -m energy.import_mlenergy --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments; see the module docstring."""
    p = _Parser(prog="python -m energy.import_mlenergy", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", type=Path, help="ML.ENERGY models/*.json files")
    p.add_argument("--stage", action="append", default=[], metavar="NAME=PATH[,PATH...]",
                   help="one stage of a multi-stage pipeline (repeat, in request order)")
    p.add_argument("--stage-name", default="chat", help="stage name for positional PATHs")
    p.add_argument("--gpu", help="GPU as the files name it: H100, B200, A100")
    p.add_argument("--gpus-per-replica", type=int, default=1, help="tensor parallel degree")
    p.add_argument("--replica-gpus", action="append", default=[], metavar="MODEL_ID=N",
                   help="GPUs per replica for one model (overrides --gpus-per-replica)")
    p.add_argument("--batches", type=int, nargs="+", help="batch_sizes: caps or batch sizes "
                   "a policy may choose; all must be measured")
    p.add_argument("--length-quantile", type=float, default=0.99,
                   help="output-length quantile of the LLM p99 bound")
    p.add_argument("--quality", type=Path, help="YAML: model_id -> accuracy, metric, source")
    p.add_argument("--release", help="dataset version, e.g. 'ML.ENERGY v3 (commit 0cd52dab)'")
    p.add_argument("--out", type=Path, help="profile to write")
    p.add_argument("--pipeline", help="pipeline name (default: the --out file's stem)")
    p.add_argument("--sla-ms", type=float, help="end-to-end SLA; justify it in --notes")
    p.add_argument("--notes", help="why this SLA, what the rows mean, caveats")
    p.add_argument("--hardware-name", help="full GPU name, e.g. 'NVIDIA H100 80GB HBM3'")
    p.add_argument("--idle-w", type=float, help="idle power of one allocated GPU (W)")
    p.add_argument("--idle-kind", choices=PROVENANCE_KINDS)
    p.add_argument("--idle-why", help="source or reason of --idle-w")
    p.add_argument("--node-static-w", type=float, help="host power of a powered node, no GPUs")
    p.add_argument("--static-kind", choices=PROVENANCE_KINDS)
    p.add_argument("--static-why", help="source or reason of --node-static-w")
    p.add_argument("--devices-per-node", type=int, help="GPUs per node, e.g. 8 (HGX H100)")
    p.add_argument("--fleet", choices=("elastic", "fixed"))
    p.add_argument("--fleet-nodes", type=int, help="nodes in the fleet")
    p.add_argument("--load-gb-per-s", type=float, default=0.0,
                   help="weights loading bandwidth (GB/s) for size-dependent cold starts")
    p.add_argument("--load-kind", choices=PROVENANCE_KINDS, default="assumed")
    p.add_argument("--load-why", default="", help="source or reason of --load-gb-per-s")
    return p.parse_args(argv)


def _replica_gpus(specs: list[str]) -> dict[str, int]:
    out = {}
    for spec in specs:
        model, sep, n = spec.rpartition("=")
        if not sep or not model or not n.isdigit() or int(n) < 1:
            raise ConfigError(f"--replica-gpus {spec!r}: expected MODEL_ID=N with N >= 1")
        out[model] = int(n)
    return out


def _stages(args: argparse.Namespace) -> list[tuple[str, list[Path]]]:
    if args.stage and args.paths:
        raise ConfigError("give files either as PATH... (one stage) or with --stage "
                          "NAME=PATH,... (several), not both")
    if not args.stage:
        if not args.paths:
            raise ConfigError("no ML.ENERGY files given; pass PATH... or --stage NAME=PATH,...")
        return [(args.stage_name, list(args.paths))]
    stages = []
    for spec in args.stage:
        name, sep, files = spec.partition("=")
        if not sep or not name or not files:
            raise ConfigError(f"--stage {spec!r}: expected NAME=PATH[,PATH...]")
        stages.append((name, [Path(x) for x in files.split(",") if x]))
    return stages


def check_args(args: argparse.Namespace) -> None:
    """ConfigError naming the first missing or impossible option."""
    for key in _REQUIRED:
        if getattr(args, key) is None:
            flag = "--" + key.replace("_", "-")
            extra = (": GPU idle power is not in ML.ENERGY files; give a cited or assumed "
                     "value with --idle-kind and --idle-why") if key.startswith("idle") else ""
            raise ConfigError(f"{flag} is required{extra}")
    for key in ("idle_w", "node_static_w"):
        if getattr(args, key) < 0:
            raise ConfigError(f"--{key.replace('_', '-')} must be >= 0 W")
    for key in ("devices_per_node", "fleet_nodes", "gpus_per_replica", "sla_ms"):
        if getattr(args, key) <= 0:
            raise ConfigError(f"--{key.replace('_', '-')} must be > 0")
    if min(args.batches) < 1:
        raise ConfigError("--batches must be >= 1")
    if not 0 < args.length_quantile <= 1:
        raise ConfigError("--length-quantile must be in (0, 1]")
    if args.load_gb_per_s < 0 or (args.load_gb_per_s > 0 and not args.load_why):
        raise ConfigError("--load-gb-per-s must be >= 0, and a positive value needs "
                          "--load-why (its source or reason)")


def main(argv: list[str] | None = None) -> int:
    """Run the importer; returns the exit code."""
    args = parse_args(argv)
    try:
        check_args(args)
        profile = build_profile(args, _stages(args))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(yaml.dump(profile, Dumper=_Dumper, sort_keys=False, width=100,
                                      allow_unicode=True))
    except IpaEnergyError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    n = sum(len(s["variants"]) for s in profile["stages"])
    print(f"wrote {args.out}: {len(profile['stages'])} stage(s), {n} variants, "
          f"batch_sizes {list(profile['batch_sizes'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
