"""Replica groups: how a stage's replicas come and go when a decision is applied.

Shared by both simulators so that cold starts and allocation cost are modelled once:

* a batch-size change takes effect at once on every replica;
* added replicas are allocated (and cost cores) from the decision time and serve
  ``cold_start_s`` later; removed replicas stop at once (newest first);
* a variant or cores change is a rolling update: the old replicas keep serving until the
  new ones are ready ``cold_start_s`` later, and both are allocated meanwhile.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

from envs.backends.base import ServingSettings
from envs.backends.nodes import NodeStates
from envs.backends.stats import EndState
from envs.model import node_power
from envs.model.spec import Decision, Pipeline, StageDecision

_ids = itertools.count()


@dataclass(frozen=True)
class ReplicaGroup:
    """``count`` identical replicas, allocated from ``allocated_s``, serving in
    [``online_s``, ``until_s``)."""

    variant: int
    batch: int
    cores: int
    count: int
    allocated_s: float
    online_s: float
    until_s: float = math.inf
    id: int = -1

    def overlap_s(self, start: float, end: float, *, allocated: bool) -> float:
        """Seconds of [start, end) during which the group is allocated / serving.

        Args:
            start: Start of the window.
            end: Its end.
            allocated: Count from allocation (True, what costs) or from serving (False).

        Returns:
            The overlap in seconds (0 if none).
        """
        begin = self.allocated_s if allocated else self.online_s
        return max(0.0, min(end, self.until_s) - max(start, begin))


def _new(choice: StageDecision, count: int, now: float, ready: float) -> ReplicaGroup:
    return ReplicaGroup(choice.variant, choice.batch, choice.cores, count, now, ready,
                        math.inf, next(_ids))


def warm_groups(choice: StageDecision, now: float = 0.0) -> list[ReplicaGroup]:
    """The groups of a stage that starts warm with ``choice``.

    Args:
        choice: The stage's decision.
        now: The start time.

    Returns:
        One group, allocated and serving from ``now``.
    """
    return [_new(choice, choice.replicas, now, now)]


def apply_choice(
    groups: list[ReplicaGroup], choice: StageDecision, now: float, cold_start_s: float
) -> list[ReplicaGroup]:
    """The stage's groups after ``choice`` is applied at time ``now``.

    Args:
        groups: The stage's groups before.
        choice: The stage's new decision.
        now: When it is applied.
        cold_start_s: Delay before added replicas serve.

    Returns:
        The groups after (retired groups serve until the new ones are ready).
    """
    live = [g for g in groups if g.until_s > now]
    same = [g for g in live if (g.variant, g.cores) == (choice.variant, choice.cores)
            and g.until_s == math.inf]
    others = [g for g in live if g not in same]
    retired = [replace(g, until_s=min(g.until_s, now + cold_start_s)) for g in others]
    same = [replace(g, batch=choice.batch) for g in same]
    have = sum(g.count for g in same)
    if choice.replicas > have:
        same.append(_new(choice, choice.replicas - have, now, now + cold_start_s))
    elif choice.replicas < have:
        excess = have - choice.replicas
        trimmed = []
        for g in sorted(same, key=lambda g: g.online_s, reverse=True):
            cut = min(excess, g.count)
            excess -= cut
            if g.count - cut > 0:
                trimmed.append(replace(g, count=g.count - cut))
        same = sorted(trimmed, key=lambda g: g.online_s)
    return retired + same


def allocated_core_s(groups: list[ReplicaGroup], start: float, end: float) -> float:
    """Core-seconds the groups hold during [start, end).

    Args:
        groups: Replica groups of one stage.
        start: Start of the window.
        end: Its end.

    Returns:
        The core-seconds allocated.
    """
    return sum(g.count * g.cores * g.overlap_s(start, end, allocated=True) for g in groups)


def allocation_segments(
    pipeline: Pipeline, stages: list[list[ReplicaGroup]], start: float, end: float
) -> list[tuple[float, node_power.DevicesByPool]]:
    """``(seconds, allocated devices per pool)`` pieces of [start, end) between the moments
    a group is allocated or released (what `envs.model.node_power.energy_parts` integrates).

    Args:
        pipeline: The pipeline (each variant's pool).
        stages: Every stage's replica groups.
        start: Start of the window.
        end: Its end.

    Returns:
        The pieces, in time order.
    """
    groups = [(pipeline.stages[s].variants[g.variant].pool, g)
              for s, stage in enumerate(stages) for g in stage]
    cuts = sorted({start, end, *(t for _, g in groups for t in (g.allocated_s, g.until_s)
                                 if start < t < end)})
    segments = []
    for t0, t1 in zip(cuts, cuts[1:], strict=False):
        devices = [0.0] * len(pipeline.fleet.pools)
        for pool, g in groups:
            if g.allocated_s <= t0 < g.until_s:
                devices[pool] += g.count * g.cores
        segments.append((t1 - t0, tuple(devices)))
    return segments


def allocated_by_pool(pipeline: Pipeline, stages: list[list[ReplicaGroup]], at: float
                      ) -> node_power.DevicesByPool:
    """Devices the groups hold at time ``at``, per pool.

    Args:
        pipeline: The pipeline (each variant's pool).
        stages: Every stage's replica groups.
        at: The time.

    Returns:
        Devices per pool.
    """
    devices = [0.0] * len(pipeline.fleet.pools)
    for s, groups in enumerate(stages):
        for g in groups:
            if g.allocated_s <= at < g.until_s:
                devices[pipeline.stages[s].variants[g.variant].pool] += g.count * g.cores
    return tuple(devices)


def simulated_energy_method(pipeline: Pipeline) -> str:
    """The ``energy_method`` a simulator reports: the power model and its figures' kinds.

    Args:
        pipeline: The pipeline (the kinds of its energy figures).

    Returns:
        The description.
    """
    return ("simulated with the profile's power model ((static + idle x devices per node) x "
            "powered nodes + allocated power x allocated devices + dynamic per batch; figures "
            f"{'/'.join(pipeline.energy_kinds)})")


class SimulatedBackend:
    """What both simulators share: the pipeline, the settings, the clock, the decision in
    force and its replica groups. Subclasses add their state in `_on_reset` / `_on_apply`.
    """

    def __init__(self, pipeline: Pipeline, settings: ServingSettings | None = None) -> None:
        """Create the simulator (call `reset` before the first interval).

        Args:
            pipeline: The profiled pipeline to simulate.
            settings: Serving behaviour (None: the defaults).
        """
        self.pipeline = pipeline
        self.settings = settings or ServingSettings()
        self.energy_estimated = pipeline.energy_estimated
        self.energy_method = simulated_energy_method(pipeline)
        self.now = 0.0
        self.decision: Decision | None = None
        self.groups: list[list[ReplicaGroup]] = []
        self.nodes = NodeStates(pipeline.fleet)
        self.last_events: list[str] = []  # simulators have none; the live backend does

    def reset(self, decision: Decision, seed: int | None = None) -> None:
        """Start over at time 0 with ``decision`` warm (no cold start).

        Args:
            decision: The configuration in force from the start.
            seed: The simulator seed (used by the request-level simulator).
        """
        self.pipeline.validate(decision)
        self.now = 0.0
        self.decision = decision
        self.groups = [warm_groups(c) for c in decision.stages]
        self.nodes.reset(allocated_by_pool(self.pipeline, self.groups, 0.0))
        self._on_reset(seed)

    def apply(self, decision: Decision) -> None:
        """Reconfigure at the current time; cold starts and rolling updates apply, and
        replicas that need a node that is not on start their cold start once it has booted
        (`envs.backends.nodes.NodeStates.make_room`).

        Args:
            decision: The new configuration.
        """
        self.pipeline.validate(decision)
        self.decision = decision
        cold = [self.settings.cold_start_for(self.pipeline, s, c.variant)
                for s, c in enumerate(decision.stages)]
        planned = [apply_choice(groups, choice, self.now, c)
                   for groups, choice, c in zip(self.groups, decision.stages, cold, strict=True)]
        ready = self.nodes.make_room(allocated_by_pool(self.pipeline, planned, self.now),
                                     self.now)
        waits = [ready[stage.variants[c.variant].pool] - self.now
                 for stage, c in zip(self.pipeline.stages, decision.stages, strict=True)]
        self.groups = [
            apply_choice(groups, choice, self.now, c + wait) if wait > 0 else plan
            for groups, choice, c, wait, plan in zip(self.groups, decision.stages, cold, waits,
                                                     planned, strict=True)]
        self._on_apply()

    def interval_energy(self, start: float, end: float, dynamic_j: float) -> node_power.EnergyParts:
        """The power model over [start, end) for the groups held then, with the nodes'
        power states (booting and held nodes draw their static and idle power).

        Args:
            start: Start of the interval.
            end: Its end.
            dynamic_j: Dynamic energy of the batches served.

        Returns:
            The energy split into static, idle and dynamic parts.
        """
        segments = allocation_segments(self.pipeline, self.groups, start, end)
        node_s = self.nodes.node_seconds(segments, start)
        device_s = tuple(sum(seconds * devices[p] for seconds, devices in segments)
                         for p in range(len(self.pipeline.fleet.pools)))
        fleet = self.pipeline.fleet
        return node_power.EnergyParts(node_power.static_energy_j(fleet, node_s),
                                 node_power.idle_energy_j(fleet, node_s, device_s), dynamic_j)

    def end_state(self) -> EndState:
        """Replicas loading per stage and nodes booting and powered per pool, now.

        Returns:
            The state (`envs.backends.stats.EndState`).
        """
        now = self.now
        loading = tuple(sum(g.count for g in groups if g.online_s > now and g.until_s > now)
                        for groups in self.groups)
        booting = tuple(sum(1 for t in p.ready_s if t > now) for p in self.nodes.pools)
        return EndState(loading, booting, tuple(p.powered for p in self.nodes.pools))

    def _decision_in_force(self, method: str) -> Decision:
        """The decision in force; RuntimeError if ``method`` was called before `reset`."""
        if self.decision is None:
            raise RuntimeError(f"call reset(decision) before {method}()")
        return self.decision

    def _on_reset(self, seed: int | None) -> None:
        self._on_apply()

    def _on_apply(self) -> None:
        """Refresh state derived from the groups."""

    def close(self) -> None:
        """Nothing to release."""
