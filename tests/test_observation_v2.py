"""Observation version 2 (`envs.observation`): what waits at an interval's end (replicas
loading, nodes booting and powered, the oldest queued request's age), by hand in both
simulators; its layout; the two registered env versions; an agent of the other version
refused in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import yaml

import envs  # noqa: F401  (registers ipa/Pipeline-v1 and -v2)
from envs.backends.base import ServingSettings
from envs.backends.fluid import FluidBackend
from envs.backends.queue_age import fluid_oldest_wait_s
from envs.backends.requests import RequestBackend
from envs.config.errors import ConfigError, IpaEnergyError
from envs.env_config import EnvConfig
from envs.model import perf
from envs.model.profiles import load_pipeline
from envs.model.spec import Decision, Pipeline, StageDecision
from envs.observation import POOL_FIELDS, STAGE_FIELDS, STAGE_FIELDS_V2, ObsLayout
from tests.conftest import tiny_profile_doc, write_profile

ROOT = Path(__file__).resolve().parents[1]


def decision(first: int, second: int, batch: int = 1) -> Decision:
    """Stage 0 ``small`` x ``first``, stage 1 ``fast`` x ``second`` (1 core each)."""
    return Decision((StageDecision(0, batch, first, 1), StageDecision(0, batch, second, 1)))


def booting_pipeline(tmp_path: Path, boot_s: float, hold_s: float) -> Pipeline:
    """The tiny profile (4-core nodes, one always on) whose nodes boot and hold."""
    path = write_profile(tiny_profile_doc(), tmp_path / "boot.yaml")
    return load_pipeline(path, node_boot_s=boot_s, node_hold_s=hold_s)


def test_fluid_oldest_wait_by_hand() -> None:
    inflow = np.array([2.0, 2.0, 2.0])
    assert fluid_oldest_wait_s(inflow, 0.0, 7.0) == 0.0
    # The newest 3 requests: the last second's 2 and half of the second before.
    assert fluid_oldest_wait_s(inflow, 3.0, 7.0) == pytest.approx(1.5)
    assert fluid_oldest_wait_s(inflow, 2.0, 7.0) == pytest.approx(1.0)
    assert fluid_oldest_wait_s(np.array([4.0, 0.0, 0.0]), 1.0, 0.0) == pytest.approx(2.25)
    # More queued than arrived: older than the interval, at most the interval + before.
    assert fluid_oldest_wait_s(inflow, 10.0, 7.0) == pytest.approx(10.0)


@pytest.mark.parametrize("backend", [FluidBackend, RequestBackend])
def test_replicas_wait_for_a_boot_and_nodes_are_held(tmp_path: Path, backend: type) -> None:
    """Nodes of 4 cores, 1 always on, 30-s boots, 20-s hold, 2-s cold start. Going from 3 to
    6 cores at t=0 boots a second node (ready at 30); the 3 added replicas serve at
    30 + 2 = 32. Going back at t=40 holds the node over [40, 60)."""
    pipeline = booting_pipeline(tmp_path, 30.0, 20.0)
    sim = backend(pipeline, ServingSettings.for_pipeline(pipeline, cold_start_s=2.0))
    sim.reset(decision(2, 1))
    sim.apply(decision(4, 2))
    rates = np.full(10, 5.0)
    ends = []
    for _ in range(4):
        st = sim.run_interval(rates)
        ends.append((st.stage_loading, st.pool_booting, st.pool_powered))
    assert ends == [((2, 1), (1,), (2,)), ((2, 1), (1,), (2,)), ((2, 1), (0,), (2,)),
                    ((0, 0), (0,), (2,))]
    sim.apply(decision(2, 1))
    held = [sim.run_interval(rates).pool_powered for _ in range(3)]
    assert held == [(2,), (1,), (1,)]  # held over [40, 60): on at 50, off from 60


@pytest.mark.parametrize(("backend", "tolerance"), [(FluidBackend, 1e-9), (RequestBackend, 0.6)])
def test_oldest_queued_request_at_twice_the_capacity(tiny_pipeline: Pipeline, backend: type,
                                                      tolerance: float) -> None:
    """Arrivals at twice stage 0's capacity for 10 s on empty queues: FIFO has served the
    first 5 s of arrivals, so the oldest waiting request arrived at t = 5 s and has waited
    5 s (by hand); the fluid model says exactly that, the request simulator about it."""
    settings = ServingSettings.for_pipeline(tiny_pipeline, drop_limit_s=100.0)
    sim = backend(tiny_pipeline, settings, **({"arrival_process": "uniform"}
                                               if backend is RequestBackend else {}))
    choice = decision(1, 8)
    capacity = perf.stage_throughput_rps(tiny_pipeline.stages[0].variants[0], 1, 1, 1)
    sim.reset(choice, seed=0)
    st = sim.run_interval(np.full(10, 2.0 * capacity))
    assert st.stage_queue[0] == pytest.approx(10.0 * capacity, rel=0.1)
    assert st.stage_oldest_wait_s[0] == pytest.approx(5.0, abs=tolerance)
    assert st.stage_oldest_wait_s[1] < 0.5  # stage 1 keeps up


def test_layout_sizes_by_hand() -> None:
    v1 = ObsLayout(3, 2, 10.0, version=1, n_pools=2)
    v2 = ObsLayout(3, 2, 10.0, version=2, n_pools=2)
    assert v1.size == 3 + 2 + 10 * 2 + 4 == 29
    assert v2.size == 3 + 2 + 12 * 2 + 4 + 2 * 2 == 37
    assert STAGE_FIELDS_V2[len(STAGE_FIELDS):] == ("loading", "oldest_wait")
    assert POOL_FIELDS == ("booting", "powered")
    obs = np.zeros(v2.size)
    obs[3 + 2 + 12 + 11] = 0.5
    assert v2.stage(obs, 1)["oldest_wait"] == 0.5


def test_the_env_shows_loading_replicas_boots_and_queue_age(tmp_path: Path) -> None:
    """The same scenario through the env, version 2: index by the module's table."""
    path = write_profile(tiny_profile_doc(), tmp_path / "boot.yaml")
    env = gymnasium.make("ipa/Pipeline-v2", pipeline=str(path), workload="steady_high",
                         max_replicas=4, cold_start_s=2.0, node_boot_s=30.0,
                         node_hold_s=20.0).unwrapped
    obs, _ = env.reset(seed=0)
    layout = env.layout
    assert obs.shape == (layout.size,) and layout.version == 2
    before = env.decision
    assert before is not None and sum(c.replicas for c in before.stages) <= 4
    big = np.array([0, 0, 3, 0, 0, 3])  # 4 + 4 replicas of one core: two nodes, one boots
    obs, *_ = env.step(big)
    pool, nodes = layout.pool_start, env.pipeline.fleet.pools[0].nodes
    assert obs[pool] == pytest.approx(1 / nodes)  # booting
    assert obs[pool + 1] == pytest.approx(2 / nodes)  # powered
    added = [4 - c.replicas for c in before.stages]
    assert [layout.stage(obs, i)["loading"] for i in range(2)] == pytest.approx(
        [a / 4 for a in added])
    waits = env.last_stats.stage_oldest_wait_s
    assert [layout.stage(obs, i)["oldest_wait"] for i in range(2)] == pytest.approx(
        [w * 1e3 / env.pipeline.sla_ms for w in waits])
    v1 = gymnasium.make("ipa/Pipeline-v1", pipeline=str(path), workload="steady_high",
                        max_replicas=4).unwrapped
    assert v1.observation_space.shape == (layout.size - 2 * 2 - 2,)


def test_bad_observation_version_is_one_line() -> None:
    with pytest.raises(ConfigError, match="observation_version=3"):
        EnvConfig(observation_version=3)


def test_an_agent_of_the_other_version_is_refused(tmp_path: Path) -> None:
    """A committed agent (version 1) whose config is edited to claim version 2."""
    from agents.evaluation.compare import load_agents

    folder = tmp_path / "video_s0"
    shutil.copytree(ROOT / "results" / "agents" / "video_s0", folder)
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    assert cfg["env"]["observation_version"] == 1
    [(_, fits)] = load_agents([ROOT / "results" / "agents" / "video_s0"], "final",
                                  ("ppo",))
    good = gymnasium.make("ipa/Pipeline-v1", pipeline="video", workload="bursty",
                          rate_scale_rps=cfg["env"]["rate_scale_rps"]).unwrapped
    assert fits(good) is not None
    cfg["env"]["observation_version"] = 2
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    [(_, factory)] = load_agents([folder], "final", ("ppo",))
    env = gymnasium.make("ipa/Pipeline-v2", pipeline="video", workload="bursty").unwrapped
    with pytest.raises(IpaEnergyError, match="observation_version") as err:
        factory(env)
    assert "\n" not in str(err.value)
