"""The receding-horizon planner (MPC): it is IPA's ILP at H = 1, it keeps replicas when
reloading them costs more than holding them, and its policy drives a real env."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import pytest

import envs  # noqa: F401  (registers ipa/Pipeline-v2)
from agents.policies import IPAPolicy
from agents.policies.mpc import MPCPolicy
from envs.config.errors import ConfigError
from envs.model import accuracy, perf, power
from envs.model.profiles import load_pipeline
from envs.model.spec import Decision, Pipeline
from ipa_baseline import InfeasibleError, solve_ipa
from ipa_baseline.mpc import solve_mpc

INTERVAL_S = 10.0
NO_LOAD = {"cold_start_s": 0.0, "model_load_scale": 0.0}  # switching costs nothing
CASES = {  # shipped pipeline -> rates at which IPA's ILP is feasible
    "video": (0.0, 3.0, 12.5, 27.0, 41.0),
    "chat_to_image_h100": (0.2, 0.45, 0.9, 1.7, 2.6),
}


@pytest.fixture(scope="module")
def chat() -> Pipeline:
    return load_pipeline("chat_to_image_h100")


def objective(pipeline: Pipeline, decision: Decision, rate: float, *, alpha: float = 2.0,
              beta: float = 1.0, gamma: float = 1e-6, delta: float = 0.0) -> float:
    """IPA's one-interval objective of a decision, from envs.model only."""
    return (alpha * accuracy.decision_accuracy(pipeline, decision, "sum")
            - beta * perf.decision_cores(decision) - gamma * sum(c.batch for c in decision.stages)
            - delta * power.interval_energy_j(pipeline, decision, rate * INTERVAL_S, INTERVAL_S))


def load_j(pipeline: Pipeline, before: Decision, after: Decision, cold_start_s: float,
           load_scale: float = 1.0) -> float:
    """Loading energy of the replicas ``after`` adds, by hand: a GPU's share of its node
    (1000 W static + 8 x 75 W idle over 8 GPUs = 200 W) x GPUs x (cold start + weights /
    bandwidth) per new replica (same variant and cores: kept; a batch change is free)."""
    (pool,) = pipeline.fleet.pools
    share_w = (1000.0 + 8 * 75.0) / 8
    assert (pool.node_static_w, pool.device_idle_w, pool.devices_per_node) == (1000.0, 75.0, 8)
    total = 0.0
    for s, (old, new) in enumerate(zip(before.stages, after.stages, strict=True)):
        same = (old.variant, old.cores) == (new.variant, new.cores)
        added = new.replicas - old.replicas if same else new.replicas
        variant = pipeline.stages[s].variants[new.variant]
        load_s = cold_start_s + load_scale * variant.weights_gb / pool.load_gb_per_s
        total += max(added, 0) * share_w * new.cores * load_s
    return total


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("weights", [
    {"mode": "sum", "delta": 0.0},
    {"mode": "sum", "delta": 0.01, "alpha": 6.0},
    {"mode": "product", "delta": 0.002, "alpha": 8.0, "gamma": 0.01},
])
@pytest.mark.parametrize("replica_mode", ["minimal", "free"])
def test_horizon_one_is_ipa(name: str, weights: dict, replica_mode: str) -> None:
    pipeline = load_pipeline(name)
    current = None
    for rate in CASES[name]:
        ipa = solve_ipa(pipeline, rate, replica_mode=replica_mode, **weights)
        mpc = solve_mpc(pipeline, [rate], current, horizon=1, replica_mode=replica_mode,
                        **weights, **NO_LOAD)
        assert mpc.decision == ipa.decision
        assert mpc.plan == (ipa.decision,)
        assert mpc.objective == pytest.approx(ipa.objective, rel=1e-9, abs=1e-9)
        assert mpc.predicted_latency_ms[0] == pytest.approx(ipa.predicted_latency_ms)
        current = ipa.decision  # a deployment in force changes nothing without a switch cost


@pytest.mark.parametrize("name", sorted(CASES))
def test_free_switching_decouples_the_intervals(name: str) -> None:
    pipeline = load_pipeline(name)
    rates = CASES[name][1:4][::-1]
    current = solve_ipa(pipeline, rates[-1]).decision
    mpc = solve_mpc(pipeline, rates, current, horizon=3, delta=0.01, **NO_LOAD)
    myopic = [solve_ipa(pipeline, r, delta=0.01, replica_mode="free").decision for r in rates]
    assert mpc.decision == myopic[0]
    assert list(mpc.plan) == myopic
    assert mpc.objective == pytest.approx(
        sum(objective(pipeline, d, r, delta=0.01) for d, r in zip(myopic, rates, strict=True)))


def keep_case(chat: Pipeline) -> tuple[Decision, tuple[float, ...], list[Decision]]:
    """Deployed for 2.0 req/s; the forecast dips to 0.8 for one interval and comes back."""
    current = solve_ipa(chat, 2.0, delta=0.01).decision
    rates = (0.8, 2.0, 2.0)
    myopic = [solve_ipa(chat, r, delta=0.01, replica_mode="free").decision for r in rates]
    return current, rates, myopic


@pytest.mark.parametrize("cold_start_s", [0.0, 40.0])
def test_keeps_replicas_through_a_dip_when_reloading_costs_more(chat: Pipeline,
                                                                cold_start_s: float) -> None:
    current, rates, myopic = keep_case(chat)
    image = 1
    load_scale = 1.0 if cold_start_s > 0 else 0.0
    assert myopic[0].stages[image].replicas < current.stages[image].replicas  # IPA drops some
    assert myopic[1] == myopic[2] == current
    # Holding a replica through the dip: 1 GPU (beta); its idle power is paid either way (1
    # node powered, every GPU of it idling). Dropping it: reloading it next interval.
    keep = 1.0
    variant = chat.stages[image].variants[current.stages[image].variant]
    reload = 0.01 * 200.0 * (cold_start_s + load_scale * variant.weights_gb / 2.0)
    assert (reload > keep) == (cold_start_s > 0)  # 2 x (40 + 4.8) = 89.6 > 1; 0 without
    mpc = solve_mpc(chat, rates, current, horizon=3, delta=0.01, cold_start_s=cold_start_s,
                    model_load_scale=load_scale)

    def total(plan: list[Decision]) -> float:
        before = [current, *plan[:-1]]
        return sum(objective(chat, d, r, delta=0.01)
                   - 0.01 * load_j(chat, b, d, cold_start_s, load_scale)
                   for b, d, r in zip(before, plan, rates, strict=True))

    assert mpc.objective == pytest.approx(total(list(mpc.plan)))
    if cold_start_s > 0:
        kept = myopic[0].stages[image]
        assert mpc.decision.stages[image].replicas == current.stages[image].replicas
        assert mpc.decision.stages[image].variant == kept.variant
        assert mpc.added_replicas == (0, 0, 0)
        assert total(myopic) < mpc.objective - 0.9 * (reload - keep)
    else:
        assert mpc.decision == myopic[0]
        assert mpc.added_replicas[1] > 0
        assert mpc.switch_energy_j[1] == pytest.approx(load_j(chat, myopic[0], myopic[1], 0.0,
                                                              0.0))


def test_discount_and_switch_weight(chat: Pipeline) -> None:
    current, rates, myopic = keep_case(chat)
    # No load energy: switching is charged through switch_weight alone. Holding a replica
    # through the dip costs 1 GPU (its node is powered either way), reloading it the weight.
    heavy = solve_mpc(chat, rates, current, horizon=3, delta=0.01, switch_weight=20.0,
                      **NO_LOAD)
    assert heavy.decision.stages[1].replicas == current.stages[1].replicas
    light = solve_mpc(chat, rates, current, horizon=3, delta=0.01, switch_weight=0.5,
                      **NO_LOAD)
    assert light.decision == myopic[0]
    # Discounted, the reload one interval later costs 0.02 x 20 = 0.4 < 1: back to myopic.
    steep = solve_mpc(chat, rates, current, horizon=3, delta=0.01, switch_weight=20.0,
                      discount=0.02, **NO_LOAD)
    assert steep.decision == myopic[0]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"rates_rps": [1.0], "horizon": 0}, "horizon must be an integer >= 1"),
    ({"rates_rps": [1.0, 1.0], "horizon": 3}, "2 rates for horizon=3"),
    ({"rates_rps": [1.0, -0.5], "horizon": 2}, "forecast rate 1 is -0.5"),
    ({"rates_rps": [1.0], "horizon": 1, "discount": 0.0}, r"discount must be in \(0, 1\]"),
    ({"rates_rps": [1.0], "horizon": 1, "discount": 1.5}, r"discount must be in \(0, 1\]"),
    ({"rates_rps": [1.0], "horizon": 1, "switch_weight": -1.0}, "switch_weight"),
    ({"rates_rps": [1.0], "horizon": 1, "cold_start_s": -1.0}, "cold_start_s"),
])
def test_bad_input(chat: Pipeline, kwargs: dict, match: str) -> None:
    rates = kwargs.pop("rates_rps")
    with pytest.raises(ConfigError, match=match):
        solve_mpc(chat, rates, None, **kwargs)


def test_infeasible_interval_is_named(chat: Pipeline) -> None:
    with pytest.raises(InfeasibleError, match="MPC interval 1: throughput") as info:
        solve_mpc(chat, [1.0, 500.0], None, horizon=2)
    assert info.value.constraint == "throughput"


def make_env(profile: Path, workload: str = "bursty") -> gymnasium.Env:
    return gymnasium.make("ipa/Pipeline-v2", pipeline=str(profile), workload=workload,
                          backend="fluid")


def play(env: gymnasium.Env, policy: IPAPolicy, steps: int = 30) -> list[Decision]:
    obs, _ = env.reset(seed=3)
    decisions = []
    for _ in range(steps):
        action, state = policy.predict(obs)
        assert state is None
        assert env.action_space.contains(action)
        obs, _, terminated, truncated, info = env.step(action)
        decision = info["decision"]
        env.unwrapped.pipeline.validate(decision)
        decisions.append(decision)
        if terminated or truncated:
            break
    return decisions


def test_policy_runs_an_episode(tiny_profile_path: Path) -> None:
    env = make_env(tiny_profile_path)
    policy = MPCPolicy(env, delta=0.01, horizon=3, switch_weight=0.5)
    decisions = play(env, policy)
    assert len(decisions) == 30 == len(policy.decision_times_ms)
    assert policy.myopic == 0 and policy.fallbacks == 0
    assert policy.last_plan is not None and len(policy.last_plan.plan) == 3
    assert len(set(policy.last_plan.rates_rps)) == 1  # one forecast, held


def test_policy_at_horizon_one_plays_like_ipa(tiny_profile_path: Path) -> None:
    env = make_env(tiny_profile_path)
    mpc = play(env, MPCPolicy(env, horizon=1, replica_mode="minimal"))
    ipa = play(env, IPAPolicy(env))
    assert mpc == ipa


def test_policy_rejects_bad_settings(tiny_profile_path: Path) -> None:
    env = make_env(tiny_profile_path)
    with pytest.raises(ConfigError, match="horizon"):
        MPCPolicy(env, horizon=0)
    with pytest.raises(ConfigError, match="discount"):
        MPCPolicy(env, discount=2.0)
