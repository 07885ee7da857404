"""Building blocks of a profile document (the dict `envs.profiles.load_pipeline` reads),
shared by the profiler, the importers, the tests and the benchmarks that write profiles."""

from __future__ import annotations

from typing import Any

from envs.profiles import ROW_COLUMNS


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
    """
    return {
        "name": name, "device": device, "devices_per_node": devices_per_node,
        "node_static_w": node_static_w, "device_idle_w": device_idle_w,
        "static_source": static_source, "idle_source": idle_source, "fleet": fleet,
        "fleet_nodes": fleet_nodes,
    }


def row_columns() -> list[str]:
    """The ``row_columns`` entry every profile carries."""
    return list(ROW_COLUMNS)
