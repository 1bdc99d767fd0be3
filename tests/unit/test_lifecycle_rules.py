"""Rules for a citizen's time: catch-up plans, what no longer applies at an age, and the lifecycle agenda."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

import rules
from rules.vaccination import PlannedDose

BORN = date(2026, 1, 10)
TEN_MONTHS_LATE = date(2026, 11, 10)


def by_code(plan: list[PlannedDose]) -> dict[tuple[str, int], PlannedDose]:
    return {(d.vaccine, d.dose): d for d in plan}


def test_a_plan_on_time_has_nothing_overdue() -> None:
    plan = rules.vaccination_plan(BORN, as_of=BORN)
    assert not any(d.overdue for d in plan)
    assert plan == rules.vaccination_plan(BORN)


def test_late_registration_gets_a_catch_up_plan_spaced_by_minimum_intervals() -> None:
    plan = by_code(rules.vaccination_plan(BORN, as_of=TEN_MONTHS_LATE))
    dpt = [plan[("DPT_VGB_HIB", n)] for n in (1, 2, 3)]
    assert [d.nominal_due_date for d in dpt] == [date(2026, 3, 10), date(2026, 4, 10), date(2026, 5, 10)]
    assert [d.due_date for d in dpt] == [TEN_MONTHS_LATE, date(2026, 12, 10), date(2027, 1, 10)]
    assert all(d.overdue for d in dpt)
    assert plan[("MEASLES", 1)].due_date == TEN_MONTHS_LATE and plan[("MEASLES", 1)].overdue
    # not yet due: unchanged, not overdue
    assert plan[("JE", 1)].due_date == date(2027, 1, 10) and not plan[("JE", 1)].overdue
    assert plan[("TD", 1)].due_date == date(2033, 1, 10)
    # the number of overdue doses the notice must name
    assert sum(d.overdue for d in plan.values()) == 12  # BCG, DPT x3, OPV x3, IPV x2, ROTA x2, measles


def test_catch_up_limits_from_the_schedule() -> None:
    assert ("HEPB_BIRTH", 1) in by_code(rules.vaccination_plan(BORN, as_of=BORN + timedelta(days=7)))
    assert ("HEPB_BIRTH", 1) not in by_code(rules.vaccination_plan(BORN, as_of=BORN + timedelta(days=8)))
    at_two_and_a_half = by_code(rules.vaccination_plan(BORN, as_of=date(2028, 7, 10)))
    assert ("ROTA", 1) not in at_two_and_a_half and ("ROTA", 2) not in at_two_and_a_half
    assert at_two_and_a_half[("BCG", 1)].flag == "health-station-judgement"
    assert by_code(rules.vaccination_plan(BORN, as_of=TEN_MONTHS_LATE))[("BCG", 1)].flag is None
    assert rules.vaccination_plan(date(1999, 5, 1), as_of=date(2026, 11, 10)) == []  # past the programme


def test_a_dose_given_late_replans_the_later_doses_of_that_vaccine_only() -> None:
    given_on = date(2026, 3, 20)  # DPT 1 was due 10 March
    new = rules.replan_after_dose(BORN, BORN, {("DPT_VGB_HIB", 1): given_on}, "DPT_VGB_HIB", 1)
    assert new[2][0] == date(2026, 4, 20) and new[3][0] == date(2026, 5, 20)
    assert rules.replan_after_dose(BORN, BORN, {("DPT_VGB_HIB", 1): date(2026, 3, 10)}, "DPT_VGB_HIB", 1)[2][0] \
        == date(2026, 4, 10)


@pytest.mark.parametrize(("born", "registered", "card", "school"), [
    (date(2026, 11, 1), date(2026, 11, 20), True, True),
    (date(2020, 3, 1), date(2026, 11, 20), False, False),  # 6 already; grade-1 year began in Sept 2026
    (date(2020, 12, 15), date(2026, 11, 20), True, False),  # still 5: card until the 6th birthday
    (date(1999, 5, 1), date(2026, 11, 20), False, False),
    (date(2021, 1, 5), date(2026, 11, 20), True, True),  # enters grade 1 in September 2027
])
def test_card_and_school_follow_the_age_at_registration(born: date, registered: date, card: bool,
                                                        school: bool) -> None:
    assert rules.child_card_eligible(born, registered) is card
    assert (not rules.school_entry_passed(born, registered)) is school


def test_id_card_milestones() -> None:
    ages = [(m.age, m.first, m.notice_on) for m in rules.id_card_milestones(date(2026, 3, 15))]
    assert ages == [(14, True, date(2040, 2, 15)), (25, False, date(2051, 2, 15)), (40, False, date(2066, 2, 15)),
                    (60, False, date(2086, 2, 15))]


def test_agenda_groups_doses_by_day_and_adds_the_milestones() -> None:
    plan = rules.vaccination_plan(BORN)
    facts = rules.CitizenFacts(BORN, tuple(rules.DoseFact(d.vaccine, d.dose, d.due_date) for d in plan),
                               rules.health_insurance_validity(BORN)[1], rules.school_entry_year(BORN))
    agenda = rules.citizen_agenda(facts, BORN)
    two_months = [i for i in agenda if i.about == date(2026, 3, 10)]
    assert [i.kind for i in two_months] == ["dose_reminder", "dose_due", "dose_overdue"]
    assert [i.on for i in two_months] == [date(2026, 3, 7), date(2026, 3, 10), date(2026, 4, 9)]
    assert two_months[0].doses == (("DPT_VGB_HIB", 1), ("OPV", 1), ("ROTA", 1))
    kinds = {i.kind: i for i in agenda}
    assert kinds["insurance_ending"].on == date(2032, 8, 31)  # 30 days before 30 September 2032
    assert kinds["school_enrolment"].on == date(2032, 3, 1)
    assert kinds["id_card_first"].on == date(2039, 12, 10)
    assert [i.on for i in agenda] == sorted(i.on for i in agenda)


def test_agenda_skips_the_past_but_keeps_notices_still_useful_late() -> None:
    born = date(2020, 12, 15)
    facts = rules.CitizenFacts(born, (), date(2026, 12, 15), None)
    agenda = rules.citizen_agenda(facts, date(2026, 11, 20))
    assert agenda[0].kind == "insurance_ending" and agenda[0].on == date(2026, 11, 20)  # 30-day window began
    assert all(i.on >= date(2026, 11, 20) for i in agenda)
    given = rules.CitizenFacts(BORN, (rules.DoseFact("BCG", 1, BORN, administered_on=BORN),))
    assert not any(i.doses for i in rules.citizen_agenda(given, BORN))


def test_life_stages() -> None:
    assert rules.life_stage(BORN, BORN) == ("infancy", date(2027, 1, 10))
    assert rules.life_stage(BORN, date(2040, 1, 10))[0] == "youth"
    assert rules.life_stage(BORN, date(2100, 1, 1)) == ("senior", None)
