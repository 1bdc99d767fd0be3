"""The service on servers it did not start: search attributes registered on any namespace, status says
external."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from infra.search_attributes import LIFE_EVENT, SEARCH_ATTRIBUTE_TYPES, SearchAttributeError, ensure_registered
from infra.settings import PROJECT_ROOT, Settings
from infra.stack import EmbeddedStack, free_port
from registry.seed import family
from starter import publish_raw
from tests.helpers import eventually, read_until
from tests.integration.test_birth_end_to_end import birth_event, wait_all_stages
from workflows.client import birth_workflow_id

pytestmark = pytest.mark.integration


async def new_namespace(client: Client) -> str:
    name = f"fresh-{secrets.token_hex(4)}"
    await client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=name, workflow_execution_retention_period=Duration(seconds=24 * 3600)))

    async def visible() -> bool:  # the server's namespace cache takes a moment to see a new namespace
        try:
            await custom_attributes(client, name)
        except RPCError:
            return False
        return True

    await eventually(visible, bool, within=30, what=f"namespace {name} known to the server")
    return name


async def custom_attributes(client: Client, namespace: str) -> dict[str, int]:
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    return dict(listed.custom_attributes)


async def test_search_attributes_are_registered_once_on_a_fresh_namespace(settings: Settings, service: Any) -> None:
    namespace = await new_namespace(service.client)
    assert not set(SEARCH_ATTRIBUTE_TYPES) & set(await custom_attributes(service.client, namespace))

    added = await eventually(lambda: _try_register(service.client, namespace), lambda r: r is not None,
                             within=30, what="the new namespace to accept search attributes")
    assert added == sorted(SEARCH_ATTRIBUTE_TYPES)
    assert set(SEARCH_ATTRIBUTE_TYPES) <= set(await custom_attributes(service.client, namespace))
    assert await ensure_registered(service.client, namespace) == []  # idempotent


async def test_a_name_taken_with_another_type_stops_start_up_with_the_reason(settings: Settings,
                                                                             service: Any) -> None:
    namespace = await new_namespace(service.client)

    async def add_text_stage() -> bool:
        try:
            await service.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
                namespace=namespace, search_attributes={"Stage": IndexedValueType.INDEXED_VALUE_TYPE_TEXT}))
        except Exception:
            return False
        return True

    await eventually(add_text_stage, bool, within=30, what="Stage added as Text")
    with pytest.raises(SearchAttributeError, match="Stage is INDEXED_VALUE_TYPE_TEXT, the service needs Keyword"):
        await ensure_registered(service.client, namespace)


async def _try_register(client: Client, namespace: str) -> list[str] | None:
    try:
        return await ensure_registered(client, namespace)
    except SearchAttributeError as err:
        if "NOT_FOUND" in str(err):  # the server's namespace cache has not seen it yet
            return None
        raise


async def test_the_service_runs_on_servers_it_did_not_start_given_only_by_url_and_credentials(
        settings: Settings, service: Any, tmp_path: Path) -> None:
    """`worker.py` as a separate process, told only where the servers are and where its NATS credentials are:
    a fresh Temporal namespace (its search attributes unregistered), a NATS started by someone else, the
    registry's database. The first birth published there completes every stage."""
    namespace = await new_namespace(service.client)
    nats_owner = Settings(LIFEEVENTS_DATA_DIR=tmp_path / "nats-owner", NATS_PORT=free_port(), NATS_URL=None,
                          TEMPORAL_ADDRESS=settings.temporal_address, DATABASE_URL=settings.database_url)
    elsewhere = EmbeddedStack(nats_owner, headless_ui=True)
    await asyncio.to_thread(elsewhere.start)
    env = {**os.environ, "LIFEEVENTS_DATA_DIR": str(tmp_path / "service"),
           "TEMPORAL_ADDRESS": settings.temporal_address, "TEMPORAL_NAMESPACE": namespace,
           "TEMPORAL_TASK_QUEUE": "life-events-external",
           "NATS_URL": nats_owner.nats_url, "NATS_CREDENTIALS_DIR": str(nats_owner.nats_credentials_dir),
           "DATABASE_URL": settings.database_url}
    proc = await asyncio.create_subprocess_exec(sys.executable, str(PROJECT_ROOT / "worker.py"), env=env,
                                                cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    output: list[str] = []

    try:
        await asyncio.wait_for(read_until(proc, "bridge consuming", output), timeout=90)
        assert set(SEARCH_ATTRIBUTE_TYPES) <= set(await custom_attributes(service.client, namespace))
        reg, raw = birth_event(77)
        await publish_raw(nats_owner, [raw], progress=False)
        await wait_all_stages(service, [reg])
        handle = service.client.get_workflow_handle(birth_workflow_id(family(77).province_code, reg))
        with pytest.raises(RPCError):  # not in the session's namespace ...
            await handle.describe()
        elsewhere_client = await Client.connect(settings.temporal_address, namespace=namespace,
                                                data_converter=service.client.data_converter)
        desc = await elsewhere_client.get_workflow_handle(handle.id).describe()  # ... but in the fresh one
        assert desc.typed_search_attributes.get(LIFE_EVENT) == "birth"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), timeout=60)
        await asyncio.to_thread(elsewhere.stop)
