"""Weights & Biases: the reachability probe and a training run's W&B run (resumable); an
evaluation's W&B log is `agents.evaluation.run.log_evaluation`. Imports neither torch nor
stable-baselines3."""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from envs.config.errors import ConfigError
from envs.config.loader import to_dict

if TYPE_CHECKING:
    from agents.runs.train_config import TrainConfig

__all__ = ["WANDB_STATE", "check_wandb_reachable", "init_wandb",
           "read_wandb_state", "write_wandb_state"]

WANDB_PROBE_TIMEOUT_S = 3.0
WANDB_STATE = "wandb.json"
"""W&B run id, and the step up to which the W&B record is known complete (cleanly finished)."""


def check_wandb_reachable(timeout_s: float = WANDB_PROBE_TIMEOUT_S) -> None:
    """Fail fast when W&B's server (``WANDB_BASE_URL`` or api.wandb.ai:443) is unreachable.

    Args:
        timeout_s: How long to wait for a TCP connection.

    Raises:
        ConfigError: No TCP connection within ``timeout_s`` (name resolution included).
    """
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    host = url.hostname or "api.wandb.ai"
    port = url.port or (80 if url.scheme == "http" else 443)
    outcome: dict[str, Any] = {}

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            outcome["ok"] = True
        except OSError as err:
            outcome["error"] = err

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not outcome.get("ok"):
        why = outcome.get("error") or f"no answer within {timeout_s:.0f} s"
        raise ConfigError(f"tracking.mode=online but {host}:{port} is unreachable ({why}); "
                          "use tracking.mode=offline (upload later with `wandb sync "
                          "<run>/wandb/offline-run-*`) or tracking.mode=disabled")


def init_wandb(cfg: TrainConfig, run_dir: Path, meta: dict[str, str]) -> Any | None:
    """Start (or resume) the run's W&B run inside ``run_dir``.

    Args:
        cfg: The training config (its ``tracking`` section).
        run_dir: The run folder; the W&B files go under it.
        meta: Extra config values (git commit, command).

    Returns:
        The W&B run, or None when ``tracking.mode=disabled``.

    Raises:
        ConfigError: ``wandb.init`` failed (names the mode to use instead).
    """
    mode = cfg.tracking.mode
    if mode == "disabled":
        return None
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    state = read_wandb_state(run_dir)
    resuming = "id" in state
    run_id = state.get("id") or secrets.token_hex(4)
    write_wandb_state(run_dir, run_id, state.get("logged_until", 0))
    settings = wandb.Settings(silent=True, console="off", x_disable_stats=True,
                              disable_git=True, x_save_requirements=False, init_timeout=60)
    try:
        return wandb.init(
            project=cfg.tracking.project, entity=cfg.tracking.entity,
            group=cfg.tracking.group, tags=list(cfg.tracking.tags), name=run_dir.name,
            id=run_id, resume="allow" if resuming else None, dir=str(run_dir), mode=mode,
            config={**to_dict(cfg), "meta": meta}, settings=settings)
    except Exception as err:  # noqa: BLE001 - wandb raises many types; name the fix
        raise ConfigError(f"wandb.init failed in tracking.mode={mode}: {err}; use "
                          "tracking.mode=offline or tracking.mode=disabled") from err


def read_wandb_state(run_dir: Path) -> dict[str, Any]:
    """The run folder's ``wandb.json`` (empty without one).

    Args:
        run_dir: The run folder.

    Returns:
        ``{"id": ..., "logged_until": ...}`` or ``{}``.
    """
    path = run_dir / WANDB_STATE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_wandb_state(run_dir: Path, run_id: str, logged_until: int) -> None:
    """Record the W&B run id and the step up to which its record is known complete.

    Args:
        run_dir: The run folder.
        run_id: The W&B run id.
        logged_until: Env step up to which W&B has every metric.
    """
    state = {"id": run_id, "logged_until": logged_until}
    (run_dir / WANDB_STATE).write_text(json.dumps(state) + "\n")
