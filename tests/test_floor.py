"""The energy floor: its parts by hand on a made-up profile, and no policy below it."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pytest

import envs  # noqa: F401  (registers ipa/Pipeline-v2)
from envs.model.floor import energy_floor, over_floor
from envs.model.pool_doc import pool_entry
from envs.model.profile_doc import profile_document, variant_entry, write_profile
from envs.model.profiles import load_pipeline

ROWS_A = [[1, 1, 100.0, 120.0, 5.0, "lat", "en"], [2, 1, 150.0, 180.0, 8.0, "lat", "en"]]
ROWS_B = [[1, 2, 50.0, 60.0, 12.0, "lat", "en"], [2, 2, 80.0, 96.0, 20.0, "lat", "en"]]
SOURCES = {k: {"kind": "assumed", "description": "made up for tests"}
           for k in ("static", "idle", "lat", "en")}
CPU = dict(devices_per_node=4, nodes=2, node_static_w=100.0, device_idle_w=10.0,
           sources={"node_static_w": "static", "device_idle_w": "idle"})


def one_stage(tmp_path: Path, fleet: str = "elastic") -> Path:
    """One stage: variant a on 1 core (batch 1: 100 ms, 5 J; batch 2: 150 ms, 8 J) and
    variant b on 2 cores (batch 1: 50 ms, 12 J; batch 2: 80 ms, 20 J); 4 cores a node,
    100 W static, 10 W idle per core: a powered node draws 140 W."""
    doc = profile_document(
        "floor", sla_ms=1000.0, batch_sizes=[1, 2],
        pools=[pool_entry("cpu", "test CPU", always_on=2 if fleet == "fixed" else 0, **CPU)],
        sources=SOURCES,
        stages=[{"name": "only", "variants": [
            variant_entry("a", 60.0, ROWS_A, metric="top-1 (%)", source="test", base_cores=1),
            variant_entry("b", 70.0, ROWS_B, metric="top-1 (%)", source="test", base_cores=2)]}])
    return write_profile(doc, tmp_path / f"floor_{fleet}.yaml")


def test_the_parts_by_hand(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(one_stage(tmp_path)))
    floor = energy_floor(pipeline, requests=4000, seconds=100)
    # dynamic: the cheapest request is a's batch of 2 (8 J / 2)
    assert floor.dynamic_j == pytest.approx(4000 * 4.0)
    # always: a's one core on one 140-W node for 100 s
    assert floor.always_j == pytest.approx(140.0 * 100)
    # throughput: a at batch 2 holds a core 0.15 s / 2 requests = 0.075 s per request, at
    # a core's share of its node, 140 / 4 = 35 W: 2.625 J (b: 2 x 0.08 / 2 x 35 = 2.8 J)
    assert floor.throughput_j == pytest.approx(4000 * 2.625)
    assert floor.total_j == pytest.approx(14_000.0 + 16_000.0)
    assert over_floor(60_000.0, floor) == pytest.approx(2.0)
    only_b = energy_floor(pipeline, requests=4000, seconds=100, allowed=[[1]])
    assert only_b.dynamic_j == pytest.approx(4000 * 10.0)
    assert only_b.throughput_j == pytest.approx(4000 * 2.8)
    assert only_b.total_j == pytest.approx(14_000.0 + 40_000.0)
    fixed = energy_floor(load_pipeline(str(one_stage(tmp_path, "fixed"))), 4000, 100)
    assert fixed.always_j == pytest.approx(2 * 140.0 * 100)  # both nodes of the fixed pool


def test_two_pools_by_hand(tmp_path: Path) -> None:
    """Stage one runs only a on the CPU pool (140-W nodes of 4), stage two only b on a
    pool of 2-device nodes at 300 W static + 2 x 50 W idle = 400 W (200 W per device)."""
    big = pool_entry("big", "test GPU", device="gpu", devices_per_node=2, nodes=3,
                     always_on=0, node_static_w=300.0, device_idle_w=50.0,
                     sources={"node_static_w": "static", "device_idle_w": "idle"})
    b_on_big = {**variant_entry("b", 70.0, ROWS_B, metric="top-1 (%)", source="test",
                                base_cores=2), "pool": "big"}
    a_on_cpu = {**variant_entry("a", 60.0, ROWS_A, metric="top-1 (%)", source="test",
                                base_cores=1), "pool": "cpu"}
    doc = profile_document(
        "floor2", sla_ms=1000.0, batch_sizes=[1, 2],
        pools=[pool_entry("cpu", "test CPU", always_on=0, **CPU), big], sources=SOURCES,
        stages=[{"name": "one", "variants": [a_on_cpu]}, {"name": "two", "variants": [b_on_big]}])
    floor = energy_floor(load_pipeline(write_profile(doc, tmp_path / "f2.yaml")), 4000, 100)
    assert floor.always_j == pytest.approx((140.0 + 400.0) * 100)  # both pools, a node each
    # a: 0.075 core-s x 35 W; b: 2 devices x 0.04 s per request x 200 W = 16 J
    assert floor.throughput_j == pytest.approx(4000 * (2.625 + 16.0))
    assert floor.dynamic_j == pytest.approx(4000 * (4.0 + 10.0))
    assert floor.total_j == pytest.approx(4000 * 18.625 + 56_000.0)


@pytest.mark.parametrize("backend", ["fluid", "requests"])
def test_no_policy_goes_below_the_floor(tiny_profile_path: Path, backend: str) -> None:
    """Random decisions on the tiny pipeline: every 10-s interval's energy is at least the
    floor of the requests it served."""
    pipeline = load_pipeline(str(tiny_profile_path))
    env = gymnasium.make("ipa/Pipeline-v2", pipeline=str(tiny_profile_path), backend=backend,
                         workload="bursty", **{"workload.window_s": 300})
    ratios = []
    for seed in range(3):
        env.reset(seed=seed)
        env.action_space.seed(seed)
        for _ in range(30):
            _, _, _, truncated, info = env.step(env.action_space.sample())
            stats = info["stats"]
            floor = energy_floor(pipeline, stats.served, stats.seconds)
            ratios.append(stats.energy_j / floor.total_j)
            if truncated:
                break
    assert min(ratios) >= 1.0, min(ratios)
    assert np.median(ratios) < 20  # a bound near the achieved energies, not a vacuous one
