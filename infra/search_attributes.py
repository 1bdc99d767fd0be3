"""The one registry of custom search attributes (no personal data: codes, flags and reasons only)."""

from __future__ import annotations

import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError

log = logging.getLogger("lifeevents.search_attributes")

NEEDS_ATTENTION = SearchAttributeKey.for_bool("NeedsAttention")
ATTENTION_REASON = SearchAttributeKey.for_keyword("AttentionReason")
LIFE_EVENT = SearchAttributeKey.for_keyword("LifeEvent")
PROVINCE_CODE = SearchAttributeKey.for_keyword("ProvinceCode")
STAGE = SearchAttributeKey.for_keyword("Stage")

ALL_KEYS = (NEEDS_ATTENTION, ATTENTION_REASON, LIFE_EVENT, PROVINCE_CODE, STAGE)

# name -> type name as the Temporal CLI spells it (`--search-attribute Name=Type`)
SEARCH_ATTRIBUTE_TYPES: dict[str, str] = {
    "NeedsAttention": "Bool",
    "AttentionReason": "Keyword",
    "LifeEvent": "Keyword",
    "ProvinceCode": "Keyword",
    "Stage": "Keyword",
}


INDEXED_TYPES: dict[str, IndexedValueType.ValueType] = {
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
}


class SearchAttributeError(RuntimeError):
    """The namespace's search attributes cannot serve the workflows; the message says what an operator does."""


async def ensure_registered(client: Client, namespace: str) -> list[str]:
    """Register the custom search attributes the workflows use on `namespace`, any server (idempotent).

    Without them every workflow start fails and the bridge could only retry its events forever, so a start-up
    that cannot register them (no permission, a name taken with another type) stops with the reason instead.
    Returns the names added now.
    """
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace))
    except RPCError as err:
        raise SearchAttributeError(
            f"cannot list the search attributes of namespace {namespace!r} ({err.status.name}: {err.message}); "
            f"ask the cluster's operator to add {_spelled()}") from err
    existing = {**listed.system_attributes, **listed.custom_attributes}
    clashes = [f"{name} is {IndexedValueType.Name(existing[name])}, the service needs {kind}"
               for name, kind in SEARCH_ATTRIBUTE_TYPES.items()
               if name in existing and existing[name] != INDEXED_TYPES[kind]]
    if clashes:
        raise SearchAttributeError(f"namespace {namespace!r}: " + "; ".join(clashes))
    missing = {name: INDEXED_TYPES[kind] for name, kind in SEARCH_ATTRIBUTE_TYPES.items() if name not in existing}
    if not missing:
        return []
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing))
    except RPCError as err:
        raise SearchAttributeError(
            f"cannot add search attributes {', '.join(sorted(missing))} to namespace {namespace!r} "
            f"({err.status.name}: {err.message}); ask the cluster's operator to add {_spelled()}") from err
    log.info("registered search attributes %s on namespace %s", ", ".join(sorted(missing)), namespace)
    return sorted(missing)


def _spelled() -> str:
    return " ".join(f"--search-attribute {name}={kind}" for name, kind in SEARCH_ATTRIBUTE_TYPES.items())


async def register_on_test_server(client: Client, namespace: str = "default") -> None:
    """Register the custom search attributes on Temporal's time-skipping test server (which implements
    AddSearchAttributes but not ListSearchAttributes)."""
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=namespace, search_attributes={name: INDEXED_TYPES[kind]
                                                for name, kind in SEARCH_ATTRIBUTE_TYPES.items()}))
