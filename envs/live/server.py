"""Stage server: one replica of one pipeline stage, serving a catalog model over HTTP.

Run (the local launcher and the Kubernetes Deployment both start it this way)::

    python -m envs.live.server --catalog tiny --stage tiny --variant tiny4 --batch 2 \
        --cores 1 --max-wait-ms 50 --port 0 --port-file /tmp/replica.json

Every option also reads an environment variable (``STAGE_CATALOG``, ``STAGE_NAME``,
``STAGE_VARIANT``, ``STAGE_BATCH``, ``STAGE_CORES``, ``STAGE_MAX_WAIT_MS``, ``PORT``),
which is how the Kubernetes Deployment configures it; an option given on the command line
wins over its variable. A malformed value (``STAGE_BATCH=x``), an unknown catalog, stage
or variant ends the command with one line and exit code 2.

The endpoints are `envs.live.stage_http`'s; batching and reconfiguration are
`envs.live.stage_server`'s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from envs.config.cli import command_line, non_negative_float, non_negative_int, positive_int
from envs.config.errors import ConfigError
from envs.live import stage_http
from envs.live.stage_http import serve
from envs.live.stage_server import ServerConfig, StageServer


def _watch_parent(parent_pid: int) -> None:
    """Exit when the process that launched this replica is gone (a crash of the launcher
    must not leave replicas running)."""
    while True:
        if os.getppid() != parent_pid:
            os._exit(0)
        time.sleep(0.5)


T = TypeVar("T")

# option -> (environment variable, parser, default when neither is given)
_NUMERIC_ENV: dict[str, tuple[str, Callable[[str], float], float]] = {
    "batch": ("STAGE_BATCH", positive_int, 1),
    "cores": ("STAGE_CORES", positive_int, 1),
    "max_wait_ms": ("STAGE_MAX_WAIT_MS", non_negative_float, 100.0),
    "port": ("PORT", non_negative_int, 0),
}


def _from_env(name: str, parse: Callable[[str], T], default: T, option: str) -> T:
    """The value of environment variable ``name`` (``default`` when unset).

    Raises:
        ConfigError: The variable is set but ``parse`` rejects it.
    """
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return parse(text)
    except argparse.ArgumentTypeError as err:
        raise ConfigError(f"environment variable {name}={text!r}: {err}; "
                          f"fix it, unset it or pass {option}") from None


@command_line("python -m envs.live.server")
def main(argv: list[str] | None = None) -> None:
    """Serve one replica until killed (options: the module docstring).

    Args:
        argv: Command-line arguments (None: ``sys.argv``).

    Raises:
        ConfigError: A malformed environment variable, an unknown stage or variant, or an
            out-of-range setting (one line and exit code 2 via `envs.config.cli.command_line`).
        CatalogError: An unknown catalog (likewise).
    """
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m envs.live.server",
                                     description=f"{__doc__}\n{stage_http.__doc__}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", default=env("STAGE_CATALOG", "tiny"))
    parser.add_argument("--stage", default=env("STAGE_NAME"))
    parser.add_argument("--variant", default=env("STAGE_VARIANT"))
    parser.add_argument("--batch", type=positive_int, help="default: STAGE_BATCH or 1")
    parser.add_argument("--cores", type=positive_int, help="default: STAGE_CORES or 1")
    parser.add_argument("--max-wait-ms", type=non_negative_float,
                        help="default: STAGE_MAX_WAIT_MS or 100")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=non_negative_int, help="default: PORT or 0 (any free)")
    parser.add_argument("--port-file", type=Path, help="write {port, pid} here once bound")
    parser.add_argument("--parent-pid", type=int, help="exit when this parent is gone")
    args = parser.parse_args(argv)
    for key, (name, parse, default) in _NUMERIC_ENV.items():
        if getattr(args, key) is None:
            option = "--" + key.replace("_", "-")
            setattr(args, key, _from_env(name, parse, default, option))
    if not args.stage or not args.variant:
        parser.error("--stage and --variant (or STAGE_NAME and STAGE_VARIANT) are required")
    # checks the catalog, stage and variant before anything starts
    app = StageServer(args.catalog, args.stage,
                      ServerConfig(args.variant, args.batch, args.cores, args.max_wait_ms))
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
    import torch

    torch.set_num_interop_threads(1)
    httpd = serve(app, args.host, args.port)
    if args.port_file:
        tmp = args.port_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": httpd.server_address[1], "pid": os.getpid()}))
        os.replace(tmp, args.port_file)
    app.start()
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
