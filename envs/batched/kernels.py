"""Compiled loops of the batched fluid simulator: the fluid queues of
`FluidBackend.run_interval` and its sums over seconds and stages.

No `envs.model.perf` formula is re-typed here (those run as array operations,
`envs.batched.array_perf`, or are `envs.model.perf`'s own functions compiled with numba, as
`envs.model.perf.late_fraction`): only the queue recursion, sums in the order `FluidBackend`
adds them (so results agree to the last bit) and `weighted_quantile`, which
``tests/test_batched_vecenv.py`` checks against `envs.backends.base.weighted_quantile`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from envs.backends import queue_age
from envs.model import perf

late_fraction = numba.njit(cache=True)(perf.late_fraction)
fluid_oldest_wait_s = numba.njit(cache=True)(queue_age.fluid_oldest_wait_s)


@numba.njit(cache=True)
def queue_recursion(arrivals: np.ndarray, cap: np.ndarray, queues: np.ndarray,
                    drop_limit_s: float, inflow: np.ndarray, backlog: np.ndarray,
                    served: np.ndarray, dropped: np.ndarray) -> None:
    """The fluid queues of `FluidBackend.run_interval`, second by second, stage by stage.

    Args:
        arrivals: ``(env, second)`` arrivals at the first stage.
        cap: ``(env, stage, second)`` capacity in requests per second.
        queues: ``(env, stage)`` backlog; updated in place.
        drop_limit_s: What waits longer than this (at the larger of capacity and inflow)
            is dropped.
        inflow: Out: ``(env, stage, second)`` requests arriving at the stage.
        backlog: Out: the backlog the second starts with.
        served: Out: requests served (the next stage's inflow).
        dropped: Out: requests dropped.
    """
    n, n_s, seconds = cap.shape
    for e in range(n):
        for j in range(seconds):
            rate = arrivals[e, j]
            for k in range(n_s):
                c = cap[e, k, j]
                queued = queues[e, k]
                waiting = queued + rate
                out = waiting if waiting < c else c
                left = waiting - out
                limit = (c if c > rate else rate) * drop_limit_s
                drop = 0.0
                if left > limit:
                    drop = left - limit
                    left = limit
                queues[e, k] = left
                inflow[e, k, j], backlog[e, k, j] = rate, queued
                served[e, k, j], dropped[e, k, j] = out, drop
                rate = out


@numba.njit(cache=True)
def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """`envs.backends.base.weighted_quantile` of one row (same sort, same sums).

    Args:
        values: The values.
        weights: Their weights.
        q: The quantile in [0, 1].

    Returns:
        The weighted quantile (nan if no weight).
    """
    n = values.shape[0]
    total = 0.0
    for i in range(n):
        total += weights[i]
    if total <= 0.0:
        return math.nan
    order = np.arange(n)
    for i in range(1, n):  # insertion sort by (value, weight), as sorted(zip(...))
        cur = order[i]
        m = i - 1
        while m >= 0 and (values[order[m]] > values[cur] or (
                values[order[m]] == values[cur] and weights[order[m]] > weights[cur])):
            order[m + 1] = order[m]
            m -= 1
        order[m + 1] = cur
    target = q * total
    cumulative = 0.0
    for i in range(n):
        cumulative += weights[order[i]]
        if cumulative >= target and weights[order[i]] > 0.0:
            return values[order[i]]
    return values[order[n - 1]]


@numba.njit(cache=True)
def interval_sums(arrivals: np.ndarray, served: np.ndarray, dropped: np.ndarray,
                  cap: np.ndarray, e_req: np.ndarray, stage_ms: np.ndarray,
                  lat50_ms: np.ndarray, sla_ms: float) -> tuple[np.ndarray, ...]:
    """`FluidBackend.run_interval`'s sums and quantiles for every env.

    Args:
        arrivals: ``(env, second)`` arrivals.
        served, dropped, cap: ``(env, stage, second)`` requests served, dropped, capacity.
        e_req: ``(env, stage, second)`` dynamic J per request served.
        stage_ms: ``(env, stage, second)`` stage latency (backlog + fill + p99).
        lat50_ms: ``(env, stage, second)`` the stage's part of the median latency.
        sla_ms: End-to-end SLA.

    Returns:
        Per env: arrived, served, dropped, late (SLA-violating served requests), dynamic
        J, e2e p50 and p99; per env and stage: dropped, served, capacity, p99.
    """
    n, n_s, seconds = served.shape
    arrived, out_total, drop_total = np.zeros(n), np.zeros(n), np.zeros(n)
    late, dynamic, p50, p99 = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    st_drop, st_served = np.zeros((n, n_s)), np.zeros((n, n_s))
    st_cap, st_p99 = np.zeros((n, n_s)), np.zeros((n, n_s))
    e2e99, e2e50 = np.zeros(seconds), np.zeros(seconds)
    for e in range(n):
        for j in range(seconds):
            arrived[e] += arrivals[e, j]
            lat99 = 0.0
            lat50 = 0.0
            for k in range(n_s):
                st_drop[e, k] += dropped[e, k, j]
                st_served[e, k] += served[e, k, j]
                st_cap[e, k] += cap[e, k, j]
                dynamic[e] += served[e, k, j] * e_req[e, k, j]
                lat99 += stage_ms[e, k, j]
                lat50 += lat50_ms[e, k, j]
            e2e99[j], e2e50[j] = lat99, lat50
            out = served[e, n_s - 1, j]
            out_total[e] += out
            if lat99 > sla_ms:  # (late_fraction is 0 otherwise, as in FluidBackend)
                late[e] += out * late_fraction(lat50, lat99, sla_ms)
        for k in range(n_s):
            drop_total[e] += st_drop[e, k]
            st_p99[e, k] = weighted_quantile(stage_ms[e, k], served[e, k], 0.99)
        p50[e] = weighted_quantile(e2e50, served[e, n_s - 1], 0.5)
        p99[e] = weighted_quantile(e2e99, served[e, n_s - 1], 0.99)
    return (arrived, out_total, drop_total, late, dynamic, p50, p99, st_drop, st_served,
            st_cap, st_p99)


@numba.njit(cache=True)
def per_second_groups(now: np.ndarray, seconds: int, count: np.ndarray, rates: np.ndarray,
                      window: np.ndarray) -> tuple[np.ndarray, ...]:
    """`FluidBackend._per_second` of every env and stage over arbitrary replica groups.

    Args:
        now: ``(env,)`` the interval's start.
        seconds: Length of the interval.
        count: ``(env, stage, group)`` replicas of each group (0: no group).
        rates: ``(5, env, stage, group)`` one replica's throughput, the p99, mean and J per
            request (full batches) and the batch size of each group's configuration.
        window: ``(2, env, stage, group)`` when each group starts and stops serving.

    Returns:
        ``(env, stage, second)`` capacity, p99 ms, mean ms, J per request, batch size.
    """
    n, n_s, n_g = count.shape
    cap = np.zeros((n, n_s, seconds))
    p99, mean, e_req = np.zeros_like(cap), np.zeros_like(cap), np.zeros_like(cap)
    batch = np.ones((n, n_s, seconds), dtype=np.int64)
    for e in range(n):
        for k in range(n_s):
            for j in range(seconds):
                t0 = now[e] + j
                t1 = t0 + 1.0
                c_sum = p_sum = m_sum = e_sum = 0.0
                size = 1
                for g in range(n_g):
                    if count[e, k, g] == 0:
                        continue
                    frac = min(t1, window[1, e, k, g]) - max(t0, window[0, e, k, g])
                    if frac <= 0.0:
                        continue
                    c = (count[e, k, g] * rates[0, e, k, g]) * min(frac, 1.0)
                    c_sum += c
                    p_sum += c * rates[1, e, k, g]
                    m_sum += c * rates[2, e, k, g]
                    e_sum += c * rates[3, e, k, g]
                    size = int(rates[4, e, k, g])
                if c_sum > 0.0:
                    p_sum, m_sum, e_sum = p_sum / c_sum, m_sum / c_sum, e_sum / c_sum
                cap[e, k, j], p99[e, k, j], mean[e, k, j] = c_sum, p_sum, m_sum
                e_req[e, k, j], batch[e, k, j] = e_sum, size
    return cap, p99, mean, e_req, batch


@numba.njit(cache=True)
def oldest_wait(inflow: np.ndarray, queues: np.ndarray, previous_s: np.ndarray) -> np.ndarray:
    """`envs.backends.queue_age.fluid_oldest_wait_s` of every env and stage.

    Args:
        inflow: ``(env, stage, second)`` requests reaching each stage.
        queues: ``(env, stage)`` the queues at the interval's end.
        previous_s: ``(env, stage)`` the ages at the interval before.

    Returns:
        ``(env, stage)`` ages in seconds.
    """
    n, n_s, _ = inflow.shape
    out = np.zeros((n, n_s))
    for e in range(n):
        for k in range(n_s):
            out[e, k] = fluid_oldest_wait_s(inflow[e, k], queues[e, k], previous_s[e, k])
    return out
