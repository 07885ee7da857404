"""`LiveBackend`'s background work: the supervisor thread, the probes it sends to replicas,
and the shutdown that stops the driver and every replica (also when the backend is
garbage-collected: the finalizer holds only what this module needs)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from envs.live.driver import PipelineDriver
from envs.live.http_client import http_json
from envs.live.local import LocalLauncher, Replica, ReplicaConfig


class Supervised(Protocol):
    """What the supervisor drives (`LiveBackend`): one check per tick, and its events."""

    _events: list[str]

    def _tick(self) -> None:
        """Detect exits, readiness, recoveries and finished retirements."""


def answers_ready(replica: Replica) -> bool:
    """Whether the replica answers ``GET /readyz`` with 200 within 0.2 s.

    Args:
        replica: The replica to probe.

    Returns:
        True if it is up and ready.
    """
    try:
        return http_json(replica.host, replica.port, "GET", "/readyz", timeout_s=0.2)[0] == 200
    except OSError:
        return False


def serves(replica: Replica, want: ReplicaConfig) -> bool:
    """Whether a replica is ready and its server reports the wanted configuration.

    Args:
        replica: The replica to ask (``GET /config``).
        want: The configuration it should serve.

    Returns:
        True if it serves ``want`` and is not switching models.
    """
    if replica.ready_at is None or not replica.port:
        return False
    try:
        status, config = http_json(replica.host, replica.port, "GET", "/config", timeout_s=1.0)
    except OSError:
        return False
    return status == 200 and config.get("switching") is None and (
        config["variant"], config["batch"], config["cores"]) == want


def supervise(ref: Callable[[], Supervised | None], stop: threading.Event) -> None:
    """Call the backend's ``_tick`` every 50 ms until ``stop`` is set or it is collected.

    Args:
        ref: A weak reference to the backend (the thread must not keep it alive).
        stop: Set to end the loop.
    """
    while not stop.wait(0.05):
        backend = ref()
        if backend is None:
            return
        try:
            backend._tick()
        except Exception as err:  # noqa: BLE001 - keep supervising; report the failure
            backend._events.append(f"supervisor error: {err!r}")
        del backend


def shutdown(stop: threading.Event, driver: PipelineDriver, launcher: LocalLauncher) -> None:
    """Stop the supervisor, the driver and every replica process.

    Args:
        stop: The supervisor's stop event.
        driver: The backend's load generator.
        launcher: The launcher that owns the replica processes.
    """
    stop.set()
    driver.close()
    launcher.close()
