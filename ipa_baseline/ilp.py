"""IPA's integer program (arXiv 2308.12871, section 4), solved with HiGHS.

Variables, per stage ``s`` and candidate ``k = (variant, batch, cores)`` of that stage
(`ipa_baseline.candidates`): a binary ``x_k`` (the stage runs ``k``) and an integer
``r_k`` (its replicas; 0 unless chosen). Constraints::

    sum_k x_k = 1                                   per stage: one variant, one batch
    lo_k x_k <= r_k <= hi_k x_k                     replicas only for the chosen candidate
    sum_k tp_k r_k >= rate                          per stage: throughput
    sum_s sum_k lat_k x_k <= SLA                    end to end: p99 batch latency + fill

Objective (maximised)::

    alpha * A(x) - beta * sum_k price_k cores_k r_k - gamma * sum_k batch_k x_k
    - delta * sum_k (energy_fixed_k x_k + energy_per_replica_k r_k)
    - delta * sum_p node_floor_w_p * interval_s * n_p

IPA's cost is the price-weighted devices ("IPA($)"; with every price 1 it is IPA's device
count). Each device pool ``p`` holds at most ``devices_per_node_p * nodes_p`` devices
(``sum_{k in p} cores_k r_k`` below it); when ``delta > 0`` and a powered node draws power,
an integer ``n_p`` in ``[always_on_p, nodes_p]`` counts the pool's powered nodes, with
``devices_per_node_p * n_p >= sum_{k in p} cores_k r_k``: the power model's static and
idle terms (`envs.model.node_power.powered_nodes`; every device of a powered node draws its idle
power), so consolidation onto fewer nodes and cheaper pools is worth what it saves.
``energy_fixed`` and ``energy_per_replica`` are the allocated and dynamic terms
(`envs.model.power.stage_interval_energy_j`). Given the nodes powered now (``nodes_on``),
each node beyond them also costs its boot: ``delta * node_floor_w_p * boot_s_p * b_p`` with
``b_p >= n_p - nodes_on_p``, ``b_p >= 0`` (`envs.backends.nodes`: a booting node draws its
static and idle power before it serves).

``A(x)`` is ``sum_k rank_k x_k`` in ``sum`` mode, and in ``product`` mode the true product
over stages of the chosen variants' accuracies (as fractions), linearised exactly
(`ipa_baseline.product`).

``tp``, ``lat``, ``cores`` and the energy terms come from `envs.model.perf` for each candidate.
``replica_mode="free"`` is the faithful model (``lo = need``, the fewest replicas that
reach the rate alone: a valid cut, since the chosen candidate's replicas must reach it;
``hi = max_replicas``);
``replica_mode="minimal"`` (the default) fixes ``lo = hi`` = the fewest replicas that reach
the rate, which is optimal for a fixed candidate whenever beta or delta is positive (the
objective falls with replicas and nothing else depends on them) and makes the choice
unique when both are 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from envs.config.errors import ConfigError
from envs.model import node_power
from envs.model.continuous_perf import is_continuous
from envs.model.spec import Decision, Pipeline
from ipa_baseline.candidates import (
    AccuracyMode,
    Candidate,
    CoresMode,
    ReplicasMode,
    Restriction,
    check_feasible,
    stage_candidates,
    usable,
)
from ipa_baseline.continuous_candidates import continuous_candidates
from ipa_baseline.lp_builder import INF, LpBuilder
from ipa_baseline.product import ProductForm, add_product_objective


@dataclass(frozen=True)
class IlpResult:
    """The optimal decision and what the model predicts for it.

    Attributes:
        decision: One `StageDecision` per stage.
        objective: The model's objective value (in ``product`` mode its accuracy term is the
            product of the stages' accuracies as fractions).
        predicted_latency_ms: The latency constraint's row value: sum over stages of p99
            batch latency plus batch-fill delay.
        predicted_cores: Allocated cores.
        predicted_energy_j: Energy over the interval when every stage serves the rate:
            static (powered nodes), idle and dynamic, as `envs.model.power.interval_energy_j`,
            and the boots of nodes beyond ``nodes_on``.
        solve_ms: Wall time of the decision (building the model and solving it).
    """

    decision: Decision
    objective: float
    predicted_latency_ms: float
    predicted_cores: float
    predicted_energy_j: float
    solve_ms: float


def solve_ipa(
    pipeline: Pipeline, rate_rps: float, *, mode: AccuracyMode = "sum", alpha: float = 2.0,
    beta: float = 1.0, gamma: float = 1e-6, delta: float = 0.0, max_replicas: int = 8,
    interval_s: float = 10.0, timeout_ms: float = math.inf, cores: CoresMode = "base",
    replica_mode: ReplicasMode = "minimal", restriction: Restriction | None = None,
    product_form: ProductForm = "auto", nodes_on: Sequence[int] | None = None,
) -> IlpResult:
    """Solve IPA's ILP (plus an optional energy term) for one predicted rate.

    Args:
        pipeline: The profiled pipeline.
        rate_rps: Predicted arrival rate (the same at every stage, as in IPA).
        mode: ``sum`` of rank-normalised accuracies or ``product`` of raw accuracies
            (as fractions; linearised exactly, see `ipa_baseline.product`).
        alpha: Weight of accuracy (IPA's video configuration: 2).
        beta: Weight of allocated cores (IPA: 1).
        gamma: Weight of the sum of batch sizes (IPA: 1e-6).
        delta: Weight of the interval's energy in joules (0: plain IPA).
        max_replicas: Most replicas per stage.
        interval_s: Adaptation interval, for the energy term.
        timeout_ms: Cap on the batch-fill delay (IPA's paper has none: ``inf``).
        cores: ``base``: each variant's base allocation (IPA); ``profiled``: every
            profiled core count is a candidate.
        replica_mode: ``minimal`` or ``free`` (see the module docstring).
        restriction: Fixed variants (FA2) or replicas (RIM).
        product_form: How ``product`` mode is linearised: ``auto``, ``combinations``
            (IPA's, one binary per variant combination) or ``chain``.
        nodes_on: Nodes powered now per pool (None: boots cost nothing).

    Returns:
        The optimal decision and the model's predictions for it.

    Raises:
        InfeasibleError: No decision meets the constraints; the message names which.
        ConfigError: Invalid arguments.
    """
    start = time.perf_counter()
    restriction = restriction or Restriction()
    check_solve_args(pipeline, rate_rps, max_replicas, interval_s,
                     (alpha, beta, gamma, delta), restriction)
    cands = planned_candidates(pipeline, rate_rps, mode=mode, max_replicas=max_replicas,
                               interval_s=interval_s, timeout_ms=timeout_ms, cores=cores,
                               replica_mode=replica_mode, restriction=restriction)
    weights = (alpha, beta, gamma, delta)
    lp, latency_row = interval_model(cands, len(pipeline.stages), rate_rps, pipeline.sla_ms,
                                     weights, linear_accuracy=mode == "sum")
    if mode == "product" and alpha > 0:
        add_product_objective(lp, cands, [2 * k for k in range(len(cands))],
                              len(pipeline.stages), alpha, product_form)
    add_powered_nodes(lp, cands, pipeline, delta, interval_s, nodes_on)
    highs = lp.solve(f"at {rate_rps:.1f} rps although every stage has a feasible candidate",
                     "the stages together exceed a device pool (each fits alone): give the "
                     "pool more nodes or lower the rate")
    solution = highs.getSolution()
    cols = np.asarray(solution.col_value)[: 2 * len(cands)]
    x, r = cols[0::2], np.rint(cols[1::2])
    chosen = [k for k in range(len(cands)) if x[k] > 0.5]
    decision = Decision(tuple(cands[k].choice(int(r[k])) for k in
                              sorted(chosen, key=lambda k: cands[k].stage)))
    devices = float(sum(c.cores_per_replica * r[k] for k, c in enumerate(cands)))
    energy = sum(c.energy_fixed_j * x[k] + c.energy_per_replica_j * r[k]
                 for k, c in enumerate(cands))
    for p, (pool, d) in enumerate(zip(pipeline.fleet.pools,
                                      node_power.devices_by_pool(pipeline, decision), strict=True)):
        nodes = node_power.powered_nodes(pool, d)
        booted = 0 if nodes_on is None else max(nodes - nodes_on[p], 0)
        energy += (pool.node_floor_w * nodes * interval_s
                   + booted * node_power.boot_energy_j(pool))
    return IlpResult(
        decision=decision,
        objective=float(highs.getInfo().objective_function_value),
        predicted_latency_ms=float(solution.row_value[latency_row]),
        predicted_cores=devices,
        predicted_energy_j=float(energy),
        solve_ms=(time.perf_counter() - start) * 1e3,
    )


def planned_candidates(
    pipeline: Pipeline, rate_rps: float, *, mode: AccuracyMode, max_replicas: int,
    interval_s: float, timeout_ms: float, cores: CoresMode, replica_mode: ReplicasMode,
    restriction: Restriction,
) -> list[Candidate]:
    """The candidates the model holds at ``rate_rps``: every stage's usable candidates
    within the SLA, in stage order, after the exact infeasibility check. A continuously
    batched stage has one per replica count (`ipa_baseline.continuous_candidates`).

    Args:
        pipeline: The pipeline.
        rate_rps: The predicted rate.
        mode: Accuracy mode.
        max_replicas: Most replicas per stage.
        interval_s: Interval length (energy).
        timeout_ms: Cap on the batch-fill delay.
        cores: ``base`` or ``profiled``.
        replica_mode: ``minimal`` or ``free``.
        restriction: The baseline's restriction.

    Returns:
        The candidates.

    Raises:
        InfeasibleError: No decision is feasible (naming the binding constraint).
    """
    all_cands = [
        continuous_candidates(pipeline, s, rate_rps, mode=mode, max_replicas=max_replicas,
                              interval_s=interval_s, restriction=restriction)
        if is_continuous(stage) else
        stage_candidates(pipeline, s, rate_rps, mode=mode, max_replicas=max_replicas,
                         interval_s=interval_s, timeout_ms=timeout_ms, cores=cores,
                         replica_mode=replica_mode, restriction=restriction)
        for s, stage in enumerate(pipeline.stages)
    ]
    check_feasible(pipeline, all_cands, rate_rps, max_replicas, restriction)
    return [c for stage_cands in all_cands for c in stage_cands
            if usable(c) and c.latency_ms <= pipeline.sla_ms]


def add_powered_nodes(lp: LpBuilder, cands: Sequence[Candidate], pipeline: Pipeline,
                      delta: float, interval_s: float,
                      nodes_on: Sequence[int] | None = None) -> list[int | None]:
    """Add each pool's capacity row and, where it can change the objective, its
    powered-nodes column (see the module docstring).

    Args:
        lp: The model of `interval_model` (columns ``2k + 1`` are the replicas).
        cands: Its candidates.
        pipeline: The pipeline (its fleet).
        delta: Weight of energy.
        interval_s: Interval length (node energy).
        nodes_on: Nodes powered now per pool; each node beyond them costs its boot.

    Returns:
        Per pool, the nodes column's index, or None where the pool has only its capacity
        row (no energy weight, or nodes that draw nothing).
    """
    columns: list[int | None] = []
    for p, pool in enumerate(pipeline.fleet.pools):
        replicas = [(2 * k + 1, -float(c.cores_per_replica)) for k, c in enumerate(cands)
                    if c.pool == p]
        capacity = float(pool.devices_per_node * pool.nodes)
        if delta <= 0 or pool.node_floor_w <= 0:
            if replicas:
                lp.row(replicas, -capacity, INF)
            columns.append(None)
            continue
        nodes = lp.col(-delta * pool.node_floor_w * interval_s, float(pool.always_on),
                       float(pool.nodes), True)
        lp.row([(nodes, float(pool.devices_per_node))] + replicas, 0.0, INF)
        if nodes_on is not None and pool.boot_s > 0:
            boots = lp.col(-delta * node_power.boot_energy_j(pool), 0.0, INF, False)
            lp.row([(boots, 1.0), (nodes, -1.0)], -float(nodes_on[p]), INF)
        columns.append(nodes)
    return columns


def check_solve_args(pipeline: Pipeline, rate_rps: float, max_replicas: int,
                     interval_s: float, weights: Sequence[float],
                     restriction: Restriction) -> None:
    """Reject arguments `solve_ipa` cannot plan with.

    Args:
        pipeline: The pipeline.
        rate_rps: The predicted rate.
        max_replicas: Most replicas per stage.
        interval_s: Interval length.
        weights: ``(alpha, beta, gamma, delta)``.
        restriction: The baseline's restriction.

    Raises:
        ConfigError: One line naming the bad argument.
    """
    if not (math.isfinite(rate_rps) and rate_rps >= 0):
        raise ConfigError(f"rate_rps must be a finite number >= 0, got {rate_rps!r}")
    if max_replicas < 1 or interval_s <= 0:
        raise ConfigError("max_replicas must be >= 1 and interval_s > 0")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ConfigError(f"alpha, beta, gamma, delta must be finite and >= 0, got {weights}")
    n = len(pipeline.stages)
    for name, value in (("variants", restriction.variants), ("replicas", restriction.replicas)):
        if value is not None and len(value) != n:
            raise ConfigError(f"restriction.{name} has {len(value)} entries for {n} stages")
    if restriction.replicas is not None and any(r < 1 for r in restriction.replicas):
        raise ConfigError(f"fixed replicas must be >= 1, got {restriction.replicas}")
    for s, stage in enumerate(pipeline.stages):
        bad = [v for v in restriction.allowed_variants(s, stage)
               if not 0 <= v < len(stage.variants)]
        if bad:
            raise ConfigError(f"restriction: stage {stage.name!r} has no variant index {bad}; "
                              f"valid 0..{len(stage.variants) - 1}")


def interval_model(cands: Sequence[Candidate], n_stages: int, rate_rps: float, sla_ms: float,
                   weights: tuple[float, float, float, float], linear_accuracy: bool,
                   ) -> tuple[LpBuilder, int]:
    """One interval's model over ``cands``: columns ``2k`` (x_k) and ``2k + 1`` (r_k), then
    any the product term adds. The accuracy enters here only in ``sum`` mode (``product``
    mode adds it afterwards).

    Args:
        cands: The usable candidates within the SLA.
        n_stages: Stages of the pipeline.
        rate_rps: The rate every stage must reach.
        sla_ms: The latency bound.
        weights: ``(alpha, beta, gamma, delta)``.
        linear_accuracy: Put the accuracy in the objective (``sum`` mode).

    Returns:
        The builder and the index of its latency row.
    """
    alpha, beta, gamma, delta = weights
    lp = LpBuilder()
    by_stage: list[list[int]] = [[] for _ in range(n_stages)]
    for k, c in enumerate(cands):
        by_stage[c.stage].append(k)
        acc = alpha * c.accuracy if linear_accuracy else 0.0
        x = lp.col(acc - gamma * c.batch - delta * c.energy_fixed_j, 0.0, 1.0, True)
        r = lp.col(-(beta * c.cost_per_replica + delta * c.energy_per_replica_j), 0.0,
                   float(c.replicas_hi), True)
        if c.replicas_lo == c.replicas_hi:
            lp.row([(r, 1.0), (x, -float(c.replicas_hi))], 0.0, 0.0)
        else:
            lp.row([(r, 1.0), (x, -float(c.replicas_lo))], 0.0, INF)
            lp.row([(r, 1.0), (x, -float(c.replicas_hi))], -INF, 0.0)
    for ks in by_stage:
        lp.row([(2 * k, 1.0) for k in ks], 1.0, 1.0)
        lp.row([(2 * k + 1, cands[k].replica_rps) for k in ks], rate_rps, INF)
    latency_row = lp.row([(2 * k, c.latency_ms) for k, c in enumerate(cands)], -INF, sla_ms)
    return lp, latency_row
