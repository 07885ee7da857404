"""Load generator and pipeline driver: sends every request through the stages.

A dispatcher thread releases each request at its arrival time to a fixed pool of worker
threads (each keeps one HTTP/1.1 keep-alive connection per replica). A worker posts the
request to stage 0, then stage 1, ..., choosing a replica of each stage round-robin among
the routable ones, and records the send and receive time of every stage and the end.

* A request's remaining budget (drop limit minus its age) travels with it; a server
  answers 504 when it ran out before its batch started: the request is dropped there.
* A replica that refuses the connection (nothing was sent) is marked unhealthy (the
  backend's supervisor checks it) and the request is tried on another replica.
* A request that was sent and got no answer (the replica died with it in flight), an
  answer other than 200 or 504 (e.g. a 500), or an exception in the worker ends as an
  **error** at that stage, not as a drop: errors and drops are counted apart. A replica
  that answered 5xx is listed by `PipelineDriver.take_failing` for the supervisor.
* While a stage has no routable replica (all starting), the request waits for one until
  its budget runs out (a drop).

All times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import http.client
import itertools
import queue
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from envs.live.http_client import exchange
from envs.live.records import RequestRecord, StageSample, Target


def arrival_offsets(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (s from the interval start) of ``counts[j]`` requests in second ``j``,
    uniformly random within each second (Poisson conditioned on the count), sorted; the
    request-level simulator's arrival process.

    Args:
        counts: Requests per second.
        rng: The random generator.

    Returns:
        The sorted offsets in seconds.
    """
    counts = np.asarray(counts, dtype=np.int64)
    seconds = np.repeat(np.arange(len(counts), dtype=np.float64), counts)
    times = seconds + rng.random(seconds.shape[0])
    times.sort()
    return times


class PipelineDriver:
    """Sends scheduled requests through the stages of a live pipeline.

    Args:
        n_stages: Number of stages.
        targets: ``targets(stage)`` lists the stage's replicas that may take requests now.
        drop_limit_s: A request older than this is dropped (the budget sent to servers).
        workers: Concurrent requests in flight (worker threads).
        request_timeout_s: Socket timeout of one stage call beyond the request's budget.
    """

    def __init__(self, n_stages: int, targets: Callable[[int], Sequence[Target]],
                 drop_limit_s: float, workers: int = 64, request_timeout_s: float = 30.0) -> None:
        self.n_stages = n_stages
        self.targets = targets
        self.drop_limit_s = drop_limit_s
        self.request_timeout_s = request_timeout_s
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._schedule: list[RequestRecord] = []
        self._wake = threading.Condition(self._lock)
        self._work: queue.SimpleQueue[RequestRecord | None] = queue.SimpleQueue()
        self._done: list[RequestRecord] = []
        self._samples: list[StageSample] = []
        self._round_robin = [0] * n_stages
        self._first_id = 0  # records with a smaller id belong to a previous episode
        self.waiting = [0] * n_stages  # requests waiting for a routable replica, per stage
        self.inflight = 0  # released requests not yet done
        self._failing: dict[str, str] = {}  # replica name -> its last bad answer
        self._closed = False
        self._threads = [threading.Thread(target=self._dispatch, name="dispatch", daemon=True)]
        self._threads += [threading.Thread(target=self._worker, name=f"driver-{i}", daemon=True)
                          for i in range(workers)]
        for t in self._threads:
            t.start()

    # -- scheduling ------------------------------------------------------------------------
    def schedule(self, times: np.ndarray) -> int:
        """Release one request at each monotonic time in ``times``.

        Args:
            times: Monotonic release times.

        Returns:
            How many requests were scheduled.
        """
        records = [RequestRecord(next(self._ids), float(t)) for t in np.sort(times)]
        with self._wake:
            self._schedule.extend(records)
            self._schedule.sort(key=lambda r: r.arrival)
            self._wake.notify()
        return len(records)

    def _dispatch(self) -> None:
        while True:
            with self._wake:
                while not self._closed and not self._schedule:
                    self._wake.wait(0.5)
                if self._closed:
                    return
                delay = self._schedule[0].arrival - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                record = self._schedule.pop(0)
                self.inflight += 1
            self._work.put(record)

    def _worker(self) -> None:
        conns: dict[str, http.client.HTTPConnection] = {}
        while True:
            record = self._work.get()
            if record is None:
                break
            try:
                self._serve(record, conns)
            except Exception as err:  # noqa: BLE001 - a bad answer must not kill the worker
                if record.done is None:
                    stage = record.stages[-1].stage if record.stages else 0
                    self._fail(record, stage, f"driver error: {err!r}")
            finally:
                with self._lock:
                    self.inflight -= 1
                    if record.done is not None:
                        self._done.append(record)
        for conn in conns.values():
            conn.close()

    # -- one request -----------------------------------------------------------------------
    def _pick(self, stage: int, avoid: set[str]) -> Target | None:
        candidates = [t for t in self.targets(stage) if t.healthy and t.name not in avoid]
        if not candidates:
            return None
        with self._lock:
            self._round_robin[stage] += 1
            return candidates[self._round_robin[stage] % len(candidates)]

    def _serve(self, record: RequestRecord,
               conns: dict[str, http.client.HTTPConnection]) -> None:
        for stage in range(self.n_stages):
            avoid: set[str] = set()
            waiting = False
            while True:
                budget_s = record.arrival + self.drop_limit_s - time.monotonic()
                if budget_s <= 0 or self._closed:
                    self._finish(record, "dropped", stage, waiting)
                    return
                target = self._pick(stage, avoid)
                if target is None:
                    if avoid and not [t for t in self.targets(stage) if t.name not in avoid]:
                        avoid.clear()  # every replica failed once: start over
                    if not waiting:
                        waiting = True
                        with self._lock:
                            self.waiting[stage] += 1
                    time.sleep(0.01)
                    continue
                if waiting:
                    waiting = False
                    with self._lock:
                        self.waiting[stage] -= 1
                outcome, detail = self._call(record, stage, target, budget_s, conns)
                if outcome == "served":
                    break
                if outcome == "dropped":
                    self._finish(record, "dropped", stage, False)
                    return
                if outcome == "error":
                    self._fail(record, stage, f"replica {target.name}: {detail}")
                    return
                avoid.add(target.name)  # refused, nothing sent: try another replica
        self._finish(record, "served", None, False)

    def _call(self, record: RequestRecord, stage: int, target: Target, budget_s: float,
              conns: dict[str, http.client.HTTPConnection]) -> tuple[str, str]:
        """Post one stage visit; returns (outcome, what went wrong)."""
        with self._lock:
            target.inflight += 1
        sent = time.monotonic()
        outcome, detail = "error", ""
        try:
            for attempt in range(2):
                reused = target.name in conns
                conn = conns.get(target.name) or http.client.HTTPConnection(
                    target.host, target.port, timeout=budget_s + self.request_timeout_s)
                conns[target.name] = conn
                try:
                    status, body = exchange(conn, "POST", "/infer",
                                             {"budget_ms": budget_s * 1e3})
                except (OSError, http.client.HTTPException) as err:
                    conn.close()
                    del conns[target.name]
                    if reused and attempt == 0:
                        continue  # a kept-alive connection may be stale: one fresh try
                    target.healthy = False
                    refused = isinstance(err, ConnectionRefusedError) and attempt == 0
                    outcome = "unreachable" if refused else "error"
                    detail = f"no answer ({type(err).__name__}: {err})"
                    break
                if status == 200:
                    outcome = "served"
                elif status == 504:
                    outcome = "dropped"
                else:
                    outcome, detail = "error", f"answered {status} {body}"
                    with self._lock:
                        self._failing[target.name] = detail
                break
        finally:
            with self._lock:
                target.inflight -= 1
        received = time.monotonic()
        sample = StageSample(record.id, stage, sent, received, outcome, target.name)
        record.stages.append(sample)
        with self._lock:
            self._samples.append(sample)
        return outcome, detail

    def take_failing(self) -> dict[str, str]:
        """Replicas that answered an error status since the last call, with the answer.

        Returns:
            Replica name -> its last bad answer.
        """
        with self._lock:
            failing, self._failing = self._failing, {}
        return failing

    def _fail(self, record: RequestRecord, stage: int, error: str) -> None:
        record.error_at, record.error = stage, error
        self._finish(record, "error", None, False)

    def _finish(self, record: RequestRecord, outcome: str, stage: int | None,
                waiting: bool) -> None:
        if waiting:
            with self._lock:
                self.waiting[stage or 0] -= 1
        record.outcome = outcome
        record.dropped_at = stage
        record.done = time.monotonic()

    # -- results ---------------------------------------------------------------------------
    def collect(self, until: float) -> tuple[list[RequestRecord], list[StageSample]]:
        """Requests done, and stage visits answered, before ``until`` (not yet collected).

        Args:
            until: Monotonic end of the window.

        Returns:
            ``(requests, stage visits)``.
        """
        with self._lock:
            done = [r for r in self._done if r.done is not None and r.done < until
                    and r.id >= self._first_id]
            self._done = [r for r in self._done if r.done is None or r.done >= until]
            samples = [s for s in self._samples if s.received < until
                       and s.request >= self._first_id]
            self._samples = [s for s in self._samples if s.received >= until]
        return done, samples

    def clear(self) -> None:
        """Forget scheduled, finished and sampled requests (in-flight ones are not counted)."""
        with self._lock:
            self._schedule.clear()
            self._done.clear()
            self._samples.clear()
            self._first_id = next(self._ids)

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop releasing requests and end the worker threads.

        Args:
            timeout_s: How long to wait for each thread.
        """
        with self._wake:
            self._closed = True
            self._schedule.clear()
            self._wake.notify_all()
        for _ in self._threads[1:]:
            self._work.put(None)
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(deadline - time.monotonic(), 0.0))
