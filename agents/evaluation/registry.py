"""Every policy of an evaluation by name: one constructor each, shared by the evaluation and
by the tuning of the baselines' parameters on validation windows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents.evaluation.config import LEARNED, EvalConfig
from agents.policies.ilp_reward import RewardIlpPolicy
from agents.policies.ipa import FA2Policy, IPAPolicy, RIMPolicy, default_rim_replicas
from agents.policies.ipa_tuned import TunedIPAPolicy
from agents.policies.matched import MatchedEnergyPolicy
from agents.policies.mpc import MPCPolicy
from agents.policies.rules import HpaPolicy, RandomPolicy, RayServePolicy, StaticPolicy
from envs.pipeline_env import PipelineEnv
from ipa_baseline.rules import IpaRules

PolicyFactory = Callable[[PipelineEnv], Any]

__all__ = ["PolicyFactory", "ipa_family_kwargs", "policy_factories"]


def ipa_family_kwargs(config: EvalConfig) -> dict[str, Any]:
    """The keyword arguments every IPA-family policy of an evaluation shares.

    Args:
        config: The evaluation config (its ``ipa`` weights and infeasibility rule).

    Returns:
        ``mode``, ``alpha``, ``beta``, ``gamma`` and ``rules`` for `IPAPolicy` and kin.
    """
    w = config.ipa
    return {"mode": w.mode, "alpha": w.alpha, "beta": w.beta, "gamma": w.gamma,
            "rules": IpaRules(on_infeasible=w.on_infeasible)}


def policy_factories(config: EvalConfig, tuned: dict[str, float], peak_rps: float,
                     names: tuple[str, ...]) -> dict[str, PolicyFactory]:
    """Constructors of the non-learned policies in ``names``, for a given env.

    Args:
        config: The evaluation config.
        tuned: Tuned parameters by policy name (`agents.evaluation.compare.tune_baselines`);
            a policy absent from it takes its documented default.
        peak_rps: The training data's peak rate, which sizes the static baselines and RIM.
        names: Policy names (``ppo`` and ``residual`` are skipped: agents are loaded, not
            built; `agents.evaluation.compare.load_agents`).

    Returns:
        ``{name: factory}``; a factory builds the policy for one env.
    """
    w = config.ipa
    ipa_kwargs = ipa_family_kwargs(config)
    variants = config.baseline_variants

    def rim(env: PipelineEnv) -> RIMPolicy:
        fixed = default_rim_replicas(env.pipeline, peak_rps, env.config.max_replicas)
        return RIMPolicy(env, replicas=fixed, **ipa_kwargs)

    factories: dict[str, PolicyFactory] = {
        "ipa": lambda env: IPAPolicy(env, **ipa_kwargs),
        "ipa_tuned": lambda env: TunedIPAPolicy(env, tuned.get("ipa_tuned", 1.0),
                                                **ipa_kwargs),
        "ipa_energy": lambda env: IPAPolicy(env, **ipa_kwargs,
                                            delta=tuned.get("ipa_energy", w.delta),
                                            use_batch_timeout=True),
        "ipa_oracle": lambda env: IPAPolicy(env, **ipa_kwargs, forecast="oracle"),
        "ipa_energy_matched": lambda env: MatchedEnergyPolicy(env, **ipa_kwargs,
                                                              use_batch_timeout=True),
        "ilp_reward": lambda env: RewardIlpPolicy(env, rules=ipa_kwargs["rules"]),
        "fa2_low": lambda env: FA2Policy(env, "low", **ipa_kwargs),
        "fa2_high": lambda env: FA2Policy(env, "high", **ipa_kwargs),
        "rim": rim,
        "hpa": lambda env: HpaPolicy(env, tuned.get("hpa", 0.7), variants=variants),
        "ray_serve": lambda env: RayServePolicy(env, tuned.get("ray_serve", 2.0),
                                                variants=variants),
        "static_low": lambda env: StaticPolicy(env, "lowest", peak_rps=peak_rps),
        "static_high": lambda env: StaticPolicy(env, "highest", peak_rps=peak_rps),
        "random": lambda env: RandomPolicy(env, seed=0),
        # the energy-aware ILP (same tuned delta and batch timeout) planned 3 intervals ahead
        # (horizon assumed, not tuned: with one forecast held over it, longer changes little),
        # its cost per added replica tuned (mpc_switch_weights)
        "mpc": lambda env: MPCPolicy(env, **ipa_kwargs, delta=tuned.get("ipa_energy", w.delta),
                                     horizon=3, use_batch_timeout=True,
                                     switch_weight=tuned.get("mpc",
                                                             config.mpc_switch_weights[0])),
    }
    return {name: factories[name] for name in names if name not in LEARNED}
