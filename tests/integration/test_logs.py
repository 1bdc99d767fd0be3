"""A birth processed end to end leaves no personal data in any log line of the process."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from infra.settings import Settings
from registry.seed import family
from starter import publish_raw

from .test_birth_end_to_end import birth_event, child_of, wait_all_stages

pytestmark = pytest.mark.integration


async def test_log_lines_of_a_birth_hold_no_personal_data(settings: Settings, service: Any,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    fam = family(41)
    with caplog.at_level(logging.DEBUG):
        reg, raw = birth_event(41, sex="male")
        await publish_raw(settings, [raw], progress=False)
        await wait_all_stages(service, [reg])
        child = await child_of(service, reg)
        logging.getLogger("lifeevents.test").warning("a careless line: %s %s", child.full_name,
                                                     child.personal_id_number)
    assert caplog.records, "nothing was logged"
    text = caplog.text
    for secret in (child.full_name, child.personal_id_number, fam.mother.full_name, fam.mother.id_number,
                   fam.mother.phone, fam.street):
        assert secret and secret not in text, "personal data in a log line"
