"""The bridge's own checks: subject and payload must agree; redelivery delays grow and are capped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from events.bridge import BirthEventBridge, backoff_seconds
from events.models import InvalidEvent, encode_event, make_birth_event
from infra.settings import Settings
from registry.seed import first_family_in, synthetic_birth


@dataclass
class FakeMsg:
    subject: str
    data: bytes


def bridge() -> Any:
    return BirthEventBridge(js=None, registry=None, starter=None, settings=Settings())  # type: ignore[arg-type]


def raw_birth(province: str) -> bytes:
    payload = synthetic_birth(first_family_in(province), registration_number="UNIT0000001",
                              date_of_birth=date.today() - timedelta(days=3), sex="male")
    return encode_event(make_birth_event(payload))


def test_event_on_its_province_subject_is_accepted() -> None:
    event, payload = bridge().validate(FakeMsg("civil.079.birth_registered", raw_birth("079")))
    assert payload.province_code == "079" and event.subject == "UNIT0000001"


def test_subject_province_must_match_the_payload() -> None:
    with pytest.raises(InvalidEvent) as caught:
        bridge().validate(FakeMsg("civil.001.birth_registered", raw_birth("079")))
    assert "province '001'" in str(caught.value) and "data.province_code '079'" in str(caught.value)


def test_redelivery_delay_doubles_and_is_capped() -> None:
    assert [backoff_seconds(n, 30.0) for n in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
