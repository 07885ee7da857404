"""What the pipeline driver records: each request's journey through the stages, and the
replicas it sends to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class Target(Protocol):
    """A replica the driver can send to (`envs.live.replica.Replica` is one)."""

    host: str
    port: int
    name: str
    inflight: int
    healthy: bool


@dataclass
class StageSample:
    """One stage visit of one request: when it was sent and answered, and the outcome."""

    request: int
    stage: int
    sent: float
    received: float
    outcome: str  # "served" | "dropped" | "error" | "unreachable" (nothing was sent)
    replica: str


@dataclass
class RequestRecord:
    """One request's journey.

    ``outcome`` is "served", "dropped" (its budget ran out; ``dropped_at`` is the stage) or
    "error" (a replica failed it; ``error_at`` is the stage, ``error`` what happened) once
    ``done`` is set.
    """

    id: int
    arrival: float
    done: float | None = None
    outcome: str = ""
    dropped_at: int | None = None
    error_at: int | None = None
    error: str = ""
    stages: list[StageSample] = field(default_factory=list)

    @property
    def latency_ms(self) -> float:
        """End-to-end latency: done minus arrival, in milliseconds."""
        assert self.done is not None
        return (self.done - self.arrival) * 1e3
