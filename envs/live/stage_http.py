"""The stage server's HTTP layer: routes requests to a `StageServer` from a thread.

Endpoints:

=================  =====================================================================
``POST /infer``    body ``{"budget_ms": 1500}`` (optional): 200 ``{"batch", "queue_ms",
                   "service_ms", "variant"}``, or 504 ``{"dropped": true}`` when the budget
                   ran out before the request's batch started
``GET /healthz``   200 as soon as the process listens
``GET /readyz``    200 once a model is loaded and warmed up, 503 before
``GET /config``    the configuration in force, and ``switching`` (the variant being built)
``POST /config``   ``{"variant", "batch", "cores", "max_wait_ms", "wait"}`` (all optional)
``GET /metrics``   Prometheus text format (``stage_server_*``)
=================  =====================================================================

Fault injection, for the fault tests: when ``STAGE_FAULT_FILE`` names a file that lists
this server's pid, ``POST /infer`` answers 500 (as a replica with a broken model would).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from envs.config.errors import ConfigError
from envs.live.stage_server import StageServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        """Silence per-request logging."""

    def _send(self, status: int, body: dict[str, Any] | str,
              content_type: str = "application/json") -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        value = json.loads(self.rfile.read(length))
        if not isinstance(value, dict):
            raise ValueError("the body must be a JSON object")
        return value

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        app = self.server.app
        path = self.path.split("?")[0]
        if path == "/healthz":
            self._send(200, {"ok": True})
        elif path == "/readyz":
            ready = app.ready.is_set()
            self._send(200 if ready else 503, {"ready": ready})
        elif path == "/config":
            self._send(200, app.describe())
        elif path == "/metrics":
            text = app.metrics.render(app.config, app.queue_length, app.stage.name)
            self._send(200, text, "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._send(404, {"error": f"no route GET {path}"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        app = self.server.app
        path = self.path.split("?")[0]
        try:
            body = self._body()
        except ValueError as err:
            self._send(400, {"error": f"bad JSON body: {err}"})
            return
        if path == "/infer":
            if _fault_injected():
                self._send(500, {"error": "fault injected (STAGE_FAULT_FILE lists this pid)"})
                return
            if not app.ready.is_set():
                self._send(503, {"error": "model not loaded yet"})
                return
            budget_s = float(body.get("budget_ms", 3.6e6)) / 1e3
            item = app.submit(budget_s)
            if not item.done.wait(budget_s + 600.0):
                self._send(500, {"error": "request was never served"})
                return
            self._send(item.status, item.result)
        elif path == "/config":
            wait = bool(body.pop("wait", False))
            try:
                target = app.reconfigure(body, wait=wait)
            except (ConfigError, ValueError, TypeError) as err:  # a bad change: 400
                self._send(400, {"error": str(err)})
                return
            self._send(200 if wait else 202, {"target": asdict(target), **app.describe()})
        else:
            self._send(404, {"error": f"no route POST {path}"})


def _fault_injected() -> bool:
    """Whether ``STAGE_FAULT_FILE`` lists this process (see the module docstring)."""
    path = os.environ.get("STAGE_FAULT_FILE")
    if not path:
        return False
    try:
        return str(os.getpid()) in Path(path).read_text().split()
    except OSError:
        return False


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: StageServer


def serve(app: StageServer, host: str = "127.0.0.1", port: int = 0) -> _HTTPServer:
    """Bind ``app`` to ``host:port`` (0: any free port) and serve it from a thread.

    The model is not loaded here; call ``app.start()`` (``/readyz`` says when it is done).
    Stop with ``httpd.shutdown(); app.stop()``.

    Args:
        app: The stage server.
        host: Interface to bind.
        port: Port (0: any free one).

    Returns:
        The running HTTP server.
    """
    httpd = _HTTPServer((host, port), _Handler)
    httpd.app = app
    threading.Thread(target=httpd.serve_forever, name="http", daemon=True).start()
    return httpd
