"""Kubernetes launcher: one Deployment and one Service per stage, decisions applied as patches.

The manifests and patches are `envs.live.k8s_manifests`'s; ``python -m envs.live.k8s
render`` prints the manifests, ``python -m envs.live.k8s apply`` applies a decision.

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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from envs.config.cli import command_line
from envs.config.errors import ConfigError
from envs.live import LiveError
from envs.live.k8s_manifests import (
    CONTAINER,
    MERGE_PATCH,
    STRATEGIC_MERGE,
    K8sSettings,
    deployment_patch,
    render_manifests,
    resource_name,
    scale_patch,
)
from envs.model.spec import Decision, Pipeline, StageDecision


class K8sError(LiveError):
    """A Kubernetes API call failed (after its retries)."""


@dataclass(frozen=True)
class Patch:
    """One patch `K8sLauncher.apply` sent (or printed, in a dry run)."""

    path: str
    content_type: str
    body: dict[str, Any]

    def describe(self) -> str:
        """The patch as a dry run prints it.

        Returns:
            ``PATCH <path> (<content type>)`` and the JSON body.
        """
        return f"PATCH {self.path} ({self.content_type})\n{json.dumps(self.body, indent=2)}"


@dataclass(frozen=True)
class Backoff:
    """How `K8sLauncher` retries a call answered 409 (conflict) or 5xx.

    Attributes:
        max_attempts: Tries per call.
        first_s: First wait between tries; doubled each time.
        max_s: Longest wait between tries.
    """

    max_attempts: int = 5
    first_s: float = 0.5
    max_s: float = 8.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def wait_s(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (from 1).

        Args:
            attempt: The try that failed.

        Returns:
            ``first_s x 2^(attempt - 1)``, at most ``max_s``.
        """
        return min(self.first_s * 2 ** (attempt - 1), self.max_s)


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
        max_backoff_s: Longest wait between tries.
        sleep: The waiting function (tests pass a recorder).
    """

    def __init__(self, pipeline: Pipeline, settings: K8sSettings | None = None,
                 api_client: Any = None, dry_run: bool = False, out: TextIO | None = None,
                 max_attempts: int = 5, backoff_s: float = 0.5, max_backoff_s: float = 8.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.backoff = Backoff(max_attempts, backoff_s, max_backoff_s)
        self.pipeline = pipeline
        self.settings = settings or K8sSettings()
        self.dry_run, self.out, self.sleep = dry_run, out, sleep
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
        """In-cluster URL of a stage's Service, where a driver inside the cluster sends the
        stage's requests (documented in docs/live.md; nothing in the package calls it).

        Args:
            stage: Stage index.

        Returns:
            ``http://<service>.<namespace>.svc.cluster.local:<port>``.
        """
        name = resource_name(self.settings, self.pipeline, stage)
        return f"http://{name}.{self.settings.namespace}.svc.cluster.local:{self.settings.port}"

    def read(self, stage: int) -> dict[str, Any]:
        """A stage's Deployment as a plain dict (camelCase keys, as the API returns it).

        Args:
            stage: Stage index.

        Returns:
            The Deployment.

        Raises:
            K8sError: If the call fails (after its retries).
        """
        name = resource_name(self.settings, self.pipeline, stage)
        dep = self._call(f"GET deployment {self.settings.namespace}/{name}",
                         self._api.read_namespaced_deployment, name, self.settings.namespace)
        return self._client.sanitize_for_serialization(dep)

    def apply(self, decision: Decision) -> list[Patch]:
        """Patch every stage whose Deployment differs from ``decision``.

        Args:
            decision: The configuration to apply.

        Returns:
            The patches sent (all of them, unread and unsent, in a dry run).

        Raises:
            ActionError: If ``decision`` does not fit the pipeline.
            K8sError: If a call fails (after its retries).
        """
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
        for attempt in range(1, self.backoff.max_attempts + 1):
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
                if attempt == self.backoff.max_attempts:
                    raise K8sError(f"{what} still failing after {attempt} attempts, last "
                                   f"answer {detail}; the API server at {host} is "
                                   "unhealthy or the object keeps conflicting") from err
            except HTTPError as err:
                raise K8sError(f"{what}: cannot reach the API server at {host} ({err}); "
                               "check the kubeconfig context") from err
            self.sleep(self.backoff.wait_s(attempt))
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
    """``"v,b,r,c;v,b,r,c"`` (variant index, batch, replicas, cores per stage).

    Raises:
        ConfigError: ``text`` is not of that form.
        ActionError: The decision does not fit ``pipeline``.
    """
    try:
        parts = [tuple(int(x) for x in stage.split(",")) for stage in text.split(";")]
        decision = Decision(tuple(StageDecision(*p) for p in parts))
    except (ValueError, TypeError) as err:
        raise ConfigError(f"--decision {text!r}: {err}; give 'variant,batch,replicas,cores' "
                         "per stage, stages separated by ';'") from None
    pipeline.validate(decision)
    return decision


@command_line("python -m envs.live.k8s")
def main(argv: list[str] | None = None) -> None:
    """Render the manifests of a decision, or apply it (options: ``--help``).

    Args:
        argv: Command-line arguments (None: ``sys.argv``).
    """
    import yaml

    from envs.model.profiles import load_pipeline

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
                              tuple(s.batch_sizes[0] for s in pipeline.stages),
                              (1,) * len(pipeline.stages)))
    if args.command == "render":
        print(yaml.safe_dump_all(render_manifests(pipeline, decision, settings),
                                 sort_keys=False))
    else:
        K8sLauncher(pipeline, settings, dry_run=args.dry_run).apply(decision)


if __name__ == "__main__":
    sys.exit(main())
