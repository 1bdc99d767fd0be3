"""Generate the published contracts of the events from their models (one entry per event type in
:mod:`events.catalog`, the envelope in :mod:`events.envelope`).

``python -m events.schema`` (re)writes ``events/schemas/*.json``; ``python -m events.schema --check`` exits 1
and lists the files that are missing or differ from what the models produce (for CI). The output is
deterministic: sorted keys, 2-space indent, UTF-8, one trailing newline.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from events.catalog import CONTRACTS, JSON_SCHEMA_DIALECT, SCHEMA_DIR
from events.envelope import CLOUDEVENT_SCHEMA_ID, CloudEvent
from events.media_types import JSON_MEDIA_TYPE_PATTERN
from events.notice_channels import notify_channels, notify_messages, notify_operations

__all__ = ["ASYNCAPI_PATH", "BIRTH_SCHEMA_PATH", "CLOUDEVENT_SCHEMA_PATH", "VACCINATION_SCHEMA_PATH", "main",
           "render_all"]

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
BIRTH_SCHEMA_PATH: Final = f"{SCHEMA_DIR}/birth_registered.schema.json"
VACCINATION_SCHEMA_PATH: Final = f"{SCHEMA_DIR}/vaccination_administered.schema.json"
CLOUDEVENT_SCHEMA_PATH: Final = f"{SCHEMA_DIR}/cloudevent.schema.json"
ASYNCAPI_PATH: Final = f"{SCHEMA_DIR}/asyncapi.json"

ASYNCAPI_VERSION: Final = "3.0.0"
API_VERSION: Final = "1.0.0"
COMPONENT_SCHEMAS: Final = "#/components/schemas/"




def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def cloudevent_schema() -> dict[str, Any]:
    """JSON Schema of the CloudEvents 1.0 structured-JSON envelope accepted by the service."""
    schema = CloudEvent.model_json_schema()
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = CLOUDEVENT_SCHEMA_ID
    schema["title"] = "CloudEvents 1.0 envelope (structured JSON mode)"
    return schema


def _rewrite_refs(node: Any, prefix: str) -> Any:
    """Copy of ``node`` with every local ``#/$defs/<name>`` reference pointing at ``<prefix><name>``."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = prefix + value.removeprefix("#/$defs/")
            else:
                out[key] = _rewrite_refs(value, prefix)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, prefix) for item in node]
    return node


def _as_component(schema: dict[str, Any], name: str, components: dict[str, Any]) -> None:
    """Move a model's schema and its ``$defs`` into ``components`` (AsyncAPI location, refs fixed)."""
    schema = copy.deepcopy(schema)
    schema.pop("$schema", None)
    schema.pop("$id", None)
    definitions = schema.pop("$defs", {})
    for def_name, definition in {**definitions, name: schema}.items():
        rewritten = _rewrite_refs(definition, COMPONENT_SCHEMAS)
        if def_name in components and components[def_name] != rewritten:
            raise RuntimeError(f"two different schemas are named {def_name!r}")
        components[def_name] = rewritten


def _event_schema(title: str, event_type: str, dataschema: str, payload: str,
                  subject: dict[str, Any] | None) -> dict[str, Any]:
    """A CloudEvent of ``event_type`` whose data is the ``payload`` component."""
    properties: dict[str, Any] = {"type": {"const": event_type}}
    if subject is not None:
        properties["subject"] = subject
    properties["datacontenttype"] = {"pattern": JSON_MEDIA_TYPE_PATTERN}
    properties["dataschema"] = {"const": dataschema}
    properties["data"] = {"$ref": COMPONENT_SCHEMAS + payload}
    return {
        "title": title,
        "description": f"A CloudEvent of type {event_type} whose data is {payload}.",
        "allOf": [
            {"$ref": COMPONENT_SCHEMAS + "CloudEvent"},
            {"type": "object", "properties": properties, "required": ["type", "data"]},
        ],
    }


def _event_message(name: str, title: str, summary: str) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/cloudevents+json",
        "headers": {
            "type": "object",
            "properties": {
                "Nats-Msg-Id": {
                    "type": "string",
                    "description": (
                        "First 32 hex digits of SHA-256(CloudEvent source, NUL, id): CloudEvents makes only source "
                        "+ id unique, so two producers may use the same ids. JetStream drops a duplicate published "
                        "within the stream's duplicate window."
                    ),
                }
            },
        },
        "payload": {"$ref": f"{COMPONENT_SCHEMAS}{name}Event"},
    }


def _ce_header(description: str, **schema: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **schema}


def _binary_event_message(name: str, title: str, summary: str, event_type: str, dataschema: str) -> dict[str, Any]:
    """The same event in binary content mode (CloudEvents NATS protocol binding)."""
    structured = _event_message(name, title, summary)
    return {
        "name": f"{name}Binary",
        "title": f"{title} (binary content mode)",
        "summary": summary,
        "description": (
            "CloudEvents NATS protocol binding, binary content mode: the attributes are `ce-<name>` headers (names "
            "case-insensitive, values percent-decoded as the CloudEvents SDKs encode them, extensions as "
            "`ce-<extension>`), datacontenttype is the `content-type` header and the body is the event data alone. "
            "The service turns it into the structured event and validates that, so the reasons are the same."
        ),
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {
                **structured["headers"]["properties"],
                "ce-specversion": _ce_header("specversion", const="1.0"),
                "ce-id": _ce_header("id"),
                "ce-source": _ce_header("source (URI-reference)"),
                "ce-type": _ce_header("type", const=event_type),
                "ce-time": _ce_header("time (RFC 3339)"),
                "ce-subject": _ce_header("subject"),
                "ce-dataschema": _ce_header("dataschema", const=dataschema),
                "content-type": _ce_header("datacontenttype: application/json, parameters allowed (a charset must "
                                           "be utf-8)", pattern=JSON_MEDIA_TYPE_PATTERN),
            },
            "required": ["ce-specversion", "ce-id", "ce-source", "ce-type"],
        },
        "payload": {"$ref": f"{COMPONENT_SCHEMAS}{name}"},
    }


def _event_channel(address: str, title: str, description: str, message: str) -> dict[str, Any]:
    return {
        "address": address,
        "title": title,
        "description": description,
        "parameters": {"province": PROVINCE_PARAMETER},
        "servers": [{"$ref": "#/servers/nats"}],
        "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in (message, f"{message}Binary")},
    }


PROVINCE_PARAMETER: Final = {
    "description": "Code of the province where the event was registered (rules/data/provinces.yaml).",
    "examples": ["079", "001"],
}


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3.0 description of the events the service consumes and the dead letters it keeps."""
    schemas: dict[str, Any] = {}
    _as_component(cloudevent_schema(), "CloudEvent", schemas)
    for c in CONTRACTS:
        _as_component(c.payload_schema(), c.name, schemas)
        schemas[f"{c.name}Event"] = _event_schema(f"{c.title} event", c.event_type, c.dataschema, c.name, c.subject)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:lifeevents:asyncapi:civil-events",
        "info": {
            "title": "Life-event orchestration — civil and health events",
            "version": API_VERSION,
            "description": (
                "Civil-status offices and health stations publish one CloudEvent per event on the NATS JetStream "
                "streams CIVIL (civil.<province>.<event>) and HEALTH (health.<province>.<event>), in structured "
                "mode (the body is the whole event as JSON) or binary mode (CloudEvents NATS binding: attributes "
                "in ce- headers, the body is the data). The life-event orchestration service consumes both with "
                "durable pull consumers and dispatches each event by its CloudEvents type. It publishes on the "
                "stream NOTIFY (notify.>) references to the notices it delivered, tasks for health stations and "
                "notices to education departments, and keeps rejected events on DLQ. Generated by "
                "`python -m events.schema` from the event models: do not edit by hand."
            ),
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {
            "nats": {
                "host": "localhost:4222",
                "protocol": "nats",
                "description": "Placeholder: the embedded development server (nats-server -js).",
            }
        },
        "channels": {
            **{c.channel: _event_channel(f"{c.domain}.{{province}}.{c.subject_event}", c.title,
                                         f"Stream {c.domain.upper()}. {c.summary}", c.name) for c in CONTRACTS},
            **notify_channels(),
            "deadLetter": {
                "address": "dlq.{domain}.{province}.{event}",
                "title": "Dead letters",
                "description": (
                    "Stream DLQ. An event that cannot be accepted (invalid, an event type with no handler, a "
                    "subject that disagrees with the data, a citizen the registry does not know) is never "
                    "dropped: its original bytes are kept here, unchanged, with the reasons in headers (and, for a "
                    "binary-mode event, its ce- and content-type headers); the original message is then terminated "
                    "on its consumer."
                ),
                "parameters": {
                    "domain": {"description": "First token of the original subject.", "examples": ["civil", "health"]},
                    "province": PROVINCE_PARAMETER,
                    "event": {
                        "description": "Last token of the original subject.",
                        "examples": [c.subject_event for c in CONTRACTS],
                    },
                },
                "servers": [{"$ref": "#/servers/nats"}],
                "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
            },
        },
        "operations": {
            **{f"receive{c.name}": {
                "action": "receive",
                "title": f"Consume {c.title.lower()}",
                "description": (f"Durable pull consumer. {c.handling} An invalid event goes to deadLetter. When "
                                "Temporal or the database is down the message is nak'ed with backoff and "
                                "redelivered."),
                "channel": {"$ref": f"#/channels/{c.channel}"},
                "messages": [{"$ref": f"#/channels/{c.channel}/messages/{m}"} for m in (c.name, f"{c.name}Binary")],
            } for c in CONTRACTS},
            **notify_operations(),
            "sendDeadLetter": {
                "action": "send",
                "title": "Keep an invalid event",
                "channel": {"$ref": "#/channels/deadLetter"},
                "messages": [{"$ref": "#/channels/deadLetter/messages/DeadLetter"}],
            },
        },
        "components": {
            "schemas": schemas,
            "messages": {
                **{c.name: _event_message(c.name, c.title, c.summary) for c in CONTRACTS},
                **{f"{c.name}Binary": _binary_event_message(c.name, c.title, c.summary, c.event_type, c.dataschema)
                   for c in CONTRACTS},
                **notify_messages(),
                "DeadLetter": {
                    "name": "DeadLetter",
                    "title": "Dead letter",
                    "summary": "An event that was not accepted, kept with the reasons.",
                    "contentType": "application/octet-stream",
                    "headers": {
                        "type": "object",
                        "properties": {
                            "Dead-Letter-Reason": {
                                "type": "string",
                                "description": (
                                    "Every reason, joined with '; ', each '<field path>: <rule>' (e.g. "
                                    "'data.child.date_of_birth: date of birth is in the future (today in "
                                    "Asia/Ho_Chi_Minh)'). Printable ASCII; never contains names, ID numbers "
                                    "or dates of birth."
                                ),
                            },
                            "Original-Subject": {
                                "type": "string",
                                "description": "The subject the event was published on.",
                            },
                        },
                        "required": ["Dead-Letter-Reason", "Original-Subject"],
                    },
                    "payload": {
                        "description": "The original message bytes, unchanged (may be neither UTF-8 nor JSON)."
                    },
                },
            },
        },
    }


def render_all() -> dict[str, str]:
    """Every generated file: path relative to the project root -> file text."""
    return {
        **{c.schema_path: _dump(c.payload_schema()) for c in CONTRACTS},
        CLOUDEVENT_SCHEMA_PATH: _dump(cloudevent_schema()),
        ASYNCAPI_PATH: _dump(asyncapi_document()),
    }


def stale_files(root: Path = PROJECT_ROOT) -> list[str]:
    """Generated files that are missing under ``root`` or differ from :func:`render_all`."""
    stale: list[str] = []
    for rel, text in render_all().items():
        path = root / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(rel)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m events.schema", description="Generate events/schemas/*.json.")
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    args = parser.parse_args(argv)

    if args.check:
        stale = stale_files()
        if stale:
            print("stale generated files (run `python -m events.schema`):", file=sys.stderr)
            for rel in stale:
                print(f"  {rel}", file=sys.stderr)
            return 1
        print("event schemas are up to date")
        return 0

    for rel, text in render_all().items():
        path = PROJECT_ROOT / rel
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            print(f"unchanged {rel}")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        print(f"wrote     {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
