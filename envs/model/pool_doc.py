"""The ``pools`` entries of a profile document (`envs.model.profile_format`): one mapping per
device pool, every field of `envs.model.fleet.DevicePool` written out."""

from __future__ import annotations

from typing import Any


def pool_entry(
    name: str, device_name: str, *, device: str = "cpu_core", devices_per_node: int = 1,
    nodes: int = 1, always_on: int = 1, node_static_w: float = 0.0,
    device_idle_w: float = 0.0, allocated_w: float = 0.0, price_per_device_hour: float = 1.0,
    boot_s: float = 0.0, hold_s: float = 0.0, load_gb_per_s: float = 0.0,
    memory_gb: float = 0.0, sources: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One entry of a profile's ``pools`` (see `envs.model.fleet.DevicePool` for each field).

    Args:
        name: Pool id the variants name.
        device_name: CPU or GPU model.
        device: ``cpu_core`` or ``gpu``: what a row's ``cores`` counts.
        devices_per_node: Devices one node holds.
        nodes: The pool's size.
        always_on: Nodes powered whatever the allocation.
        node_static_w: Static (host) power of a powered node, watts.
        device_idle_w: Idle power of every device of a powered node, watts.
        allocated_w: Power of an allocated device beyond idle, watts.
        price_per_device_hour: Dollars per device-hour.
        boot_s: Node power-on time, seconds.
        hold_s: Time a node with nothing allocated stays on, seconds.
        load_gb_per_s: Weight loading bandwidth (0: none).
        memory_gb: Memory per device (0: not checked).
        sources: Figure name -> source id, for every non-zero figure.

    Returns:
        The mapping, ready for a document's ``pools`` list.
    """
    return {
        "name": name, "device_name": device_name, "device": device,
        "devices_per_node": devices_per_node, "nodes": nodes, "always_on": always_on,
        "node_static_w": node_static_w, "device_idle_w": device_idle_w,
        "allocated_w": allocated_w, "price_per_device_hour": price_per_device_hour,
        "boot_s": boot_s, "hold_s": hold_s, "load_gb_per_s": load_gb_per_s,
        "memory_gb": memory_gb, "sources": dict(sources or {}),
    }
