"""The one registry of custom search attributes (no personal data: codes, flags and reasons only)."""

from __future__ import annotations

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
