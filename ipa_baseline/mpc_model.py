"""The MPC's mixed-integer program, built from IPA's one-interval model (`ipa_baseline.ilp`).

Each interval ``t`` of the horizon gets exactly the model `solve_ipa` builds for its rate
(same candidates, columns, rows, product term and powered-nodes column), built by the same
functions and appended to one `LpBuilder` with its objective scaled by ``discount ** t``.
The intervals are then joined by switching columns (see `add_switching`). Nothing here
computes a latency, throughput or energy itself: candidates come from
`ipa_baseline.candidates`, load times from `envs.backends.base.ServingSettings.cold_start_for`
(the env's cold start: base start + `envs.model.perf.model_load_s`) and joules from
`envs.model.node_power.device_share_w`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from envs.backends.base import ServingSettings
from envs.model import node_power
from envs.model.spec import Decision, Pipeline
from ipa_baseline.candidates import (
    AccuracyMode,
    Candidate,
    CoresMode,
    ReplicasMode,
    Restriction,
)
from ipa_baseline.errors import InfeasibleError
from ipa_baseline.ilp import add_powered_nodes, interval_model, planned_candidates
from ipa_baseline.lp_builder import INF, LpBuilder
from ipa_baseline.product import ProductForm, add_product_objective

Group = tuple[int, int, int]
"""``(stage, variant, cores)``: replicas the env treats as the same (a batch change is free;
a variant or cores change is a rolling update onto new replicas, `envs.backends.replicas`)."""


@dataclass(frozen=True)
class IntervalBlock:
    """One interval's copy of IPA's model inside the horizon's program.

    Attributes:
        cands: The interval's usable candidates (column ``offset + 2k`` is ``x_k``,
            ``offset + 2k + 1`` is ``r_k``).
        offset: Index of the block's first column.
        latency_row: Index of the block's latency row.
        nodes: Per device pool, the index of its powered-nodes column in the horizon's
            program (None where the pool has none: `ipa_baseline.ilp.add_powered_nodes`).
    """

    cands: tuple[Candidate, ...]
    offset: int
    latency_row: int
    nodes: tuple[int | None, ...] = ()


def interval_candidates(
    pipeline: Pipeline, rate_rps: float, t: int, *, mode: AccuracyMode, max_replicas: int,
    interval_s: float, timeout_ms: float, cores: CoresMode, replica_mode: ReplicasMode,
    restriction: Restriction,
) -> list[Candidate]:
    """The candidates `solve_ipa` would model at ``rate_rps``, in its order.

    Args:
        pipeline: The pipeline.
        rate_rps: The interval's forecast rate.
        t: The interval's index in the horizon (for the error message).
        mode: Accuracy mode.
        max_replicas: Most replicas per stage.
        interval_s: Interval length (energy).
        timeout_ms: Batch-fill cap.
        cores: ``base`` or ``profiled``.
        replica_mode: ``minimal`` or ``free``.
        restriction: The baseline's restriction.

    Returns:
        The usable candidates within the SLA.

    Raises:
        InfeasibleError: The interval has no feasible decision; the message names the
            interval and the binding constraint.
    """
    try:
        return planned_candidates(pipeline, rate_rps, mode=mode, max_replicas=max_replicas,
                                  interval_s=interval_s, timeout_ms=timeout_ms, cores=cores,
                                  replica_mode=replica_mode, restriction=restriction)
    except InfeasibleError as err:
        raise InfeasibleError(f"MPC interval {t}: {err}", err.constraint, err.stage) from err


def append_interval(
    lp: LpBuilder, pipeline: Pipeline, cands: Sequence[Candidate], rate_rps: float, *,
    weights: tuple[float, float, float, float], mode: AccuracyMode, interval_s: float,
    product_form: ProductForm, scale: float,
) -> IntervalBlock:
    """Build `solve_ipa`'s model for one interval and append it to ``lp``.

    Args:
        lp: The horizon's program.
        pipeline: The pipeline.
        cands: The interval's candidates (`interval_candidates`).
        rate_rps: The interval's forecast rate.
        weights: ``(alpha, beta, gamma, delta)``.
        mode: Accuracy mode.
        interval_s: Interval length.
        product_form: Linearisation of ``product`` mode.
        scale: Factor on the block's objective (``discount ** t``).

    Returns:
        Where the block lies in ``lp``.
    """
    n_stages = len(pipeline.stages)
    block, latency_row = interval_model(cands, n_stages, rate_rps, pipeline.sla_ms, weights,
                                linear_accuracy=mode == "sum")
    if mode == "product" and weights[0] > 0:
        add_product_objective(block, cands, [2 * k for k in range(len(cands))], n_stages,
                              weights[0], product_form)
    nodes = add_powered_nodes(block, cands, pipeline, weights[3], interval_s)
    offset, row_offset = lp.append(block, scale)
    return IntervalBlock(tuple(cands), offset, row_offset + latency_row,
                         tuple(None if n is None else offset + n for n in nodes))


def add_boots(lp: LpBuilder, pipeline: Pipeline, blocks: Sequence[IntervalBlock],
              nodes_on: Sequence[int] | None, delta: float, scales: Sequence[float]) -> None:
    """Charge every node the plan powers beyond the interval before (the nodes on now for
    the first, when given): ``b_{t,p} >= n_{t,p} - n_{t-1,p}``, ``b >= 0``, at
    ``scale_t x delta x node_floor_w_p x boot_s_p`` each (`envs.backends.nodes`: a booting
    node draws its host and idle power before it serves).

    Args:
        lp: The horizon's program.
        pipeline: The pipeline (its pools' boot times and node power).
        blocks: The intervals' blocks, in order.
        nodes_on: Nodes powered now per pool (None: the first interval's boots are free).
        delta: Weight of energy.
        scales: Each interval's objective factor.
    """
    for p, pool in enumerate(pipeline.fleet.pools):
        if pool.boot_s <= 0 or delta <= 0:
            continue
        previous: int | None = None
        for t, block in enumerate(blocks):
            now = block.nodes[p] if block.nodes else None
            if now is None:
                previous = None
                continue
            boots = lp.col(-scales[t] * delta * node_power.boot_energy_j(pool), 0.0, INF,
                           False)
            if previous is not None:
                lp.row([(boots, 1.0), (now, -1.0), (previous, 1.0)], 0.0, INF)
            elif t == 0 and nodes_on is not None:
                lp.row([(boots, 1.0), (now, -1.0)], -float(nodes_on[p]), INF)
            previous = now


def group_of(cand: Candidate) -> Group:
    """The replica group a candidate's replicas belong to.

    Args:
        cand: A candidate.

    Returns:
        ``(stage, variant, cores)``.
    """
    return cand.stage, cand.variant, cand.cores


def deployed(decision: Decision | None) -> dict[Group, int]:
    """Replicas per group in a decision (none for ``None``: nothing is deployed).

    Args:
        decision: The decision in force, or None.

    Returns:
        ``{(stage, variant, cores): replicas}``.
    """
    if decision is None:
        return {}
    return {(s, c.variant, c.cores): c.replicas for s, c in enumerate(decision.stages)}


def switch_cost_j(pipeline: Pipeline, settings: ServingSettings, group: Group) -> float:
    """Energy one new replica of ``group`` spends loading: its devices' share of their
    powered nodes (`envs.model.node_power.device_share_w`) over the env's cold start
    (`ServingSettings.cold_start_for`).

    Args:
        pipeline: The pipeline (pools, variants).
        settings: The cold-start model (``cold_start_s``, ``model_load_scale``).
        group: ``(stage, variant, cores)``.

    Returns:
        Joules per added replica.
    """
    stage, variant, cores = group
    load_s = settings.cold_start_for(pipeline, stage, variant)
    pool = pipeline.pool_of(pipeline.stages[stage].variants[variant])
    return node_power.device_share_w(pool) * cores * load_s


def added_replicas(before: Decision | None, after: Decision) -> dict[Group, int]:
    """Replicas ``after`` adds per group relative to ``before`` (what must load).

    Args:
        before: The decision in force (None: nothing deployed).
        after: The next decision.

    Returns:
        ``{group: added}`` for the groups that grow.
    """
    old = deployed(before)
    return {g: r - old.get(g, 0) for g, r in deployed(after).items() if r > old.get(g, 0)}


def add_switching(
    lp: LpBuilder, blocks: Sequence[IntervalBlock], previous: Mapping[Group, int],
    cost: Mapping[Group, float], scales: Sequence[float],
) -> int:
    """Add ``a_{t,g} >= r_{t,g} - r_{t-1,g}``, ``a >= 0``, with objective ``-scale_t x
    cost_g x a_{t,g}``, for every interval and group whose cost is positive.

    ``r_{t,g}`` is the sum of the block's ``r_k`` over the group's candidates and
    ``r_{-1,g}`` the deployed replicas (a constant). ``a`` is continuous: the ``r`` are
    integers and ``a`` is pushed down to ``max(0, r_t - r_{t-1})``, an integer.

    Args:
        lp: The horizon's program.
        blocks: One block per interval, in order.
        previous: Replicas deployed now, per group.
        cost: Objective cost of one added replica per group (before ``scales``).
        scales: Discount factor of each interval.

    Returns:
        How many switching columns were added.
    """
    added = 0
    r_before: dict[Group, list[int]] = {}  # the r columns of each group at t - 1
    for t, (block, scale) in enumerate(zip(blocks, scales, strict=True)):
        r_now: dict[Group, list[int]] = {}
        for k, c in enumerate(block.cands):
            r_now.setdefault(group_of(c), []).append(block.offset + 2 * k + 1)
        for g, cols in r_now.items():
            if cost.get(g, 0.0) <= 0:
                continue
            hi = float(max(block.cands[k].replicas_hi for k, c in enumerate(block.cands)
                           if group_of(c) == g))
            a = lp.col(-scale * cost[g], 0.0, hi, False)
            entries = [(a, 1.0)] + [(col, -1.0) for col in cols]
            entries += [(col, 1.0) for col in r_before.get(g, [])]
            lp.row(entries, -float(previous.get(g, 0)) if t == 0 else 0.0, INF)
            added += 1
        r_before = r_now
    return added
