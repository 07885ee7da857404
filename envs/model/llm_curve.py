"""One LLM replica under continuous batching, from its measured saturation points.

ML.ENERGY ran every concurrency cap (vLLM's ``max_num_seqs``) at ``request_rate=inf``, so
each cap is one measured point of the replica at a concurrency ``n``: the mean number of
running requests (``avg_batch_size``; equal to the cap except where memory binds first,
e.g. Llama-3.1-8B on one H100 at cap 768 ran 691), the output token rate ``R(n)``, the
GPUs' power ``P(n)`` and the inter-token latency quantiles. The cap only bounds ``n``: a
replica running 50 requests behaves alike whatever its cap, so the points of all caps
form one curve per (model, GPU type, GPUs per replica).

The curve between and beyond the points (each rule labelled):

* between two measured concurrencies: linear in ``ln n`` (piecewise linear, so it never
  leaves the range of its two neighbours: a monotone interpolation; **estimated**);
* below the smallest measured concurrency ``n1``: each running request keeps the
  per-request token rate ``R(n1) / n1`` and the inter-token latency of ``n1`` (decoding
  is memory-bound at small batches, so a sequence's speed barely changes; **assumed**,
  e.g. Llama-3.1-8B on an H100: median ITL 7.3 ms at cap 8 and 7.9 ms at cap 16), and the
  power follows the first segment's slope in ``ln n`` down, clamped between the idle
  power and ``P(n1)`` (**assumed**);
* ``P(0)`` is the replica's idle power (its GPUs' idle power, a parameter of the
  hardware: **assumed** or **cited** there);
* above the largest point: nothing (a cap is a measured knob; `running_limit`).

Two rules for data that is not a clean curve:

* **duplicates** (two rows for one cap, e.g. Qwen3-30B-A3B on 2 x H100 at cap 256): the
  rows are two measurements of one setting, and every quantity is their mean
  (`merge_duplicate_caps`);
* **non-monotone** points (e.g. B200 Llama-3.1-8B: 4570 tokens/s at cap 128 below 5589 at
  cap 64): kept as measured, so the model reproduces every measured cap, and reported by
  `LlmCurve.dips` (the importer writes them into the profile's notes).

Input (prefill) tokens are not timed separately by ML.ENERGY: their cost is inside the
measured output rate and power, at the prompt mix of the benchmark's dataset
(**assumed**: a workload with longer prompts is charged the same per output token, an
under-estimate of its time and energy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from envs.config.errors import ProfileError

QUANTITIES = ("tokens_per_s", "power_w", "itl_median_ms", "itl_p99_ms")


@dataclass(frozen=True)
class CapPoint:
    """One measured cap of an LLM replica, at saturation.

    Attributes:
        cap: The concurrency cap (``max_num_seqs``).
        concurrency: Mean running requests measured at that cap (``avg_batch_size``).
        tokens_per_s: Output tokens per second of the replica.
        power_w: Mean power of the replica's GPUs together (W).
        itl_median_ms: Median inter-token latency.
        itl_p99_ms: 99th-percentile inter-token latency.
    """

    cap: int
    concurrency: float
    tokens_per_s: float
    power_w: float
    itl_median_ms: float
    itl_p99_ms: float

    def __post_init__(self) -> None:
        for name in ("concurrency",) + QUANTITIES:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ProfileError(f"LLM cap {self.cap}: {name} must be a finite number > 0, "
                                   f"got {value!r}")
        if self.cap < 1 or self.concurrency > self.cap * 1.01:
            raise ProfileError(f"LLM cap {self.cap}: the cap must be >= 1 and the measured "
                               f"concurrency ({self.concurrency}) at most the cap")


def merge_duplicate_caps(points: Sequence[CapPoint]) -> list[CapPoint]:
    """One point per cap: rows measured twice for one cap become their mean.

    Args:
        points: Measured points, in any order.

    Returns:
        The points sorted by cap, each cap once (every quantity the mean of its rows).
    """
    by_cap: dict[int, list[CapPoint]] = {}
    for p in points:
        by_cap.setdefault(p.cap, []).append(p)
    merged = []
    for cap in sorted(by_cap):
        rows = by_cap[cap]
        merged.append(CapPoint(cap, *(float(np.mean([getattr(r, f) for r in rows]))
                                      for f in ("concurrency",) + QUANTITIES)))
    return merged


@dataclass(frozen=True)
class LlmCurve:
    """Token rate, power and inter-token latency of one replica as functions of the
    number of running requests (the module docstring gives every rule).

    Attributes:
        points: Measured points, one per cap, sorted by cap (`merge_duplicate_caps`).
        idle_w: Power of the replica with nothing running (its GPUs' idle power, W).
        max_running: Most requests the replica admits at once whatever its cap (a serving
            system's admission limit that keeps a per-token latency target: the largest
            ``n`` whose inter-token latency meets it, `tpot_running_limit`); None: no limit.
    """

    points: tuple[CapPoint, ...]
    idle_w: float
    max_running: int | None = None

    def __post_init__(self) -> None:
        if not self.points:
            raise ProfileError("an LLM curve needs at least one measured cap")
        caps = [p.cap for p in self.points]
        if caps != sorted(set(caps)):
            raise ProfileError(f"LLM caps {caps} must be distinct and in increasing order; "
                               "merge duplicates (merge_duplicate_caps) and sort them")
        conc = [p.concurrency for p in self.points]
        if any(b <= a for a, b in zip(conc, conc[1:], strict=False)):
            raise ProfileError(f"LLM caps {caps}: the measured concurrencies {conc} must "
                               "increase with the cap")
        if not (math.isfinite(self.idle_w) and 0 <= self.idle_w <= self.points[0].power_w):
            raise ProfileError(f"LLM idle power {self.idle_w} W must be between 0 and the "
                               f"smallest cap's power {self.points[0].power_w} W")
        if self.max_running is not None and not (
                isinstance(self.max_running, int) and not isinstance(self.max_running, bool)
                and self.max_running >= 1):
            raise ProfileError(f"LLM max_running must be an integer >= 1, got "
                               f"{self.max_running!r}")

    @property
    def caps(self) -> tuple[int, ...]:
        """The measured caps, increasing."""
        return tuple(p.cap for p in self.points)

    def running_limit(self, cap: int) -> int:
        """How many requests a replica with this cap runs at once: the measured mean
        concurrency at saturation, rounded (memory, not the cap, binds above it), and at
        most `max_running`.

        Args:
            cap: One of the measured caps.

        Raises:
            ProfileError: The cap was not measured.
        """
        for p in self.points:
            if p.cap == cap:
                measured = max(1, round(p.concurrency))
                return measured if self.max_running is None else min(measured,
                                                                     self.max_running)
        raise ProfileError(f"LLM cap {cap} was not measured; measured caps: {list(self.caps)}")

    def _between(self, n: float, name: str) -> float:
        xs = np.log([p.concurrency for p in self.points])
        ys = [getattr(p, name) for p in self.points]
        return float(np.interp(math.log(n), xs, ys))

    def tokens_per_s(self, n: float) -> float:
        """Output tokens per second of the replica with ``n`` running requests.

        Args:
            n: Running requests (0 or more; fractional between integers).
        """
        first = self.points[0]
        if n <= 0:
            return 0.0
        if n < first.concurrency:
            return first.tokens_per_s * n / first.concurrency
        return self._between(n, "tokens_per_s")

    def power_w(self, n: float) -> float:
        """Power of the replica's GPUs with ``n`` running requests (``P(0)`` = idle).

        Args:
            n: Running requests.
        """
        first = self.points[0]
        if n <= 0:
            return self.idle_w
        if n >= first.concurrency:
            return self._between(n, "power_w")
        slope = 0.0
        if len(self.points) > 1:
            second = self.points[1]
            slope = max(0.0, (second.power_w - first.power_w)
                        / math.log(second.concurrency / first.concurrency))
        guess = first.power_w + slope * math.log(n / first.concurrency)
        return min(first.power_w, max(self.idle_w, guess))

    def itl_ms(self, n: float, quantile: str = "median") -> float:
        """Inter-token latency with ``n`` running requests.

        Args:
            n: Running requests.
            quantile: ``median`` or ``p99``.
        """
        name = {"median": "itl_median_ms", "p99": "itl_p99_ms"}[quantile]
        return self._between(max(n, self.points[0].concurrency), name)

    def rate_table(self, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-request token rate and replica power for ``n = 0 .. limit`` running.

        Args:
            limit: The largest ``n`` (`running_limit` of the cap in use).

        Returns:
            ``(per_request_tokens_per_s, power_w)``, each of length ``limit + 1``; entry
            ``n`` is ``R(n) / n`` (0 at ``n = 0``) and ``P(n)``.
        """
        n = np.arange(limit + 1)
        rate = np.array([self.tokens_per_s(k) / k if k else 0.0 for k in n])
        power = np.array([self.power_w(k) for k in n])
        return rate, power

    def dips(self) -> list[tuple[int, str, float]]:
        """Measured points below the point of a smaller cap (kept as measured).

        Returns:
            ``(cap, quantity, drop)`` for each: ``drop`` is the fraction by which
            ``tokens_per_s`` falls below the largest value at a smaller cap.
        """
        out, best = [], 0.0
        for p in self.points:
            if p.tokens_per_s < best:
                out.append((p.cap, "tokens_per_s", 1.0 - p.tokens_per_s / best))
            best = max(best, p.tokens_per_s)
        return out


def tpot_running_limit(curve: LlmCurve, tpot_ms: float, quantity: str = "median"
                       ) -> int | None:
    """The most requests a replica may run at once so that its inter-token latency stays
    within ``tpot_ms``: the largest ``n`` up to the largest measured concurrency such that
    every ``k <= n`` has ``itl_ms(k) <= tpot_ms`` (the curve's ITL is piecewise linear in
    ``ln n`` and flat below the first point, so the search is over integers; where measured
    ITL dips, a limit past the dip would let a replica run through counts that miss it).

    Args:
        curve: The replica's curve (its ``max_running`` is ignored).
        tpot_ms: The per-token latency target.
        quantity: Which ITL the target applies to (``median`` or ``p99``).

    Returns:
        The limit, or None where even the smallest measured concurrency misses the target
        (the variant cannot meet it).
    """
    limit = None
    for n in range(1, max(1, round(curve.points[-1].concurrency)) + 1):
        if curve.itl_ms(n, quantity) > tpot_ms:
            break
        limit = n
    return limit


def leave_one_out(points: Sequence[CapPoint], idle_w: float) -> list[dict[str, float]]:
    """Predict each interior cap from the others: the interpolation's error on data it did
    not see.

    Args:
        points: The measured points of one replica (merged, sorted).
        idle_w: The replica's idle power.

    Returns:
        Per interior cap: ``cap`` and the relative error (prediction / measured - 1) of
        ``tokens_per_s``, ``power_w`` and ``itl_median_ms``.
    """
    rows = []
    for i in range(1, len(points) - 1):
        rest = LlmCurve(tuple(points[:i]) + tuple(points[i + 1:]), idle_w)
        p = points[i]
        rows.append({"cap": p.cap,
                     "tokens_per_s": rest.tokens_per_s(p.concurrency) / p.tokens_per_s - 1,
                     "power_w": rest.power_w(p.concurrency) / p.power_w - 1,
                     "itl_median_ms": rest.itl_ms(p.concurrency) / p.itl_median_ms - 1})
    return rows
