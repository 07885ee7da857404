"""Write a GPU profile (``profiles/<name>.yaml``) from measured ML.ENERGY files.

Usage::

    python -m energy.import_mlenergy PATH... --gpu H100 --out profiles/NAME.yaml \\
        --batches 8 16 32 64 --quality profiles/quality/mlenergy_quality.yaml \\
        --release 'ML.ENERGY v3 (leaderboard commit 0cd52dab)' --sla-ms 60000 \\
        --notes '...why this SLA...' --idle-w 75 --idle-kind assumed --idle-why '...' \\
        --node-static-w 1000 --static-kind assumed --static-why '...' \\
        --devices-per-node 8 --fleet elastic --fleet-nodes 4

    # a two-stage pipeline: one --stage NAME=PATH[,PATH...] per stage, in request order,
    # each stage with its own knob values (--stage-batches; --batches covers the rest)
    python -m energy.import_mlenergy --stage chat=a.json,b.json --stage image=c.json \
        --stage-batches chat=8,16,32,64 --stage-batches image=1,2,4,8,16 ...

Every PATH is an ML.ENERGY ``models/*.json`` file (read from anywhere). The rows of a
variant are all its measured settings on ``--gpu`` with ``--gpus-per-replica`` GPUs up to
the largest of the stage's knob values (``--stage-batches`` for that stage, else
``--batches``); each must be measured. A stage whose files are all LLMs gets ``knob: cap``
(the values are concurrency caps), any other ``knob: batch``. How latency and
dynamic energy are derived is in `energy.mlenergy.points`. GPU idle power and node static power
are not in the files: give each with its provenance kind and why.

With ``--continuous``, every variant of a ``knob: cap`` stage also gets a ``continuous:``
block (`energy.mlenergy.continuous`): the measured points of all its caps on that GPU and
count, its output-length histogram pooled over those runs, and one load table per cap of
the stage simulated from them (``envs.serving.load_table.load_table``, 400,000 requests
per load, seed 0; measured here: about 1.5 s per table). ``--output-lengths CSV`` takes
every LLM variant's output lengths from a trace of real requests instead (a CSV with a
``GeneratedTokens`` column, e.g. Azure's 2023 LLM inference trace), binned into a
histogram; the measured points stay ML.ENERGY's. Without ``--continuous`` the output is
unchanged.

Exit codes: 0 written, 2 bad input (one line on stderr naming the problem and the fix;
argparse's usage errors also print the usage). The profile is written only once it loads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from energy.mlenergy.profile import PROVENANCE_KINDS, build_profile
from envs.config.cli import (
    argument_parser,
    command_line,
    non_negative_float,
    positive_float,
    positive_int,
)
from envs.config.errors import ConfigError
from envs.model.profile_doc import write_profile

PROG = "python -m energy.import_mlenergy"
_REQUIRED = ("gpu", "out", "quality", "release", "sla_ms", "notes", "idle_w",
             "idle_kind", "idle_why", "node_static_w", "static_kind", "static_why",
             "devices_per_node", "fleet", "fleet_nodes")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; see the module docstring.

    A nonsensical number (``nan``, a negative power, 0 nodes) is argparse's usage error
    (exit 2).

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The parsed arguments (not yet checked: see `check_args`).
    """
    p = argument_parser(PROG, __doc__)
    p.add_argument("paths", nargs="*", type=Path, help="ML.ENERGY models/*.json files")
    p.add_argument("--stage", action="append", default=[], metavar="NAME=PATH[,PATH...]",
                   help="one stage of a multi-stage pipeline (repeat, in request order)")
    p.add_argument("--stage-name", default="chat", help="stage name for positional PATHs")
    p.add_argument("--gpu", help="GPU as the files name it: H100, B200, A100")
    p.add_argument("--gpus-per-replica", type=positive_int, default=1,
                   help="tensor parallel degree")
    p.add_argument("--replica-gpus", action="append", default=[], metavar="MODEL_ID=N",
                   help="GPUs per replica for one model (overrides --gpus-per-replica)")
    p.add_argument("--batches", type=positive_int, nargs="+", help="batch_sizes: caps or "
                   "batch sizes a policy may choose in every stage without "
                   "--stage-batches; all must be measured")
    p.add_argument("--stage-batches", action="append", default=[], metavar="STAGE=B[,B...]",
                   help="one stage's own caps or batch sizes (repeat per stage)")
    p.add_argument("--continuous", action="store_true",
                   help="also write each LLM variant's continuous-batching block (measured "
                   "points, pooled output lengths, a simulated load table per cap)")
    p.add_argument("--output-lengths", type=Path, metavar="CSV",
                   help="with --continuous: output lengths of every LLM variant from this "
                   "trace's GeneratedTokens column instead of ML.ENERGY's histograms")
    p.add_argument("--length-quantile", type=positive_float, default=0.99,
                   help="output-length quantile of the LLM p99 bound, in (0, 1]")
    p.add_argument("--quality", type=Path, help="YAML: model_id -> accuracy, metric, source")
    p.add_argument("--release", help="dataset version, e.g. 'ML.ENERGY v3 (commit 0cd52dab)'")
    p.add_argument("--out", type=Path, help="profile to write")
    p.add_argument("--pipeline", help="pipeline name (default: the --out file's stem)")
    p.add_argument("--sla-ms", type=positive_float,
                   help="end-to-end SLA; justify it in --notes")
    p.add_argument("--notes", help="why this SLA, what the rows mean, caveats")
    p.add_argument("--hardware-name", help="full GPU name, e.g. 'NVIDIA H100 80GB HBM3'")
    p.add_argument("--idle-w", type=non_negative_float,
                   help="idle power of one allocated GPU (W)")
    p.add_argument("--idle-kind", choices=PROVENANCE_KINDS)
    p.add_argument("--idle-why", help="source or reason of --idle-w")
    p.add_argument("--node-static-w", type=non_negative_float,
                   help="host power of a powered node, no GPUs")
    p.add_argument("--static-kind", choices=PROVENANCE_KINDS)
    p.add_argument("--static-why", help="source or reason of --node-static-w")
    p.add_argument("--devices-per-node", type=positive_int,
                   help="GPUs per node, e.g. 8 (HGX H100)")
    p.add_argument("--fleet", choices=("elastic", "fixed"))
    p.add_argument("--fleet-nodes", type=positive_int, help="nodes in the fleet (the pool's "
                   "size; all always on with --fleet fixed)")
    p.add_argument("--pool-name", help="name of the device pool (default: --gpu, lower case)")
    p.add_argument("--load-gb-per-s", type=non_negative_float, default=0.0,
                   help="weights loading bandwidth (GB/s) for size-dependent cold starts")
    p.add_argument("--load-kind", choices=PROVENANCE_KINDS, default="assumed")
    p.add_argument("--load-why", default="", help="source or reason of --load-gb-per-s")
    return p.parse_args(argv)


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
        paths = [Path(x) for x in files.split(",") if x]
        if not paths:
            raise ConfigError(f"--stage {spec!r}: no files; expected NAME=PATH[,PATH...]")
        stages.append((name, paths))
    return stages


def check_args(args: argparse.Namespace) -> None:
    """Check the parsed arguments.

    Args:
        args: From `parse_args`.

    Raises:
        ConfigError: Naming the first missing or impossible option.
    """
    for key in _REQUIRED:
        if getattr(args, key) is None:
            flag = "--" + key.replace("_", "-")
            extra = (": GPU idle power is not in ML.ENERGY files; give a cited or assumed "
                     "value with --idle-kind and --idle-why") if key.startswith("idle") else ""
            raise ConfigError(f"{flag} is required{extra}")
    if args.length_quantile > 1:
        raise ConfigError("--length-quantile must be in (0, 1]")
    if args.load_gb_per_s > 0 and not args.load_why:
        raise ConfigError("a positive --load-gb-per-s needs --load-why (its source or reason)")


@command_line(PROG)
def main(argv: list[str] | None = None) -> int:
    """Run the importer.

    The profile is written only once it loads (`envs.model.profiles.load_pipeline` on a
    temporary copy).

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit code: 0 written, 2 bad input (one line on stderr).

    Raises:
        ConfigError: A missing or impossible option, or an unwritable ``--out``.
        ProfileError: Bad data files, or a profile that would not load.
    """
    args = parse_args(argv)
    check_args(args)
    profile = build_profile(args, _stages(args))
    write_profile(profile, args.out, style="rows", check=True)
    n = sum(len(s["variants"]) for s in profile["stages"])
    knobs = ", ".join(f"{s['name']} {s.get('knob', 'batch')} {s['batch_sizes']}"
                      for s in profile["stages"])
    print(f"wrote {args.out}: {len(profile['stages'])} stage(s), {n} variants; {knobs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
