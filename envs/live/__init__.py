"""The live pipeline: real stage servers on this machine or on Kubernetes.

* `envs.live.server`: the command line of one replica of one stage, an HTTP inference
  server (`envs.live.stage_server`: dynamic batching and run-time reconfiguration;
  `envs.live.stage_http`: health and readiness probes, inference, configuration;
  `envs.live.metrics_text`: Prometheus metrics and their parser).
* `envs.live.local`: starts and stops replica processes on 127.0.0.1 (`envs.live.replica`:
  one replica's state).
* `envs.live.driver`: the load generator that sends every request through the stages
  (`envs.live.records`: what it records; `envs.live.http_client`: JSON over HTTP).
* `envs.live.backend`: `LiveBackend`, the `Backend` the env drives (`envs.live.live_stats`:
  its interval readout; `envs.live.supervision`: its supervisor thread and shutdown).
* `envs.live.energy`: energy estimated from the replicas' CPU time.
* `envs.live.prometheus`, `envs.live.cluster_backend`: `ClusterBackend`, intervals read
  back from Prometheus.
* `envs.live.k8s_manifests`: renders each stage's Deployment and Service, and patches.
* `envs.live.k8s`: `K8sLauncher`, which applies decisions by patching them.

Submodules are imported on use (``from envs.live.backend import LiveBackend``); this
package itself imports nothing heavy.

May import: ``envs.config``, ``envs.model``, ``envs.workload``, ``envs.metering``,
``envs.backends``.
"""

from envs.config.errors import IpaEnergyError


class LiveError(IpaEnergyError, RuntimeError):
    """A live replica, request or cluster call failed; the message says what to check."""


__all__ = ["LiveError"]
