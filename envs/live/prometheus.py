"""A small client of Prometheus's HTTP API, and counter/histogram arithmetic on its answers.

Only what `envs.live.cluster_backend` needs: an instant query at a given time
(``GET /api/v1/query``), a readiness probe (``GET /-/ready``), per-series increases of
counters between two instant queries (counter resets and series that appear in between
handled the way Prometheus's ``increase`` does, without its extrapolation), and
``histogram_quantile``'s interpolation rule on bucket counts.
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
           "counter_increase"]

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
        """Raise `PrometheusError` unless ``/-/ready`` answers 200."""
        status, body = self._get("/-/ready")
        if status != 200:
            raise PrometheusError(f"Prometheus at {self.url} is not ready ({status} "
                                  f"{body[:200].decode(errors='replace').strip()})")

    def query(self, promql: str, at: float) -> Series:
        """Evaluate ``promql`` at unix time ``at``; every series of the instant vector (or
        the one value of a scalar, under no labels).

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
        """`query`, raising `PrometheusError` naming ``what`` when it returns no series."""
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
