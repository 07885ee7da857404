"""The stage servers' metrics: their counters, rendered in the Prometheus text format
(``stage_server_*``), and a parser of that format (what `LiveBackend` and the tests read).
"""

from __future__ import annotations

import threading
from typing import Protocol


class ServedConfig(Protocol):
    """What the metrics label a replica's configuration with (`ServerConfig` has it)."""

    variant: str
    batch: int
    cores: int
    max_wait_ms: float

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                     10.0)


class Metrics:
    """Counters of one replica, rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.served = 0
        self.dropped = 0
        self.batches = 0
        self.batch_sizes: dict[int, int] = {}
        self.busy_s = 0.0
        self.switches = 0
        self.latency_counts = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.latency_sum_s = 0.0

    def record_batch(self, size: int, service_s: float, latencies_s: list[float]) -> None:
        """Count one computed batch.

        Args:
            size: Requests in the batch.
            service_s: Its compute time.
            latencies_s: Queueing plus compute of each of its requests.
        """
        with self.lock:
            self.served += size
            self.batches += 1
            self.batch_sizes[size] = self.batch_sizes.get(size, 0) + 1
            self.busy_s += service_s
            for lat in latencies_s:
                self.latency_sum_s += lat
                i = next((k for k, b in enumerate(LATENCY_BUCKETS_S) if lat <= b),
                         len(LATENCY_BUCKETS_S))
                self.latency_counts[i] += 1

    def render(self, config: ServedConfig, queue_length: int, stage: str) -> str:
        """The metrics as Prometheus exposition text.

        Args:
            config: The configuration in force (labels).
            queue_length: Requests waiting now.
            stage: The stage name (label).

        Returns:
            The exposition text.
        """
        lab = f'stage="{stage}",variant="{config.variant}"'
        with self.lock:
            lines = [
                "# HELP stage_server_requests_total Requests answered, by result.",
                "# TYPE stage_server_requests_total counter",
                f'stage_server_requests_total{{{lab},result="served"}} {self.served}',
                f'stage_server_requests_total{{{lab},result="dropped"}} {self.dropped}',
                "# HELP stage_server_batches_total Batches computed.",
                "# TYPE stage_server_batches_total counter",
                f"stage_server_batches_total{{{lab}}} {self.batches}",
                "# HELP stage_server_batch_size_total Batches computed, by actual size.",
                "# TYPE stage_server_batch_size_total counter",
                *(f'stage_server_batch_size_total{{{lab},size="{k}"}} {n}'
                  for k, n in sorted(self.batch_sizes.items())),
                "# HELP stage_server_queue_length Requests waiting for a batch.",
                "# TYPE stage_server_queue_length gauge",
                f"stage_server_queue_length{{{lab}}} {queue_length}",
                "# HELP stage_server_busy_seconds_total Seconds spent computing batches.",
                "# TYPE stage_server_busy_seconds_total counter",
                f"stage_server_busy_seconds_total{{{lab}}} {self.busy_s:.6f}",
                "# HELP stage_server_switches_total Model swaps (variant or cores changes).",
                "# TYPE stage_server_switches_total counter",
                f"stage_server_switches_total{{{lab}}} {self.switches}",
                "# HELP stage_server_config_info The configuration in force.",
                "# TYPE stage_server_config_info gauge",
                f'stage_server_config_info{{{lab},batch="{config.batch}",'
                f'cores="{config.cores}",max_wait_ms="{config.max_wait_ms:g}"}} 1',
                "# HELP stage_server_request_latency_seconds Queueing plus compute, per "
                "served request.",
                "# TYPE stage_server_request_latency_seconds histogram",
            ]
            cumulative = 0
            for bound, count in zip((*LATENCY_BUCKETS_S, "+Inf"), self.latency_counts,
                                    strict=True):
                cumulative += count
                lines.append(f'stage_server_request_latency_seconds_bucket{{{lab},'
                             f'le="{bound}"}} {cumulative}')
            lines.append(f"stage_server_request_latency_seconds_sum{{{lab}}} "
                         f"{self.latency_sum_s:.6f}")
            lines.append(f"stage_server_request_latency_seconds_count{{{lab}}} {self.served}")
        return "\n".join(lines) + "\n"


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Samples of a Prometheus text exposition.

    Args:
        text: The exposition text.

    Returns:
        ``(name, labels, value)`` per sample.
    """
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels = {}
        for part in rest.rstrip("}").split(","):
            if "=" in part:
                key, _, val = part.partition("=")
                labels[key.strip()] = val.strip().strip('"')
        samples.append((name, labels, float(value)))
    return samples


def metric_sum(samples: list[tuple[str, dict[str, str], float]], name: str,
               **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``.

    Args:
        samples: Parsed samples (`parse_metrics`).
        name: Metric name.
        **labels: Label values to match.

    Returns:
        The sum (0 if none match).
    """
    return sum(v for n, lab, v in samples
               if n == name and all(lab.get(k) == want for k, want in labels.items()))
