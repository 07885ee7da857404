"""The event loop of a continuously batched stage (numba): every replica a processor-sharing
server with a cap and its own FIFO queue (vLLM queues requests beyond ``max_num_seqs`` in
the engine), requests routed at random among the replicas taking requests (kube-proxy's
default: a Service's backend chosen at random per connection).

One call serves one interval and leaves each replica's state (its running requests as a
heap of virtual finish keys, its virtual clock, its queue) in the arrays it was given, so
the next interval continues where this one stopped. `envs.backends.continuous_stage` holds
that state between intervals; `envs.serving.continuous_batching` is the same rule for one
replica alone (the load tables the planner reads are measured with it). Random routing
splits Poisson arrivals into independent Poisson streams, so each replica sees what the
load tables assume.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _sift_up(keys: np.ndarray, ids: np.ndarray, r: int, i: int) -> None:
    while i > 0:
        parent = (i - 1) // 2
        if keys[r, parent] <= keys[r, i]:
            break
        keys[r, parent], keys[r, i] = keys[r, i], keys[r, parent]
        ids[r, parent], ids[r, i] = ids[r, i], ids[r, parent]
        i = parent


@numba.njit(cache=True)
def _pop(keys: np.ndarray, ids: np.ndarray, r: int, size: int) -> None:
    """Remove the heap top of replica ``r`` (``size`` entries before the call)."""
    last = size - 1
    keys[r, 0], ids[r, 0] = keys[r, last], ids[r, last]
    i = 0
    while True:
        left, smallest = 2 * i + 1, i
        if left < last and keys[r, left] < keys[r, smallest]:
            smallest = left
        if left + 1 < last and keys[r, left + 1] < keys[r, smallest]:
            smallest = left + 1
        if smallest == i:
            return
        keys[r, smallest], keys[r, i] = keys[r, i], keys[r, smallest]
        ids[r, smallest], ids[r, i] = ids[r, i], ids[r, smallest]
        i = smallest


@numba.njit(cache=True)
def _fill(r: int, now: float, origin: np.ndarray, tokens: np.ndarray, finish: np.ndarray,
          keys: np.ndarray, ids: np.ndarray, running: np.ndarray, clock: np.ndarray,
          rep_cfg: np.ndarray, rep_limit: np.ndarray, qhead: np.ndarray, qtail: np.ndarray,
          nxt: np.ndarray, drop_limit_s: float) -> None:
    """Start replica ``r``'s queued requests while it runs fewer than its limit (a request
    older than the drop limit is dropped instead)."""
    while qhead[r] >= 0 and running[r] < rep_limit[r]:
        j = qhead[r]
        qhead[r] = nxt[j]
        if qhead[r] < 0:
            qtail[r] = -1
        if now - origin[j] > drop_limit_s:
            finish[j] = np.nan
            continue
        k = running[r]
        keys[r, k] = clock[r] + tokens[rep_cfg[r], j]
        ids[r, k] = j
        running[r] = k + 1
        _sift_up(keys, ids, r, k)


@numba.njit(cache=True)
def serve_continuous(
    ready: np.ndarray, origin: np.ndarray, tokens: np.ndarray, route_u: np.ndarray,
    assigned: np.ndarray, first_waiting: int, keys: np.ndarray, ids: np.ndarray,
    running: np.ndarray, clock: np.ndarray, rep_from: np.ndarray, rep_until: np.ndarray,
    rep_cfg: np.ndarray, rep_limit: np.ndarray, rate: np.ndarray, dynamic_w: np.ndarray,
    start: float, horizon: float, drop_limit_s: float,
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, np.ndarray, int]:
    """Serve one interval of a continuously batched stage.

    Requests ``[0, first_waiting)`` are running already (in the heaps). The rest wait:
    first those already queued at a replica (``assigned >= 0``, in queue order), then the
    unrouted ones (``assigned == -1``) in order of ``ready``. An unrouted request is routed
    when it is ready, to the replica ``floor(route_u x m)`` of the ``m`` replicas then
    online and taking requests (``rep_from <= now < rep_until``; if none is online, of
    those still loading, whose queue it joins), and starts at once if that replica is online
    (``rep_from <= now``) and runs fewer than its limit. While ``k`` run on a replica of
    configuration ``c`` each receives ``rate[c, k]`` tokens/s and the replica draws
    ``dynamic_w[c, k]`` above idle. A replica past ``rep_until`` takes nothing new and
    finishes its queue.

    Args:
        ready: When each request is ready at this stage.
        origin: When each entered the pipeline.
        tokens: ``[configuration, request]`` output tokens (the variant's length draw).
        route_u: A uniform number in [0, 1) per request (its routing draw).
        assigned: Replica of each queued request, -1 unrouted (updated in place).
        first_waiting: Index of the first request not running.
        keys: ``[replica, slot]`` heap of virtual finish keys (updated in place).
        ids: ``[replica, slot]`` request index of each key (updated in place).
        running: Requests running on each replica (updated in place).
        clock: Each replica's virtual clock (updated in place).
        rep_from: When each replica comes online.
        rep_until: When it stops taking requests.
        rep_cfg: Each replica's configuration row.
        rep_limit: How many requests each runs at most.
        rate: ``[configuration, k]`` tokens/s of each of ``k`` running requests.
        dynamic_w: ``[configuration, k]`` power above idle with ``k`` running (W).
        start: Start of the interval.
        horizon: Its end: nothing is routed at or after it.
        drop_limit_s: Age (since ``origin``) at which a queued request is dropped.

    Returns:
        ``(finish times: nan dropped, inf not finished; dynamic energy (J); running-request
        seconds per replica; each replica's queue head; the queues' next links; index of
        the first unrouted request)``.
    """
    n = ready.shape[0]
    n_rep = rep_from.shape[0]
    finish = np.full(n, np.inf)
    busy = np.zeros(n_rep)
    energy = 0.0
    qhead = np.full(n_rep, -1)
    qtail = np.full(n_rep, -1)
    nxt = np.full(n, -1)
    arrival = n
    for j in range(first_waiting, n):
        r = assigned[j]
        if r < 0:
            arrival = j
            break
        if qtail[r] < 0:
            qhead[r] = j
        else:
            nxt[qtail[r]] = j
        qtail[r] = j
    now = start
    for r in range(n_rep):
        if rep_from[r] <= now:
            _fill(r, now, origin, tokens, finish, keys, ids, running, clock, rep_cfg,
                  rep_limit, qhead, qtail, nxt, drop_limit_s)
    while True:
        t_done, r_done = np.inf, -1
        t_online, r_online = np.inf, -1
        for r in range(n_rep):
            k = running[r]
            if k > 0:
                t = now + (keys[r, 0] - clock[r]) / rate[rep_cfg[r], k]
                if t < t_done:
                    t_done, r_done = t, r
            if qhead[r] >= 0 and running[r] < rep_limit[r] and now < rep_from[r] < t_online:
                t_online, r_online = rep_from[r], r
        t_arrive = max(ready[arrival], now) if arrival < n else np.inf
        if t_arrive >= horizon:
            t_arrive = np.inf  # routed in a later interval
        if t_online >= horizon:
            t_online = np.inf
        t_next = min(t_done, t_arrive, t_online, horizon)
        dt = t_next - now
        for r in range(n_rep):
            k = running[r]
            if k > 0:
                c = rep_cfg[r]
                energy += dynamic_w[c, k] * dt
                busy[r] += k * dt
                clock[r] += rate[c, k] * dt
        now = t_next
        if t_done > horizon and t_arrive == np.inf and t_online == np.inf:
            break
        if t_done <= t_arrive and t_done <= t_online:
            finish[ids[r_done, 0]] = now
            _pop(keys, ids, r_done, running[r_done])
            running[r_done] -= 1
            _fill(r_done, now, origin, tokens, finish, keys, ids, running, clock, rep_cfg,
                  rep_limit, qhead, qtail, nxt, drop_limit_s)
        elif t_arrive <= t_online:
            j = arrival
            arrival += 1
            ready_only = False  # route to ready replicas; to loading ones if none is ready
            taking = 0
            for r in range(n_rep):
                if rep_from[r] <= now < rep_until[r]:
                    taking += 1
            if taking:
                ready_only = True
            else:
                for r in range(n_rep):
                    if now < rep_until[r]:
                        taking += 1
            pick = min(int(route_u[j] * taking), taking - 1)
            chosen = -1
            for r in range(n_rep):
                if now < rep_until[r] and (rep_from[r] <= now or not ready_only):
                    if pick == 0:
                        chosen = r
                        break
                    pick -= 1
            if chosen < 0:
                finish[j] = np.nan  # no replica takes requests: dropped
                continue
            assigned[j] = chosen
            if qtail[chosen] < 0:
                qhead[chosen] = j
            else:
                nxt[qtail[chosen]] = j
            qtail[chosen] = j
            if rep_from[chosen] <= now:
                _fill(chosen, now, origin, tokens, finish, keys, ids, running, clock,
                      rep_cfg, rep_limit, qhead, qtail, nxt, drop_limit_s)
        else:
            _fill(r_online, now, origin, tokens, finish, keys, ids, running, clock, rep_cfg,
                  rep_limit, qhead, qtail, nxt, drop_limit_s)
    return finish, energy, busy, qhead, nxt, arrival
