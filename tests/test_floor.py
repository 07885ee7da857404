"""The energy floor: its parts by hand on a made-up profile, and no policy below it."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pytest

import envs  # noqa: F401  (registers ipa/Pipeline-v1)
from envs.model.floor import energy_floor, over_floor
from envs.model.profile_doc import hardware_entry, profile_document, variant_entry, write_profile
from envs.model.profiles import load_pipeline


def one_stage(tmp_path: Path, fleet: str = "elastic") -> Path:
    """One stage: variant a on 1 core (batch 1: 100 ms, 5 J; batch 2: 150 ms, 8 J) and
    variant b on 2 cores (batch 1: 50 ms, 12 J; batch 2: 80 ms, 20 J); 4 cores a node,
    100 W static, 10 W idle per core."""
    rows_a = [[1, 1, 100.0, 120.0, 5.0, "lat", "en"], [2, 1, 150.0, 180.0, 8.0, "lat", "en"]]
    rows_b = [[1, 2, 50.0, 60.0, 12.0, "lat", "en"], [2, 2, 80.0, 96.0, 20.0, "lat", "en"]]
    doc = profile_document(
        "floor", sla_ms=1000.0, batch_sizes=[1, 2],
        hardware=hardware_entry("test CPU", devices_per_node=4, node_static_w=100.0,
                                device_idle_w=10.0, fleet=fleet, fleet_nodes=2),
        sources={k: {"kind": "assumed", "description": "made up for tests"}
                 for k in ("static", "idle", "lat", "en")},
        stages=[{"name": "only", "variants": [
            variant_entry("a", 60.0, rows_a, metric="top-1 (%)", source="test", base_cores=1),
            variant_entry("b", 70.0, rows_b, metric="top-1 (%)", source="test", base_cores=2)]}])
    return write_profile(doc, tmp_path / f"floor_{fleet}.yaml")


def test_the_parts_by_hand(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(one_stage(tmp_path)))
    floor = energy_floor(pipeline, requests=4000, seconds=100)
    # dynamic: the cheapest request is a's batch of 2 (8 J / 2); throughput per core: a at
    # batch 2 serves 2 / 0.15 s = 13.33 req/s on 1 core (b at batch 2: 25 / 2 cores = 12.5)
    assert floor.dynamic_j == pytest.approx(4000 * 4.0)
    assert floor.device_s == pytest.approx(max(100 * 1, 4000 / (2 / 0.15)))  # 300
    assert floor.node_s == pytest.approx(100.0)  # one node always; 300 / 4 = 75 below it
    assert floor.static_j == pytest.approx(100.0 * 100)
    assert floor.idle_j == pytest.approx(10.0 * 300)
    assert floor.total_j == pytest.approx(29_000.0)
    assert over_floor(58_000.0, floor) == pytest.approx(2.0)
    only_b = energy_floor(pipeline, requests=4000, seconds=100, allowed=[[1]])
    assert only_b.dynamic_j == pytest.approx(4000 * 10.0)
    assert only_b.device_s == pytest.approx(max(100 * 2, 4000 / 12.5))  # 320
    fixed = energy_floor(load_pipeline(str(one_stage(tmp_path, "fixed"))), 4000, 100)
    assert fixed.node_s == pytest.approx(200.0)  # both nodes of the fixed fleet


@pytest.mark.parametrize("backend", ["fluid", "requests"])
def test_no_policy_goes_below_the_floor(tiny_profile_path: Path, backend: str) -> None:
    """Random decisions on the tiny pipeline: every 10-s interval's energy is at least the
    floor of the requests it served."""
    pipeline = load_pipeline(str(tiny_profile_path))
    env = gymnasium.make("ipa/Pipeline-v1", pipeline=str(tiny_profile_path), backend=backend,
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
