"""IPA's ILP (arXiv 2308.12871) with HiGHS, its energy-aware variant, and its baselines.

May import: ``envs`` (every coefficient comes from `envs.perf`) and third-party packages.

* `solve_ipa`: one decision for one predicted rate (`IlpResult`).
* `IPAPolicy`, `FA2Policy`, `RIMPolicy`: stable-baselines3-style ``predict()`` over a
  `envs.pipeline_env.PipelineEnv`.
* `InfeasibleError`: no decision meets the constraints; the message names which.
* `IpaRules`, `preset("ipa")`: IPA's own rules as named options (`ipa_baseline.rules`).

See ``ipa_baseline/README.md`` for where this differs from IPA's paper and code.
"""

from ipa_baseline.candidates import InfeasibleError, Restriction
from ipa_baseline.ilp import IlpResult, solve_ipa
from ipa_baseline.policies import FA2Policy, IPAPolicy, RIMPolicy, fallback_decision
from ipa_baseline.rules import IpaRules, preset, write_ipa_profile

__all__ = [
    "FA2Policy",
    "IPAPolicy",
    "IlpResult",
    "InfeasibleError",
    "IpaRules",
    "RIMPolicy",
    "Restriction",
    "fallback_decision",
    "preset",
    "solve_ipa",
    "write_ipa_profile",
]
