"""One latency model for a continuously batched LLM stage: the planner (the ILP's
candidates, `envs.model.continuous_perf`), the fluid simulator and the request-level
simulator agree on every variant and cap of the shipped continuous profile, at 25 %, 50 %
and 90 % of one replica's capacity (Poisson arrivals): p99 within 10 %, mean latency and
energy within 5 %."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from benchmarks.one_latency_model import LOADS, SETTINGS, one_variant, serve
from envs.backends.fluid import FluidBackend
from envs.backends.requests import RequestBackend
from envs.model import continuous_perf
from envs.model.profiles import load_pipeline
from envs.model.spec import Decision, StageDecision
from ipa_baseline import solve_ipa

PROFILE = "llm_chat_h100_cb"


_STAGE = load_pipeline(PROFILE).stages[0]
CASES = list(itertools.product(range(len(_STAGE.variants)), _STAGE.batch_sizes))


@pytest.mark.parametrize(("v", "cap"), CASES)
def test_planner_fluid_and_request_simulator_agree(v: int, cap: int) -> None:
    pipeline = one_variant(load_pipeline(PROFILE), v)
    variant = pipeline.stages[0].variants[0]
    decision = Decision((StageDecision(0, cap, 1, variant.base_cores),))
    saturated = continuous_perf.saturated_rps(variant, cap)
    for load in LOADS:
        rate = load * saturated
        requests = 300_000 if load > 0.5 else 20_000  # a 90 %-load mean needs many
        planned_p99 = continuous_perf.latency_ms(variant, cap, 1, rate)
        planned_w = continuous_perf.stage_dynamic_w(variant, cap, 1, rate)
        request_sim = RequestBackend(pipeline, SETTINGS)
        request_sim.reset(decision, seed=v)
        lat, req_w, req_mean = serve(request_sim, rate, requests, seed=v)
        fluid = FluidBackend(pipeline, SETTINGS)
        fluid.reset(decision)
        fluid_p99, fluid_w, fluid_mean = serve(fluid, rate, requests, seed=v)
        where = f"{variant.name} cap {cap} at {load:.0%}"
        assert np.percentile(lat, 99) == pytest.approx(planned_p99, rel=0.10), where
        assert fluid_p99.mean() == pytest.approx(planned_p99, rel=1e-9), where
        # power above idle: the planner's, the fluid's and the request simulator's
        assert req_w == pytest.approx(planned_w, rel=0.05), where
        assert fluid_w == pytest.approx(req_w, rel=0.05), where
        assert fluid_mean == pytest.approx(req_mean, rel=0.05), where


def test_the_ilp_plans_continuous_stages_by_replica_load() -> None:
    """Minimising devices (beta only), the ILP takes the fewest replicas any cap allows
    within the SLA; each replica's load stays below the tables' largest, and its
    predicted latency is the table's p99 at the per-replica load."""
    full = load_pipeline(PROFILE)
    pipeline = dataclasses.replace(one_variant(full, 0), sla_ms=full.sla_ms)
    stage = pipeline.stages[0]
    variant = stage.variants[0]
    most = max(continuous_perf.planned_rps(variant, cap) for cap in stage.batch_sizes)
    for rate in (0.3 * most, 1.5 * most, 3.2 * most):
        result = solve_ipa(pipeline, rate, max_replicas=8, interval_s=10.0, alpha=0.0,
                           beta=1.0, gamma=0.0)
        (choice,) = result.decision.stages
        by_hand = min(r for cap in stage.batch_sizes for r in range(1, 9)
                      if continuous_perf.latency_ms(variant, cap, r, rate) <= pipeline.sla_ms)
        assert choice.replicas == by_hand
        assert rate / choice.replicas < continuous_perf.planned_rps(variant, choice.batch)
        assert result.predicted_latency_ms == pytest.approx(
            continuous_perf.latency_ms(variant, choice.batch, choice.replicas, rate))
        assert result.predicted_latency_ms <= pipeline.sla_ms


@pytest.mark.parametrize("load", [0.5, 0.9])
def test_several_replicas_see_the_planned_load(load: float) -> None:
    """Random routing splits Poisson arrivals into independent Poisson streams: three
    replicas at ``load`` each have the planner's p99 for ``rate / 3``."""
    pipeline = one_variant(load_pipeline(PROFILE), 1)
    variant = pipeline.stages[0].variants[0]
    cap = 16
    rate = 3 * load * continuous_perf.saturated_rps(variant, cap)
    sim = RequestBackend(pipeline, SETTINGS)
    sim.reset(Decision((StageDecision(0, cap, 3, variant.base_cores),)), seed=4)
    lat, _, _ = serve(sim, rate, 150_000, seed=4)
    assert np.percentile(lat, 99) == pytest.approx(
        continuous_perf.latency_ms(variant, cap, 3, rate), rel=0.10)


def test_the_energy_floor_stays_a_lower_bound() -> None:
    """The floor (`envs.model.floor`) charges each request the lowest dynamic J/request of
    the rows (saturated caps). Under continuous batching a replica's dynamic J/request at
    load x is (P(x) - P(0)) / (x x saturated rate), linear power between table points, so
    its least value is at a table point: none is below the rows' least."""
    from envs.model import power

    pipeline = load_pipeline(PROFILE)
    stage = pipeline.stages[0]
    for v in stage.variants:
        idle = pipeline.fleet.pools[0].device_idle_w * v.base_cores
        rows_min = min(power.energy_per_request_j(v, b, v.base_cores) for b in stage.batch_sizes)
        for cap in stage.batch_sizes:
            t = v.continuous.table(cap)
            per_request = (t.power_w - idle) / (t.loads * t.saturated_rps)
            assert per_request.min() >= rows_min, (v.name, cap)
