"""Every autoscaling policy, in one home, behind one protocol.

* `Policy` (`agents.policies.protocol`): stable-baselines3's ``predict(observation, state,
  episode_start, deterministic)``; ``episode_start`` marks an episode's first step.
* `DecidingPolicy`: the base of the non-learned policies (``decide`` a `Decision`, ``reset``
  per episode).
* Rules (`agents.policies.rules`): `HpaPolicy`, `RayServePolicy`, `StaticPolicy`,
  `RandomPolicy`.
* IPA (`agents.policies.ipa`, over `ipa_baseline.solve_ipa`): `IPAPolicy` (``delta > 0``:
  IPA + energy; ``forecast="oracle"``: the look-ahead control), `FA2Policy`, `RIMPolicy`;
  `TunedIPAPolicy` (`agents.policies.ipa_tuned`); `RewardIlpPolicy`
  (`agents.policies.ilp_reward`: the ILP on the agent's own reward).
* Learned (`agents.policies.trained`): `load_ppo_policy` -> `NormalizedPolicy`.
* Residual RL on the planner (`agents.policies.residual_env`): `ResidualPlannerEnv`, an env
  wrapper whose action adjusts the ILP's inputs (planned rate, SLA margin, kept variants);
  `agents.policies.residual_agent`: the training env of ``agent.residual`` and
  `ResidualAgentPolicy`, which plays a trained residual agent on a bare env.
* By name: `agents.evaluation.registry.policy_factories` (in the evaluation's room, since it
  builds them from the evaluation config).

May import: ``agents.runs``.
"""

from agents.policies.ilp_reward import RewardIlpPolicy
from agents.policies.ipa import FA2Policy, IPAPolicy, RIMPolicy, default_rim_replicas
from agents.policies.ipa_tuned import TunedIPAPolicy
from agents.policies.protocol import DecidingPolicy, Policy
from agents.policies.residual_agent import ResidualAgentPolicy
from agents.policies.residual_env import ResidualPlannerEnv
from agents.policies.rules import HpaPolicy, RandomPolicy, RayServePolicy, StaticPolicy
from agents.policies.trained import NormalizedPolicy, find_model, load_ppo_policy

__all__ = [
    "DecidingPolicy",
    "FA2Policy",
    "HpaPolicy",
    "IPAPolicy",
    "NormalizedPolicy",
    "Policy",
    "RIMPolicy",
    "RewardIlpPolicy",
    "RandomPolicy",
    "RayServePolicy",
    "ResidualAgentPolicy",
    "ResidualPlannerEnv",
    "StaticPolicy",
    "TunedIPAPolicy",
    "default_rim_replicas",
    "find_model",
    "load_ppo_policy",
]
