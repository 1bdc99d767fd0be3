"""Readiness checks with fakes, and the operator endpoint's routes over a real socket."""

from __future__ import annotations

import asyncio
import json

from infra.health import OperatorEndpoint, http_get, nats_check, readiness


async def ok() -> None:
    return None


async def refused() -> None:
    raise ConnectionRefusedError("connection refused")


async def hangs() -> None:
    await asyncio.Event().wait()


async def test_readiness_reports_each_dependency_with_its_reason() -> None:
    states = await readiness({"nats": refused, "temporal": hangs, "database": ok}, each_within=0.1)
    assert states == {"nats": "ConnectionRefusedError: connection refused", "temporal": "no answer within 0.1s",
                      "database": "ok"}


class FakeNats:
    def __init__(self, connected: bool, reconnecting: bool = False) -> None:
        self.is_connected = connected
        self.is_reconnecting = reconnecting
        self.flushed = False

    async def flush(self, timeout: float) -> None:  # noqa: ASYNC109 - nats-py's signature
        self.flushed = True


async def test_nats_check_fails_while_disconnected_and_round_trips_when_connected() -> None:
    assert await readiness({"nats": nats_check(FakeNats(False, reconnecting=True))}) == {
        "nats": "ConnectionError: reconnecting"}
    connected = FakeNats(True)
    assert await readiness({"nats": nats_check(connected)}) == {"nats": "ok"} and connected.flushed


async def test_endpoint_routes() -> None:
    scraped: list[bool] = []
    endpoint = OperatorEndpoint({"nats": refused, "database": ok}, on_scrape=lambda: scraped.append(True))
    async with endpoint.serving("127.0.0.1", 0) as port:
        assert await http_get("127.0.0.1", port, "/healthz") == (200, b'{"status": "alive"}')
        status, body = await http_get("127.0.0.1", port, "/readyz")
        assert status == 503
        assert json.loads(body) == {"status": "not ready", "down": ["nats"],
                                    "checks": {"nats": "ConnectionRefusedError: connection refused",
                                               "database": "ok"}}
        status, body = await http_get("127.0.0.1", port, "/metrics")
        assert status == 200 and b"lifeevents_events_received" in body and scraped == [True]
        assert (await http_get("127.0.0.1", port, "/nowhere"))[0] == 404

    endpoint.checks = {"database": ok}
    async with endpoint.serving("127.0.0.1", 0) as port:
        status, body = await http_get("127.0.0.1", port, "/readyz")
        assert status == 200 and json.loads(body)["status"] == "ready"
