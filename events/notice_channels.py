"""The AsyncAPI description of what the service publishes on the NOTIFY stream (``notify.>``): references to
notices delivered to citizens, tasks for health stations and notices to education departments. Each payload
is exactly what the publishing gateway writes (``activities/notification.py``, ``activities/lifecycle.py``,
``activities/school_planning.py``); the tests compare them."""

from __future__ import annotations

from typing import Any, Final

from activities.lifecycle import HEALTH_TASK_SUBJECT
from activities.school_planning import DEPARTMENT_SUBJECT

NOTICE_INBOX_PREFIX: Final = "notify.inbox"
"""Subject prefix of :class:`activities.notification.NatsNoticeGateway` (one subject per citizen)."""

_UUID: Final = {"type": "string", "format": "uuid"}
_PROVINCE: Final = {"description": "Province code (rules/data/provinces.yaml).", "examples": ["079", "001"]}


def _dedupe_header(what: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"Nats-Msg-Id": {"type": "string", "description": (
            f"The {what}'s dedupe key: JetStream drops a re-publication within the duplicate window, so a retried "
            "activity announces it once.")}},
        "required": ["Nats-Msg-Id"],
    }


_ANNOUNCEMENT_HEADERS: Final = {
    "type": "object",
    "properties": {"traceparent": {"type": "string", "description": "W3C trace context of the sending step."},
                   "tracestate": {"type": "string"}},
    "description": (
        "No Nats-Msg-Id: each attempt's announcement is kept. A notice is announced inside the transaction that "
        "stores it, and an attempt whose transaction rolled back leaves an announcement of a notice never "
        "committed; JetStream's duplicate window would drop the committing attempt's announcement as its repeat. "
        "Consumers de-duplicate by notification_id."),
}


def _channel(address: str, title: str, description: str, parameters: dict[str, Any], message: str) -> dict[str, Any]:
    return {"address": address, "title": title, "description": description, "parameters": parameters,
            "servers": [{"$ref": "#/servers/nats"}],
            "messages": {message: {"$ref": f"#/components/messages/{message}"}}}


def notify_channels() -> dict[str, dict[str, Any]]:
    return {
        "notices": _channel(
            f"{NOTICE_INBOX_PREFIX}.{{citizen}}", "Notices to citizens",
            "Stream NOTIFY. One message per notice delivered to a citizen's in-app inbox (after a birth stage, a "
            "lifecycle reminder, a move, a correction, a death), for the app gateway: a reference (notification "
            "id, citizen UUID), never the text.",
            {"citizen": {"description": "Registry UUID of the citizen the notice is about."}}, "Notice"),
        "healthStationTasks": _channel(
            f"{HEALTH_TASK_SUBJECT}.{{province}}", "Tasks for health stations",
            "Stream NOTIFY. One message per task for a health station (a child's dose is overdue), for the "
            "station's own system: references and the dose, never a name or number. `unknown` stands for the "
            "province when the child has no registered address.",
            {"province": _PROVINCE}, "HealthStationTask"),
        "educationDepartmentNotices": _channel(
            f"{DEPARTMENT_SUBJECT}.{{province}}", "Notices to education departments",
            "Stream NOTIFY. One message per province and school-capacity plan run whose wards are short of "
            "places, for the department's inbox: ward-level counts, no personal data.",
            {"province": _PROVINCE}, "EducationDepartmentNotice"),
    }


def notify_operations() -> dict[str, dict[str, Any]]:
    def send(title: str, channel: str, message: str) -> dict[str, Any]:
        return {"action": "send", "title": title, "channel": {"$ref": f"#/channels/{channel}"},
                "messages": [{"$ref": f"#/channels/{channel}/messages/{message}"}]}

    return {
        "sendNotice": send("Announce a delivered notice", "notices", "Notice"),
        "sendHealthStationTask": send("Give a health station a task", "healthStationTasks", "HealthStationTask"),
        "sendEducationDepartmentNotice": send("Tell an education department about a shortage of places",
                                              "educationDepartmentNotices", "EducationDepartmentNotice"),
    }


def notify_messages() -> dict[str, dict[str, Any]]:
    return {
        "Notice": {
            "name": "Notice",
            "title": "Notice delivered",
            "contentType": "application/json",
            "headers": _ANNOUNCEMENT_HEADERS,
            "payload": {
                "type": "object",
                "properties": {
                    "notification_id": _UUID,
                    "citizen": _UUID,
                    "recipient": {"type": ["string", "null"], "format": "uuid",
                                  "description": "The person who receives it (a parent, the citizen, a declarant)."},
                    "stage": {"type": "string", "description": "Birth stage or lifecycle item kind."},
                    "language": {"type": "string", "examples": ["vi", "en"]},
                },
                "required": ["notification_id", "citizen", "recipient", "stage", "language"],
                "additionalProperties": False,
                "description": ("A reference only: the gateway reads the notice's text from the inbox by its id; "
                                "the stream holds no personal data."),
            },
        },
        "HealthStationTask": {
            "name": "HealthStationTask",
            "title": "Task for a health station",
            "contentType": "application/json",
            "headers": _dedupe_header("task"),
            "payload": {
                "type": "object",
                "properties": {
                    "task_id": _UUID,
                    "kind": {"type": "string", "examples": ["overdue-dose"]},
                    "citizen": {**_UUID, "description": "Registry UUID of the child."},
                    "vaccine": {"type": "string", "examples": ["DPT_VGB_HIB"]},
                    "dose": {"type": "integer", "minimum": 1},
                    "due_date": {"type": "string", "format": "date"},
                    "ward_code": {"type": ["string", "null"]},
                },
                "required": ["task_id", "kind", "citizen", "vaccine", "dose", "due_date", "ward_code"],
                "additionalProperties": False,
            },
        },
        "EducationDepartmentNotice": {
            "name": "EducationDepartmentNotice",
            "title": "Notice to an education department",
            "contentType": "application/json",
            "headers": _ANNOUNCEMENT_HEADERS,
            "payload": {
                "type": "object",
                "properties": {
                    "notice_id": _UUID,
                    "department": {"type": "string", "examples": ["education"]},
                    "province_code": {"type": "string"},
                    "plan_run_id": {"type": "string", "description": "The school-capacity plan run it comes from."},
                    "subject": {"type": "string"},
                    "body": {"type": "string", "description": "The wards short of places, with counts."},
                },
                "required": ["notice_id", "department", "province_code", "plan_run_id", "subject", "body"],
                "additionalProperties": False,
            },
        },
    }
