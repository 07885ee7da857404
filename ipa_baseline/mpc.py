"""A receding-horizon planner (MPC): IPA's ILP over the next H intervals, first step applied.

IPA's ILP (`ipa_baseline.ilp.solve_ipa`) is myopic: one interval, one predicted rate, and
no memory of what is deployed. The MPC plans ``H`` intervals at once and applies only the
first interval's decision; the next interval it plans again from what is then deployed.

Inputs: the pipeline, one forecast rate per interval (``rates_rps``, ``H`` values), the
decision deployed now, the weights and modes of `solve_ipa` (alpha, beta, gamma, delta,
accuracy mode, replica mode, cores, restriction), the interval, the replica limit, and the
env's cold-start model (``cold_start_s``, ``model_load_scale``).

Variables and constraints, per interval ``t`` (`ipa_baseline.mpc_model`): exactly
`solve_ipa`'s model at rate ``rates_rps[t]``, built by the same functions (per candidate
``k = (variant, batch, cores)`` a binary ``x_{t,k}`` and an integer ``r_{t,k}``; one
candidate per stage; throughput >= ``rates_rps[t]``; latency sum <= SLA; in ``product``
mode the exact product term; with ``delta > 0`` the powered-nodes column). Its objective
``J_t`` is `solve_ipa`'s.

Coupling (switching cost): replicas of a group ``g = (stage, variant, cores)`` that exceed
the previous interval's must load their model before they serve (the env's rule,
`envs.backends.replicas`: a batch change is free; a new variant or core count is a rolling
update onto new replicas). Per interval and group, a column ``a_{t,g} >= r_{t,g} -
r_{t-1,g}``, ``a >= 0``, where ``r_{t,g}`` sums ``r_{t,k}`` over the group's candidates and
``r_{-1,g}`` is the deployed decision (a constant). Each added replica costs
``delta x E_g + switch_weight`` with ``E_g = share_w x cores x load_s``
(`envs.model.node_power.device_share_w`: its devices' share of their nodes) while it
loads, ``load_s`` being the env's cold start (`ServingSettings.cold_start_for`:
``cold_start_s + model_load_scale x weights_gb / load_gb_per_s``,
`envs.model.perf.model_load_s`)::

    max  sum_t discount^t (J_t - sum_g (delta E_g + switch_weight) a_{t,g})

Node boots (`ipa_baseline.mpc_model.add_boots`, with ``delta > 0`` and pools that boot): a
node interval ``t`` powers beyond interval ``t - 1``'s (beyond the nodes on now, given
``nodes_on``, for ``t = 0``) pays ``delta x node_floor_w x boot_s`` once, discounted, so a
boot can be amortised over the horizon; booting nodes are not modelled as unable to serve
(the simulators delay their replicas; the plan does not).

Only the first interval's decision is applied. With ``H = 1`` and no switching cost
(``delta = 0`` or zero load time, and ``switch_weight = 0``) the program is `solve_ipa`'s,
column for column, so the decision is the same (tested).

Simplifications: the charge is the new replicas' idle energy during the load; the env also
keeps a switched stage's old replicas allocated during it, and new replicas add no
throughput until loaded (the model counts them as serving for the whole interval). The
default ``replica_mode`` is ``free`` (replicas may exceed the fewest that reach the rate):
``minimal`` fixes them to that number, so no replica can be kept through a dip.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from envs.backends.base import ServingSettings
from envs.config.errors import ConfigError
from envs.model.spec import Decision, Pipeline
from ipa_baseline.candidates import AccuracyMode, CoresMode, ReplicasMode
from ipa_baseline.ilp import check_solve_args
from ipa_baseline.lp_builder import LpBuilder
from ipa_baseline.mpc_model import (
    IntervalBlock,
    add_boots,
    add_switching,
    added_replicas,
    append_interval,
    deployed,
    group_of,
    interval_candidates,
    switch_cost_j,
)
from ipa_baseline.product import ProductForm
from ipa_baseline.restriction import Restriction

__all__ = ["MpcResult", "check_mpc_args", "solve_mpc"]


@dataclass(frozen=True)
class MpcResult:
    """The planned decisions over the horizon; the first is the one to apply.

    Attributes:
        decision: The first interval's decision (apply it).
        plan: One decision per interval of the horizon (``plan[0] == decision``).
        rates_rps: The forecast rate of each interval.
        objective: The program's objective (discounted sum over the horizon).
        added_replicas: Per interval, the replicas that must load (relative to the
            interval before; the first relative to the deployed decision).
        switch_energy_j: Per interval, the loading energy of those replicas.
        predicted_latency_ms: Per interval, the latency row's value (as `IlpResult`).
        solve_ms: Wall time of the decision (building the program and solving it).
    """

    decision: Decision
    plan: tuple[Decision, ...]
    rates_rps: tuple[float, ...]
    objective: float
    added_replicas: tuple[int, ...]
    switch_energy_j: tuple[float, ...]
    predicted_latency_ms: tuple[float, ...]
    solve_ms: float


def check_mpc_args(horizon: int, discount: float, rates_rps: Sequence[float] | None = None,
                   switch_weight: float = 0.0) -> None:
    """Reject a bad horizon, discount, forecast or switching weight.

    Args:
        horizon: Intervals planned (>= 1).
        discount: Factor per interval, in (0, 1].
        rates_rps: The forecast, one finite rate >= 0 per interval (None: not checked).
        switch_weight: Objective cost per added replica (>= 0).

    Raises:
        ConfigError: One line naming the problem and the fix.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral) or horizon < 1:
        raise ConfigError(f"horizon must be an integer >= 1 (intervals planned ahead), got "
                          f"{horizon!r}; horizon=1 is IPA's one-interval ILP")
    if not (isinstance(discount, int | float) and 0 < discount <= 1):
        raise ConfigError(f"discount must be in (0, 1], got {discount!r}; 1 weighs every "
                          "interval of the horizon equally")
    if not (math.isfinite(switch_weight) and switch_weight >= 0):
        raise ConfigError(f"switch_weight must be finite and >= 0, got {switch_weight!r}")
    if rates_rps is None:
        return
    if len(rates_rps) != horizon:
        raise ConfigError(f"the forecast has {len(rates_rps)} rates for horizon={horizon}; "
                          "pass one rate per interval (a single forecast held: [rate] * horizon)")
    for t, rate in enumerate(rates_rps):
        if not (math.isfinite(rate) and rate >= 0):
            raise ConfigError(f"forecast rate {t} is {rate!r}; rates must be finite and >= 0 "
                              "(clip the forecast at 0)")


def solve_mpc(
    pipeline: Pipeline, rates_rps: Sequence[float], current: Decision | None, *, horizon: int,
    mode: AccuracyMode = "sum", alpha: float = 2.0, beta: float = 1.0, gamma: float = 1e-6,
    delta: float = 0.0, max_replicas: int = 8, interval_s: float = 10.0,
    timeout_ms: float = math.inf, cores: CoresMode = "base", replica_mode: ReplicasMode = "free",
    restriction: Restriction | None = None, product_form: ProductForm = "auto",
    discount: float = 1.0, switch_weight: float = 0.0, cold_start_s: float = 2.0,
    model_load_scale: float = 1.0, nodes_on: Sequence[int] | None = None,
) -> MpcResult:
    """Plan ``horizon`` intervals with IPA's ILP and a switching cost (module docstring).

    Args:
        pipeline: The profiled pipeline.
        rates_rps: One forecast rate per interval (``horizon`` values, >= 0).
        current: The decision deployed now (None: nothing; every replica must load).
        horizon: Intervals planned (>= 1).
        mode: Accuracy mode, as `solve_ipa`.
        alpha: Weight of accuracy.
        beta: Weight of allocated cores.
        gamma: Weight of the sum of batch sizes.
        delta: Weight of energy in joules (interval energy and loading energy).
        max_replicas: Most replicas per stage.
        interval_s: Adaptation interval (seconds).
        timeout_ms: Cap on the batch-fill delay.
        cores: ``base`` or ``profiled``, as `solve_ipa`.
        replica_mode: ``free`` (default: replicas may be kept above need) or ``minimal``.
        restriction: Fixed variants (FA2) or replicas (RIM).
        product_form: Linearisation of ``product`` mode.
        discount: Factor on interval ``t``'s objective: ``discount ** t``, in (0, 1].
        switch_weight: Objective cost per added replica, on top of its loading energy.
        cold_start_s: The env's base delay before a new replica serves.
        model_load_scale: The env's factor on the weights' load time.
        nodes_on: Nodes powered now per pool: a node the plan powers beyond them, or beyond
            the interval before, pays its boot (`ipa_baseline.mpc_model.add_boots`); None:
            the first interval's boots are free.

    Returns:
        The plan; apply ``decision``.

    Raises:
        ConfigError: A bad horizon, forecast, discount, weight or current decision.
        InfeasibleError: Some interval has no feasible decision (the message names it).
    """
    start = time.perf_counter()
    restriction = restriction or Restriction()
    weights = (alpha, beta, gamma, delta)
    rates = tuple(float(r) for r in rates_rps)
    check_mpc_args(horizon, discount, rates, switch_weight)
    check_solve_args(pipeline, rates[0], max_replicas, interval_s, weights, restriction)
    if not (math.isfinite(cold_start_s) and cold_start_s >= 0 and math.isfinite(
            model_load_scale) and model_load_scale >= 0):
        raise ConfigError(f"cold_start_s ({cold_start_s!r}) and model_load_scale "
                          f"({model_load_scale!r}) must be finite and >= 0")
    if current is not None and len(current.stages) != len(pipeline.stages):
        raise ConfigError(f"the current decision has {len(current.stages)} stages, the "
                          f"pipeline {len(pipeline.stages)}; pass the decision in force")
    scales = [discount ** t for t in range(horizon)]
    lp = LpBuilder()
    blocks: list[IntervalBlock] = []
    for t, rate in enumerate(rates):
        cands = interval_candidates(
            pipeline, rate, t, mode=mode, max_replicas=max_replicas, interval_s=interval_s,
            timeout_ms=timeout_ms, cores=cores, replica_mode=replica_mode,
            restriction=restriction)
        blocks.append(append_interval(lp, pipeline, cands, rate, weights=weights, mode=mode,
                                      interval_s=interval_s, product_form=product_form,
                                      scale=scales[t]))
    settings = ServingSettings(cold_start_s=cold_start_s, model_load_scale=model_load_scale)
    groups = {group_of(c) for b in blocks for c in b.cands}
    cost = {g: delta * switch_cost_j(pipeline, settings, g) + switch_weight for g in groups}
    add_switching(lp, blocks, deployed(current), cost, scales)
    add_boots(lp, pipeline, blocks, nodes_on, delta, scales)
    highs = lp.solve(f"for the MPC at rates {rates} although every interval has a "
                     "feasible candidate")
    solution = highs.getSolution()
    cols = np.asarray(solution.col_value)
    plan = tuple(_decision(block, cols) for block in blocks)
    added, switch_j = [], []
    for before, after in zip((current, *plan[:-1]), plan, strict=True):
        grew = added_replicas(before, after)
        added.append(sum(grew.values()))
        switch_j.append(sum(n * switch_cost_j(pipeline, settings, g) for g, n in grew.items()))
    return MpcResult(
        decision=plan[0], plan=plan, rates_rps=rates,
        objective=float(highs.getInfo().objective_function_value),
        added_replicas=tuple(added), switch_energy_j=tuple(switch_j),
        predicted_latency_ms=tuple(float(solution.row_value[b.latency_row]) for b in blocks),
        solve_ms=(time.perf_counter() - start) * 1e3,
    )


def _decision(block: IntervalBlock, cols: np.ndarray) -> Decision:
    """The decision of one interval's block in the solution."""
    chosen = [k for k in range(len(block.cands)) if cols[block.offset + 2 * k] > 0.5]
    return Decision(tuple(
        block.cands[k].choice(int(np.rint(cols[block.offset + 2 * k + 1])))
        for k in sorted(chosen, key=lambda k: block.cands[k].stage)))
