"""Local launcher: replicas as server processes on 127.0.0.1, one port each.

Each replica is ``python -m envs.live.server`` in its own session (``start_new_session``),
so stopping it kills its whole process group. Nothing outlives the launcher:

* `LocalLauncher.close` (and `LocalLauncher.stop`) kill the group and reap the process;
* a ``weakref.finalize`` and an ``atexit`` hook kill every group still registered when the
  launcher is garbage-collected or the interpreter exits;
* each server watches its parent and exits when the launcher's process is gone (covers a
  ``SIGKILL`` of the launcher, where no Python hook runs).

Exited replicas are reaped with ``os.wait4`` so their final CPU time is known (for the
energy estimate).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

from envs.live import LiveError
from envs.live.http_client import http_json
from envs.live.replica import Replica, ReplicaConfig

_LIVE_GROUPS: set[int] = set()  # process groups of every replica not yet reaped
_GROUPS_LOCK = threading.Lock()


def _kill_groups(groups: set[int]) -> None:
    """SIGKILL every process group in ``groups`` (atexit / finalizer path)."""
    with _GROUPS_LOCK:
        for pgid in list(groups):
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
            groups.discard(pgid)
            _LIVE_GROUPS.discard(pgid)


atexit.register(_kill_groups, _LIVE_GROUPS)


class LocalLauncher:
    """Starts, probes and stops replica processes of one catalog pipeline.

    Args:
        catalog: Catalog pipeline name the servers build their models from.
        max_wait_ms: Batching timeout every server uses.
        python: Interpreter to run the servers with.
        log_dir: Where each replica's stderr goes (default: a temporary directory).
    """

    def __init__(self, catalog: str, max_wait_ms: float, python: str = sys.executable,
                 log_dir: Path | None = None) -> None:
        self.catalog = catalog
        self.max_wait_ms = max_wait_ms
        self.python = python
        self._tmp = None if log_dir else tempfile.TemporaryDirectory(prefix="live-")
        self.log_dir = Path(log_dir or self._tmp.name)  # type: ignore[union-attr]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._numbers = itertools.count(1)
        self._groups: set[int] = set()
        self.replicas: list[Replica] = []
        self._reap_lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _kill_groups, self._groups)

    def start(self, stage: int, stage_name: str, variant: str, batch: int,
              cores: int) -> Replica:
        """Launch a replica; it serves once `poll_ready` sees it ready (cold start).

        Args:
            stage: Stage index.
            stage_name: Stage name in the catalog.
            variant: Variant name.
            batch: Batch size.
            cores: Threads (cores) of the replica.

        Returns:
            The replica, started but not ready.
        """
        number = next(self._numbers)
        port_file = self.log_dir / f"{stage_name}-{number}.json"
        log_path = self.log_dir / f"{stage_name}-{number}.log"
        cmd = [self.python, "-m", "envs.live.server", "--catalog", self.catalog,
               "--stage", stage_name, "--variant", variant, "--batch", str(batch),
               "--cores", str(cores), "--max-wait-ms", str(self.max_wait_ms),
               "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file),
               "--parent-pid", str(os.getpid())]
        env = {**os.environ, "OMP_NUM_THREADS": str(cores), "PYTHONUNBUFFERED": "1"}
        root = Path(__file__).resolve().parents[2]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True, env=env, cwd=root)
        with _GROUPS_LOCK:
            self._groups.add(popen.pid)
            _LIVE_GROUPS.add(popen.pid)
        replica = Replica(stage, stage_name, number, variant, batch, cores, popen, port_file,
                          log_path, time.monotonic())
        replica.config_sent = ReplicaConfig(variant, batch, cores)
        self.replicas.append(replica)
        return replica

    def poll_ready(self, replica: Replica, timeout_s: float = 0.5) -> bool:
        """True once the replica answers ``/readyz`` with 200 (records ``ready_at``).

        Args:
            replica: The replica.
            timeout_s: Socket timeout of the probe.

        Returns:
            Whether it is ready.
        """
        if replica.ready_at is not None:
            return True
        if not replica.alive:
            return False
        if not replica.port:
            try:
                replica.port = int(json.loads(replica.port_file.read_text())["port"])
            except (OSError, ValueError, KeyError):
                return False
        try:
            status, _ = http_json(replica.host, replica.port, "GET", "/readyz",
                                  timeout_s=timeout_s)
        except OSError:
            return False
        if status == 200:
            replica.ready_at = time.monotonic()
            return True
        return False

    def wait_ready(self, replicas: list[Replica], timeout_s: float) -> None:
        """Block until every replica is ready.

        Args:
            replicas: The replicas to wait for.
            timeout_s: How long to wait.

        Raises:
            LiveError: If one exits or is not ready in time (with its log's tail).
        """
        deadline = time.monotonic() + timeout_s
        pending = list(replicas)
        while pending:
            for r in list(pending):
                if self.poll_ready(r):
                    pending.remove(r)
                elif self.reap(r, block=False) is not None:
                    raise LiveError(f"replica {r.name} exited with {r.exit_code} while "
                                    f"starting; its log says:\n{self.log_tail(r)}")
            if pending and time.monotonic() > deadline:
                names = ", ".join(r.name for r in pending)
                raise LiveError(f"replicas {names} not ready after {timeout_s:g} s; raise "
                                f"startup_timeout_s on a slow machine. Log of "
                                f"{pending[0].name}:\n{self.log_tail(pending[0])}")
            if pending:
                time.sleep(0.05)

    def log_tail(self, replica: Replica, lines: int = 15) -> str:
        """The last lines of a replica's log.

        Args:
            replica: The replica.
            lines: How many lines.

        Returns:
            The lines, or ``(no log)``.
        """
        try:
            return "\n".join(replica.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def reap(self, replica: Replica, block: bool) -> int | None:
        """Collect an exited replica.

        Records ``stopped_at``, ``exit_code`` and ``final_cpu_s`` (from ``wait4``).

        Args:
            replica: The replica.
            block: Wait for it to exit.

        Returns:
            Its exit code; None while it runs and ``block`` is False.
        """
        with self._reap_lock:
            if replica.exit_code is not None:
                return replica.exit_code
            try:
                flags = os.WEXITED | os.WNOWAIT | (0 if block else os.WNOHANG)
                if os.waitid(os.P_PID, replica.pid, flags) is None:
                    return None  # still running
                # exited but not reaped: the zombie holds the group id, so killing the group
                # cannot hit a recycled one; whatever the leader left behind dies with it
                with contextlib.suppress(OSError):
                    os.killpg(replica.pid, signal.SIGKILL)
                _, status, usage = os.wait4(replica.pid, 0)
            except ChildProcessError:  # reaped elsewhere; no usage to read
                status, usage = 0, None
            return self._record_exit(replica, status, usage)

    def _record_exit(self, replica: Replica, status: int, usage: object) -> int:
        code = os.waitstatus_to_exitcode(status)
        replica.popen.returncode = code
        replica.exit_code = code
        replica.stopped_at = replica.stopped_at or time.monotonic()
        replica.final_cpu_s = (usage.ru_utime + usage.ru_stime  # type: ignore[attr-defined]
                               if usage is not None else None)
        with _GROUPS_LOCK:
            self._groups.discard(replica.pid)
            _LIVE_GROUPS.discard(replica.pid)
        return code

    def terminate(self, replica: Replica) -> None:
        """Ask the replica's process group to stop (SIGTERM); `reap` collects it.

        Args:
            replica: The replica.
        """
        replica.retiring = True
        replica.stopped_at = replica.stopped_at or time.monotonic()
        with contextlib.suppress(OSError):
            os.killpg(replica.pid, signal.SIGTERM)

    def stop(self, replica: Replica, grace_s: float = 1.0) -> None:
        """Stop a replica now: SIGTERM, then SIGKILL after ``grace_s``; reaps it.

        Args:
            replica: The replica.
            grace_s: Seconds between SIGTERM and SIGKILL.
        """
        if replica.exit_code is not None:
            return
        self.terminate(replica)
        deadline = time.monotonic() + grace_s
        while self.reap(replica, block=False) is None:
            if time.monotonic() > deadline:
                with contextlib.suppress(OSError):
                    os.killpg(replica.pid, signal.SIGKILL)
                self.reap(replica, block=True)
                break
            time.sleep(0.02)

    def close(self) -> None:
        """Stop every replica this launcher started (idempotent)."""
        running = [r for r in self.replicas if r.exit_code is None]
        for r in running:
            self.terminate(r)
        deadline = time.monotonic() + 1.0
        for r in running:
            while self.reap(r, block=False) is None and time.monotonic() < deadline:
                time.sleep(0.02)
            if r.exit_code is None:
                with contextlib.suppress(OSError):
                    os.killpg(r.pid, signal.SIGKILL)
                self.reap(r, block=True)
        self._finalizer()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
