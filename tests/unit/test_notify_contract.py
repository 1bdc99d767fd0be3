"""The AsyncAPI document describes what the service really publishes on NOTIFY: each gateway's message, captured
from the gateway itself, is valid against its message schema (formats checked) and lands on its channel's address;
and binary content mode is described next to the structured one for every event type."""

from __future__ import annotations

import json
import re
import uuid
from datetime import date
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from activities.lifecycle import NatsTaskGateway
from activities.notification import NatsNoticeGateway
from activities.school_planning import NatsDepartmentGateway
from events.catalog import CONTRACTS
from events.schema import asyncapi_document
from registry.models import DepartmentNotice, HealthStationTask, Notification


class CapturingJetStream:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        self.published.append((subject, payload, headers))


def address_pattern(address: str) -> str:
    return "^" + re.sub(r"\\\{[a-z]+\\\}", "[^.]+", re.escape(address)) + "$"


def notice() -> Notification:
    return Notification(id=uuid.uuid4(), dedupe_key="birth-1/personal_id_assigned", citizen_person_id=uuid.uuid4(),
                        recipient_person_id=uuid.uuid4(), stage="personal_id_assigned", language="vi",
                        subject="s", body="b")


def task() -> HealthStationTask:
    return HealthStationTask(id=uuid.uuid4(), dedupe_key="task-1", person_id=uuid.uuid4(), province_code="079",
                             ward_code=None, kind="overdue-dose", vaccine="BCG", dose=1, due_date=date(2026, 5, 1))


def department_notice() -> DepartmentNotice:
    return DepartmentNotice(id=uuid.uuid4(), dedupe_key="run-1/079", department="education", province_code="079",
                            subject="s", body="Phường 1: 12 places short", plan_run_id=uuid.uuid4())


@pytest.mark.parametrize(("channel", "message", "publish"), [
    ("notices", "Notice", lambda js: NatsNoticeGateway(js).publish(notice())),
    ("healthStationTasks", "HealthStationTask", lambda js: NatsTaskGateway(js).publish_task(task())),
    ("educationDepartmentNotices", "EducationDepartmentNotice",
     lambda js: NatsDepartmentGateway(js).publish(department_notice())),
])
async def test_what_each_gateway_publishes_matches_its_asyncapi_message(channel: str, message: str,
                                                                        publish: Any) -> None:
    document = asyncapi_document()
    js = CapturingJetStream()
    await publish(js)

    (subject, payload, headers), = js.published
    assert re.match(address_pattern(document["channels"][channel]["address"]), subject), subject
    described = document["components"]["messages"][message]
    Draft202012Validator(described["payload"], format_checker=FormatChecker()).validate(json.loads(payload))
    Draft202012Validator(described["headers"]).validate(headers)
    assert {"$ref": f"#/channels/{channel}/messages/{message}"} in [
        m for op in document["operations"].values() if op["action"] == "send" for m in op["messages"]]


def test_the_validation_fails_for_a_payload_that_differs() -> None:
    described = asyncapi_document()["components"]["messages"]["Notice"]["payload"]
    errors = list(Draft202012Validator(described, format_checker=FormatChecker()).iter_errors(
        {"notification_id": "not-a-uuid", "citizen": str(uuid.uuid4()), "recipient": None, "stage": "x",
         "language": "vi", "text": "a name"}))
    assert len(errors) == 2  # the bad uuid and the unexpected field


def test_every_event_type_is_described_in_both_content_modes() -> None:
    document = asyncapi_document()
    for contract in CONTRACTS:
        channel = document["channels"][contract.channel]
        assert set(channel["messages"]) == {contract.name, f"{contract.name}Binary"}
        binary = document["components"]["messages"][f"{contract.name}Binary"]
        assert binary["headers"]["properties"]["ce-type"]["const"] == contract.event_type
        assert binary["payload"] == {"$ref": f"#/components/schemas/{contract.name}"}
