"""Continuous batching of one LLM replica: processor sharing with a cap, in event time.

A request starts at once while fewer than ``limit`` run (FIFO queue beyond); while ``n``
run, each receives ``R(n) / n`` output tokens per second (`envs.model.llm_curve`), and it
finishes when it has received its output tokens. The replica draws ``P(n)`` watts, so its
energy is the integral of ``P(n(t))``.

Every running request receives the same rate, so one virtual clock ``V`` (tokens
received by any request running since the clock started) orders all completions: a
request starting at ``V0`` with ``L`` tokens finishes when ``V = V0 + L``. The running
requests sit in a binary heap by that finish value: an arrival or a completion costs
``O(log n)``, whatever the cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from envs.config.errors import ConfigError
from envs.model.llm_curve import LlmCurve


@numba.njit(cache=True)
def _sift_up(keys: np.ndarray, ids: np.ndarray, i: int) -> None:
    while i > 0:
        parent = (i - 1) // 2
        if keys[parent] <= keys[i]:
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        ids[parent], ids[i] = ids[i], ids[parent]
        i = parent


@numba.njit(cache=True)
def _sift_down(keys: np.ndarray, ids: np.ndarray, size: int) -> None:
    i = 0
    while True:
        left, smallest = 2 * i + 1, i
        if left < size and keys[left] < keys[smallest]:
            smallest = left
        if left + 1 < size and keys[left + 1] < keys[smallest]:
            smallest = left + 1
        if smallest == i:
            return
        keys[smallest], keys[i] = keys[i], keys[smallest]
        ids[smallest], ids[i] = ids[i], ids[smallest]
        i = smallest


@numba.njit(cache=True)
def _serve(arrivals_s: np.ndarray, tokens: np.ndarray, limit: int, rate: np.ndarray,
           power: np.ndarray, start_s: float, end_s: float
           ) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    n_req = arrivals_s.shape[0]
    started = np.full(n_req, np.inf)
    finished = np.full(n_req, np.inf)
    keys = np.empty(limit)
    ids = np.empty(limit, np.int64)
    running = 0
    clock = 0.0  # the virtual clock V
    now = start_s
    energy = 0.0
    busy_n_s = 0.0  # integral of n(t) dt
    served_tokens = 0.0
    next_arrival = 0
    queue_head = 0  # requests [queue_head, next_arrival) have arrived and wait
    while True:
        t_done = np.inf
        if running > 0:
            t_done = now + (keys[0] - clock) / rate[running]
        t_arrive = arrivals_s[next_arrival] if next_arrival < n_req else np.inf
        t_next = min(t_done, t_arrive, end_s)
        if t_next == np.inf:
            break
        dt = t_next - now
        energy += power[running] * dt
        busy_n_s += running * dt
        served_tokens += rate[running] * running * dt
        clock += rate[running] * dt
        now = t_next
        if t_next == end_s and t_done > end_s and t_arrive > end_s:
            break
        if t_done <= t_arrive:
            finished[ids[0]] = now
            running -= 1
            keys[0], ids[0] = keys[running], ids[running]
            _sift_down(keys, ids, running)
            if queue_head < next_arrival:
                j = queue_head
                queue_head += 1
                started[j] = now
                keys[running], ids[running] = clock + tokens[j], j
                running += 1
                _sift_up(keys, ids, running - 1)
        else:
            j = next_arrival
            next_arrival += 1
            if running < limit:
                queue_head += 1
                started[j] = now
                keys[running], ids[running] = clock + tokens[j], j
                running += 1
                _sift_up(keys, ids, running - 1)
    return started, finished, energy, busy_n_s, served_tokens


@dataclass(frozen=True)
class ReplicaRun:
    """What one replica did over ``[start_s, end_s)``.

    Attributes:
        started_s: When each request started running (inf: still queued at the end).
        finished_s: When each request finished (inf: not finished by the end).
        energy_j: Integral of the replica's power over the span (idle included).
        seconds: Length of the span.
        mean_running: Time-average of the number of running requests.
        output_tokens: Output tokens served in the span.
    """

    started_s: np.ndarray
    finished_s: np.ndarray
    energy_j: float
    seconds: float
    mean_running: float
    output_tokens: float


def serve_replica(curve: LlmCurve, cap: int, arrivals_s: np.ndarray, output_tokens: np.ndarray,
                  start_s: float = 0.0, end_s: float = math.inf) -> ReplicaRun:
    """Serve requests on one replica under continuous batching.

    Args:
        curve: The replica's measured curve.
        cap: The concurrency cap in use (one of ``curve.caps``).
        arrivals_s: Arrival time of each request, non-decreasing, at or after ``start_s``.
        output_tokens: Output tokens each request needs (>= 1).
        start_s: When the span starts (the replica is empty then).
        end_s: When it ends; ``inf`` runs until every request has finished.

    Returns:
        The requests' start and finish times, the energy and the token count.

    Raises:
        ConfigError: Arrivals out of order or before ``start_s``, or a length below 1.
    """
    arrivals = np.ascontiguousarray(arrivals_s, dtype=np.float64)
    tokens = np.ascontiguousarray(output_tokens, dtype=np.float64)
    if arrivals.shape != tokens.shape:
        raise ConfigError(f"{arrivals.size} arrivals but {tokens.size} output lengths; give "
                          "one length per request")
    if arrivals.size and (np.any(np.diff(arrivals) < 0) or arrivals[0] < start_s):
        raise ConfigError("arrival times must be sorted and at or after start_s")
    if np.any(~(tokens >= 1)):
        raise ConfigError("every request needs at least 1 output token")
    limit = curve.running_limit(cap)
    rate, power = curve.rate_table(limit)
    started, finished, energy, busy, served = _serve(arrivals, tokens, limit, rate, power,
                                                    float(start_s), float(end_s))
    last = end_s if math.isfinite(end_s) else float(np.max(finished, initial=start_s))
    seconds = last - start_s
    return ReplicaRun(started, finished, energy, seconds, busy / seconds if seconds else 0.0,
                      served)
