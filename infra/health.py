"""The operator endpoint of a worker or bridge process: GET /metrics, /healthz and /readyz.

`/healthz` answers 200 while the process's event loop runs. `/readyz` asks each dependency (NATS, Temporal,
the database) in parallel with a short timeout: 200 when all answer, else 503 with a JSON body naming each one
that is down and why. `/metrics` is the Prometheus text format of the default registry (the service's counters
and the Temporal SDK's, see `infra.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("lifeevents.health")
CHECK_TIMEOUT = 2.0
Check = Callable[[], Awaitable[None]]
"""Returns when the dependency answers; raises (anything) when it does not."""


def nats_check(nc: Any) -> Check:
    async def check() -> None:
        if not nc.is_connected:
            raise ConnectionError("not connected" if not nc.is_reconnecting else "reconnecting")
        await nc.flush(timeout=CHECK_TIMEOUT)

    return check


def temporal_check(client: Any) -> Check:
    async def check() -> None:
        if not await client.service_client.check_health(timeout=timedelta(seconds=CHECK_TIMEOUT)):
            raise ConnectionError("workflow service not serving")

    return check


def database_check(engine: AsyncEngine) -> Check:
    async def check() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return check


async def readiness(checks: Mapping[str, Check], *, each_within: float = CHECK_TIMEOUT) -> dict[str, str]:
    """`{dependency: "ok" | reason}` for every check, run in parallel, each bounded by `each_within` seconds."""
    async def one(check: Check) -> str:
        try:
            async with asyncio.timeout(each_within):
                await check()
        except TimeoutError:
            return f"no answer within {each_within:g}s"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; its type and text say why
            return f"{type(exc).__name__}: {str(exc)[:200]}".rstrip(": ")
        return "ok"

    results = await asyncio.gather(*(one(c) for c in checks.values()))
    return dict(zip(checks, results, strict=True))


class OperatorEndpoint:
    """A minimal HTTP/1.1 server on the process's event loop (no thread, so the checks share the clients)."""

    def __init__(self, checks: Mapping[str, Check], on_scrape: Callable[[], None] | None = None) -> None:
        self.checks = dict(checks)
        self.on_scrape = on_scrape

    async def respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method != "GET":
            return 405, "application/json", b'{"error": "GET only"}'
        route = path.split("?", 1)[0]
        if route == "/healthz":
            return 200, "application/json", b'{"status": "alive"}'
        if route == "/readyz":
            states = await readiness(self.checks)
            down = {name: why for name, why in states.items() if why != "ok"}
            body = {"status": "ready" if not down else "not ready", "checks": states, "down": sorted(down)}
            return (503 if down else 200), "application/json", json.dumps(body).encode()
        if route == "/metrics":
            if self.on_scrape is not None:
                self.on_scrape()
            return 200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
        return 404, "application/json", b'{"error": "GET /metrics, /healthz or /readyz"}'

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                request = (await reader.readline()).decode("latin-1").split()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # headers are not needed
            status, content_type, body = (await self.respond(request[0], request[1]) if len(request) >= 2
                                          else (400, "application/json", b'{"error": "bad request"}'))
            reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                      503: "Service Unavailable"}.get(status, "")
            writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @contextlib.asynccontextmanager
    async def serving(self, host: str, port: int) -> AsyncIterator[int]:
        """Serve until the block ends; yields the bound port (`port` 0 picks a free one)."""
        server = await asyncio.start_server(self._serve, host, port)
        bound = server.sockets[0].getsockname()[1]
        log.info("operator endpoint on http://%s:%d (/metrics, /healthz, /readyz)", host, bound)
        try:
            yield bound
        finally:
            server.close()
            await server.wait_closed()


async def http_get(host: str, port: int, path: str) -> tuple[int, bytes]:
    """A tiny asyncio HTTP GET (tests, and a `curl`-free check from scripts)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body
