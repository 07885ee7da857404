"""The energy floor of a window: a lower bound no policy that serves every request can
beat under the power model (`envs.model.power`), printed beside every energy ratio.

For ``requests`` arrivals over ``seconds`` (every request passes every stage; a
continuously batched stage's per-request terms are taken as the next paragraph says):

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

A continuously batched stage (`continuous_perf.is_continuous`) is charged by both
simulators from its load tables and curve, its dynamic power above their ``idle`` (the
block's ``idle_w``, `envs.model.continuous.ContinuousServing`, which an edited pool's idle
power does not move), not from its profile rows, so its two terms come from those, per
allowed variant and cap (`continuous_per_request`), each the smaller of the fluid rule and
the request-level rule:

* fluid (`continuous_perf.replica_second`, which `FluidBackend._continuous_second` and
  `envs.batched.continuous` apply): a replica serving ``x`` req/s (at most ``sat``, its
  saturated rate: the most it serves, so a request holds its devices ``1 / sat`` s at the
  least) is charged ``P(L) - idle`` at the load ``L = min(x / sat, L_top)``, ``P`` linear
  from ``(0, idle)`` through the table's points, so a request costs ``(P(L) - idle) / x``.
  Between two points (or from 0 to the first) ``P - idle = a + b L``, so below ``L_top``
  it costs ``(a / L + b) / sat``, monotone on each piece and least at one of its ends (on
  the first piece ``a = 0``: constant); above, ``(P(L_top) - idle) / x`` for ``x`` from
  ``L_top sat`` to ``sat``, least at an end. So the least is that rule's value at the
  table's points and at ``x = sat``, whatever the signs;
* request-level (`envs.backends.continuous_kernel`): with ``n`` running a replica draws
  ``P(n) - idle`` and makes ``R(n)`` tokens/s (`envs.model.llm_curve`; at ``n = 0`` it
  draws nothing above idle), so a token costs at least the least ``(P(n) - idle) / R(n)``
  over ``n`` from 1 to the largest running limit of the stage's caps, and a replica makes
  at most the largest ``R(n)`` tokens/s; a request is the variant's mean output length.
  Where the measured power dips at a large cap (Llama-3.1-8B on a B200 at cap 128) this
  rule is the smaller.

It ignores the SLA, cold starts, boots, the replica limit and switching, and it may pick a
different variant at each stage for energy than for throughput, so it is a bound, not an
achievable point. A policy that drops requests can go below it (its violations say so), and
so can one by the energy of the requests still in flight when the window ends (never charged;
measured: 0.2 % on llm_chat_h100's steady_high window). On a continuously batched stage the
request-level rule holds for the mean output length: a window whose served requests' drawn
lengths average less can go below by that shortfall.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from envs.model import continuous_perf, node_power, perf, power
from envs.model.fleet import DevicePool
from envs.model.spec import ModelVariant, Pipeline, Stage


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
        if continuous_perf.is_continuous(stage):
            dynamic, device_j = continuous_per_request(pipeline, stage, variants)
        else:
            configs = [(v, k, c) for v in variants for c in v.profile.core_counts
                       for k in range(1, v.profile.max_batch(c) + 1)]
            dynamic = min(power.energy_per_request_j(v, k, c) for v, k, c in configs)
            device_j = min(node_power.device_share_w(pools[v.pool]) * c
                           / perf.replica_throughput_rps(v, k, c) for v, k, c in configs)
        dynamic_j += requests * dynamic
        throughput_j += requests * device_j
        least: dict[int, int] = {}
        for v in variants:
            least[v.pool] = min(least.get(v.pool, 10**9), min(v.profile.core_counts))
        smallest.append(least)
    return EnergyFloor(seconds * always_power_w(pools, smallest), throughput_j, dynamic_j)


def continuous_per_request(pipeline: Pipeline, stage: Stage, variants: Sequence[ModelVariant]
                           ) -> tuple[float, float]:
    """A continuously batched stage's least dynamic energy per request and least node
    energy of the device-seconds a request occupies, over the allowed variants and the
    stage's caps (module docstring: the fluid and the request-level rules, the smaller of
    the two).

    Args:
        pipeline: The pipeline (each variant's pool and its idle power).
        stage: The stage (its caps, ``batch_sizes``).
        variants: The allowed variants.

    Returns:
        ``(joules, joules)`` per request: dynamic, and device-seconds x
        `node_power.device_share_w`.
    """
    dynamic = device_j = math.inf
    for v in variants:
        serving = v.continuous
        assert serving is not None  # is_continuous
        idle = serving.idle_w
        share_w = node_power.device_share_w(pipeline.pool_of(v)) * min(v.profile.core_counts)
        for cap in stage.batch_sizes:
            t = continuous_perf.table(v, cap)
            for rps in (*(t.loads * t.saturated_rps).tolist(), t.saturated_rps):
                watts = continuous_perf.replica_second(v, cap, rps)[2]
                dynamic = min(dynamic, float(watts) / rps)
            device_j = min(device_j, share_w / t.saturated_rps)
        curve = serving.curve()
        per_request_rate, power_w = curve.rate_table(
            max(curve.running_limit(cap) for cap in stage.batch_sizes))
        tokens_s = per_request_rate[1:] * np.arange(1, per_request_rate.shape[0])
        tokens = serving.mean_output_tokens
        dynamic = min(dynamic, float(((power_w[1:] - idle) / tokens_s).min()) * tokens)
        device_j = min(device_j, share_w * tokens / float(tokens_s.max()))
    return dynamic, device_j


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
