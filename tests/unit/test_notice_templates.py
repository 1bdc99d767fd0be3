"""Every stage has a notice in every language, and it renders the facts it is given."""

from __future__ import annotations

from datetime import date

import pytest

from activities.notification import LANGUAGES, NoticeRenderer
from workflows.contracts import Stage

CONTEXT = {
    "child_name": "Nguyễn Minh An", "date_of_birth": date(2026, 3, 1), "personal_id_number": "001226123456",
    "household_number": "HK00100000001", "address": "1 Lê Lợi, Phường 1, Quận 1, Hà Nội",
    "card_number": "TE1001226123456", "valid_from": date(2026, 3, 1), "valid_until": date(2032, 9, 30),
    "doses": [{"name": "BCG", "dose": 1, "due_date": date(2026, 3, 1)}], "entry_year": 2032,
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("stage", list(Stage))
def test_every_stage_renders_in_every_language(stage: Stage, language: str) -> None:
    subject, body = NoticeRenderer().render(stage.value, language, CONTEXT)
    assert "Nguyễn Minh An" in subject
    assert subject and body.strip() and "{{" not in body


def test_dates_follow_the_language() -> None:
    renderer = NoticeRenderer()
    _, vi = renderer.render("health_insurance_issued", "vi", CONTEXT)
    _, en = renderer.render("health_insurance_issued", "en", CONTEXT)
    assert "30/09/2032" in vi and "30 September 2032" in en


def test_unknown_language_falls_back_to_vietnamese() -> None:
    subject, _ = NoticeRenderer().render("personal_id_assigned", "fr", CONTEXT)
    assert subject.startswith("Số định danh cá nhân")
