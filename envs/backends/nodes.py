"""Node power states of each device pool, shared by both simulators.

A pool's node is off, booting or on. Replicas are packed onto as few nodes as possible
(`envs.model.node_power.powered_nodes`: the allocation needs ``ceil(devices / devices_per_node)``
nodes, at least the pool's ``always_on``):

* a decision that needs more nodes than are powered boots the difference: each booting node
  draws its static and idle power from the decision on and serves ``boot_s`` later, and the
  replicas that needed it start their cold start then (`NodeStates.make_room`);
* a powered node the allocation no longer needs stays on for ``hold_s`` (drawing its static
  and idle power), then powers off; it serves again at once if needed before that;
* with ``boot_s = hold_s = 0`` the powered nodes are exactly the nodes the allocation needs
  (`envs.model.node_power.powered_nodes`), the model of profiles without power states.

Nodes are interchangeable, so a pool's state is how many are powered, when the booting ones
become ready and since when the unneeded ones have been idle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from envs.model import node_power
from envs.model.fleet import DevicePool, Fleet


@dataclass
class PoolNodes:
    """One pool's powered nodes.

    Attributes:
        powered: Nodes drawing power (booting, serving or held).
        ready_s: When each booting node serves (sorted; past times are on).
        idle_since: When each held node stopped being needed (sorted).
    """

    powered: int = 0
    ready_s: list[float] = field(default_factory=list)
    idle_since: list[float] = field(default_factory=list)


class NodeStates:
    """The fleet's node power states (module docstring)."""

    def __init__(self, fleet: Fleet) -> None:
        """Create the states (call `reset` before use).

        Args:
            fleet: The pools.
        """
        self.fleet = fleet
        self.pools = [PoolNodes() for _ in fleet.pools]

    def reset(self, devices: node_power.DevicesByPool) -> None:
        """Start warm: the nodes ``devices`` need are on and ready.

        Args:
            devices: Allocated devices per pool at time 0.
        """
        self.pools = [PoolNodes(node_power.powered_nodes(p, d))
                      for p, d in zip(self.fleet.pools, devices, strict=True)]

    def make_room(self, devices: node_power.DevicesByPool, now: float) -> tuple[float, ...]:
        """Power what an allocation needs at ``now``: held nodes first, then boots.

        Args:
            devices: The allocation's devices per pool.
            now: When it is made.

        Returns:
            Per pool, when the nodes it needs are all ready (``now`` when none boots).
        """
        ready = []
        for pool, state, d in zip(self.fleet.pools, self.pools, devices, strict=True):
            self._expire(pool, state, now)
            needed = node_power.powered_nodes(pool, d)
            busy = state.powered - len(state.idle_since)
            reuse = min(max(needed - busy, 0), len(state.idle_since))
            del state.idle_since[:reuse]
            boots = max(needed - state.powered, 0)
            state.powered += boots
            fresh = [now + pool.boot_s] * boots if pool.boot_s > 0 else []
            state.ready_s = sorted([t for t in state.ready_s if t > now] + fresh)
            short = needed - (state.powered - len(state.ready_s))
            ready.append(now if short <= 0 else state.ready_s[short - 1])
        return tuple(ready)

    def node_seconds(self, segments: Sequence[tuple[float, node_power.DevicesByPool]],
                     start: float) -> tuple[float, ...]:
        """Powered node-seconds per pool over consecutive segments from ``start``, and the
        states moved to the segments' end (nodes no longer needed are held, then off).

        Args:
            segments: ``(seconds, allocated devices per pool)`` pieces from ``start``.
            start: Their start time.

        Returns:
            Node-seconds per pool.
        """
        totals = [0.0] * len(self.pools)
        t0 = start
        for seconds, devices in segments:
            t1 = t0 + seconds
            for p, (pool, state) in enumerate(zip(self.fleet.pools, self.pools, strict=True)):
                needed = node_power.powered_nodes(pool, devices[p])
                self._expire(pool, state, t0)
                busy = state.powered - len(state.idle_since)
                if needed < busy:
                    state.idle_since.extend([t0] * (busy - needed))
                elif needed > busy:
                    del state.idle_since[:needed - busy]
                totals[p] += busy_s(state, pool, t0, t1)
                self._expire(pool, state, t1)
            t0 = t1
        return tuple(totals)

    @staticmethod
    def _expire(pool: DevicePool, state: PoolNodes, t: float) -> None:
        """Power off the held nodes whose hold time has passed by ``t``; the nodes that are
        still booting are the last powered, so they are the first released."""
        keep = [s for s in state.idle_since if s + pool.hold_s > t]
        off = len(state.idle_since) - len(keep)
        state.powered -= off
        state.idle_since = keep
        booting = sorted(r for r in state.ready_s if r > t)
        state.ready_s = booting[:max(len(booting) - off, 0)]


def busy_s(state: PoolNodes, pool: DevicePool, t0: float, t1: float) -> float:
    """Powered node-seconds of one pool over [t0, t1): every needed node for the whole
    piece, each held node until its hold ends.

    Args:
        state: The pool's nodes at ``t0``.
        pool: The pool (its ``hold_s``).
        t0: Start of the piece.
        t1: Its end.

    Returns:
        Node-seconds.
    """
    held = sum(min(t1, s + pool.hold_s) - t0 for s in state.idle_since)
    return (state.powered - len(state.idle_since)) * (t1 - t0) + held


def has_power_states(fleet: Fleet) -> bool:
    """Whether any pool boots or holds its nodes (else powered = needed at every instant).

    Args:
        fleet: The pools.

    Returns:
        True when some pool has ``boot_s > 0`` or ``hold_s > 0``.
    """
    return any(p.boot_s > 0 or p.hold_s > 0 for p in fleet.pools)

