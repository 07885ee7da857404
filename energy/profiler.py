"""Profiler: measure latency and energy per batch of every variant of a catalog pipeline.

Usage::

    python -m energy.profiler --pipeline video --out profiles/video.yaml \
        --meter tdp --tdp-w-per-core 4.0 --idle-w-per-core 1.0 --threads 1 2

Every measured point is appended to ``<out>.partial.jsonl`` as soon as it is done, so a
killed run resumes where it stopped (`energy.point_log`). The final YAML is the format
`envs.model.profiles` loads (`energy.profile_writer`).

Energy per batch is the *dynamic* energy: the meter's reading over the repetitions minus
the idle power (measured once, at the start, with the same meter, while sleeping) times
the wall time, divided by the number of batches (`energy.measure`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from energy.measure import Point, measure_idle_w, measure_point, meter_estimated, point_key
from energy.meters import Meter, make_meter
from energy.point_log import append_point, partial_path, start_log
from energy.profile_writer import write_profile
from envs.config.cli import (
    argument_parser,
    command_line,
    non_negative_float,
    positive_float,
    positive_int,
)
from envs.config.errors import ConfigError
from models.catalog import CatalogPipeline, catalog_pipeline

PROG = "python -m energy.profiler"


def profile_pipeline(
    spec: CatalogPipeline,
    out: Path,
    meter: Meter,
    meter_description: str,
    threads: tuple[int, ...],
    batch_sizes: tuple[int, ...] | None = None,
    idle_s: float = 2.0,
    budget_s: float = 2.0,
    min_reps: int = 5,
    max_reps: int = 50,
    warmup: int = 2,
    progress: bool = True,
) -> Path:
    """Measure every (variant, threads, batch) point of ``spec`` and write ``out``.

    Points already in ``<out>.partial.jsonl`` from a run with the same settings are not
    measured again (`energy.point_log`).

    Args:
        spec: The catalog pipeline to measure.
        out: The profile YAML to write.
        meter: Energy meter for the idle window and every point.
        meter_description: The meter and its settings, written into the sources.
        threads: Torch thread counts to measure (the rows' ``cores``).
        batch_sizes: Batch sizes to measure (default: the pipeline's).
        idle_s: Length of the idle-power window.
        budget_s: Time per point that sets its repetitions.
        min_reps: Fewest repetitions per point.
        max_reps: Most repetitions per point.
        warmup: Untimed runs before each point.
        progress: Show a progress bar.

    Returns:
        The path of the written profile.

    Raises:
        ConfigError: The point log was written with other settings, or ``out``'s folder
            cannot be written.
        ProfileError: The measured profile would not load (nothing is written).
    """
    batch_sizes = batch_sizes or spec.batch_sizes
    meta = {
        "pipeline": spec.name,
        "meter": meter_description,
        "threads": list(threads),
        "batch_sizes": list(batch_sizes),
        "torch": torch.__version__,
    }
    partial = partial_path(out)
    try:
        points = start_log(partial, meta)
    except OSError as err:
        raise ConfigError(f"cannot write the point log {partial} beside the profile {out}: "
                          f"{err.strerror or err}; give a writable --out") from None
    idle_w = measure_idle_w(meter, idle_s)
    todo = [
        (stage, variant, t, b)
        for stage in spec.stages
        for variant in stage.variants
        for t in threads
        for b in batch_sizes
    ]
    bar = tqdm(todo, desc=f"profiling {spec.name}", disable=not progress, unit="point")
    models: dict[str, torch.nn.Module] = {}
    with partial.open("a") as log:
        for stage, variant, t, b in bar:
            key = point_key(stage.name, variant.name, t, b)
            if key in points:
                continue
            bar.set_postfix_str(key)
            torch.set_num_threads(t)
            if variant.name not in models:
                models.clear()
                models[variant.name] = variant.build()
            mean_ms, p99_ms, energy_j, reps = measure_point(
                models[variant.name], variant.make_input, b, meter, idle_w, budget_s,
                min_reps, max_reps, warmup,
            )
            point = Point(stage.name, variant.name, t, b, mean_ms, p99_ms, energy_j, reps)
            points[key] = point
            append_point(log, point)
    write_profile(
        spec, points, out, meter_description, meter_estimated(meter), idle_w, threads, batch_sizes
    )
    return out


@command_line(PROG)
def main(argv: list[str] | None = None) -> int:
    """Profile a catalog pipeline from the command line (see the module docstring).

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit code: 0 written; 2 a package error, reported in one line.

    Raises:
        CatalogError: An unknown ``--pipeline`` (reported by `command_line`, exit 2).
    """
    parser = argument_parser(PROG, __doc__)
    parser.add_argument("--pipeline", default="video", help="catalog pipeline name")
    parser.add_argument("--out", type=Path, help="profile path (default profiles/<name>.yaml)")
    parser.add_argument("--meter", default="tdp", help="rapl | nvml | zeus | tdp")
    parser.add_argument(
        "--tdp-w-per-core",
        type=positive_float,
        default=4.0,
        help="tdp meter: package power per core at full load",
    )
    parser.add_argument(
        "--idle-w-per-core",
        type=non_negative_float,
        default=1.0,
        help="tdp meter: package power per core when idle",
    )
    parser.add_argument("--rapl-root", type=Path, default=Path("/sys/class/powercap"))
    parser.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=None)
    parser.add_argument(
        "--budget-s", type=positive_float, default=2.0,
        help="time per point that sets the repetitions",
    )
    parser.add_argument("--min-reps", type=positive_int, default=5)
    parser.add_argument("--max-reps", type=positive_int, default=50)
    parser.add_argument("--idle-s", type=non_negative_float, default=2.0)
    args = parser.parse_args(argv)
    spec = catalog_pipeline(args.pipeline)  # CatalogError: one line, exit 2 (command_line)
    cores = os.cpu_count() or 1
    if args.meter == "tdp":
        meter = make_meter(
            "tdp",
            tdp_w=args.tdp_w_per_core * cores,
            idle_w=args.idle_w_per_core * cores,
            cores=cores,
        )
        description = (
            f"tdp estimate ({args.tdp_w_per_core} W/core busy, "
            f"{args.idle_w_per_core} W/core idle, process CPU time)"
        )
    elif args.meter == "rapl":
        meter = make_meter("rapl", root=args.rapl_root)
        description = f"rapl ({args.rapl_root})"
    else:
        meter = make_meter(args.meter)
        description = args.meter
    out = args.out or Path("profiles") / f"{spec.name}.yaml"
    profile_pipeline(
        spec,
        out,
        meter,
        description,
        tuple(args.threads),
        tuple(args.batch_sizes) if args.batch_sizes else None,
        idle_s=args.idle_s,
        budget_s=args.budget_s,
        min_reps=args.min_reps,
        max_reps=args.max_reps,
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
