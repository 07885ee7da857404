"""Write the profiler's measured points as the profile YAML `envs.profiles` loads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import yaml

from energy.measure import Point, cpu_model, point_key
from envs.profile_doc import hardware_entry, row_columns
from models.catalog import CatalogPipeline

LATENCY_SOURCE = "latency"
ENERGY_SOURCE = "energy"
IDLE_SOURCE = "idle"
STATIC_SOURCE = "static"


def dump_profile(doc: dict[str, Any], out: Path) -> None:
    """Write a profile document as YAML, rows in flow style.

    Args:
        doc: The profile mapping.
        out: The file to write.
    """
    out.write_text(yaml.safe_dump(doc, sort_keys=False, width=100, default_flow_style=None))


def _sources(spec: CatalogPipeline, meter_description: str, estimated: bool,
             reps: list[int], cores_total: int) -> dict[str, Any]:
    energy_kind = "estimated" if estimated else "measured"
    return {
        LATENCY_SOURCE: {
            "kind": "measured",
            "description": (
                f"wall-clock per batch (time.perf_counter) on {cpu_model()}, torch "
                f"{torch.__version__}, torch.set_num_threads(cores), "
                f"{reps[0]}-{reps[-1]} repetitions per point after warm-up; "
                f"{spec.notes}"
            ),
        },
        ENERGY_SOURCE: {
            "kind": energy_kind,
            "description": f"dynamic energy per batch from meter {meter_description} "
            "minus idle power x wall time, per batch",
        },
        STATIC_SOURCE: {
            "kind": "assumed",
            "description": "node static power not separated by the profiler: the "
            "whole idle power measured over a sleep window is attributed to the "
            "devices (device_idle_w); calibrate a node/device split on whole-run "
            "measurements (benchmarks/energy_calibration.py) where one is needed",
        },
        IDLE_SOURCE: {
            "kind": energy_kind,
            "description": f"idle power from meter {meter_description} over a sleep "
            f"window, divided by {cores_total} logical CPUs",
        },
    }


def write_profile(
    spec: CatalogPipeline,
    points: dict[str, Point],
    out: Path,
    meter_description: str,
    estimated: bool,
    idle_w: float,
    threads: tuple[int, ...],
    batch_sizes: tuple[int, ...],
) -> None:
    """Write the profile YAML that `envs.profiles.load_pipeline` reads.

    Args:
        spec: The pipeline measured.
        points: Point key (`energy.measure.point_key`) -> measured point; missing points
            are left out of the rows.
        out: The profile to write.
        meter_description: The meter and its settings, for the sources.
        estimated: Whether the meter's readings are estimates.
        idle_w: Idle power of the whole machine over the sleep window (W); split evenly
            over the logical CPUs as ``device_idle_w``.
        threads: Thread counts measured (the rows' ``cores``).
        batch_sizes: Batch sizes measured.
    """
    cores_total = os.cpu_count() or 1
    reps = sorted({p.reps for p in points.values()})
    doc: dict[str, Any] = {
        "pipeline": spec.name,
        "sla_ms": spec.sla_ms,
        "batch_sizes": list(batch_sizes),
        "notes": spec.notes,
        "hardware": hardware_entry(
            f"{cpu_model()} ({cores_total} logical CPUs)", devices_per_node=cores_total,
            device_idle_w=round(idle_w / cores_total, 4), static_source=STATIC_SOURCE,
            idle_source=IDLE_SOURCE,
        ),
        "sources": _sources(spec, meter_description, estimated, reps, cores_total),
        "row_columns": row_columns(),
        "stages": [],
    }
    for stage in spec.stages:
        variants = []
        for variant in stage.variants:
            rows = []
            for t in threads:
                for b in batch_sizes:
                    p = points.get(point_key(stage.name, variant.name, t, b))
                    if p is None:
                        continue
                    rows.append([
                        b, t, round(p.latency_mean_ms, 3), round(p.latency_p99_ms, 3),
                        round(p.energy_per_batch_j, 5), LATENCY_SOURCE, ENERGY_SOURCE,
                    ])
            variants.append({
                "name": variant.name,
                "accuracy": variant.accuracy,
                "accuracy_metric": variant.accuracy_metric,
                "accuracy_source": variant.accuracy_source,
                "base_cores": variant.base_cores,
                "rows": rows,
            })
        doc["stages"].append({"name": stage.name, "variants": variants})
    dump_profile(doc, out)
