"""A NATS message (headers + body) → the CloudEvent document the rest of the pipeline validates.

Both content modes of the CloudEvents NATS protocol binding are understood:

* structured: the body is the whole event as JSON (a ``content-type: application/cloudevents+json`` header
  may say so; a message without a ``ce-specversion`` header whose body is an event is structured too);
* binary: the attributes travel in ``ce-<name>`` headers (``ce-specversion``, ``ce-id``, ``ce-source``,
  ``ce-type``, ``ce-time``, extensions…), ``datacontenttype`` is the ``content-type`` header and the body is
  the event data.

Either way the result is the same JSON object, so a bad attribute gets the same field-named reason in both
modes. Header values are percent-decoded as the CloudEvents SDKs encode them. Reasons never quote a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote

from events.envelope import decode_event, envelope_reasons, json_value
from events.media_types import media_type_problem
from events.reasons import InvalidEvent, _echo, _reason

__all__ = ["ATTRIBUTE_HEADER_PREFIX", "STRUCTURED_MEDIA_TYPE", "message_document"]

ATTRIBUTE_HEADER_PREFIX: Final = "ce-"
CONTENT_TYPE_HEADER: Final = "content-type"
STRUCTURED_MEDIA_TYPE: Final = "application/cloudevents+json"
_NOT_HEADERS: Final = {"data": "the event data is the message body",
                       "datacontenttype": "in binary mode datacontenttype is the content-type header"}
_UNDECODABLE: Final = "\ufffd"
"""What the NATS client puts in place of bytes that are not UTF-8."""


def message_document(headers: Mapping[str, str] | None, body: bytes) -> dict[str, Any]:
    """The event as one JSON object, whichever content mode carried it; :class:`InvalidEvent` otherwise."""
    fields: dict[str, str] = {}
    repeated: list[str] = []
    for name, value in (headers or {}).items():
        key = name.strip().lower()
        if key in fields and fields[key] != value:
            repeated.append(key)
        fields[key] = value
    content_type = fields.get(CONTENT_TYPE_HEADER)
    if content_type is not None and content_type.split(";")[0].strip().lower().startswith("application/cloudevents"):
        problem = media_type_problem(content_type, STRUCTURED_MEDIA_TYPE)
        if problem:
            raise InvalidEvent(_reason("header content-type", problem))
        return decode_event(body)
    if f"{ATTRIBUTE_HEADER_PREFIX}specversion" in fields:
        return _binary_document(fields, repeated, body)
    if any(key.startswith(ATTRIBUTE_HEADER_PREFIX) for key in fields) and not _is_structured_event(body):
        return _binary_document(fields, repeated, body)  # a binary event without its specversion: say so
    return decode_event(body)


def _is_structured_event(body: bytes) -> bool:
    """A structured event that also carries some ``ce-`` header (e.g. a tracing extension) stays structured."""
    try:
        return "specversion" in decode_event(body)
    except InvalidEvent:
        return False


def _binary_document(fields: Mapping[str, str], repeated: list[str], body: bytes) -> dict[str, Any]:
    reasons = [_reason(f"header {key}", "given twice with different values") for key in repeated]
    document: dict[str, Any] = {}
    for key, raw in fields.items():
        if not key.startswith(ATTRIBUTE_HEADER_PREFIX):
            continue
        attribute = key.removeprefix(ATTRIBUTE_HEADER_PREFIX)
        if not attribute:
            reasons.append(_reason(f"header {_echo(key)}", "names no attribute"))
        elif attribute in _NOT_HEADERS:
            reasons.append(_reason(f"header {key}", _NOT_HEADERS[attribute]))
        elif _UNDECODABLE in raw:
            reasons.append(_reason(f"header {key}", "not valid UTF-8"))
        else:
            value = unquote(raw, errors="replace")
            if _UNDECODABLE in value and _UNDECODABLE not in raw:
                reasons.append(_reason(f"header {key}", "percent-encoding is not valid UTF-8"))
            else:
                document[attribute] = value
    content_type = fields.get(CONTENT_TYPE_HEADER)
    if content_type is not None:
        if _UNDECODABLE in content_type:
            reasons.append(_reason("header content-type", "not valid UTF-8"))
        else:
            document["datacontenttype"] = content_type
    datacontenttype = document.get("datacontenttype")
    if datacontenttype is None or not media_type_problem(datacontenttype, "application/json"):
        try:
            document["data"] = json_value(body, "data")
        except InvalidEvent as invalid:
            reasons.extend(invalid.reasons)
    if reasons or "data" not in document:
        # Judge the attributes too (a data type the service does not read is reported there), so one message
        # lists everything wrong with it.
        _, attribute_reasons = envelope_reasons({**document, "data": document.get("data", {})})
        raise InvalidEvent(reasons + [r for r in attribute_reasons if r not in reasons])
    return document
