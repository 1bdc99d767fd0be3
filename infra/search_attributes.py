"""The one registry of custom search attributes (no personal data: codes, flags and reasons only)."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

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


async def register_on_test_server(client: Client, namespace: str = "default") -> None:
    """Register the custom search attributes on Temporal's time-skipping test server (which implements
    AddSearchAttributes but not ListSearchAttributes)."""
    types = {
        "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
        "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    }
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=namespace, search_attributes={name: types[kind] for name, kind in SEARCH_ATTRIBUTE_TYPES.items()}))
