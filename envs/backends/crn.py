"""Common random numbers of the request-level simulator (`envs.backends.requests`).

A simulator seed fixes every random number before the episode, so
every policy on that seed sees the same requests. Arrival times come from a generator
used for nothing else (the same trace gives the same times whatever the policy does), and
the service-time draw of a batch is its first request's draw at that stage, a pure
function of the request's arrival time, the stage and the seed (`service_draws`), not of
how many batches ran before.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def crn_streams(seed: int | None) -> tuple[np.random.Generator, np.uint64]:
    """The random numbers of one simulator seed: the arrival-time generator and the key of
    the service-time draws (`service_draws`). A None seed draws fresh entropy.

    Args:
        seed: The simulator seed (the env passes one derived from its reset seed).

    Returns:
        ``(arrival_rng, service_key)``.
    """
    sequence = np.random.SeedSequence(seed)
    arrivals, service = sequence.spawn(2)
    return np.random.default_rng(arrivals), np.uint64(service.generate_state(1, np.uint64)[0])


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, element-wise on uint64 (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniform_draws(origin_s: np.ndarray, stream: int, key: np.uint64) -> np.ndarray:
    """Uniform draws in [0, 1), one per request, fixed by (arrival time, stream, key).

    Args:
        origin_s: Pipeline arrival time of each request (seconds, float64).
        stream: Which draw of the request (a stage's service time, its token lengths, ...).
        key: The seed's service key (`crn_streams`).

    Returns:
        Uniform draws aligned with ``origin_s``.
    """
    bits = np.ascontiguousarray(origin_s, dtype=np.float64).view(np.uint64)
    with np.errstate(over="ignore"):
        mixed = _splitmix64(bits ^ key ^ (np.uint64(stream + 1) * _GOLDEN))
    return (mixed >> np.uint64(11)).astype(np.float64) * 2.0**-53


def service_draws(origin_s: np.ndarray, stage: int, key: np.uint64) -> np.ndarray:
    """Unit-mean exponential draws, one per request, fixed by (arrival time, stage, key).

    Args:
        origin_s: Pipeline arrival time of each request (seconds, float64).
        stage: Stage index.
        key: The seed's service key (`crn_streams`).

    Returns:
        Standard exponential draws aligned with ``origin_s``.
    """
    return -np.log1p(-uniform_draws(origin_s, stage, key))
