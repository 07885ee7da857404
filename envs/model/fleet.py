"""The fleet: the device pools a pipeline's replicas run on, one per device type, with
their nodes, power and price (the hardware half of the one model in `envs.model.spec`).

Replicas are packed per pool onto as few nodes as possible (`envs.model.node_power.powered_nodes`);
what a powered node draws is in `envs.model.power`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

DeviceKind = Literal["cpu_core", "gpu"]

POOL_QUANTITIES = ("node_static_w", "device_idle_w", "allocated_w", "price_per_device_hour",
                   "boot_s", "hold_s", "load_gb_per_s")
"""The figures of a pool that carry a provenance (`DevicePool.sources`) when they are not 0."""
POWER_QUANTITIES = ("node_static_w", "device_idle_w", "allocated_w")
"""The pool figures that are part of the power model."""


@dataclass(frozen=True)
class DevicePool:
    """One device type of the fleet: its nodes, their power and their price.

    Energy of an interval (`envs.model.power`): every powered node draws ``node_static_w``
    and every device on it ``device_idle_w``, allocated or not; each allocated device adds
    ``allocated_w``; the batches served add their measured dynamic energy.

    Attributes:
        name: Pool id that variants name (e.g. ``h100``).
        device_name: CPU or GPU model (e.g. ``NVIDIA H100 80GB HBM3``).
        device: What a profile row's ``cores`` counts: ``cpu_core`` or ``gpu``.
        devices_per_node: Devices one node holds (cores per socket, GPUs per server).
        memory_gb: Memory of one device, GB (0: not checked, e.g. CPU cores).
        nodes: The pool's size: the most nodes the planner may power.
        always_on: Nodes powered whatever the allocation (a fixed pool: all of them).
        node_static_w: Power of a powered node beyond its devices (host, fans, PSU loss), W.
        device_idle_w: Power of every device on a powered node with nothing running, W.
        allocated_w: Power an allocated device draws beyond ``device_idle_w`` while it
            serves nothing (the calibrated CPU model's per-core term; 0 for GPUs), W.
        price_per_device_hour: Price of one device for an hour (dollars; 1 makes IPA's cost
            the device count).
        boot_s: Seconds from powering a node on until it serves.
        hold_s: Seconds a node with nothing allocated stays on before it powers off.
        load_gb_per_s: Bandwidth at which a new replica loads its weights (0: loading takes
            no time beyond the env's base cold start).
        sources: Field name -> id of the `Source` of that figure (every non-zero figure of
            `POOL_QUANTITIES` has one, but a price of 1: IPA's device count, a convention).
    """

    name: str
    device_name: str
    device: DeviceKind
    devices_per_node: int
    nodes: int
    always_on: int
    node_static_w: float
    device_idle_w: float
    allocated_w: float = 0.0
    price_per_device_hour: float = 1.0
    boot_s: float = 0.0
    hold_s: float = 0.0
    load_gb_per_s: float = 0.0
    memory_gb: float = 0.0
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def node_floor_w(self) -> float:
        """Power of one powered node with nothing running: static + every device's idle."""
        return self.node_static_w + self.devices_per_node * self.device_idle_w


@dataclass(frozen=True)
class Fleet:
    """The device pools a pipeline's replicas run on (one per device type).

    Attributes:
        pools: The pools, in file order; a variant names its pool (`ModelVariant.pool`).
    """

    pools: tuple[DevicePool, ...]
