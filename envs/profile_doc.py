"""Building blocks of a profile document (the dict `envs.profiles.load_pipeline` reads),
shared by the profiler, the importers, the tests and the benchmarks that write profiles.

`profile_document` assembles the whole document (it fills in ``row_columns``);
`variant_entry` one variant; `synthetic_rows` the generated rows of the synthetic test
and benchmark profiles (latency shapes assumed, not measured).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from envs.power import busy_batch_energy_j
from envs.profile_format import ROW_COLUMNS


def hardware_entry(
    name: str, *, device: str = "cpu_core", devices_per_node: int = 1,
    node_static_w: float = 0.0, device_idle_w: float = 0.0, static_source: str = "static",
    idle_source: str = "idle", fleet: str = "fixed", fleet_nodes: int = 1,
) -> dict[str, Any]:
    """The ``hardware`` mapping of a profile (see `envs.spec.Hardware` for each field).

    Args:
        name: CPU or GPU model.
        device: ``cpu_core`` or ``gpu``: what a row's ``cores`` counts.
        devices_per_node: Devices one node holds.
        node_static_w: Static power of a powered node, watts.
        device_idle_w: Idle power of one allocated device, watts.
        static_source: Source id of ``node_static_w``.
        idle_source: Source id of ``device_idle_w``.
        fleet: ``elastic`` or ``fixed``.
        fleet_nodes: Nodes in the fleet.

    Returns:
        The mapping, ready for a document's ``hardware`` key.
    """
    return {
        "name": name, "device": device, "devices_per_node": devices_per_node,
        "node_static_w": node_static_w, "device_idle_w": device_idle_w,
        "static_source": static_source, "idle_source": idle_source, "fleet": fleet,
        "fleet_nodes": fleet_nodes,
    }


def row_columns() -> list[str]:
    """The ``row_columns`` entry every profile carries.

    Returns:
        A fresh list of `envs.profile_format.ROW_COLUMNS`.
    """
    return list(ROW_COLUMNS)


def variant_entry(name: str, accuracy: float, rows: list[list], *, metric: str, source: str,
                  base_cores: int) -> dict[str, Any]:
    """One variant of a stage's ``variants`` list.

    Args:
        name: Variant name.
        accuracy: Its accuracy, in ``metric``'s unit.
        rows: Its profile rows, in `ROW_COLUMNS` order.
        metric: What ``accuracy`` measures (e.g. ``top-1 (%)``).
        source: Where ``accuracy`` comes from.
        base_cores: Cores of one replica at the base allocation.

    Returns:
        The variant mapping.
    """
    return {"name": name, "accuracy": accuracy, "accuracy_metric": metric,
            "accuracy_source": source, "base_cores": base_cores, "rows": rows}


def profile_document(name: str, *, sla_ms: float, batch_sizes: Iterable[int],
                     hardware: dict[str, Any], sources: dict[str, dict[str, str]],
                     stages: list[dict[str, Any]]) -> dict[str, Any]:
    """A whole profile document, in the key order of the shipped profiles.

    Args:
        name: Pipeline name.
        sla_ms: End-to-end SLA, milliseconds.
        batch_sizes: Batch sizes the pipeline may choose.
        hardware: The ``hardware`` mapping (`hardware_entry`).
        sources: Source id -> ``{"kind": ..., "description": ...}``.
        stages: ``[{"name": ..., "variants": [variant_entry(...), ...]}, ...]``.

    Returns:
        The document, with ``row_columns`` filled in.
    """
    return {"pipeline": name, "sla_ms": sla_ms, "batch_sizes": list(batch_sizes),
            "hardware": hardware, "sources": sources, "row_columns": row_columns(),
            "stages": stages}


def synthetic_rows(base_ms: float, *, batches: Iterable[int], cores: Iterable[int],
                   batch_shape: tuple[float, float], core_shape: tuple[float, float],
                   p99_factor: float | Callable[[], float], busy_w_per_core: float = 3.0,
                   latency_source: str = "lat", energy_source: str = "en") -> list[list]:
    """Generated rows (assumed shapes, not measured) for synthetic profiles.

    At ``c`` cores and batch ``b``: mean = ``base_ms`` x (fixed + per_item x b) /
    (per_core x c + rest), with ``batch_shape = (fixed, per_item)`` and
    ``core_shape = (per_core, rest)``; p99 = mean x ``p99_factor``; energy per batch =
    `envs.power.busy_batch_energy_j` of ``busy_w_per_core``, c and mean (joules). Rows
    run over cores, then batches.

    Args:
        base_ms: Latency scale, milliseconds.
        batches: Batch sizes.
        cores: Core counts.
        batch_shape: ``(fixed, per_item)`` of the batch term.
        core_shape: ``(per_core, rest)`` of the core term.
        p99_factor: p99 / mean, or a callable drawing it for each row (in row order).
        busy_w_per_core: Dynamic power of one busy core, watts.
        latency_source: Source id of the latencies.
        energy_source: Source id of the energies.

    Returns:
        Rows in `ROW_COLUMNS` order, rounded to 3 (ms) and 5 (J) decimals.
    """
    fixed, per_item = batch_shape
    per_core, rest = core_shape
    batch_list = list(batches)
    out = []
    for c in cores:
        for b in batch_list:
            mean = base_ms * (fixed + per_item * b) / (per_core * c + rest)
            factor = p99_factor() if callable(p99_factor) else p99_factor
            out.append([b, c, round(mean, 3), round(factor * mean, 3),
                        round(busy_batch_energy_j(busy_w_per_core, c, mean), 5), latency_source,
                        energy_source])
    return out


def write_profile(doc: dict[str, Any], path: Path) -> Path:
    """Write a profile document as YAML (keys in document order).

    Args:
        doc: The document (`profile_document`).
        path: Where to write it.

    Returns:
        ``path``.
    """
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
