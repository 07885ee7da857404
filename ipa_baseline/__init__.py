"""IPA's ILP (arXiv 2308.12871) with HiGHS, its energy-aware variant, and its baselines.

May import: ``envs`` (every coefficient comes from `envs.model.perf`, `envs.model.power` and
`envs.model.accuracy`) and third-party packages.

* `solve_ipa`: one decision for one predicted rate (`IlpResult`).
* `InfeasibleError` (`ipa_baseline.errors`): no decision meets the constraints; the message
  names which. `fallback_decision`: the documented decision when it happens.
* `IpaRules`, `preset("ipa")`: IPA's own rules as named options (`ipa_baseline.rules`).

The policies that drive the env with this ILP (IPA, IPA + energy, FA2, RIM, ipa_tuned)
live with every other policy in `agents.policies`.

See ``ipa_baseline/README.md`` for where this differs from IPA's paper and code.
"""

from ipa_baseline.errors import InfeasibleError
from ipa_baseline.fallback import fallback_decision
from ipa_baseline.ilp import IlpResult, solve_ipa
from ipa_baseline.ipa_world import write_ipa_profile
from ipa_baseline.restriction import Restriction
from ipa_baseline.rules import IpaRules, preset

__all__ = [
    "IlpResult",
    "InfeasibleError",
    "IpaRules",
    "Restriction",
    "fallback_decision",
    "preset",
    "solve_ipa",
    "write_ipa_profile",
]
