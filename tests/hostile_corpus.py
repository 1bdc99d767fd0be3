"""Hostile birth events for the bridge: each case is (label, subject, body, field the reason must name).
Built from one valid birth so each case breaks exactly one thing."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from events.birth_registered import make_birth_event
from events.envelope import encode_event
from registry.seed import first_family_in, synthetic_birth

Case = tuple[str, str, bytes, str]
SUBJECT = "civil.079.birth_registered"


def valid_birth(registration_number: str = "HOSTILE0001") -> dict[str, Any]:
    payload = synthetic_birth(first_family_in("079"), registration_number=registration_number,
                              date_of_birth=date.today() - timedelta(days=4), sex="female")
    return json.loads(encode_event(make_birth_event(payload)))  # type: ignore[no-any-return]


OPTIONAL = {"subject", "time", "datacontenttype", "dataschema", "data.child.time_of_birth",
            "data.child.multiple_birth_order", "data.child.multiple_birth_size", "data.informant.phone",
            "data.informant.email", "data.informant.preferred_language"}
"""Attributes a valid birth may leave out: dropping one is not a hostile case."""
HOSTILE_NAMES = ("{{ 7*7 }} {% raw %}", "<script>alert(1)</script>", "Nguyễn ${jndi:x} An")
"""Names a valid birth may carry (any text without control characters): they must be stored and shown as text,
never rendered as a template or HTML."""


def hostile_but_valid(registration_number: str, name: str) -> bytes:
    doc = valid_birth(registration_number)
    doc["data"]["child"]["full_name"] = name
    return json.dumps(doc).encode()


def _mutated(change: Callable[[dict[str, Any]], None]) -> bytes:
    doc = copy.deepcopy(valid_birth())
    change(doc)
    return json.dumps(doc).encode()


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        node[last] = value
    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        del node[last]
    return change


def leaf_paths(node: dict[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        paths += leaf_paths(value, f"{path}.") if isinstance(value, dict) else [path]
    return paths


def _field(path: str) -> str:
    """The field a reason names for a path in the document (the envelope's attributes are `envelope.*`)."""
    return path if path.startswith("data") else f"envelope.{path}"


def corpus() -> list[Case]:
    cases: list[Case] = [
        ("not JSON", SUBJECT, b"this is not json {", "envelope"),
        ("invalid UTF-8", SUBJECT, b'{"type": "\xff\xfe"}', "envelope"),
        ("deep nesting", SUBJECT, b"[" * 100_000 + b"]" * 100_000, "envelope"),
        ("JSON array", SUBJECT, b"[1, 2, 3]", "envelope"),
        ("control characters in a name", SUBJECT, _mutated(_set("data.child.full_name", "Nguyen\x00\x1b[31mA")),
         "data.child.full_name"),
        ("born in year 0001", SUBJECT, _mutated(_set("data.child.date_of_birth", "0001-01-01")),
         "data.child.date_of_birth"),
        ("born in 1899", SUBJECT, _mutated(_set("data.child.date_of_birth", "1899-12-31")),
         "data.child.date_of_birth"),
        ("born in year 9999", SUBJECT, _mutated(_set("data.child.date_of_birth", "9999-12-31")),
         "data.child.date_of_birth"),
        ("born on 30 February", SUBJECT, _mutated(_set("data.child.date_of_birth", "2024-02-30")),
         "data.child.date_of_birth"),
        ("registered at 0001-01-01 +14:00", SUBJECT,
         _mutated(_set("data.registered_at", "0001-01-01T00:00:00+14:00")), "data.registered_at"),
        ("unknown province", "civil.999.birth_registered", _mutated(_set("data.province_code", "999")),
         "data.province_code"),
        ("subject and payload disagree", "civil.001.birth_registered", _mutated(lambda d: None), "subject"),
        ("no handler for the type", SUBJECT, _mutated(_set("type", "vn.gov.civil.marriage.registered")),
         "envelope.type"),
    ]
    for path in leaf_paths(valid_birth()):
        if path in OPTIONAL:
            continue  # optional: a missing one is valid
        cases.append((f"missing {path}", SUBJECT, _mutated(_drop(path)), _field(path)))
        cases.append((f"wrong type {path}", SUBJECT, _mutated(_set(path, [{"x": 1}])), _field(path)))
    return cases


def oversized(max_payload: int) -> bytes:
    """An invalid event (its child's name is far too long) just under the server's `max_payload`."""
    filler = "A" * (max_payload - 2048)
    doc = valid_birth()
    doc["data"]["child"]["full_name"] = filler
    body = json.dumps(doc).encode()
    return body + b" " * (max_payload - 600 - len(body))
