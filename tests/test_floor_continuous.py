"""The energy floor of a continuously batched stage (`envs.model.floor`): its terms by hand
from the load tables (dynamic power above the tables' own idle power, whatever the pool's
idle power is edited to), no simulated policy below it with the H100's idle power edited to
145 W (fluid) or where a curve's power dips (request level), and statically batched stages
still charged from their profile rows."""

from __future__ import annotations

import numpy as np
import pytest

from envs.backends.base import IntervalStats, ServingSettings
from envs.backends.fluid import FluidBackend
from envs.backends.requests import RequestBackend
from envs.model.floor import energy_floor
from envs.model.profiles import load_pipeline
from envs.model.spec import Decision, ModelVariant, Pipeline, StageDecision

PROFILE = "llm_chat_h100_cb"
IDLE_145_W = 145.0 / 75.0  # the profile's H100 idle power, 75 W, edited to 145 W
SETTINGS = ServingSettings(interval_s=50, drop_limit_s=1e9, batch_timeout_ms=1e9)
SECONDS = 300


def fluid_least_j(variant: ModelVariant, caps: tuple[int, ...], idle_w: float) -> float:
    """The least dynamic J per request the fluid rule charges a variant, from its tables'
    raw arrays: at every table point, and at saturation with the load clamped to the top."""
    assert variant.continuous is not None
    least = np.inf
    for cap in caps:
        t = variant.continuous.table(cap)
        at_points = (t.power_w - idle_w) / (t.loads * t.saturated_rps)
        at_saturation = (t.power_w[-1] - idle_w) / t.saturated_rps
        least = min(least, float(at_points.min()), float(at_saturation))
    return least


def play(backend: FluidBackend | RequestBackend, rate_rps: float, seconds: int = SECONDS,
         seed: int = 0) -> tuple[float, list[IntervalStats]]:
    """Arrivals and every interval's stats of ``seconds`` at a constant rate (the fluid
    simulator) or Poisson counts at that rate (the request-level one)."""
    rng = np.random.default_rng(seed)
    arrived, stats = 0.0, []
    for _ in range(seconds // SETTINGS.interval_s):
        counts = (np.full(SETTINGS.interval_s, rate_rps) if isinstance(backend, FluidBackend)
                  else rng.poisson(rate_rps, SETTINGS.interval_s).astype(float))
        arrived += float(counts.sum())
        stats.append(backend.run_interval(counts))
    return arrived, stats


def one_decision(pipeline: Pipeline, v: int, cap: int, replicas: int) -> Decision:
    return Decision((StageDecision(v, cap, replicas, pipeline.stages[0].variants[v].base_cores),))


def test_the_terms_by_hand_from_one_table() -> None:
    """Llama-3.1-8B (one H100) at cap 16 with idle power x 2: its table's least J per
    request above the tables' 75 W (the idle it was simulated at; the 150 W in force moves
    the nodes' power, not the dynamic part), and a GPU's share of a powered node per
    request."""
    pipeline = load_pipeline(PROFILE, batch_sizes=(16,), idle_power_scale=2.0)
    (pool,) = pipeline.fleet.pools
    llama = pipeline.stages[0].variants[0]
    assert (llama.name, llama.base_cores, pool.device_idle_w) == ("Llama-3.1-8B-Instruct", 1,
                                                                  150.0)
    assert llama.continuous is not None and llama.continuous.idle_w == 75.0
    t = llama.continuous.table(16)
    floor = energy_floor(pipeline, requests=1000, seconds=100, allowed=[[0]])
    # the least is at saturation: 95 % load's power, the replica serving its saturated rate
    at_saturation = (t.power_w[-1] - 75.0) / t.saturated_rps
    assert at_saturation == pytest.approx((510.5 - 75.0) / 4.901, rel=1e-3)
    assert at_saturation < ((t.power_w - 75.0) / (t.loads * t.saturated_rps)).min()
    assert floor.dynamic_j == pytest.approx(1000 * at_saturation, rel=1e-12)
    # a fine scan of the fluid rule (power linear from (0, idle) through the points, the
    # load clamped to the top point) finds nothing cheaper
    rps = np.linspace(1e-3, 1.0, 4001) * t.saturated_rps
    load = np.minimum(rps / t.saturated_rps, t.loads[-1])
    watts = np.interp(load, np.concatenate([[0.0], t.loads]),
                      np.concatenate([[75.0], t.power_w]))
    assert ((watts - 75.0) / rps).min() >= at_saturation * (1 - 1e-12)
    # throughput: 1 GPU for 1 / saturated rate s; (1000 W host + 8 x 75 W idle) x 2 / 8 GPUs
    assert floor.throughput_j == pytest.approx(1000 * 400.0 / t.saturated_rps, rel=1e-3)
    assert floor.always_j == pytest.approx(3200.0 * 100)  # one 8-GPU node


@pytest.mark.parametrize(("scale", "v", "cap", "replicas", "load", "tight"), [
    (IDLE_145_W, 0, 96, 8, 1.0, True),  # 8 Llama-3.1-8B fill a node at saturation
    (IDLE_145_W, 0, 96, 8, 0.9, False),
    (IDLE_145_W, 3, 8, 1, 0.05, False),  # one Qwen3-30B at 5 %: dynamic above its least
    (1.0, 0, 96, 8, 1.0, True),
], ids=["145W-llama-full", "145W-llama-90pct", "145W-qwen-5pct", "75W-llama-full"])
def test_no_fluid_policy_goes_below_the_floor(scale: float, v: int, cap: int, replicas: int,
                                              load: float, tight: bool) -> None:
    """A fixed decision on the fluid simulator for 300 s: the floor of its requests (every
    variant allowed, or only the one it runs) is at most the energy it is charged; where
    the decision is the floor's cheapest configuration the two are equal."""
    pipeline = load_pipeline(PROFILE, idle_power_scale=scale)
    assert pipeline.fleet.pools[0].device_idle_w == pytest.approx(75.0 * scale)
    variant = pipeline.stages[0].variants[v]
    assert variant.continuous is not None
    fluid = FluidBackend(pipeline, SETTINGS)
    fluid.reset(one_decision(pipeline, v, cap, replicas))
    rate = load * replicas * variant.continuous.table(cap).saturated_rps
    arrived, stats = play(fluid, rate)
    energy_j = sum(s.energy_j for s in stats)
    assert sum(s.served for s in stats) == pytest.approx(arrived, abs=len(stats))
    every = energy_floor(pipeline, arrived, SECONDS)
    only = energy_floor(pipeline, arrived, SECONDS, allowed=[[v]])
    assert every.total_j <= only.total_j <= energy_j * (1 + 1e-9), only.total_j / energy_j
    if tight:
        assert only.total_j == pytest.approx(energy_j, rel=1e-6)
    # the dynamic part, by hand: the variant's least over its caps above the tables' idle
    idle = 75.0 * variant.base_cores
    assert only.dynamic_j == pytest.approx(
        arrived * fluid_least_j(variant, pipeline.stages[0].batch_sizes, idle), rel=1e-9)


def test_the_request_simulator_stays_above_the_floor_where_power_dips() -> None:
    """Llama-3.1-8B on a B200 draws less at cap 128 (449 W) than at 64 (617 W): run full at
    cap 128 by the request-level simulator, a request costs less than the fluid rule's
    least, and the floor (its curve's least J per token x the mean length) stays below."""
    pipeline = load_pipeline("llm_chat_h100_b200_tight")
    stage = pipeline.stages[0]
    b200 = stage.variants[1]
    assert b200.name == "Llama-3.1-8B-Instruct@b200" and b200.continuous is not None
    sim = RequestBackend(pipeline, SETTINGS)
    sim.reset(one_decision(pipeline, 1, 128, 1), seed=0)
    seconds = 1200  # the replica fills in the first minutes; then it runs 128 at once
    _, stats = play(sim, 1.1 * b200.continuous.table(128).saturated_rps, seconds)
    served = sum(s.served for s in stats)
    dynamic_j = sum(s.dynamic_j for s in stats)
    idle = pipeline.fleet.pools[1].device_idle_w * b200.base_cores
    assert dynamic_j / served < fluid_least_j(b200, stage.batch_sizes, idle)
    floor = energy_floor(pipeline, served, seconds, allowed=[[1]])
    assert floor.dynamic_j <= dynamic_j
    assert floor.total_j <= sum(s.energy_j for s in stats)


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_statically_batched_stages_keep_their_rows(scale: float) -> None:
    """The video pipeline (CPU, batches): each stage's least J per request and least node
    energy per request over the profile's rows, as before continuous stages had their own
    rule; the rows do not move with the idle power, a core's share of a node does."""
    pipeline = load_pipeline("video", idle_power_scale=scale)
    (pool,) = pipeline.fleet.pools
    share_w = ((pool.node_static_w + pool.devices_per_node * pool.device_idle_w)
               / pool.devices_per_node + pool.allocated_w)
    dynamic = throughput = 0.0
    for stage in pipeline.stages:
        rows = [r for v in stage.variants for r in v.profile.rows]
        dynamic += min(r.energy_per_batch_j / r.batch for r in rows)
        throughput += min(share_w * r.cores * r.latency_mean_ms / 1000.0 / r.batch
                          for r in rows)
    floor = energy_floor(pipeline, requests=5000, seconds=100)
    assert floor.dynamic_j == pytest.approx(5000 * dynamic, rel=1e-12)
    assert floor.throughput_j == pytest.approx(5000 * throughput, rel=1e-12)
    assert floor.total_j == pytest.approx(max(floor.always_j, floor.throughput_j)
                                          + floor.dynamic_j)


def test_a_mixed_pipeline_charges_each_stage_by_its_own_rule() -> None:
    """chat (continuous) then image (batches), idle 145 W: the chat stage's least from the
    tables above their 75 W per GPU, the image stage's from its rows."""
    pipeline = load_pipeline("chat_to_image_h100_cb", idle_power_scale=IDLE_145_W)
    chat, image = pipeline.stages
    chat_j = min(fluid_least_j(v, chat.batch_sizes, 75.0 * v.base_cores)
                 for v in chat.variants)
    image_j = min(r.energy_per_batch_j / r.batch for v in image.variants
                  for r in v.profile.rows)
    floor = energy_floor(pipeline, requests=2000, seconds=100)
    assert floor.dynamic_j == pytest.approx(2000 * (chat_j + image_j), rel=1e-9)


@pytest.mark.parametrize("backend", [FluidBackend, RequestBackend])
def test_dynamic_energy_does_not_move_with_the_idle_power(backend: type) -> None:
    """One Qwen3-30B at cap 8 and 5 % load (its table's power, 145.1 W, is near an idle
    edited to 145 W): the stage's dynamic energy is the same at 75 W and at 145 W idle (it
    is measured above the tables' 75 W), and never negative; the idle part scales."""
    parts = []
    for scale in (1.0, IDLE_145_W):
        pipeline = load_pipeline(PROFILE, idle_power_scale=scale)
        sim = backend(pipeline, SETTINGS)
        sim.reset(one_decision(pipeline, 3, 8, 1), **({"seed": 0} if backend is RequestBackend
                                                     else {}))
        rate = 0.05 * pipeline.stages[0].variants[3].continuous.table(8).saturated_rps
        _, stats = play(sim, rate)
        parts.append((sum(s.dynamic_j for s in stats), sum(s.idle_j for s in stats)))
    (dyn_75, idle_75), (dyn_145, idle_145) = parts
    assert dyn_75 > 0 and dyn_145 == pytest.approx(dyn_75, rel=1e-12)
    assert idle_145 == pytest.approx(idle_75 * IDLE_145_W, rel=1e-12)
