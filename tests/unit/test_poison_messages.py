"""Poison messages never stop the bridge: every hostile corpus case and every hypothesis mutation of a valid
birth is either a valid event or an InvalidEvent whose reason names the field (never another exception);
handling failures nak until BRIDGE_MAX_DELIVER, then dead-letter with the last error; a dead letter that would
not fit the server's max payload is cut and marked."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.bridge import REASON_HEADER
from events.poison import TRUNCATED_HEADER, fitted_copy
from events.reasons import InvalidEvent
from infra.settings import Settings
from tests.hostile_corpus import HOSTILE_NAMES, SUBJECT, corpus, hostile_but_valid, leaf_paths, oversized, valid_birth
from tests.unit.test_bridge_rules import FakeMsg, Metadata, bridge, dead_letter, run


def outcome_of(b: Any, subject: str, body: bytes) -> str | None:
    """None for a valid event, else the dead-letter reason text (any other exception fails the test)."""
    try:
        b.validate(FakeMsg(subject, body))
    except InvalidEvent as invalid:
        return str(invalid)
    return None


@pytest.mark.parametrize(("label", "subject", "body", "field"), corpus(), ids=[c[0] for c in corpus()])
def test_every_corpus_case_is_dead_lettered_with_its_field(label: str, subject: str, body: bytes,
                                                           field: str) -> None:
    reason = outcome_of(bridge(), subject, body)
    assert reason is not None, f"{label} was accepted"
    assert field in reason, reason


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_template_syntax_and_html_in_a_name_are_kept_as_text(name: str) -> None:
    _, _, payload = bridge().validate(FakeMsg(SUBJECT, hostile_but_valid("HOSTILE0002", name)))
    assert payload.child.full_name == name


async def test_an_overflowing_date_ends_in_a_dead_letter_not_an_exception() -> None:
    b = bridge()
    doc = valid_birth()
    doc["data"]["registered_at"] = "0001-01-01T00:00:00+14:00"
    msg = await run(b, FakeMsg(SUBJECT, json.dumps(doc).encode()))

    assert msg.outcome == [("term", None)]
    assert "data.registered_at" in dead_letter(b)[2][REASON_HEADER]


async def test_a_non_invalid_event_exception_while_reading_is_dead_lettered_with_its_type(monkeypatch: Any) -> None:
    b = bridge()

    def explode(msg: Any) -> None:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(b, "validate", explode)
    msg = await run(b, FakeMsg(SUBJECT, b"{}"))

    assert msg.outcome == [("term", None)]
    assert dead_letter(b)[2][REASON_HEADER] == "envelope: holds a value out of range (OverflowError)"


async def test_handling_failures_nak_until_max_deliver_then_dead_letter_with_the_last_error() -> None:
    b = bridge(birth_fail=RuntimeError("registry down"))
    b.settings = Settings(BRIDGE_MAX_DELIVER=3)
    body = json.dumps(valid_birth()).encode()

    early = await run(b, FakeMsg(SUBJECT, body, Metadata(num_delivered=2)))
    assert [kind for kind, _ in early.outcome] == ["nak"] and b.js.published == []

    last = await run(b, FakeMsg(SUBJECT, body, Metadata(num_delivered=3)))
    assert last.outcome == [("term", None)]
    assert dead_letter(b)[2][REASON_HEADER] == "delivery: gave up after 3 deliveries: RuntimeError: registry down"


async def test_an_exception_outside_validation_and_handling_still_naks(monkeypatch: Any) -> None:
    b = bridge()

    async def explode(msg: Any) -> str:
        raise KeyError("unexpected")

    monkeypatch.setattr(b, "_handle", explode)
    msg = await run(b, FakeMsg(SUBJECT, b"{}"))

    assert [kind for kind, _ in msg.outcome] == ["nak"] and b.retried == 1


async def test_a_dead_letter_that_would_not_fit_is_cut_and_marked() -> None:
    b = bridge()
    body = oversized(1024 * 1024)
    msg = await run(b, FakeMsg(SUBJECT, body))

    subject, data, headers = dead_letter(b)
    assert msg.outcome == [("term", None)]
    assert headers[TRUNCATED_HEADER] == str(len(body)) and len(data) < len(body)
    assert headers["Original-Stream-Sequence"] == "7"
    assert len(data) + sum(len(k) + len(v) + 4 for k, v in headers.items()) < 1024 * 1024


def test_a_dead_letter_that_fits_is_kept_whole() -> None:
    data, headers = fitted_copy(b"x" * 100, {"A": "b"}, 1024)
    assert data == b"x" * 100 and TRUNCATED_HEADER not in headers


def test_an_escaped_non_utf8_subject_is_dead_lettered_under_a_readable_subject() -> None:
    reason = outcome_of(bridge(), "civil.\\xff\\xfe.birth_registered", json.dumps(valid_birth()).encode())
    assert reason is not None and reason.startswith("subject:")


# ---------------------------------------------------------------------------------------- hypothesis

HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["{{ 7*7 }}", "{% raw %}", "<b>x</b>", "\x00", "\u202e", "A" * 300, ""]),
)
HOSTILE_VALUE = st.one_of(HOSTILE_TEXT, st.integers(), st.floats(allow_nan=True), st.none(), st.booleans(),
                          st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                                max_size=2),
                          st.sampled_from(["0001-01-01", "9999-12-31", "2024-02-30", "0001-01-01T00:00:00+14:00",
                                           "9999-12-31T23:59:59-12:00", "1899-12-31"]))
PATHS = leaf_paths(valid_birth())


def _apply(doc: dict[str, Any], path: str, value: Any, drop: bool) -> None:
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    if drop:
        del node[last]
    else:
        node[last] = value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(st.tuples(st.sampled_from(PATHS), HOSTILE_VALUE, st.booleans()), min_size=1, max_size=4))
def test_validate_returns_an_event_or_a_reason_for_any_mutation(mutations: list[tuple[str, Any, bool]]) -> None:
    b = bridge()
    base = valid_birth()
    doc = copy.deepcopy(base)
    for path, value, drop in mutations:
        try:
            _apply(doc, path, value, drop)
        except (KeyError, TypeError):
            continue  # a parent was replaced or dropped by an earlier mutation
    reason = outcome_of(b, SUBJECT, json.dumps(doc).encode())
    if reason is not None:
        assert all(":" in line for line in reason.splitlines()), reason
        assert base["data"]["mother"]["id_number"] not in reason


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300))
def test_validate_survives_any_bytes(body: bytes) -> None:
    assert outcome_of(bridge(), SUBJECT, body) is not None
