"""The energy floor of a window: a lower bound no policy that serves every request can
beat under the power model (`envs.model.power`), printed beside every energy ratio.

For ``requests`` arrivals over ``seconds`` (every request passes every stage):

* dynamic: each request at each stage costs at least the lowest dynamic energy per
  request of any allowed variant, core count and number of requests in a batch
  (`power.energy_per_request_j` of a full batch of every profiled size k, so the partial
  batches a timeout sends are included);
* idle: a stage needs at least one replica at all times (its smallest allocation) and at
  least ``requests / rate`` device-seconds, where ``rate`` is the most requests per
  device-second any allowed variant and core count serves in a batch of any profiled size
  (`perf.replica_throughput_rps`; partial batches included, so the bound holds for
  whatever the simulator sends);
* static: the nodes those devices need at every instant (elastic: at least the nodes of
  the smallest allocation of every stage; fixed: every node of the fleet), and at least
  the device-seconds divided by the devices per node.

It ignores the SLA, cold starts, the replica limit and switching, and it may pick a
different variant at each stage for energy than for throughput, so it is a bound, not an
achievable point. A policy that drops requests can go below it (its violations say so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from envs.model import perf, power
from envs.model.spec import Pipeline


@dataclass(frozen=True)
class EnergyFloor:
    """The floor's parts, in joules, and what they rest on.

    Attributes:
        static_j: Node static power x the fewest node-seconds.
        idle_j: Device idle power x the fewest device-seconds.
        dynamic_j: Requests x the lowest dynamic J per request, summed over stages.
        node_s: The fewest powered node-seconds.
        device_s: The fewest allocated device-seconds.
    """

    static_j: float
    idle_j: float
    dynamic_j: float
    node_s: float
    device_s: float

    @property
    def total_j(self) -> float:
        """Static + idle + dynamic, joules."""
        return self.static_j + self.idle_j + self.dynamic_j


def energy_floor(pipeline: Pipeline, requests: float, seconds: float,
                 allowed: Sequence[Sequence[int]] | None = None) -> EnergyFloor:
    """The energy floor of serving ``requests`` over ``seconds``.

    Args:
        pipeline: The loaded pipeline (its power model as the env uses it).
        requests: Requests arriving in the window (all served).
        seconds: The window's length.
        allowed: Per stage, the variant indices a policy may use (None: all), e.g. those
            meeting an accuracy level.

    Returns:
        The floor and its parts.
    """
    hw = pipeline.hardware
    dynamic_j = 0.0
    device_s = 0.0
    smallest_devices = 0
    for s, stage in enumerate(pipeline.stages):
        indices = range(len(stage.variants)) if allowed is None else allowed[s]
        variants = [stage.variants[v] for v in indices]
        configs = [(v, k, c) for v in variants for c in v.profile.core_counts
                   for k in range(1, v.profile.max_batch(c) + 1)]
        dynamic_j += requests * min(power.energy_per_request_j(v, k, c) for v, k, c in configs)
        per_device_s = max(perf.replica_throughput_rps(v, k, c) / c for v, k, c in configs)
        least = min(c for v in variants for c in v.profile.core_counts)
        smallest_devices += least
        device_s += max(seconds * least, requests / per_device_s)
    always_nodes = power.powered_nodes(hw, smallest_devices)
    node_s = max(seconds * always_nodes, device_s / hw.devices_per_node)
    return EnergyFloor(power.static_energy_j(hw, node_s), power.idle_energy_j(hw, device_s),
                       dynamic_j, node_s, device_s)


def over_floor(energy_j: float, floor: EnergyFloor) -> float:
    """A policy's energy as a multiple of the floor (nan for a zero floor).

    Args:
        energy_j: The policy's energy over the window.
        floor: The window's floor.
    """
    return energy_j / floor.total_j if floor.total_j > 0 else math.nan
