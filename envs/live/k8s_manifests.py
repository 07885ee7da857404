"""Kubernetes manifests of a pipeline: one Deployment and one Service per stage, and the
patches that move a Deployment to a new stage decision.

Rendering (``render_manifests``, or ``python -m envs.live.k8s render``) gives, per stage, a
Deployment running ``python -m envs.live.server`` in the given container image, configured
through environment variables (``STAGE_VARIANT``, ``STAGE_BATCH``, ``STAGE_CORES``, ...)
with CPU requests and limits equal to the decision's cores, readiness and liveness probes
on ``/readyz`` and ``/healthz``, Prometheus scrape annotations; and a ClusterIP Service
that spreads requests over the stage's pods.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from envs.model.spec import Decision, Pipeline, StageDecision

CONTAINER = "server"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MERGE_PATCH = "application/merge-patch+json"


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


def resource_name(settings: K8sSettings, pipeline: Pipeline, stage: int) -> str:
    """DNS-1123 name of a stage's Deployment and Service, e.g. ``ipa-video-detector``.

    Args:
        settings: The resource name prefix.
        pipeline: The pipeline.
        stage: Stage index.

    Returns:
        The name (at most 63 characters).
    """
    raw = f"{settings.name_prefix}-{pipeline.name}-{pipeline.stages[stage].name}".lower()
    name = re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")
    return name[:63].rstrip("-")


def stage_env(pipeline: Pipeline, stage: int, choice: StageDecision,
              settings: K8sSettings) -> list[dict[str, str]]:
    """The server's environment for ``choice`` (what a decision changes, plus the rest).

    Args:
        pipeline: The pipeline (stage and variant names).
        stage: Stage index.
        choice: The stage's decision.
        settings: Catalog and batching timeout.

    Returns:
        The container's ``env`` list.
    """
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
    """The apps/v1 Deployment of one stage under ``choice``.

    Args:
        pipeline: The pipeline.
        stage: Stage index.
        choice: The stage's decision.
        settings: Namespace, image, port, memory.

    Returns:
        The manifest.
    """
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
    """The v1 Service in front of one stage's pods.

    Args:
        pipeline: The pipeline.
        stage: Stage index.
        settings: Namespace and port.

    Returns:
        The manifest.
    """
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
    """Deployments and Services of every stage (for ``kubectl apply -f``).

    Args:
        pipeline: The pipeline.
        decision: The configuration to deploy.
        settings: Where and how the servers run.

    Returns:
        The manifests, a Deployment and a Service per stage.

    Raises:
        ActionError: If ``decision`` does not fit the pipeline.
    """
    pipeline.validate(decision)
    out = []
    for s, choice in enumerate(decision.stages):
        out += [render_deployment(pipeline, s, choice, settings),
                render_service(pipeline, s, settings)]
    return out


def deployment_patch(pipeline: Pipeline, stage: int, choice: StageDecision,
                     settings: K8sSettings) -> dict[str, Any]:
    """Strategic merge patch of the ``server`` container's env and resources.

    Args:
        pipeline: The pipeline.
        stage: Stage index.
        choice: The stage's new decision.
        settings: Catalog, batching timeout, memory.

    Returns:
        The patch body.
    """
    return {"spec": {"template": {"spec": {"containers": [{
        "name": CONTAINER,
        "env": stage_env(pipeline, stage, choice, settings),
        "resources": _resources(choice, settings),
    }]}}}}


def scale_patch(replicas: int) -> dict[str, Any]:
    """Merge patch of the scale subresource.

    Args:
        replicas: The new replica count.

    Returns:
        The patch body.
    """
    return {"spec": {"replicas": replicas}}
