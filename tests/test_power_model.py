"""The power model on a hand-built pipeline: every term against numbers computed by hand.

Pipeline: one stage, variants ``a`` and ``b`` at one core; service time deterministic
(mean = p99); dynamic energy per batch 2 / 3 / 4 J at batch 1 / 2 / 4 (batch 3 is
interpolated: 3.5 J). Nodes hold 2 devices, 50 W static each; 5 W idle per device.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from envs.backends.base import ServingSettings
from envs.backends.fluid import FluidBackend
from envs.backends.requests import RequestBackend
from envs.model import node_power, perf, power
from envs.model.pool_doc import pool_entry
from envs.model.profile_doc import row_columns
from envs.model.profiles import load_pipeline
from envs.model.spec import Decision, Pipeline, StageDecision

ROWS = [[1, 1, 100.0, 100.0, 2.0, "lat", "en"], [2, 1, 150.0, 150.0, 3.0, "lat", "en"],
        [4, 1, 200.0, 200.0, 4.0, "lat", "en"]]


def power_pipeline(tmp_path: Path, fleet: str, fleet_nodes: int = 4) -> Pipeline:
    doc = {
        "format_version": 3, "pipeline": "power", "sla_ms": 5000.0,
        "pools": [pool_entry("cpu", "hand CPU", devices_per_node=2, nodes=8,
                             always_on=fleet_nodes if fleet == "fixed" else 0,
                             node_static_w=50.0, device_idle_w=5.0,
                             sources={"node_static_w": "static", "device_idle_w": "idle"})],
        "sources": {"lat": {"kind": "cited", "description": "by hand"},
                    "en": {"kind": "measured", "description": "by hand"},
                    "static": {"kind": "assumed", "description": "by hand"},
                    "idle": {"kind": "assumed", "description": "by hand"}},
        "row_columns": row_columns(),
        "stages": [{"name": "only", "batch_sizes": [1, 2, 4], "variants": [
            {"name": v, "accuracy": acc, "accuracy_metric": "%", "accuracy_source": "hand",
             "base_cores": 1, "rows": ROWS} for v, acc in (("a", 50.0), ("b", 60.0))]}],
    }
    path = tmp_path / f"power_{fleet}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_pipeline(path)


def three_replicas(variant: int = 0, batch: int = 4) -> Decision:
    return Decision((StageDecision(variant, batch, 3, 1),))


def simulate(backend_cls, pipeline: Pipeline, rate: float, timeout_ms: float, intervals: int):
    settings = ServingSettings(interval_s=10, cold_start_s=2.0, drop_limit_s=60.0,
                           batch_timeout_ms=timeout_ms)
    kwargs = {"arrival_process": "uniform"} if backend_cls is RequestBackend else {}
    sim = backend_cls(pipeline, settings, **kwargs)
    sim.reset(three_replicas(), seed=0)
    return [sim.run_interval(np.full(10, rate if i == 0 else 0.0)) for i in range(intervals)]


BACKENDS = [FluidBackend, RequestBackend]


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_full_batches_elastic(tmp_path: Path, backend_cls) -> None:
    """4 req/s for 10 s, batch 4, no timeout: 10 batches x 4 J = 40 J dynamic; 3 devices
    on 2-device nodes = 2 powered nodes: 2 x 50 W x 10 s = 1000 J; their 4 devices idle,
    the unallocated one too: 4 x 5 W x 10 s = 200 J."""
    stats = simulate(backend_cls, power_pipeline(tmp_path, "elastic"), 4.0, 1e7, 1)[0]
    assert stats.dynamic_j == pytest.approx(40.0)
    assert stats.static_j == pytest.approx(1000.0)
    assert stats.idle_j == pytest.approx(200.0)
    assert stats.energy_j == pytest.approx(1240.0)


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_fixed_fleet_keeps_every_node_powered(tmp_path: Path, backend_cls) -> None:
    """Fixed fleet of 4 nodes: 4 x 50 W x 10 s = 2000 J static whatever is allocated, and
    all 8 devices idle: 8 x 5 W x 10 s = 400 J."""
    stats = simulate(backend_cls, power_pipeline(tmp_path, "fixed", 4), 4.0, 1e7, 1)[0]
    assert stats.static_j == pytest.approx(2000.0)
    assert stats.idle_j == pytest.approx(400.0)
    assert stats.energy_j == pytest.approx(2000.0 + 400.0 + 40.0)


def test_partial_batches_request_level(tmp_path: Path) -> None:
    """2 req/s evenly spaced (0.25 s, 0.75 s, ...), batch 4, 300 ms timeout: every batch
    leaves with one request (the next arrives 500 ms later): 20 batches x 2 J = 40 J."""
    runs = simulate(RequestBackend, power_pipeline(tmp_path, "elastic"), 2.0, 300.0, 2)
    assert sum(s.served for s in runs) == 20
    assert sum(s.dynamic_j for s in runs) == pytest.approx(40.0)
    # no request waits longer than the batching timeout: 300 ms + batch-1 service 100 ms
    latencies = np.concatenate([s.latencies_ms for s in runs])
    assert latencies.size == 20 and np.allclose(latencies, 400.0)


def test_partial_batches_fluid(tmp_path: Path) -> None:
    """Fluid model: batches hold 1 + 2 req/s x 0.3 s = 1.6 requests on average; energy
    of a batch of 1.6 = 2 + 0.6 x (3 - 2) = 2.6 J, i.e. 1.625 J per request x 20."""
    stats = simulate(FluidBackend, power_pipeline(tmp_path, "elastic"), 2.0, 300.0, 1)[0]
    assert stats.dynamic_j == pytest.approx(20 * 2.6 / 1.6)


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_rolling_update_powers_a_third_node(tmp_path: Path, backend_cls) -> None:
    """3 replicas of ``a`` switched to 3 of ``b`` at t = 10 s with a 2 s cold start: both
    allocated for 2 s (6 devices, 3 nodes), then 3 devices (2 nodes) for 8 s: static
    50 x (3 x 2 + 2 x 8) = 1100 J, idle 5 W x 2 devices per powered node x 22 node-s
    = 220 J (the fourth device of the second node idles too)."""
    pipeline = power_pipeline(tmp_path, "elastic")
    settings = ServingSettings(interval_s=10, cold_start_s=2.0, drop_limit_s=60.0,
                           batch_timeout_ms=300.0)
    sim = backend_cls(pipeline, settings)
    sim.reset(three_replicas(0), seed=0)
    sim.run_interval(np.zeros(10))
    sim.apply(three_replicas(1))
    stats = sim.run_interval(np.zeros(10))
    assert stats.static_j == pytest.approx(1100.0)
    assert stats.idle_j == pytest.approx(220.0)
    assert stats.dynamic_j == 0.0


def test_powered_nodes_by_hand(tmp_path: Path) -> None:
    (elastic,) = power_pipeline(tmp_path, "elastic").fleet.pools
    (fixed,) = power_pipeline(tmp_path, "fixed", 3).fleet.pools
    assert [node_power.powered_nodes(elastic, d) for d in (0, 1, 2, 3, 4, 5)] == [0, 1, 1, 2, 2, 3]
    assert [node_power.powered_nodes(fixed, d) for d in (0, 2, 6, 8)] == [3, 3, 3, 4]


def test_interval_prediction_matches_the_terms(tmp_path: Path) -> None:
    """What the ILP predicts for holding a decision: same three terms, by hand (3 devices
    on 2 nodes: 50 W x 2 x 10 s static, 5 W x 4 devices x 10 s idle)."""
    pipeline = power_pipeline(tmp_path, "elastic")
    parts = power.interval_energy_parts(pipeline, three_replicas(), 40.0, 10.0)
    assert (parts.static_j, parts.idle_j, parts.dynamic_j) == pytest.approx((1000, 200, 40))


def test_idle_power_scale_scales_static_and_idle(tmp_path: Path) -> None:
    path = tmp_path / "power_elastic.yaml"
    power_pipeline(tmp_path, "elastic")
    (half,) = load_pipeline(path, idle_power_scale=0.5).fleet.pools
    assert (half.node_static_w, half.device_idle_w) == (25.0, 2.5)
    (fixed,) = load_pipeline(path, fleet="fixed").fleet.pools
    assert fixed.always_on == fixed.nodes == 8


def two_stage_pipeline(tmp_path: Path, fleet: str) -> Pipeline:
    """The hand pipeline with a second, identical stage: both share the nodes."""
    path = tmp_path / f"power_{fleet}.yaml"
    power_pipeline(tmp_path, fleet, fleet_nodes=2)
    doc = yaml.safe_load(path.read_text())
    doc["stages"].append({**doc["stages"][0], "name": "second"})
    path.write_text(yaml.safe_dump(doc))
    return load_pipeline(path)


@pytest.mark.parametrize("fleet", ["elastic", "fixed"])
def test_energy_aware_ilp_counts_powered_nodes(tmp_path: Path, fleet: str) -> None:
    """The energy-aware ILP against a brute force written from the rows above (latency
    p99 + (b - 1) / rate, throughput b / mean, dynamic per request e_b / b, a powered
    node 50 W + 2 x 5 W idle, nodes = ceil(devices / 2), at least 2 in the fixed fleet)."""
    import itertools
    import math

    from ipa_baseline import solve_ipa

    pipeline = two_stage_pipeline(tmp_path, fleet)
    rows = {r[0]: r for r in ROWS}
    alpha, beta, gamma, delta, interval = 2.0, 0.1, 1e-6, 0.01, 10.0
    for rate in (3.0, 7.0, 12.0, 19.0, 26.0):
        best = -math.inf
        choices = [(v, b, n) for v in (0, 1) for b in (1, 2, 4) for n in range(1, 7)]
        for (v1, b1, n1), (v2, b2, n2) in itertools.product(choices, choices):
            if min(n1 * b1 * 1000 / rows[b1][2], n2 * b2 * 1000 / rows[b2][2]) < rate:
                continue
            latency = sum(rows[b][3] + (b - 1) * 1000 / rate for b in (b1, b2))
            if latency > pipeline.sla_ms:
                continue
            devices = n1 + n2
            nodes = max(math.ceil(devices / 2), 2 if fleet == "fixed" else 0)
            energy = (60.0 * nodes * interval
                      + rate * interval * (rows[b1][4] / b1 + rows[b2][4] / b2))
            value = alpha * (v1 + v2) - beta * devices - gamma * (b1 + b2) - delta * energy
            best = max(best, value)
        result = solve_ipa(pipeline, rate, alpha=alpha, beta=beta, gamma=gamma, delta=delta,
                           max_replicas=6, interval_s=interval, replica_mode="free")
        d = result.decision
        assert result.predicted_energy_j == pytest.approx(
            power.interval_energy_j(pipeline, d, rate * interval, interval))
        got = (alpha * sum(c.variant for c in d.stages) - beta * perf.decision_cores(d)
               - gamma * sum(c.batch for c in d.stages) - delta * result.predicted_energy_j)
        assert got == pytest.approx(best, abs=1e-6), rate


@pytest.mark.parametrize("backend_cls", BACKENDS)
@pytest.mark.parametrize("scale", [1.0, 0.0])
def test_model_load_time_by_weights_size(tmp_path: Path, backend_cls, scale: float) -> None:
    """Variant ``b`` holds 20 GB loaded at 2 GB/s: a switch at t = 10 s serves at
    10 + 2 (base cold start) + 10 (load) = 22 s, so both generations stay allocated for
    the whole next interval: 6 devices (3 nodes) for 10 s: static 1500 J, idle 300 J.
    With the load time scaled to 0 it is the 2-s rolling update: 1100 J and 220 J."""
    path = tmp_path / "power_elastic.yaml"
    power_pipeline(tmp_path, "elastic")
    doc = yaml.safe_load(path.read_text())
    doc["pools"][0]["load_gb_per_s"] = 2.0
    doc["pools"][0]["sources"]["load_gb_per_s"] = "static"
    doc["stages"][0]["variants"][1]["weights_gb"] = 20.0
    path.write_text(yaml.safe_dump(doc))
    pipeline = load_pipeline(path)
    assert perf.model_load_s(pipeline, pipeline.stages[0].variants[1]) == 10.0
    settings = ServingSettings(interval_s=10, cold_start_s=2.0, drop_limit_s=60.0,
                           batch_timeout_ms=300.0, model_load_scale=scale)
    sim = backend_cls(pipeline, settings)
    sim.reset(three_replicas(0), seed=0)
    sim.run_interval(np.zeros(10))
    sim.apply(three_replicas(1))
    stats = sim.run_interval(np.zeros(10))
    expected = (1500.0, 300.0) if scale else (1100.0, 220.0)
    assert (stats.static_j, stats.idle_j) == pytest.approx(expected)


def test_live_cpu_time_estimate_charges_static_idle_and_busy_power() -> None:
    from envs.live.energy import CpuTimeEnergy
    from envs.model.fleet import DevicePool, Fleet

    pool = DevicePool(name="cpu", device_name="cpu", device="cpu_core", devices_per_node=12,
                      nodes=4, always_on=0, node_static_w=80.0, device_idle_w=0.0,
                      allocated_w=1.0)
    # 10 s with 14 cores allocated on average: 2 nodes powered; 30 CPU-seconds busy
    parts = CpuTimeEnergy(Fleet((pool,)), dynamic_w_per_core=3.0).energy_parts(10.0, 140.0,
                                                                               30.0)
    assert (parts.static_j, parts.idle_j, parts.dynamic_j) == pytest.approx(
        (80.0 * 2 * 10, 1.0 * 140, 3.0 * 30))
    assert parts.total_j == pytest.approx(1600 + 140 + 90)
