"""JSON over HTTP/1.1 to the stage servers (the driver, the launcher and the backend's
probes all talk to them this way)."""

from __future__ import annotations

import http.client
import json
from typing import Any


def http_json(host: str, port: int, method: str, path: str, body: dict[str, Any] | None = None,
              timeout_s: float = 5.0) -> tuple[int, Any]:
    """One HTTP request on a fresh connection.

    Args:
        host: Server host.
        port: Server port.
        method: HTTP method.
        path: Request path.
        body: JSON body (None: no body).
        timeout_s: Socket timeout.

    Returns:
        ``(status, parsed JSON)`` for a JSON answer, else ``(status, text)``.

    Raises:
        OSError: If the server cannot be reached or the connection fails.
    """
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        return exchange(conn, method, path, body)
    finally:
        conn.close()


def exchange(conn: http.client.HTTPConnection, method: str, path: str,
              body: dict[str, Any] | None) -> tuple[int, Any]:
    """One request and its answer on an open connection (kept open for the next one).

    Args:
        conn: The connection.
        method: HTTP method.
        path: Request path.
        body: JSON body (None: no body).

    Returns:
        ``(status, parsed JSON)`` for a JSON answer, else ``(status, text)``.
    """
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    if response.getheader("Content-Type", "").startswith("application/json"):
        return response.status, json.loads(raw)
    return response.status, raw.decode(errors="replace")
