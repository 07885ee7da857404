"""The simulators: analytic exactness, fidelity agreement, drops, cold starts, energy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from envs.backends.base import ServingSettings
from envs.backends.fluid import FluidBackend
from envs.backends.requests import RequestBackend
from envs.model import accuracy, perf
from envs.model.profiles import load_pipeline
from envs.model.spec import Decision, Pipeline, StageDecision
from tests.conftest import tiny_profile_doc

BACKENDS = (FluidBackend, RequestBackend)


def one_stage_deterministic(tmp_path: Path) -> Pipeline:
    """The first stage of the tiny pipeline with p99 == mean (deterministic service)."""
    doc = tiny_profile_doc()
    doc["stages"] = doc["stages"][:1]
    for v in doc["stages"][0]["variants"]:
        for row in v["rows"]:
            row[3] = row[2]
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_pipeline(path)


def decision(*stages: tuple[int, int, int]) -> Decision:
    return Decision(tuple(StageDecision(v, b, r, 1) for v, b, r in stages))


@pytest.mark.parametrize("batch", [1, 2, 4])
def test_request_p99_equals_ipa_formula_where_exact(tmp_path: Path, batch: int) -> None:
    """Evenly spaced arrivals, deterministic service, one stage with spare capacity: the
    first request of each batch waits (b - 1) / rate, then the batch latency."""
    pipeline = one_stage_deterministic(tmp_path)
    rate = 20.0
    d = decision((1, batch, 2))
    settings = ServingSettings(batch_timeout_ms=10_000.0)
    sim = RequestBackend(pipeline, settings, arrival_process="uniform")
    sim.reset(d, seed=0)
    stats = sim.run_interval(np.full(10, rate))
    assert stats.dropped == 0
    expected = perf.e2e_latency_ms(pipeline, d, rate)
    assert stats.p99_ms == pytest.approx(expected, rel=1e-6)
    assert stats.latencies_ms.max() == pytest.approx(expected, rel=1e-6)


def test_service_time_shape_matches_profile_mean_and_p99() -> None:
    shift, scale = perf.service_time_shape_ms(100.0, 130.0)
    samples = shift + scale * np.random.default_rng(0).standard_exponential(400_000)
    assert samples.mean() == pytest.approx(100.0, rel=0.01)
    assert np.percentile(samples, 99) == pytest.approx(130.0, rel=0.01)


def run(backend_cls, pipeline: Pipeline, d: Decision, rates: np.ndarray, intervals: int,
        settings: ServingSettings | None = None, seed: int = 0):
    sim = backend_cls(pipeline, settings or ServingSettings())
    sim.reset(d, seed=seed)
    return [sim.run_interval(rates) for _ in range(intervals)]


def test_fidelities_agree_on_steady_load(tiny_pipeline: Pipeline) -> None:
    """Stated tolerance: served and energy within 3 %, p99 within 25 %, no drops."""
    d = decision((1, 2, 3), (1, 2, 2))  # about half utilised at 20 req/s
    rates = np.full(10, 20.0)
    fluid = run(FluidBackend, tiny_pipeline, d, rates, 30)
    req = run(RequestBackend, tiny_pipeline, d, rates, 30)
    served_f = sum(s.served for s in fluid)
    served_r = sum(s.served for s in req)
    assert served_r == pytest.approx(served_f, rel=0.03)
    assert sum(s.dropped for s in fluid) == sum(s.dropped for s in req) == 0
    energy_f = sum(s.energy_j for s in fluid)
    energy_r = sum(s.energy_j for s in req)
    assert energy_r == pytest.approx(energy_f, rel=0.03)
    p99_f = np.median([s.p99_ms for s in fluid])
    p99_r = np.median([s.p99_ms for s in req])
    assert p99_r == pytest.approx(p99_f, rel=0.25)


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_overload_drops_and_counts_violations(tiny_pipeline: Pipeline, backend_cls) -> None:
    d = decision((2, 1, 1), (1, 1, 1))  # far too slow for 100 req/s
    runs = run(backend_cls, tiny_pipeline, d, np.full(10, 100.0), 3)
    stats = runs[-1]
    assert stats.dropped > 0
    assert stats.sla_violations >= stats.dropped
    assert stats.served < stats.arrived * 0.5
    # conservation: every arrival is served, dropped or still queued at some stage
    arrived = sum(s.arrived for s in runs)
    accounted = sum(s.served + s.dropped for s in runs) + sum(stats.stage_queue)
    assert accounted == pytest.approx(arrived, abs=3)


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_idle_pipeline_spends_exactly_idle_energy(tiny_pipeline: Pipeline, backend_cls) -> None:
    d = decision((0, 1, 3), (0, 1, 2))
    stats = run(backend_cls, tiny_pipeline, d, np.zeros(10), 1)[0]
    assert stats.arrived == stats.served == 0
    assert stats.cores == 5
    assert stats.energy_j == pytest.approx(tiny_pipeline.fleet.pools[0].allocated_w * 5 * 10)
    assert stats.energy_estimated


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_added_replicas_serve_after_cold_start(tiny_pipeline: Pipeline, backend_cls) -> None:
    small, big = decision((2, 1, 1), (0, 1, 4)), decision((2, 1, 4), (0, 1, 4))
    rates = np.full(10, 30.0)

    def scale_up(cold_start_s: float):
        sim = backend_cls(tiny_pipeline, ServingSettings(cold_start_s=cold_start_s,
                                                     drop_limit_s=100.0))
        sim.reset(small, seed=0)
        sim.run_interval(rates)
        sim.apply(big)
        return sim.run_interval(rates)

    instant, cold = scale_up(0.0), scale_up(5.0)
    assert cold.cores == pytest.approx(instant.cores)  # allocated from the decision on
    assert cold.p99_ms > instant.p99_ms
    assert cold.served < instant.served
    assert cold.stage_queue[0] > instant.stage_queue[0]


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_variant_switch_is_a_rolling_update(tiny_pipeline: Pipeline, backend_cls) -> None:
    settings = ServingSettings(cold_start_s=4.0)
    sim = backend_cls(tiny_pipeline, settings)
    sim.reset(decision((0, 1, 2), (0, 1, 2)), seed=0)
    sim.run_interval(np.full(10, 5.0))
    sim.apply(decision((1, 1, 2), (0, 1, 2)))
    stats = sim.run_interval(np.full(10, 5.0))
    # old and new replicas overlap for cold_start_s: 2 extra cores for 4 of 10 seconds
    assert stats.cores == pytest.approx(4 + 2 * 4 / 10)
    assert stats.dropped == 0
    assert stats.accuracy_rank_sum == pytest.approx(accuracy.decision_accuracy(
        tiny_pipeline, decision((1, 1, 2), (0, 1, 2))))


def test_request_backend_is_deterministic_per_seed(tiny_pipeline: Pipeline) -> None:
    d = decision((1, 2, 2), (1, 2, 2))
    a = run(RequestBackend, tiny_pipeline, d, np.full(10, 15.0), 3, seed=7)
    b = run(RequestBackend, tiny_pipeline, d, np.full(10, 15.0), 3, seed=7)
    assert [s.p99_ms for s in a] == [s.p99_ms for s in b]
    assert [s.energy_j for s in a] == [s.energy_j for s in b]


def test_fractional_rates_carry_into_the_next_second(tiny_pipeline: Pipeline) -> None:
    """0.4 req/s: seconds 0..9 get 0,0,1,0,1,0,0,1,0,1 requests (cumulative 0.4, 0.8, 1.2,
    ...): 4 per 10 s, and 0.35 req/s keeps 3.5 per interval over two intervals."""
    sim = RequestBackend(tiny_pipeline, ServingSettings())
    sim.reset(decision((0, 1, 1), (0, 1, 1)), seed=0)
    times = sim.arrivals(np.full(10, 0.4))
    assert np.floor(times).tolist() == [2.0, 4.0, 7.0, 9.0]
    sim.reset(decision((0, 1, 1), (0, 1, 1)), seed=0)
    counts = [sim.run_interval(np.full(10, 0.35)).arrived for _ in range(2)]
    assert counts == [3, 4]
