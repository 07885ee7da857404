"""Stage server: one replica of one pipeline stage, serving a catalog model over HTTP.

Run (the local launcher and the Kubernetes Deployment both start it this way)::

    python -m envs.live.server --catalog tiny --stage tiny --variant tiny4 --batch 2 \
        --cores 1 --max-wait-ms 50 --port 0 --port-file /tmp/replica.json

Every option also reads an environment variable (``STAGE_CATALOG``, ``STAGE_NAME``,
``STAGE_VARIANT``, ``STAGE_BATCH``, ``STAGE_CORES``, ``STAGE_MAX_WAIT_MS``, ``PORT``),
which is how the Kubernetes Deployment configures it.

The endpoints are `envs.live.stage_http`'s; batching and reconfiguration are
`envs.live.stage_server`'s.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

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


def main(argv: list[str] | None = None) -> None:
    """Serve one replica until killed (options: the module docstring).

    Args:
        argv: Command-line arguments (None: ``sys.argv``).
    """
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m envs.live.server",
                                     description=f"{__doc__}\n{stage_http.__doc__}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", default=env("STAGE_CATALOG", "tiny"))
    parser.add_argument("--stage", default=env("STAGE_NAME"))
    parser.add_argument("--variant", default=env("STAGE_VARIANT"))
    parser.add_argument("--batch", type=int, default=int(env("STAGE_BATCH", "1")))
    parser.add_argument("--cores", type=int, default=int(env("STAGE_CORES", "1")))
    parser.add_argument("--max-wait-ms", type=float,
                        default=float(env("STAGE_MAX_WAIT_MS", "100")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(env("PORT", "0")))
    parser.add_argument("--port-file", type=Path, help="write {port, pid} here once bound")
    parser.add_argument("--parent-pid", type=int, help="exit when this parent is gone")
    args = parser.parse_args(argv)
    if not args.stage or not args.variant:
        parser.error("--stage and --variant (or STAGE_NAME and STAGE_VARIANT) are required")
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
    import torch

    torch.set_num_interop_threads(1)
    app = StageServer(args.catalog, args.stage,
                      ServerConfig(args.variant, args.batch, args.cores, args.max_wait_ms))
    httpd = serve(app, args.host, args.port)
    if args.port_file:
        tmp = args.port_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": httpd.server_address[1], "pid": os.getpid()}))
        os.replace(tmp, args.port_file)
    app.start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
