"""Reading a notice announcement (events/notice_dispatch.py): the notification id, or a reason naming the field."""

from __future__ import annotations

import json
import uuid

import pytest

from events.notice_dispatch import UnreadableAnnouncement, read_announcement


def test_the_notification_id_is_read_with_its_stream_sequence() -> None:
    notice = uuid.uuid4()
    announced = read_announcement(json.dumps({"notification_id": str(notice), "stage": "birth_recorded"}).encode(), 7)
    assert (announced.notification_id, announced.stream_sequence) == (notice, 7)


@pytest.mark.parametrize(("data", "reason"), [
    (b"\xff\xfe", "body: not JSON"),
    (b"{", "body: not JSON"),
    (b"[1]", "body: not a JSON object"),
    (b"{}", "notification_id: missing or not a string"),
    (b'{"notification_id": 5}', "notification_id: missing or not a string"),
    (b'{"notification_id": "abc"}', "notification_id: not a UUID"),
    (b"[" * 100_000, "body: not JSON"),
])
def test_an_unreadable_announcement_names_the_field(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableAnnouncement, match=f"^{reason}"):
        read_announcement(data, 1)
