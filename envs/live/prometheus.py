"""A small client of Prometheus's HTTP API, and counter/histogram arithmetic on its answers.

Only what `envs.live.cluster_backend` needs: an instant query at a given time
(``GET /api/v1/query``), a readiness probe (``GET /-/ready``), per-series increases of
counters between two instant queries (counter resets and series that appear in between
handled the way Prometheus's ``increase`` does, without its extrapolation), and
``histogram_quantile``'s interpolation rule on bucket counts, per stage and summed over
the stages (the pipeline's latency as the sum of its stages').
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence

from envs.live import LiveError

__all__ = ["PrometheusClient", "PrometheusError", "Series", "bucket_quantile",
           "counter_increase", "group_by", "share_above", "stage_histogram", "summed_quantile"]

Series = dict[tuple[tuple[str, str], ...], float]
"""Instant-query answer: the sorted label pairs of each series -> its value."""


class PrometheusError(LiveError):
    """Prometheus did not answer, refused a query, or a query returned no series."""


class PrometheusClient:
    """Instant queries against one Prometheus server.

    Args:
        url: Base URL, e.g. ``http://prometheus.monitoring:9090``.
        timeout_s: Socket timeout of each request.
    """

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise PrometheusError(f"Prometheus URL {url!r} must look like http://host:9090")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=self.timeout_s) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except (OSError, ValueError) as err:
            raise PrometheusError(f"Prometheus at {self.url} does not answer ({err}); check "
                                  "the URL and that the server runs") from None

    def check_ready(self) -> None:
        """Check that Prometheus answers ``/-/ready`` with 200.

        Raises:
            PrometheusError: If it does not.
        """
        status, body = self._get("/-/ready")
        if status != 200:
            raise PrometheusError(f"Prometheus at {self.url} is not ready ({status} "
                                  f"{body[:200].decode(errors='replace').strip()})")

    def query(self, promql: str, at: float) -> Series:
        """Evaluate ``promql`` at unix time ``at``.

        Args:
            promql: The query.
            at: Unix time of the evaluation.

        Returns:
            Every series of the instant vector (or the one value of a scalar, under no
            labels).

        Raises:
            PrometheusError: No answer, a refused query (with Prometheus's reason), or an
                answer that is not a vector or scalar.
        """
        params = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
        status, body = self._get(f"/api/v1/query?{params}")
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        if status != 200 or doc.get("status") != "success":
            reason = doc.get("error") or body[:200].decode(errors="replace")
            raise PrometheusError(f"Prometheus at {self.url} refused query {promql!r}: "
                                  f"{status} {reason}")
        data = doc["data"]
        if data["resultType"] == "scalar":
            return {(): float(data["result"][1])}
        if data["resultType"] != "vector":
            raise PrometheusError(f"query {promql!r} gave a {data['resultType']}; give one "
                                  "that yields an instant vector")
        return {tuple(sorted(item["metric"].items())): float(item["value"][1])
                for item in data["result"]}

    def require_series(self, promql: str, at: float, what: str) -> Series:
        """`query`, failing when it returns no series.

        Args:
            promql: The query.
            at: Unix time of the evaluation.
            what: What the query is for (named in the error).

        Returns:
            The series.

        Raises:
            PrometheusError: If there are none (or the query fails).
        """
        found = self.query(promql, at)
        if not found:
            raise PrometheusError(f"{what} query {promql!r} returned no series at "
                                  f"{self.url}; check that Prometheus scrapes the targets "
                                  "and the query's metric name and labels")
        return found


def counter_increase(before: Series, after: Series) -> Series:
    """Per-series increase of counters between two instant queries.

    A series absent ``before`` started in between (counted from 0); one whose value fell
    was reset (counted from 0 again); one absent ``after`` is left out (its last
    increments since ``before`` are lost: a replica removed during the interval).

    Args:
        before: The counters at the window's start.
        after: The counters at its end.

    Returns:
        The increase of each series present ``after``.
    """
    out: Series = {}
    for key, value in after.items():
        start = before.get(key, 0.0)
        out[key] = value - start if value >= start else value
    return out


def bucket_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float:
    """Quantile ``q`` of a histogram, by Prometheus's ``histogram_quantile`` rule.

    Args:
        q: In [0, 1].
        bounds: Upper bounds ``le`` ascending, the last one ``inf``.
        counts: Cumulative counts per bound.

    Returns:
        Linear interpolation within the bucket that holds rank ``q x total`` (the lowest
        bucket starts at 0); the highest finite bound if the rank falls in ``+Inf``; nan
        when the histogram is empty.
    """
    if not counts or counts[-1] <= 0:
        return math.nan
    rank = q * counts[-1]
    for i, (bound, count) in enumerate(zip(bounds, counts, strict=True)):
        if count >= rank:
            if math.isinf(bound):
                return float(bounds[i - 1]) if i > 0 else math.nan
            lower = bounds[i - 1] if i > 0 else 0.0
            below = counts[i - 1] if i > 0 else 0.0
            inside = count - below
            if inside <= 0:
                return float(bound)
            return float(lower + (bound - lower) * (rank - below) / inside)
    return float(bounds[-2]) if len(bounds) > 1 else math.nan


def group_by(series: Series, labels: tuple[str, ...]) -> dict[tuple[str, ...], float]:
    """Sum of the series grouped by the values of ``labels``.

    Args:
        series: An instant-query answer.
        labels: The label names to group by (a missing label counts as ``""``).

    Returns:
        Label values -> summed value.
    """
    out: dict[tuple[str, ...], float] = {}
    for key, value in series.items():
        d = dict(key)
        group = tuple(d.get(label, "") for label in labels)
        out[group] = out.get(group, 0.0) + value
    return out


def stage_histogram(buckets: Series, stage: str) -> tuple[list[float], list[float]]:
    """One stage's histogram over the window: bounds ascending, cumulative counts.

    Args:
        buckets: ``_bucket`` series (increases over the window), with ``stage`` and ``le``.
        stage: The stage label value.

    Returns:
        ``(bounds, cumulative counts)``, summed over the stage's series.
    """
    by_le: dict[float, float] = {}
    for key, value in buckets.items():
        d = dict(key)
        if d.get("stage") == stage and "le" in d:
            le = float(d["le"])
            by_le[le] = by_le.get(le, 0.0) + value
    bounds = sorted(by_le)
    return bounds, [by_le[b] for b in bounds]


def summed_quantile(hists: list[tuple[list[float], list[float]]], q: float) -> float:
    """Sum of the stages' quantile ``q`` (seconds; nan if a stage served nothing).

    Args:
        hists: Per stage, ``(bounds, cumulative counts)``.
        q: The quantile in [0, 1].

    Returns:
        The sum of `bucket_quantile` over the stages.
    """
    return sum(bucket_quantile(q, bounds, counts) for bounds, counts in hists)


def share_above(hists: list[tuple[list[float], list[float]]], limit_s: float) -> float:
    """Share of the summed-quantile distribution above ``limit_s`` (bisection on q).

    Args:
        hists: Per stage, ``(bounds, cumulative counts)``.
        limit_s: The limit (the SLA), in seconds.

    Returns:
        The share in [0, 1] (0 if a stage served nothing).
    """
    if any(not counts or counts[-1] <= 0 for _, counts in hists):
        return 0.0
    low, high = 0.0, 1.0
    if summed_quantile(hists, 1.0) <= limit_s:
        return 0.0
    for _ in range(30):  # q to about 1e-9
        mid = (low + high) / 2
        if summed_quantile(hists, mid) <= limit_s:
            low = mid
        else:
            high = mid
    return 1.0 - low if not math.isnan(low) else 0.0
