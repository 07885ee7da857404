"""Kubernetes launcher: one Deployment and one Service per stage, decisions applied as patches.

Rendering (``render_manifests``, or ``python -m envs.live.k8s render``) gives, per stage, a
Deployment running ``python -m envs.live.server`` in the given container image, configured
through environment variables (``STAGE_VARIANT``, ``STAGE_BATCH``, ``STAGE_CORES``, ...)
with CPU requests and limits equal to the decision's cores, readiness and liveness probes
on ``/readyz`` and ``/healthz``, Prometheus scrape annotations; and a ClusterIP Service
that spreads requests over the stage's pods.

`K8sLauncher.apply` brings the cluster to a `Decision` through the official ``kubernetes``
client: it reads each stage's Deployment, then

* patches the Deployment (``apps/v1 patch_namespaced_deployment``, strategic merge of the
  ``server`` container's env and resources) when the variant, batch or cores differ, which
  makes Kubernetes roll the pods over to the new configuration;
* patches its scale subresource (``patch_namespaced_deployment_scale``, merge patch of
  ``spec.replicas``) when the replica count differs.

Calls answered 409 (conflict) or 5xx are retried with exponential backoff; other errors,
and retries that run out, raise `K8sError` naming the call and the last answer. With
``dry_run=True`` nothing is sent: the patches are printed (as JSON) instead.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from envs.live import LiveError
from envs.spec import Decision, Pipeline, StageDecision

CONTAINER = "server"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MERGE_PATCH = "application/merge-patch+json"


class K8sError(LiveError):
    """A Kubernetes API call failed (after its retries)."""


@dataclass(frozen=True)
class K8sSettings:
    """Where and how the stage servers run on the cluster.

    Attributes:
        namespace: Namespace of the Deployments and Services.
        image: Container image with this package installed (see docs/live.md).
        catalog: `models.catalog` pipeline the servers build models from.
        name_prefix: Prefix of every resource name.
        port: Container and Service port.
        max_wait_ms: Batching timeout of every server.
        memory: Memory request and limit per pod.
    """

    namespace: str = "default"
    image: str = "ipa-energy/stage-server:latest"
    catalog: str = "video"
    name_prefix: str = "ipa"
    port: int = 8000
    max_wait_ms: float = 100.0
    memory: str = "2Gi"


@dataclass(frozen=True)
class Patch:
    """One patch `K8sLauncher.apply` sent (or printed, in a dry run)."""

    path: str
    content_type: str
    body: dict[str, Any]

    def describe(self) -> str:
        return f"PATCH {self.path} ({self.content_type})\n{json.dumps(self.body, indent=2)}"


def resource_name(settings: K8sSettings, pipeline: Pipeline, stage: int) -> str:
    """DNS-1123 name of a stage's Deployment and Service, e.g. ``ipa-video-detector``."""
    raw = f"{settings.name_prefix}-{pipeline.name}-{pipeline.stages[stage].name}".lower()
    name = re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")
    return name[:63].rstrip("-")


def stage_env(pipeline: Pipeline, stage: int, choice: StageDecision,
              settings: K8sSettings) -> list[dict[str, str]]:
    """The server's environment for ``choice`` (what a decision changes, plus the rest)."""
    return [
        {"name": "STAGE_CATALOG", "value": settings.catalog},
        {"name": "STAGE_NAME", "value": pipeline.stages[stage].name},
        {"name": "STAGE_VARIANT", "value": pipeline.stages[stage].variants[choice.variant].name},
        {"name": "STAGE_BATCH", "value": str(choice.batch)},
        {"name": "STAGE_CORES", "value": str(choice.cores)},
        {"name": "STAGE_MAX_WAIT_MS", "value": f"{settings.max_wait_ms:g}"},
        {"name": "OMP_NUM_THREADS", "value": str(choice.cores)},
    ]


def _resources(choice: StageDecision, settings: K8sSettings) -> dict[str, Any]:
    amount = {"cpu": str(choice.cores), "memory": settings.memory}
    return {"requests": dict(amount), "limits": dict(amount)}


def render_deployment(pipeline: Pipeline, stage: int, choice: StageDecision,
                      settings: K8sSettings) -> dict[str, Any]:
    """The apps/v1 Deployment of one stage under ``choice``."""
    name = resource_name(settings, pipeline, stage)
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "ipa-energy",
              "ipa-energy/stage": pipeline.stages[stage].name}
    probe = {"httpGet": {"path": "/readyz", "port": settings.port}, "periodSeconds": 2}
    container = {
        "name": CONTAINER,
        "image": settings.image,
        "command": ["python", "-m", "envs.live.server", "--host", "0.0.0.0",
                    "--port", str(settings.port)],
        "ports": [{"name": "http", "containerPort": settings.port}],
        "env": stage_env(pipeline, stage, choice, settings),
        "resources": _resources(choice, settings),
        "readinessProbe": probe,
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": settings.port},
                          "periodSeconds": 10, "initialDelaySeconds": 30},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": settings.namespace, "labels": labels},
        "spec": {
            "replicas": choice.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": dict(labels), "annotations": {
                    "prometheus.io/scrape": "true", "prometheus.io/path": "/metrics",
                    "prometheus.io/port": str(settings.port)}},
                "spec": {"containers": [container]},
            },
        },
    }


def render_service(pipeline: Pipeline, stage: int, settings: K8sSettings) -> dict[str, Any]:
    """The v1 Service in front of one stage's pods."""
    name = resource_name(settings, pipeline, stage)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": settings.namespace},
        "spec": {"selector": {"app.kubernetes.io/name": name},
                 "ports": [{"name": "http", "port": settings.port,
                            "targetPort": settings.port}]},
    }


def render_manifests(pipeline: Pipeline, decision: Decision,
                     settings: K8sSettings) -> list[dict[str, Any]]:
    """Deployments and Services of every stage (for ``kubectl apply -f``)."""
    pipeline.validate(decision)
    out = []
    for s, choice in enumerate(decision.stages):
        out += [render_deployment(pipeline, s, choice, settings),
                render_service(pipeline, s, settings)]
    return out


def deployment_patch(pipeline: Pipeline, stage: int, choice: StageDecision,
                     settings: K8sSettings) -> dict[str, Any]:
    """Strategic merge patch of the ``server`` container's env and resources."""
    return {"spec": {"template": {"spec": {"containers": [{
        "name": CONTAINER,
        "env": stage_env(pipeline, stage, choice, settings),
        "resources": _resources(choice, settings),
    }]}}}}


def scale_patch(replicas: int) -> dict[str, Any]:
    """Merge patch of the scale subresource."""
    return {"spec": {"replicas": replicas}}


class K8sLauncher:
    """Applies decisions to a pipeline deployed on Kubernetes.

    Args:
        pipeline: The pipeline (stage and variant names become env values).
        settings: Namespace, image, catalog, port, batching timeout.
        api_client: A ``kubernetes.client.ApiClient``; None: load ``~/.kube/config`` (or
            the in-cluster configuration). Not used in a dry run.
        dry_run: Print the patches to ``out`` instead of sending them.
        out: Where a dry run prints (default: stdout).
        max_attempts: Tries per call when the answer is 409 or 5xx.
        backoff_s: First wait between tries; doubled each time, at most ``max_backoff_s``.
        sleep: The waiting function (tests pass a recorder).
    """

    def __init__(self, pipeline: Pipeline, settings: K8sSettings | None = None,
                 api_client: Any = None, dry_run: bool = False, out: TextIO | None = None,
                 max_attempts: int = 5, backoff_s: float = 0.5, max_backoff_s: float = 8.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.pipeline = pipeline
        self.settings = settings or K8sSettings()
        self.dry_run = dry_run
        self.out = out
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.sleep = sleep
        self._api: Any = None
        if not dry_run:
            from kubernetes import client, config

            if api_client is None:
                try:
                    config.load_kube_config()
                except Exception:  # noqa: BLE001 - fall back to the in-cluster configuration
                    config.load_incluster_config()
                api_client = client.ApiClient()
            self._client = api_client
            self._api = client.AppsV1Api(api_client)

    def service_url(self, stage: int) -> str:
        """In-cluster URL of a stage's Service."""
        name = resource_name(self.settings, self.pipeline, stage)
        return f"http://{name}.{self.settings.namespace}.svc.cluster.local:{self.settings.port}"

    def read(self, stage: int) -> dict[str, Any]:
        """A stage's Deployment as a plain dict (camelCase keys, as the API returns it)."""
        name = resource_name(self.settings, self.pipeline, stage)
        dep = self._call(f"GET deployment {self.settings.namespace}/{name}",
                         self._api.read_namespaced_deployment, name, self.settings.namespace)
        return self._client.sanitize_for_serialization(dep)

    def apply(self, decision: Decision) -> list[Patch]:
        """Patch every stage whose Deployment differs from ``decision``; returns the patches
        sent (all of them, unread and unsent, in a dry run)."""
        self.pipeline.validate(decision)
        ns = self.settings.namespace
        sent = []
        for s, choice in enumerate(decision.stages):
            name = resource_name(self.settings, self.pipeline, s)
            base = f"/apis/apps/v1/namespaces/{ns}/deployments/{name}"
            env_body = deployment_patch(self.pipeline, s, choice, self.settings)
            patches = [Patch(base, STRATEGIC_MERGE, env_body),
                       Patch(f"{base}/scale", MERGE_PATCH, scale_patch(choice.replicas))]
            if self.dry_run:
                for p in patches:
                    print(p.describe(), file=self.out or sys.stdout)
                sent += patches
                continue
            current = self.read(s)
            env_patch, scale = patches
            if not _container_matches(current, env_body):
                self._call(f"PATCH deployment {ns}/{name}", self._api.patch_namespaced_deployment,
                           name, ns, env_body, _content_type=STRATEGIC_MERGE)
                sent.append(env_patch)
            if current.get("spec", {}).get("replicas") != choice.replicas:
                self._call(f"PATCH deployment {ns}/{name}/scale",
                           self._api.patch_namespaced_deployment_scale, name, ns, scale.body,
                           _content_type=MERGE_PATCH)
                sent.append(scale)
        return sent

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, retried with exponential backoff on 409 and 5xx."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        host = getattr(getattr(self._client, "configuration", None), "host", "?")
        for attempt in range(1, self.max_attempts + 1):
            try:
                return fn(*args, **kwargs)
            except ApiException as err:
                status = err.status or 0
                retry = status == 409 or 500 <= status < 600
                detail = f"{status} {err.reason}: {(err.body or '').strip()[:300]}"
                if not retry:
                    raise K8sError(f"{what} failed with {detail}; check the name, namespace "
                                   "and RBAC permissions (patch on deployments and "
                                   "deployments/scale)") from err
                if attempt == self.max_attempts:
                    raise K8sError(f"{what} still failing after {attempt} attempts, last "
                                   f"answer {detail}; the API server at {host} is "
                                   "unhealthy or the object keeps conflicting") from err
            except HTTPError as err:
                raise K8sError(f"{what}: cannot reach the API server at {host} ({err}); "
                               "check the kubeconfig context") from err
            self.sleep(min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s))
        raise AssertionError("unreachable")


def _container_matches(deployment: dict[str, Any], patch: dict[str, Any]) -> bool:
    """Whether the deployment's server container already has the patch's env and resources."""
    want = patch["spec"]["template"]["spec"]["containers"][0]
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get(
        "containers", [])
    have = next((c for c in containers if c.get("name") == CONTAINER), None)
    if have is None:
        return False
    env = {e["name"]: e.get("value") for e in have.get("env") or []}
    return (all(env.get(e["name"]) == e["value"] for e in want["env"])
            and have.get("resources") == want["resources"])


def _parse_decision(text: str, pipeline: Pipeline) -> Decision:
    """``"v,b,r,c;v,b,r,c"`` (variant index, batch, replicas, cores per stage)."""
    try:
        parts = [tuple(int(x) for x in stage.split(",")) for stage in text.split(";")]
        decision = Decision(tuple(StageDecision(*p) for p in parts))
    except (ValueError, TypeError) as err:
        raise SystemExit(f"--decision {text!r}: {err}; give 'variant,batch,replicas,cores' "
                         "per stage, stages separated by ';'") from None
    pipeline.validate(decision)
    return decision


def main(argv: list[str] | None = None) -> None:
    import yaml

    from envs.profiles import load_pipeline

    parser = argparse.ArgumentParser(prog="python -m envs.live.k8s", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["render", "apply"])
    parser.add_argument("--pipeline", default="video", help="shipped name or profile path")
    parser.add_argument("--catalog", help="catalog pipeline (default: the pipeline's name)")
    parser.add_argument("--decision", help="'v,b,r,c;...' (default: cheapest, 1 replica)")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--image", default=K8sSettings.image)
    parser.add_argument("--max-wait-ms", type=float, default=100.0)
    parser.add_argument("--dry-run", action="store_true", help="apply: print the patches")
    args = parser.parse_args(argv)
    pipeline = load_pipeline(args.pipeline)
    settings = K8sSettings(namespace=args.namespace, image=args.image,
                           catalog=args.catalog or pipeline.name, max_wait_ms=args.max_wait_ms)
    decision = (_parse_decision(args.decision, pipeline) if args.decision else
                Decision.base(pipeline, (0,) * len(pipeline.stages),
                              (pipeline.batch_sizes[0],) * len(pipeline.stages),
                              (1,) * len(pipeline.stages)))
    if args.command == "render":
        print(yaml.safe_dump_all(render_manifests(pipeline, decision, settings),
                                 sort_keys=False))
    else:
        K8sLauncher(pipeline, settings, dry_run=args.dry_run).apply(decision)


if __name__ == "__main__":
    main()
