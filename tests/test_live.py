"""The live backend: real stage servers on 127.0.0.1 serving the tiny catalog models."""

from __future__ import annotations

import gc
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from energy.meters import make_meter
from envs.backends.base import Backend, ServingSettings
from envs.env_config import EnvConfig
from envs.live.backend import LiveBackend
from envs.live.energy import proc_cpu_seconds
from envs.live.http_client import http_json
from envs.live.metrics_text import metric_sum, parse_metrics
from envs.live.stage_http import serve
from envs.live.stage_server import ServerConfig, StageServer
from envs.model.profiles import load_pipeline
from envs.model.spec import Decision, Pipeline, StageDecision
from envs.pipeline_env import PipelineEnv
from envs.workload.settings import WorkloadConfig
from tests.conftest import profile_tiny_catalog


@pytest.fixture(scope="module")
def tiny_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny catalog pipeline profiled on this machine (a fraction of a second)."""
    return profile_tiny_catalog(tmp_path_factory.mktemp("live") / "tiny.yaml")


@pytest.fixture(scope="module")
def tiny(tiny_profile: Path) -> Pipeline:
    return load_pipeline(tiny_profile)


def _gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie nobody reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] == "Z"


def _session_members(sessions: set[int]) -> list[int]:
    """Running processes whose session is one of ``sessions`` (the replicas' groups)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[3]) in sessions and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _assert_no_orphans(pids: list[int]) -> None:
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.05)
    assert all(_gone(p) for p in pids), [p for p in pids if not _gone(p)]
    assert _session_members(set(pids)) == []


@pytest.fixture
def in_process_server() -> Iterator[tuple[StageServer, int]]:
    threads = torch.get_num_threads()
    app = StageServer("tiny", "tiny", ServerConfig("tiny4", batch=4, cores=1, max_wait_ms=150))
    httpd = serve(app)
    app.start()
    try:
        yield app, httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        app.stop()
        torch.set_num_threads(threads)


def _post_many(port: int, n: int, budget_ms: float = 5000) -> list[tuple[int, dict]]:
    results: list[tuple[int, dict]] = [(0, {})] * n

    def one(i: int) -> None:
        results[i] = http_json("127.0.0.1", port, "POST", "/infer", {"budget_ms": budget_ms},
                               timeout_s=10)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    return results


def test_server_batches_reports_and_switches_without_dropping(
        in_process_server: tuple[StageServer, int]) -> None:
    app, port = in_process_server
    assert http_json("127.0.0.1", port, "GET", "/healthz")[0] == 200
    assert http_json("127.0.0.1", port, "GET", "/readyz")[0] == 200
    results = _post_many(port, 8)
    assert all(status == 200 for status, _ in results)
    assert max(body["batch"] for _, body in results) > 1  # dynamic batching happened
    # a long batching wait keeps requests queued; switching the variant (and then the
    # batch size) serves them with the new model, none is dropped
    assert http_json("127.0.0.1", port, "POST", "/config",
                     {"batch": 8, "max_wait_ms": 10_000})[0] == 202
    queued: list[tuple[int, dict]] = []
    sender = threading.Thread(target=lambda: queued.extend(_post_many(port, 3)))
    sender.start()
    deadline = time.monotonic() + 5
    while app.queue_length < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.queue_length == 3
    status, body = http_json("127.0.0.1", port, "POST", "/config",
                             {"variant": "tiny16", "wait": True})
    assert status == 200 and body["variant"] == "tiny16" and body["switching"] is None
    http_json("127.0.0.1", port, "POST", "/config", {"batch": 1})
    sender.join(10)
    assert [s for s, _ in queued] == [200, 200, 200]
    assert {b["variant"] for _, b in queued} == {"tiny16"}
    # a request whose budget is spent before its batch starts is dropped (504)
    assert http_json("127.0.0.1", port, "POST", "/infer", {"budget_ms": 0})[0] == 504
    status, text = http_json("127.0.0.1", port, "GET", "/metrics")
    samples = parse_metrics(text)
    assert metric_sum(samples, "stage_server_requests_total", result="served") == 11
    assert metric_sum(samples, "stage_server_requests_total", result="dropped") == 1
    assert metric_sum(samples, "stage_server_batch_size_total") == metric_sum(
        samples, "stage_server_batches_total")
    assert metric_sum(samples, "stage_server_request_latency_seconds_bucket", le="+Inf") == 11
    assert metric_sum(samples, "stage_server_config_info", variant="tiny16", batch="1") == 1
    assert metric_sum(samples, "stage_server_switches_total") == 1
    assert http_json("127.0.0.1", port, "POST", "/config", {"variant": "nope"})[0] == 400


def _replica_config(backend: LiveBackend) -> list[dict]:
    out = []
    for r in backend.replicas(0):
        status, config = http_json(r.host, r.port, "GET", "/config")
        assert status == 200
        out.append(config)
    return out


def test_live_episode_through_the_env(tiny_profile: Path) -> None:
    config = EnvConfig(pipeline=str(tiny_profile), backend="fluid", interval_s=2,
                       max_replicas=2, batch_timeout_ms=50, workload=WorkloadConfig(
                           pattern="steady_high", window_s=6, synthetic_windows=1))
    env = PipelineEnv(config)
    env.backend.close()
    live = LiveBackend(env.pipeline, env.settings, catalog="tiny", load_scale=0.5)
    env.backend = live
    assert isinstance(live, Backend)
    pids: list[int] = []
    try:
        env.reset(seed=0)
        assert [c["variant"] for c in _replica_config(live)] == ["tiny4"]
        first = env.encode(env.decision)
        infos = [env.step(first)[4]]
        infos.append(env.step(np.array([1, 1, 1]))[4])  # tiny16, batch 2, two replicas
        *_, truncated, info = env.step(np.array([1, 1, 1]))
        infos.append(info)
        assert truncated
        for info in infos:
            stats = info["stats"]
            assert stats.arrived > 0 and stats.served > 0 and stats.energy_estimated
            assert stats.latencies_ms is not None and len(stats.latencies_ms) == stats.served
            assert 0 < stats.p50_ms <= stats.p99_ms < math.inf
            assert stats.energy_j > 0 and stats.cost_core_s > 0
        assert infos[0]["stats"].cores == pytest.approx(1.0, abs=0.05)
        assert infos[2]["stats"].cores == pytest.approx(2.0, abs=0.05)
        live.wait_ready(30)
        configs = _replica_config(live)
        assert len(configs) == 2 and len({c["pid"] for c in configs}) == 2
        assert {(c["variant"], c["batch"]) for c in configs} == {("tiny16", 2)}
        for r in live.replicas(0):
            samples = parse_metrics(http_json(r.host, r.port, "GET", "/metrics")[1])
            assert metric_sum(samples, "stage_server_config_info", variant="tiny16") == 1
        pids = live.all_pids()
    finally:
        env.close()
    assert len(pids) == 2
    _assert_no_orphans(pids)


def test_killed_replica_is_reported_restarted_and_cleaned_up(tiny: Pipeline) -> None:
    settings = ServingSettings(interval_s=3, drop_limit_s=8.0, batch_timeout_ms=20)
    meter = make_meter("tdp", tdp_w=8.0, idle_w=2.0, cores=2)  # a meter passed in is read
    backend = LiveBackend(tiny, settings, catalog="tiny", meter=meter)
    try:
        backend.reset(Decision((StageDecision(0, 1, 1, 1),)), seed=1)
        victim = backend.replicas(0)[0]
        killer = threading.Timer(1.0, os.kill, (victim.pid, signal.SIGKILL))
        killer.start()
        first = backend.run_interval(np.full(3, 10.0))
        killer.join()
        assert any(f"replica {victim.name} died (exit -9); restarted" in e
                   for e in backend.last_events), backend.last_events
        assert first.served > 0 and first.energy_estimated
        assert 2.0 * first.seconds <= first.energy_j <= 8.0 * first.seconds
        (replacement,) = backend.replicas(0)
        assert replacement.pid != victim.pid
        backend.wait_ready(30)  # the restart is a real cold start (seconds on a busy CPU)
        second = backend.run_interval(np.full(3, 10.0))
        assert second.served > 0 and not backend.last_events
        assert proc_cpu_seconds(replacement.pid) is not None
        pids = backend.all_pids()
    finally:
        backend.close()
    assert len(pids) == 2
    _assert_no_orphans(pids)


def test_dropped_backend_and_crashed_launcher_leave_nothing(tiny: Pipeline) -> None:
    backend = LiveBackend(tiny, ServingSettings(interval_s=2), catalog="tiny")
    backend.reset(Decision((StageDecision(0, 1, 1, 1),)))
    pids = backend.all_pids()
    del backend
    gc.collect()  # the finalizer stops the replicas
    _assert_no_orphans(pids)
    # a launcher killed by SIGKILL runs no Python hook: its replica notices and exits
    script = (
        "import os, signal, sys, time\n"
        "from envs.live.local import LocalLauncher\n"
        "r = LocalLauncher('tiny', 50).start(0, 'tiny', 'tiny4', 1, 1)\n"
        "print(r.pid, flush=True)\n"
        "time.sleep(0.5)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, cwd=root)
    orphan = int(out.stdout.split()[0])
    try:
        _assert_no_orphans([orphan])
    finally:
        if not _gone(orphan):
            os.killpg(orphan, signal.SIGKILL)


# -- the live backend chosen at construction, and faults (issue 16) ---------------------------
def _live_env_config(tiny_profile: Path, window_s: int = 3,
                     batch_timeout_ms: float = 50) -> EnvConfig:
    return EnvConfig(pipeline=str(tiny_profile), interval_s=1, max_replicas=2,
                     batch_timeout_ms=batch_timeout_ms, workload=WorkloadConfig(
                         pattern="steady_high", window_s=window_s, synthetic_windows=1,
                         scale=0.5))


def test_gymnasium_make_builds_the_live_backend(tiny_profile: Path) -> None:
    import gymnasium

    import envs  # noqa: F401 - registers ipa/Pipeline-v2

    env = gymnasium.make("ipa/Pipeline-v2", config=_live_env_config(tiny_profile),
                         backend="live")
    live = env.unwrapped.backend
    assert isinstance(live, LiveBackend) and env.unwrapped.config.backend == "live"
    try:
        env.reset(seed=0)
        truncated, steps = False, []
        while not truncated:
            _, reward, _, truncated, info = env.step(env.unwrapped.encode(env.unwrapped.decision))
            steps.append(info["stats"])
            assert math.isfinite(reward)
        assert len(steps) == 3
        for stats in steps:
            assert stats.arrived > 0 and stats.served > 0 and stats.errors == 0
            assert stats.energy_estimated and stats.energy_j > 0
            assert stats.energy_method.startswith("estimated: ")
        pids = live.all_pids()
    finally:
        env.close()
    _assert_no_orphans(pids)


def test_a_tdp_meter_reading_is_labelled_estimated_with_its_method(tiny: Pipeline) -> None:
    meter = make_meter("tdp", tdp_w=8.0, idle_w=2.0, cores=2)
    backend = LiveBackend(tiny, ServingSettings(interval_s=1, batch_timeout_ms=20), catalog="tiny",
                          meter=meter)
    try:
        backend.reset(Decision((StageDecision(0, 1, 1, 1),)), seed=0)
        stats = backend.run_interval(np.full(1, 5.0))
        pids = backend.all_pids()
    finally:
        backend.close()
    assert stats.energy_estimated
    assert stats.energy_method.startswith("estimated: TDP model: (idle 2 W + (TDP 8 W")
    _assert_no_orphans(pids)


def _kill_when_busy(replica, deadline_s: float = 5.0) -> threading.Thread:
    """SIGKILL ``replica`` once the driver has had a request at it for 20 ms (waiting in
    its batch queue)."""
    def kill() -> None:
        end = time.monotonic() + deadline_s
        busy_since = None
        while time.monotonic() < end:
            if replica.inflight == 0:
                busy_since = None
            elif busy_since is None:
                busy_since = time.monotonic()
            elif time.monotonic() - busy_since > 0.02:
                break
            time.sleep(0.001)
        os.kill(replica.pid, signal.SIGKILL)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_killed_and_failing_servers_are_errors_restarted_and_nothing_is_lost(
        tiny_profile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gymnasium

    import envs  # noqa: F401 - registers ipa/Pipeline-v2

    fault = tmp_path / "fault"
    monkeypatch.setenv("STAGE_FAULT_FILE", str(fault))  # the servers inherit it
    env = gymnasium.make("ipa/Pipeline-v2", backend="live", config=_live_env_config(
        tiny_profile, window_s=4, batch_timeout_ms=400))
    live: LiveBackend = env.unwrapped.backend
    steps = []
    try:
        env.reset(seed=0)
        action = np.array([0, 1, 0])  # batch 2: a request waits up to 400 ms for a partner
        live.apply(env.unwrapped.decode(action))
        live.wait_ready(30)
        (victim,) = live.replicas(0)
        killer = _kill_when_busy(victim)
        *_, info = env.step(action)  # killed mid-interval, with a request in flight
        killer.join()
        steps.append(info["stats"])
        assert any(f"replica {victim.name} died (exit -9); restarted as" in e
                   for e in info["events"]), info["events"]
        assert info["stats"].errors >= 1
        live.wait_ready(60)  # the restart is a real cold start
        (failing,) = live.replicas(0)
        fault.write_text(f"{failing.pid}\n")  # it answers 500 from now on
        *_, info = env.step(action)
        steps.append(info["stats"])
        assert any(f"replica {failing.name} answered 500" in e and "restarted as" in e
                   for e in info["events"]), info["events"]
        assert info["stats"].errors >= 1
        live.wait_ready(60)
        (healthy,) = live.replicas(0)
        assert healthy.pid not in (victim.pid, failing.pid)
        truncated = False
        while not truncated:  # the episode goes on
            *_, truncated, info = env.step(action)
            steps.append(info["stats"])
        assert info["stats"].served > 0 and info["stats"].errors == 0
        steps.append(live.run_interval(np.zeros(3)))  # drain: every request has an end
        pids = live.all_pids()
    finally:
        env.close()
    arrived = sum(s.arrived for s in steps)
    ended = sum(s.served + s.dropped + s.errors for s in steps)
    assert arrived == ended, [(s.arrived, s.served, s.dropped, s.errors) for s in steps]
    sla_ms = live.pipeline.sla_ms  # violations = drops + errors + served past the SLA
    late = [int(np.count_nonzero(s.latencies_ms > sla_ms)) for s in steps]
    assert [s.sla_violations for s in steps] == [
        s.dropped + s.errors + n for s, n in zip(steps, late, strict=True)]
    assert len(pids) == 3
    _assert_no_orphans(pids)


def test_evaluate_backend_live_end_to_end(tiny_profile: Path, tmp_path: Path) -> None:
    import csv

    import yaml

    config = {
        "name": "live", "output_dir": str(tmp_path / "reports"),
        "env": {"pipeline": str(tiny_profile), "interval_s": 1, "max_replicas": 2,
                "batch_timeout_ms": 50},
        "windows": [{"name": "w", "pattern": "steady_low", "window_s": 2, "seed": 3}],
        "policies": ["static_low"], "seeds": [0], "tracking": {"mode": "disabled"},
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(config))
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "evaluate.py"), "--config", str(path),
                           "--backend", "live"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr
    report = tmp_path / "reports" / "live"
    assert "Backend: live" in (report / "report.md").read_text()
    with (report / "steps.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(int(r["served"]) > 0 for r in rows)
