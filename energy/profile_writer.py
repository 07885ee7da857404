"""Write the profiler's measured points as the profile YAML `envs.model.profiles` loads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from energy.measure import Point, cpu_model, point_key
from envs.model import profile_doc
from envs.model.pool_doc import pool_entry
from envs.model.profile_doc import profile_document, variant_entry
from models.catalog import CatalogPipeline

LATENCY_SOURCE = "latency"
ENERGY_SOURCE = "energy"
IDLE_SOURCE = "idle"
STATIC_SOURCE = "static"


def cpu_latency_description(spec: CatalogPipeline, reps: list[int]) -> str:
    """How the profiler measured latency on this CPU (the ``latency`` source's text).

    Args:
        spec: The pipeline measured.
        reps: The points' repetition counts, ascending.

    Returns:
        The description.
    """
    return (f"wall-clock per batch (time.perf_counter) on {cpu_model()}, torch "
            f"{torch.__version__}, torch.set_num_threads(cores), {reps[0]}-{reps[-1]} "
            f"repetitions per point after warm-up; {spec.notes}")


def _sources(meter_description: str, estimated: bool, latency_description: str,
             idle_description: str) -> dict[str, Any]:
    energy_kind = "estimated" if estimated else "measured"
    return {
        LATENCY_SOURCE: {"kind": "measured", "description": latency_description},
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
        IDLE_SOURCE: {"kind": energy_kind, "description": idle_description},
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
    *,
    pool: dict[str, Any] | None = None,
    latency_description: str | None = None,
    idle_description: str | None = None,
) -> None:
    """Write the profile YAML that `envs.model.profiles.load_pipeline` reads (only once it loads).

    Args:
        spec: The pipeline measured.
        points: Point key (`energy.measure.point_key`) -> measured point; missing points
            are left out of the rows.
        out: The profile to write.
        meter_description: The meter and its settings, for the sources.
        estimated: Whether the meter's readings are estimates.
        idle_w: Idle power of the whole machine over the sleep window (W); split evenly
            over the logical CPUs as ``device_idle_w``, which every core of a powered node
            draws (unless ``pool`` is given).
        threads: Thread counts measured (the rows' ``cores``).
        batch_sizes: Batch sizes measured.
        pool: The device pool (`envs.model.profile_doc.pool_entry`); default: this CPU, its
            logical CPUs as the devices of one always-on node.
        latency_description: The latency source's text; default: the CPU profiler's
            (`cpu_latency_description`).
        idle_description: The idle power source's text; default: the meter's reading over
            a sleep window, divided by the logical CPUs.

    Raises:
        ConfigError: ``out`` cannot be written.
        ProfileError: The profile would not load (nothing is written).
    """
    cores_total = os.cpu_count() or 1
    reps = sorted({p.reps for p in points.values()})
    if pool is None:
        pool = pool_entry(
            "cpu", f"{cpu_model()} ({cores_total} logical CPUs)", devices_per_node=cores_total,
            device_idle_w=round(idle_w / cores_total, 4),
            sources={"device_idle_w": IDLE_SOURCE},
        )
    sources = _sources(
        meter_description, estimated,
        latency_description or cpu_latency_description(spec, reps),
        idle_description or (f"idle power from meter {meter_description} over a sleep "
                             f"window, divided by {cores_total} logical CPUs"),
    )
    stages = []
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
            variants.append(variant_entry(
                variant.name, variant.accuracy, rows, metric=variant.accuracy_metric,
                source=variant.accuracy_source, base_cores=variant.base_cores))
        stages.append({"name": stage.name, "variants": variants})
    doc = profile_document(spec.name, sla_ms=spec.sla_ms, batch_sizes=batch_sizes,
                           notes=spec.notes, pools=[pool], sources=sources,
                           stages=stages)
    profile_doc.write_profile(doc, out, style="inline", check=True)
