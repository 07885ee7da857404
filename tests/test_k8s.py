"""The Kubernetes launcher against a fake apps/v1 API server on 127.0.0.1."""

from __future__ import annotations

import copy
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from envs.live.k8s import K8sError, K8sLauncher
from envs.live.k8s_manifests import (
    MERGE_PATCH,
    STRATEGIC_MERGE,
    K8sSettings,
    render_deployment,
    render_manifests,
    resource_name,
)
from envs.model.spec import Decision, Pipeline, StageDecision

NS = "serving"
SETTINGS = K8sSettings(namespace=NS, image="registry.local/ipa:test", catalog="tiny")


@dataclass
class FakeApi:
    """State and scripted failures of the fake API server."""

    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, str, Any]] = field(default_factory=list)
    failures: dict[tuple[str, str], list[int]] = field(default_factory=dict)


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            path = self.path.split("?")[0]
            api.requests.append((method, path, self.headers.get("Content-Type", ""), body))
            scripted = api.failures.get((method, path))
            if scripted:
                status = scripted.pop(0)
                self._reply(status, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                     "message": f"scripted {status}", "code": status})
                return
            prefix = f"/apis/apps/v1/namespaces/{NS}/deployments/"
            if not path.startswith(prefix):
                self._reply(404, {"kind": "Status", "code": 404, "message": "no route"})
                return
            name, _, sub = path[len(prefix):].partition("/")
            dep = api.deployments.get(name)
            if dep is None:
                self._reply(404, {"kind": "Status", "code": 404, "message": f"{name} not found"})
                return
            if method == "PATCH" and sub == "scale":
                dep["spec"]["replicas"] = body["spec"]["replicas"]
            elif method == "PATCH":
                patch = body["spec"]["template"]["spec"]["containers"][0]
                container = dep["spec"]["template"]["spec"]["containers"][0]
                container["env"] = patch["env"]
                container["resources"] = patch["resources"]
            if sub == "scale":
                replicas = dep["spec"]["replicas"]
                self._reply(200, {"apiVersion": "autoscaling/v1", "kind": "Scale",
                                  "metadata": {"name": name, "namespace": NS},
                                  "spec": {"replicas": replicas},
                                  "status": {"replicas": replicas}})
            else:
                self._reply(200, dep)

        def do_GET(self) -> None:  # noqa: N802
            self._route("GET")

        def do_PATCH(self) -> None:  # noqa: N802
            self._route("PATCH")

    return Handler


@pytest.fixture
def fake_api() -> Iterator[tuple[FakeApi, str]]:
    api = FakeApi()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield api, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _decision(*stages: tuple[int, int, int]) -> Decision:
    return Decision(tuple(StageDecision(v, b, r, 1) for v, b, r in stages))


def _launcher(pipeline: Pipeline, host: str, sleeps: list[float],
              **kwargs: Any) -> K8sLauncher:
    api_client = client.ApiClient(client.Configuration(host=host))
    return K8sLauncher(pipeline, SETTINGS, api_client=api_client, backoff_s=0.25,
                       sleep=sleeps.append, **kwargs)


def _deploy(api: FakeApi, pipeline: Pipeline, decision: Decision) -> None:
    for s, choice in enumerate(decision.stages):
        dep = render_deployment(pipeline, s, choice, SETTINGS)
        api.deployments[dep["metadata"]["name"]] = copy.deepcopy(dep)


def _env(body: dict[str, Any]) -> dict[str, str]:
    container = body["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


def test_render_manifests(tiny_pipeline: Pipeline) -> None:
    decision = Decision((StageDecision(1, 2, 3, 2), StageDecision(0, 1, 1, 1)))
    docs = render_manifests(tiny_pipeline, decision, SETTINGS)
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "Deployment", "Service"]
    dep, svc = docs[0], docs[1]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert dep["metadata"]["name"] == "ipa-tiny-first" == svc["metadata"]["name"]
    assert dep["spec"]["replicas"] == 3 and container["image"] == SETTINGS.image
    assert _env(dep)["STAGE_VARIANT"] == tiny_pipeline.stages[0].variants[1].name
    assert _env(dep)["STAGE_BATCH"] == "2" and _env(dep)["STAGE_CORES"] == "2"
    assert container["resources"]["limits"]["cpu"] == "2"
    assert container["resources"]["requests"]["cpu"] == "2"
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]


def test_apply_sends_the_right_patches(fake_api: tuple[FakeApi, str],
                                       tiny_pipeline: Pipeline) -> None:
    api, host = fake_api
    _deploy(api, tiny_pipeline, _decision((0, 1, 1), (0, 1, 1)))
    sleeps: list[float] = []
    launcher = _launcher(tiny_pipeline, host, sleeps)
    sent = launcher.apply(_decision((2, 4, 1), (0, 1, 3)))  # stage 0: variant+batch; 1: scale
    first = resource_name(SETTINGS, tiny_pipeline, 0)
    second = resource_name(SETTINGS, tiny_pipeline, 1)
    base = f"/apis/apps/v1/namespaces/{NS}/deployments"
    patches = [(m, p, ct, b) for m, p, ct, b in api.requests if m == "PATCH"]
    assert [(p, ct) for _, p, ct, _ in patches] == [
        (f"{base}/{first}", STRATEGIC_MERGE), (f"{base}/{second}/scale", MERGE_PATCH)]
    env = _env(patches[0][3])
    assert env["STAGE_VARIANT"] == tiny_pipeline.stages[0].variants[2].name
    assert env["STAGE_BATCH"] == "4"
    assert patches[0][3]["spec"]["template"]["spec"]["containers"][0]["name"] == "server"
    assert patches[1][3] == {"spec": {"replicas": 3}}
    assert [p.path for p in sent] == [f"{base}/{first}", f"{base}/{second}/scale"]
    assert {p for m, p, _, _ in api.requests if m == "GET"} == {
        f"{base}/{first}", f"{base}/{second}"}
    api.requests.clear()
    assert launcher.apply(_decision((2, 4, 1), (0, 1, 3))) == []  # already there: no patch
    assert all(m == "GET" for m, *_ in api.requests) and not sleeps


def test_conflict_is_retried_with_backoff(fake_api: tuple[FakeApi, str],
                                          tiny_pipeline: Pipeline) -> None:
    api, host = fake_api
    _deploy(api, tiny_pipeline, _decision((0, 1, 1), (0, 1, 1)))
    name = resource_name(SETTINGS, tiny_pipeline, 1)
    path = f"/apis/apps/v1/namespaces/{NS}/deployments/{name}/scale"
    api.failures[("PATCH", path)] = [409, 503]
    sleeps: list[float] = []
    _launcher(tiny_pipeline, host, sleeps).apply(_decision((0, 1, 1), (0, 1, 2)))
    tries = [r for r in api.requests if r[:2] == ("PATCH", path)]
    assert len(tries) == 3 and all(r[3] == {"spec": {"replicas": 2}} for r in tries)
    assert sleeps == [0.25, 0.5]
    assert api.deployments[name]["spec"]["replicas"] == 2


def test_persistent_server_error_is_a_clear_error(fake_api: tuple[FakeApi, str],
                                                  tiny_pipeline: Pipeline) -> None:
    api, host = fake_api
    _deploy(api, tiny_pipeline, _decision((0, 1, 1), (0, 1, 1)))
    name = resource_name(SETTINGS, tiny_pipeline, 0)
    path = f"/apis/apps/v1/namespaces/{NS}/deployments/{name}"
    api.failures[("PATCH", path)] = [500] * 10
    sleeps: list[float] = []
    launcher = _launcher(tiny_pipeline, host, sleeps, max_attempts=4)
    with pytest.raises(K8sError, match=r"after 4 attempts.*500"):
        launcher.apply(_decision((1, 1, 1), (0, 1, 1)))
    assert sleeps == [0.25, 0.5, 1.0]
    assert len([r for r in api.requests if r[:2] == ("PATCH", path)]) == 4


def test_client_error_is_not_retried(fake_api: tuple[FakeApi, str],
                                     tiny_pipeline: Pipeline) -> None:
    api, host = fake_api  # no deployments: GET answers 404
    sleeps: list[float] = []
    with pytest.raises(K8sError, match="404"):
        _launcher(tiny_pipeline, host, sleeps).apply(_decision((0, 1, 1), (0, 1, 1)))
    assert not sleeps and len(api.requests) == 1


def test_service_url_names_the_rendered_service(tiny_pipeline: Pipeline) -> None:
    # docs/live.md points the in-cluster driver at it
    launcher = K8sLauncher(tiny_pipeline, SETTINGS, dry_run=True)
    assert launcher.service_url(1) == "http://ipa-tiny-second.serving.svc.cluster.local:8000"
    svc = render_manifests(tiny_pipeline, _decision((1, 1, 1), (1, 1, 1)), SETTINGS)[3]
    assert svc["metadata"]["name"] == "ipa-tiny-second"
    assert svc["spec"]["ports"][0]["port"] == SETTINGS.port == 8000


def test_dry_run_prints_and_sends_nothing(tiny_pipeline: Pipeline) -> None:
    out = io.StringIO()
    launcher = K8sLauncher(tiny_pipeline, SETTINGS, dry_run=True, out=out)
    sent = launcher.apply(_decision((1, 2, 2), (0, 1, 1)))
    text = out.getvalue()
    assert len(sent) == 4 and text.count("PATCH /apis/apps/v1/namespaces/serving/") == 4
    assert STRATEGIC_MERGE in text and MERGE_PATCH in text and '"replicas": 2' in text
