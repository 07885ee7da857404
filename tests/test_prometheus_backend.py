"""The cluster backend against a real Prometheus (Debian's ``prometheus``) on 127.0.0.1,
scraping real stage servers started by the local launcher; decisions go through the
Kubernetes launcher to the fake apps/v1 server of tests/test_k8s.py.

Tolerance (stated, and what the assertions use): each interval ends with a quiet second
(no arrivals), so the counters are still at both window edges and the backend's arrived,
served and dropped must equal the driver's own per-request records exactly; latency
quantiles come from the servers' histograms, so they may differ from the driver's by the
width of the histogram bucket the driver's value falls in plus 20 ms (loopback HTTP and
dispatch, which the servers do not see); energy is 3 W x the servers' busy seconds
(the test's energy query, estimated) to 1e-6 J.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import numpy as np
import pytest
from kubernetes import client

from envs.backends.base import Backend, ServingSettings
from envs.live.cluster_backend import ClusterBackend, ClusterQueries
from envs.live.driver import PipelineDriver, arrival_offsets
from envs.live.http_client import http_json
from envs.live.k8s import K8sLauncher
from envs.live.local import LocalLauncher
from envs.live.metrics_text import LATENCY_BUCKETS_S, metric_sum, parse_metrics
from envs.live.prometheus import PrometheusClient, PrometheusError, bucket_quantile
from envs.live.records import RequestRecord
from envs.model.profiles import load_pipeline
from envs.model.spec import Decision, Pipeline, StageDecision
from tests.conftest import profile_tiny_catalog
from tests.test_k8s import SETTINGS, FakeApi, _deploy, fake_api  # noqa: F401 - fixture

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="the prometheus binary is absent; "
                                "install Debian's package: apt-get install -y prometheus")
SCRAPE_S = 0.2
ENERGY = 'sum(stage_server_busy_seconds_total{job="stages"}) * 3'  # 3 W per busy second


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return load_pipeline(profile_tiny_catalog(tmp_path_factory.mktemp("prom") / "tiny.yaml"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list]]:
    """Two tiny stage servers (batch 2, 60 ms batching wait) and a Prometheus scraping them."""
    tmp = tmp_path_factory.mktemp("prometheus")
    launcher = LocalLauncher("tiny", max_wait_ms=60.0, log_dir=tmp / "logs")
    replicas = [launcher.start(0, "tiny", "tiny4", 2, 1) for _ in range(2)]
    proc = None
    try:
        launcher.wait_ready(replicas, 120.0)
        targets = ", ".join(f'"127.0.0.1:{r.port}"' for r in replicas)
        config = tmp / "prometheus.yml"
        config.write_text(
            f"global: {{scrape_interval: {int(SCRAPE_S * 1000)}ms}}\n"
            "scrape_configs:\n"
            f"  - job_name: stages\n    scrape_timeout: {int(SCRAPE_S * 800)}ms\n"
            f"    static_configs: [{{targets: [{targets}]}}]\n")
        port = _free_port()
        proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=(tmp / "prometheus.log").open("wb"))
        url = f"http://127.0.0.1:{port}"
        prom = PrometheusClient(url)
        deadline = time.monotonic() + 60.0
        while True:  # bounded: ready, and both targets scraped
            try:
                up = prom.query('up{job="stages"}', time.time())
                if len(up) == 2 and all(v == 1.0 for v in up.values()):
                    break
            except PrometheusError:
                pass
            assert proc.poll() is None, (tmp / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "Prometheus did not scrape both servers"
            time.sleep(0.2)
        yield url, replicas
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        launcher.close()


def _k8s(api_url: str, pipeline: Pipeline) -> K8sLauncher:
    return K8sLauncher(pipeline, SETTINGS, api_client=client.ApiClient(
        client.Configuration(host=api_url)), sleep=lambda s: None)


def _decision(replicas: int) -> Decision:
    return Decision((StageDecision(0, 2, replicas, 1),))


def _bucket_width_s(value_s: float) -> float:
    bounds = (0.0, *LATENCY_BUCKETS_S)
    for low, high in zip(bounds, bounds[1:], strict=False):
        if value_s <= high:
            return high - low
    return float("inf")


def _busy_s(replicas: list) -> float:
    total = 0.0
    for r in replicas:
        status, text = http_json(r.host, r.port, "GET", "/metrics")
        assert status == 200
        total += metric_sum(parse_metrics(text), "stage_server_busy_seconds_total")
    return total


def test_intervals_match_the_drivers_records(stack, tiny: Pipeline, fake_api) -> None:  # noqa: F811
    url, replicas = stack
    api, api_url = fake_api
    _deploy(api, tiny, _decision(2))
    driver = PipelineDriver(1, lambda s: replicas, drop_limit_s=0.05, workers=16)
    rng = np.random.default_rng(0)
    backend = ClusterBackend(
        tiny, _k8s(api_url, tiny), PrometheusClient(url),
        ClusterQueries(energy_query=ENERGY, energy_kind="estimated", selector='job="stages"'),
        ServingSettings.for_pipeline(tiny), settle_s=3 * SCRAPE_S,
        traffic=lambda rates: driver.schedule(time.monotonic() + arrival_offsets(
            np.rint(rates), rng)))
    assert isinstance(backend, Backend)
    try:
        backend.reset(_decision(2))
        driver.collect(time.monotonic())
        totals = {"served": 0, "dropped": 0}
        busy_before = _busy_s(replicas)
        for i, rates in enumerate(([30.0, 30.0, 0.0], [60.0, 10.0, 0.0], [15.0, 45.0, 0.0])):
            if i == 1:
                backend.apply(_decision(1))  # the apply path: a scale patch to the API
            stats = backend.run_interval(np.array(rates))
            records: list[RequestRecord] = driver.collect(time.monotonic())[0]
            served = [r for r in records if r.outcome == "served"]
            dropped = [r for r in records if r.outcome == "dropped"]
            assert (stats.arrived, stats.served, stats.dropped) == (
                len(records), len(served), len(dropped)), i
            assert stats.stage_dropped == (len(dropped),)
            assert stats.energy_estimated
            busy_after = _busy_s(replicas)
            assert stats.energy_j == pytest.approx(3.0 * (busy_after - busy_before), abs=1e-6)
            busy_before = busy_after
            window = backend.last_window
            assert window is not None and stats.seconds == pytest.approx(
                window[1] - window[0]) and stats.seconds >= 3.0
            cores = 2.0 if i == 0 else 1.0  # _decision(2): 2 replicas x 1 core; then 1 x 1
            assert stats.cores == pytest.approx(cores)
            assert stats.cost_core_s == pytest.approx(cores * stats.seconds)
            latencies_s = np.array([r.latency_ms for r in served]) / 1e3
            for q, got_ms in ((0.5, stats.p50_ms), (0.99, stats.p99_ms)):
                want_s = float(np.quantile(latencies_s, q))
                assert abs(got_ms / 1e3 - want_s) <= _bucket_width_s(want_s) + 0.02, (i, q)
            totals["served"] += len(served)
            totals["dropped"] += len(dropped)
        assert totals["served"] > 0 and totals["dropped"] > 0  # both paths were compared
    finally:
        driver.close()
    scale = [r for r in api.requests if r[0] == "PATCH" and r[1].endswith("/scale")]
    assert [r[3]["spec"]["replicas"] for r in scale] == [1]


def test_prometheus_that_does_not_answer_fails_before_any_interval(tiny: Pipeline,
                                                                   fake_api) -> None:  # noqa: F811
    api, api_url = fake_api
    dead = f"http://127.0.0.1:{_free_port()}"
    backend = ClusterBackend(tiny, _k8s(api_url, tiny), PrometheusClient(dead, timeout_s=1.0),
                             ClusterQueries(ENERGY, "estimated"), settle_s=0.0)
    with pytest.raises(PrometheusError, match=f"Prometheus at {dead} does not answer"):
        backend.reset(_decision(1))
    assert api.requests == []  # nothing applied either


@pytest.mark.parametrize(("queries", "match"), [
    (ClusterQueries(ENERGY, "estimated", selector='job="nope"'),
     r"requests query 'stage_server_requests_total\{job=\"nope\"\}' returned no series"),
    (ClusterQueries("sum(kepler_container_joules_total)", "measured", selector='job="stages"'),
     r"energy query 'sum\(kepler_container_joules_total\)' returned no series"),
    (ClusterQueries(ENERGY + " +", "estimated"), r"refused query"),
])
def test_query_without_series_is_named(stack, tiny: Pipeline, fake_api, queries,  # noqa: F811
                                       match: str) -> None:
    url, _ = stack
    api, api_url = fake_api
    backend = ClusterBackend(tiny, _k8s(api_url, tiny), PrometheusClient(url), queries,
                             settle_s=0.0)
    with pytest.raises(PrometheusError, match=match):
        backend.reset(_decision(1))
    assert api.requests == []


def test_energy_kind_must_be_said() -> None:
    with pytest.raises(Exception, match="say what energy_query reads"):
        ClusterQueries(ENERGY, "guessed")  # type: ignore[arg-type]


def test_bucket_quantile_follows_prometheus_interpolation() -> None:
    # 10 requests: 4 in (0, 0.1], 4 in (0.1, 0.2], 2 in (0.2, 0.5]; by hand:
    bounds, counts = [0.1, 0.2, 0.5, float("inf")], [4.0, 8.0, 10.0, 10.0]
    assert bucket_quantile(0.5, bounds, counts) == pytest.approx(0.1 + 0.1 * (5 - 4) / 4)
    assert bucket_quantile(0.2, bounds, counts) == pytest.approx(0.1 * 2 / 4)
    assert bucket_quantile(0.9, bounds, counts) == pytest.approx(0.2 + 0.3 * (9 - 8) / 2)
    assert bucket_quantile(1.0, [0.1, float("inf")], [1.0, 2.0]) == 0.1  # rank in +Inf
    assert np.isnan(bucket_quantile(0.5, bounds, [0.0] * 4))

