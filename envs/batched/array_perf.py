"""Array forms of the `envs.model.perf` functions the batched simulator
needs per second, element-wise over NumPy arrays.

Each function here is the same formula as its scalar namesake, written with ``np.where``
instead of ``if``; ``tests/test_batched_vecenv.py`` checks every one against the scalar
function on a grid of inputs (edge cases included), so the formulas keep one meaning.
Where the scalar code sums in a given order, these sum in the same order
(``np.cumsum``, not pairwise ``np.sum``), so results agree to the last bit.
"""

from __future__ import annotations

import numpy as np

from envs.model.fleet import DevicePool


def batch_fill_delay_ms(batch: np.ndarray, arrival_rps: np.ndarray, timeout_ms: float
                        ) -> np.ndarray:
    """`envs.model.perf.batch_fill_delay_ms` element-wise.

    Args:
        batch: Batch sizes.
        arrival_rps: Arrival rates at the stage.
        timeout_ms: Batching timeout.

    Returns:
        (b - 1) / rate in ms capped by the timeout; 0 for batch 1; the timeout at rate 0.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        fill = np.minimum((batch - 1) * 1000.0 / arrival_rps, timeout_ms)
    fill = np.where(arrival_rps <= 0.0, timeout_ms, fill)
    return np.where(batch <= 1, 0.0, fill)


def backlog_delay_ms(queued_requests: np.ndarray, throughput_rps: np.ndarray) -> np.ndarray:
    """`envs.model.perf.backlog_delay_ms` element-wise (infinite where a backlog has no capacity).

    Args:
        queued_requests: Requests waiting.
        throughput_rps: Capacity draining them.

    Returns:
        Drain time in ms.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        delay = queued_requests * 1000.0 / throughput_rps
    delay = np.where(throughput_rps <= 0.0, np.inf, delay)
    return np.where(queued_requests <= 0.0, 0.0, delay)


def expected_batch_size(batch: np.ndarray, arrival_rps: np.ndarray, timeout_ms: float
                        ) -> np.ndarray:
    """`envs.model.power.expected_batch_size` element-wise.

    Args:
        batch: Batch sizes.
        arrival_rps: Arrival rates.
        timeout_ms: Batching timeout (inf: batches always fill).

    Returns:
        Mean size of the batches formed.
    """
    batch = np.asarray(batch, dtype=np.float64)
    if np.isinf(timeout_ms):
        return batch
    partial = np.minimum(batch, 1.0 + np.maximum(arrival_rps, 0.0) * timeout_ms / 1e3)
    return np.where(batch <= 1, batch, partial)


def energy_per_request_j(energy_by_batch: np.ndarray, row: np.ndarray, batch: np.ndarray,
                         arrival_rps: np.ndarray, timeout_ms: float) -> np.ndarray:
    """`envs.model.power.energy_per_request_j` element-wise, from a table of batch energies.

    Args:
        energy_by_batch: ``[r, k]`` = `envs.model.power.batch_energy_j` of configuration ``r`` at
            batch size ``k`` (column 0 unused).
        row: Configuration of each element (row of ``energy_by_batch``).
        batch: Batch size of each element.
        arrival_rps: Arrival rate of each element.
        timeout_ms: Batching timeout.

    Returns:
        Dynamic energy per request when batches hold `expected_batch_size` requests.
    """
    k = expected_batch_size(batch, arrival_rps, timeout_ms)
    lo = np.maximum(np.floor(k).astype(np.int64), 1)
    hi = np.minimum(lo + 1, batch)
    e_lo = energy_by_batch[row, lo]
    e_hi = energy_by_batch[row, hi]
    e_k = np.where(hi == lo, e_lo, e_lo + (k - lo) * (e_hi - e_lo))
    return e_k / k


def powered_nodes(pool: DevicePool, devices: np.ndarray) -> np.ndarray:
    """`envs.model.node_power.powered_nodes` element-wise.

    Args:
        pool: The device pool (devices per node, nodes always on).
        devices: Allocated devices of the pool.

    Returns:
        Nodes powered (int64).
    """
    needed = np.where(devices > 0, np.ceil(devices / pool.devices_per_node - 1e-9), 0.0)
    return np.maximum(pool.always_on, needed.astype(np.int64))


def replicas_for_rate(throughput_rps: np.ndarray, rate_rps: np.ndarray) -> np.ndarray:
    """`envs.model.perf.replicas_for_rate` element-wise, from per-replica throughputs.

    Args:
        throughput_rps: `envs.model.perf.replica_throughput_rps` of each element's configuration.
        rate_rps: The rate to serve.

    Returns:
        Fewest replicas (at least one) whose stage throughput reaches the rate (int64).
    """
    n = np.maximum(1, np.ceil(rate_rps / throughput_rps)).astype(np.int64)
    while np.any(grow := n * throughput_rps < rate_rps):  # rounding guards, as perf's
        n = n + grow
    while np.any(shrink := (n > 1) & ((n - 1) * throughput_rps >= rate_rps)):
        n = n - shrink
    return n
