"""The node part of the power model: how many nodes of each device pool an allocation
powers and what powered nodes draw (host and idle power of every device on them, and each
allocated device's ``allocated_w``). `envs.model.power` adds the batches' dynamic energy;
`envs.backends.nodes` adds boot and hold times on top of `powered_nodes`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from envs.model.fleet import DevicePool, Fleet
from envs.model.perf import stage_cores
from envs.model.spec import Decision, ModelVariant, Pipeline

DevicesByPool = tuple[float, ...]
"""Allocated devices of each pool of the fleet, in `Fleet.pools` order."""


def powered_nodes(pool: DevicePool, devices: float) -> int:
    """Nodes of a pool powered while ``devices`` of it are allocated.

    Replicas are packed onto as few nodes as possible (a replica's devices divide a node's
    in every shipped profile), and at least ``always_on`` nodes stay powered. A decision
    beyond the pool's ``nodes`` powers what it needs (the planner never makes one).

    Args:
        pool: The device pool.
        devices: Devices of it allocated.

    Returns:
        Powered nodes.
    """
    needed = math.ceil(devices / pool.devices_per_node - 1e-9) if devices > 0 else 0
    return max(pool.always_on, needed)


def device_share_w(pool: DevicePool) -> float:
    """What one allocated device costs at the least: its share of a powered node's static
    and idle power (the node packed full), plus its ``allocated_w``.

    Args:
        pool: The device's pool.

    Returns:
        Watts.
    """
    return pool.node_floor_w / pool.devices_per_node + pool.allocated_w


def devices_by_pool(pipeline: Pipeline, decision: Decision) -> DevicesByPool:
    """Devices a decision allocates in each pool.

    Args:
        pipeline: The pipeline (each variant's pool).
        decision: One choice per stage.

    Returns:
        Devices per pool.
    """
    devices = [0.0] * len(pipeline.fleet.pools)
    for stage, choice in zip(pipeline.stages, decision.stages, strict=True):
        devices[stage.variants[choice.variant].pool] += stage_cores(choice)
    return tuple(devices)


def node_seconds(fleet: Fleet, segments: Sequence[tuple[float, DevicesByPool]]
                 ) -> tuple[float, ...]:
    """Powered node-seconds of each pool over ``segments`` of ``(seconds, devices)``.

    Args:
        fleet: The pools.
        segments: ``(seconds, allocated devices per pool)`` pieces.

    Returns:
        Node-seconds per pool.
    """
    return tuple(sum(seconds * powered_nodes(pool, devices[p]) for seconds, devices in segments)
                 for p, pool in enumerate(fleet.pools))


def static_energy_j(fleet: Fleet, node_s: Sequence[float]) -> float:
    """Static energy of powered nodes: each pool's static power per node x node-seconds.

    Args:
        fleet: The pools (their ``node_static_w``).
        node_s: Powered node-seconds per pool.

    Returns:
        Joules.
    """
    return sum(pool.node_static_w * n for pool, n in zip(fleet.pools, node_s, strict=True))


def idle_energy_j(fleet: Fleet, node_s: Sequence[float], device_s: Sequence[float]) -> float:
    """Idle energy: every device of a powered node at its idle power, plus each allocated
    device's ``allocated_w``.

    Args:
        fleet: The pools.
        node_s: Powered node-seconds per pool.
        device_s: Allocated device-seconds per pool.

    Returns:
        Joules.
    """
    return sum(pool.device_idle_w * pool.devices_per_node * n + pool.allocated_w * d
               for pool, n, d in zip(fleet.pools, node_s, device_s, strict=True))


@dataclass(frozen=True)
class EnergyParts:
    """An interval's energy split as the power model defines it, in joules.

    Attributes:
        static_j: Powered nodes x static power x seconds.
        idle_j: Devices of powered nodes x idle power x seconds, and allocated devices x
            their ``allocated_w`` x seconds.
        dynamic_j: Dynamic energy of the batches served.
    """

    static_j: float
    idle_j: float
    dynamic_j: float

    @property
    def total_j(self) -> float:
        """Static + idle + dynamic, joules."""
        return self.static_j + self.idle_j + self.dynamic_j


def energy_parts(
    fleet: Fleet, segments: Sequence[tuple[float, DevicesByPool]], dynamic_j: float
) -> EnergyParts:
    """The power model over one interval.

    Args:
        fleet: The pools.
        segments: ``(seconds, allocated devices per pool)`` pieces covering the interval.
        dynamic_j: Dynamic energy of the batches served in it.

    Returns:
        The interval's static, idle and dynamic energy.
    """
    node_s = node_seconds(fleet, segments)
    device_s = tuple(sum(seconds * devices[p] for seconds, devices in segments)
                     for p in range(len(fleet.pools)))
    return EnergyParts(static_energy_j(fleet, node_s), idle_energy_j(fleet, node_s, device_s),
                       dynamic_j)


def pool_replica_limit(pipeline: Pipeline, variant: ModelVariant, devices: int,
                       max_replicas: int) -> int:
    """The most replicas of ``devices`` each that one stage may hold: the replica limit,
    and no more than its pool holds (``devices_per_node x nodes``).

    Args:
        pipeline: The pipeline (the variant's pool).
        variant: The variant.
        devices: Devices of one replica.
        max_replicas: The replica limit per stage.

    Returns:
        The limit.
    """
    pool = pipeline.pool_of(variant)
    return min(max_replicas, pool.devices_per_node * pool.nodes // devices)


def boot_energy_j(pool: DevicePool) -> float:
    """Energy one node spends booting: its host and every device's idle power for the boot
    time (`envs.backends.nodes`: a booting node serves nothing).

    Args:
        pool: The node's pool.

    Returns:
        Joules.
    """
    return pool.node_floor_w * pool.boot_s
