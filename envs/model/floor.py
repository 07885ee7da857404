"""The energy floor of a window: a lower bound no policy that serves every request can
beat under the power model (`envs.model.power`), printed beside every energy ratio.

For ``requests`` arrivals over ``seconds`` (every request passes every stage):

* dynamic: each request at each stage costs at least the lowest dynamic energy per
  request of any allowed variant (on any pool), core count and number of requests in a
  batch (`power.energy_per_request_j` of a full batch of every profiled size k, so the
  partial batches a timeout sends are included);
* nodes: the powered nodes' static and idle power and the allocated devices' power is at
  least the larger of
  - *always*: at every instant each stage holds a replica, so some set of pools that
    offers every stage is powered: at least the cheapest such set, one node of each pool
    in it (for a single pool, the stages' smallest allowed allocations packed onto whole
    nodes), plus the ``always_on`` nodes of every pool;
  - *throughput*: each request at each stage occupies at least ``cores / rate`` device-
    seconds of some allowed configuration, charged at its pool's power per device (a
    powered node's static and idle power over its devices, plus ``allocated_w``), the
    cheapest configuration taken per stage (`perf.replica_throughput_rps`; partial batches
    included).

It ignores the SLA, cold starts, boots, the replica limit and switching, and it may pick a
different variant at each stage for energy than for throughput, so it is a bound, not an
achievable point. A policy that drops requests can go below it (its violations say so), and
so can one by the energy of the requests still in flight when the window ends (never charged;
measured: 0.2 % on llm_chat_h100's steady_high window).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from envs.model import node_power, perf, power
from envs.model.fleet import DevicePool
from envs.model.spec import Pipeline


@dataclass(frozen=True)
class EnergyFloor:
    """The floor's parts, in joules.

    Attributes:
        always_j: Seconds x the least power that keeps a replica of every stage powered.
        throughput_j: The least node power the requests' device-seconds are charged.
        dynamic_j: Requests x the lowest dynamic J per request, summed over stages.
    """

    always_j: float
    throughput_j: float
    dynamic_j: float

    @property
    def node_j(self) -> float:
        """Static and idle energy of powered nodes and allocated devices: the larger bound."""
        return max(self.always_j, self.throughput_j)

    @property
    def total_j(self) -> float:
        """Nodes + dynamic, joules."""
        return self.node_j + self.dynamic_j


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
    pools = pipeline.fleet.pools
    dynamic_j = throughput_j = 0.0
    smallest: list[dict[int, int]] = []
    for s, stage in enumerate(pipeline.stages):
        indices = range(len(stage.variants)) if allowed is None else allowed[s]
        variants = [stage.variants[v] for v in indices]
        configs = [(v, k, c) for v in variants for c in v.profile.core_counts
                   for k in range(1, v.profile.max_batch(c) + 1)]
        dynamic_j += requests * min(power.energy_per_request_j(v, k, c) for v, k, c in configs)
        throughput_j += requests * min(
            node_power.device_share_w(pools[v.pool]) * c / perf.replica_throughput_rps(v, k, c)
            for v, k, c in configs)
        least: dict[int, int] = {}
        for v in variants:
            least[v.pool] = min(least.get(v.pool, 10**9), min(v.profile.core_counts))
        smallest.append(least)
    return EnergyFloor(seconds * always_power_w(pools, smallest), throughput_j, dynamic_j)


def always_power_w(pools: Sequence[DevicePool], smallest: Sequence[dict[int, int]]) -> float:
    """The least power that keeps one replica of every stage powered (module docstring).

    Args:
        pools: The fleet's pools.
        smallest: Per stage, pool index -> its smallest allowed replica's devices there.

    Returns:
        Watts.
    """
    best = math.inf
    for mask in range(1, 2 ** len(pools)):
        used = [p for p in range(len(pools)) if mask >> p & 1]
        if not all(any(p in least for p in used) for least in smallest):
            continue
        if len(used) == 1:
            pool = pools[used[0]]
            devices = sum(least[used[0]] for least in smallest)
            nodes = max(pool.always_on, math.ceil(devices / pool.devices_per_node - 1e-9))
            watts = nodes * pool.node_floor_w + devices * pool.allocated_w
        else:
            watts = sum(max(1, pools[p].always_on) * pools[p].node_floor_w for p in used)
        watts += sum(pool.always_on * pool.node_floor_w for p, pool in enumerate(pools)
                     if p not in used)
        best = min(best, watts)
    return best


def over_floor(energy_j: float, floor: EnergyFloor) -> float:
    """A policy's energy as a multiple of the floor (nan for a zero floor).

    Args:
        energy_j: The policy's energy over the window.
        floor: The window's floor.
    """
    return energy_j / floor.total_j if floor.total_j > 0 else math.nan
