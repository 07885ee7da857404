"""`LiveBackend`'s background work: the supervisor thread, the probes and configuration
calls sent to replicas, and the shutdown that stops the driver and every replica (also
when the backend is garbage-collected: the finalizer holds only what this module needs).

A supervisor thread checks the replicas every 50 ms: one whose process exited, or that
answered an error status (5xx) to ``/infer``, is reported in `last_events` (the env's
``info["events"]``) and replaced by a new replica with the stage's configuration; the
requests it held count as errors. A failed ``POST /config`` is reported there too and
retried once the replica answers again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from envs.live import LiveError
from envs.live.driver import PipelineDriver
from envs.live.http_client import http_json
from envs.live.local import LocalLauncher
from envs.live.replica import Replica, ReplicaConfig


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


def send_config(replica: Replica, want: ReplicaConfig, wait: bool, timeout_s: float,
                events: list[str]) -> None:
    """``POST /config`` of ``want`` to a ready replica; records it as sent on success.

    A failure without ``wait`` marks the replica unhealthy and is reported in ``events``
    (the supervisor sends it again once the replica answers).

    Args:
        replica: The replica.
        want: The configuration to serve.
        wait: Answer only after a model swap is done; a failure then raises.
        timeout_s: Socket timeout of the call.
        events: Where a failure without ``wait`` is reported.

    Raises:
        LiveError: If the call fails with ``wait``, or the replica refuses ``want``.
    """
    variant, batch, cores = want
    body = {"variant": variant, "batch": batch, "cores": cores, "wait": wait}
    try:
        status, answer = http_json(replica.host, replica.port, "POST", "/config", body,
                                   timeout_s=timeout_s)
    except OSError as err:
        if wait:
            raise LiveError(f"replica {replica.name}: POST /config failed ({err}); its "
                            f"log is {replica.log_path}") from None
        replica.healthy = False  # the supervisor retries once it answers again
        events.append(f"replica {replica.name}: POST /config failed ({err}); "
                      "retrying when it answers")
        return
    if status >= 300:
        raise LiveError(f"replica {replica.name} refused {body}: {status} {answer}")
    replica.config_sent = want
    replica.variant, replica.batch, replica.cores = want


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
