"""Every stage and every lifecycle notice has a template in every language, and it renders the facts it is given."""

from __future__ import annotations

from datetime import date

import pytest

from activities.notification import LANGUAGES, NoticeRenderer
from rules.lifecycle import KIND_ORDER
from workflows.contracts import Stage

BCG = {"name": "BCG", "dose": 1, "due_date": date(2026, 3, 1), "overdue": False, "flag": None}
MEASLES = {"name": "Measles", "dose": 1, "due_date": date(2026, 12, 1), "overdue": True, "flag": None}
CONTEXT = {
    "child_name": "Nguyễn Minh An", "date_of_birth": date(2026, 3, 1), "personal_id_number": "001226123456",
    "household_number": "HK00100000001", "address": "1 Lê Lợi, Phường 1, Quận 1, Hà Nội",
    "card_number": "TE1001226123456", "valid_from": date(2026, 3, 1), "valid_until": date(2032, 9, 30),
    "doses": [BCG], "overdue": [], "upcoming": [BCG], "entry_year": 2032,
    "expects_card": True, "expects_school": True, "expects_vaccination": True,
    "ward_name": "Phường Bến Nghé", "due_date": date(2026, 5, 1), "days_before": 3,
    "birthday": date(2040, 3, 1), "age": 14,
    "date_of_death": date(2026, 8, 1), "allowance_recorded": True, "card_closed": True,
    "residence_deregistered": True,
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", [s.value for s in Stage] + list(KIND_ORDER) + ["death_registered"])
def test_every_notice_renders_in_every_language(kind: str, language: str) -> None:
    subject, body = NoticeRenderer().render(kind, language, CONTEXT)
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


@pytest.mark.parametrize("language", LANGUAGES)
def test_catch_up_plan_names_the_overdue_doses(language: str) -> None:
    context = {**CONTEXT, "doses": [MEASLES, BCG], "overdue": [MEASLES], "upcoming": [BCG]}
    _, body = NoticeRenderer().render("vaccination_planned", language, context)
    overdue_part, _, rest = body.partition("BCG")
    assert "Measles" in overdue_part and ("Overdue" in overdue_part or "Quá hạn" in overdue_part)
    assert "Measles" not in rest


@pytest.mark.parametrize("language", LANGUAGES)
def test_birth_notice_promises_only_what_will_be_done(language: str) -> None:
    context = {**CONTEXT, "expects_card": False, "expects_school": False, "expects_vaccination": False}
    _, body = NoticeRenderer().render("birth_recorded", language, context)
    for promise in ("health-insurance", "school", "vaccination", "bảo hiểm", "nhập học", "tiêm"):
        assert promise not in body
    _, full = NoticeRenderer().render("birth_recorded", language, CONTEXT)
    assert ("health-insurance card" in full) or ("thẻ bảo hiểm y tế" in full)


@pytest.mark.parametrize("language", LANGUAGES)
def test_death_notice_says_only_what_was_done(language: str) -> None:
    _, full = NoticeRenderer().render("death_registered", language, CONTEXT)
    _, adult = NoticeRenderer().render("death_registered", language, {**CONTEXT, "card_closed": False})
    card = "health-insurance card" if language == "en" else "thẻ bảo hiểm y tế"
    assert card in full and card not in adult
