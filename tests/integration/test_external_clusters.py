"""The service on servers it did not start: search attributes registered on any namespace, status says
external."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client

from infra.search_attributes import SEARCH_ATTRIBUTE_TYPES, SearchAttributeError, ensure_registered
from infra.settings import Settings
from tests.helpers import eventually

pytestmark = pytest.mark.integration


async def new_namespace(client: Client) -> str:
    name = f"fresh-{secrets.token_hex(4)}"
    await client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=name, workflow_execution_retention_period=Duration(seconds=24 * 3600)))
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
