"""One citizen's agency records held in memory: the built-in lifecycle and health agencies' behaviour without
a database, for `starter.py fast-forward` and the workflow tests.

The rules, the agenda and the notice templates are the real ones; only the storage differs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import rules
from activities.common import agency_activity
from activities.lifecycle import build_agenda, dose_codes, identity_context
from activities.notification import NoticeRenderer
from workflows.contracts import ActionOutcome, Agenda, AgendaAction, AgendaRequest, DoseApplication

AGENCY = "in-memory"


@dataclass
class SentNotice:
    on: date
    key: str
    kind: str
    recipient_role: str
    channel: str
    subject: str


@dataclass
class PlannedDoseRecord:
    due_date: date
    due_by: date | None
    overdue_at_planning: bool
    administered_on: date | None = None


@dataclass
class InMemoryCitizen:
    date_of_birth: date
    registered_on: date | None = None
    full_name: str = "Nguyễn Minh An"
    language: str = "en"
    parents: tuple[str, ...] = ("mother", "father")
    ward_name: str = "Phường Bến Nghé"
    person_id: uuid.UUID = field(default_factory=uuid.uuid4)
    notices: list[SentNotice] = field(default_factory=list)
    health_station_tasks: list[tuple[str, int, date]] = field(default_factory=list)
    reports: dict[uuid.UUID, tuple[str, int, date]] = field(default_factory=dict)
    applied_reports: set[uuid.UUID] = field(default_factory=set)
    deceased_on: date | None = None
    """Set when the death is recorded: from then on nothing is sent."""

    def __post_init__(self) -> None:
        on = self.registered_on or self.date_of_birth
        self.registered_on = on
        self.renderer = NoticeRenderer()
        self.doses = {(d.vaccine, d.dose): PlannedDoseRecord(d.due_date, d.due_by, d.overdue)
                      for d in rules.vaccination_plan(self.date_of_birth, as_of=on)}
        self.card_valid_until = (rules.health_insurance_validity(self.date_of_birth)[1]
                                 if rules.child_card_eligible(self.date_of_birth, on) else None)
        self.school_entry_year = (None if rules.school_entry_passed(self.date_of_birth, on)
                                  else rules.school_entry_year(self.date_of_birth))

    def report_dose(self, vaccine: str, dose: int, given_on: date) -> uuid.UUID:
        """What the bridge stores for a `vaccination.administered` event; the signal carries the id."""
        report_id = uuid.uuid4()
        self.reports[report_id] = (vaccine, dose, given_on)
        return report_id

    @property
    def activities(self) -> list[Any]:
        return [agency_activity("load_agenda", AGENCY, self.load_agenda),
                agency_activity("act_on_agenda_item", AGENCY, self.act_on_agenda_item),
                agency_activity("apply_dose_report", AGENCY, self.apply_dose_report)]

    async def load_agenda(self, inp: AgendaRequest) -> Agenda:
        facts = rules.CitizenFacts(
            date_of_birth=self.date_of_birth,
            doses=tuple(rules.DoseFact(v, n, r.due_date, r.administered_on, r.overdue_at_planning)
                        for (v, n), r in self.doses.items()),
            card_valid_until=self.card_valid_until, school_entry_year=self.school_entry_year)
        return build_agenda(facts, inp.as_of, inp.now)

    async def act_on_agenda_item(self, inp: AgendaAction) -> ActionOutcome:
        item = inp.item
        key = f"{inp.workflow_id}/{item.key}"
        if self.deceased_on is not None:
            return ActionOutcome(done=False, detail="the citizen's death is recorded: nothing is sent")
        if any(n.key == key for n in self.notices):
            return ActionOutcome(done=True, detail="already notified")
        names = rules.vaccine_names()
        context: dict[str, Any] = {"child_name": self.full_name, "date_of_birth": self.date_of_birth,
                                   "ward_name": self.ward_name, "due_date": item.about,
                                   "days_before": rules.lifecycle_policy().dose_reminder_days_before,
                                   "card_number": "TE1…", "valid_until": self.card_valid_until,
                                   "entry_year": self.school_entry_year,
                                   **identity_context(item, self.date_of_birth)}
        if item.doses:
            pending = [(v, n) for v, n in dose_codes(item)
                       if (r := self.doses.get((v, n))) and r.administered_on is None and r.due_date == item.about]
            if not pending:
                return ActionOutcome(done=False, detail="no longer due (given, re-planned or changed)")
            context["doses"] = [{"name": names[v].get(self.language, v), "dose": n} for v, n in pending]
            if item.kind == "dose_overdue":
                self.health_station_tasks.extend((v, n, item.about or item.on) for v, n in pending)
        subject, _ = self.renderer.render(item.kind, self.language, context)
        roles = list(self.parents)
        if not roles or rules.add_months(self.date_of_birth, 12 * 14) <= item.on:
            roles.append("citizen")
        self.notices.extend(SentNotice(item.on, key, item.kind, role, "app", subject) for role in roles)
        return ActionOutcome(done=True, detail="notified")

    async def apply_dose_report(self, inp: DoseApplication) -> ActionOutcome:
        if inp.report_id in self.applied_reports:
            return ActionOutcome(done=False, detail="report already applied")
        self.applied_reports.add(inp.report_id)
        vaccine, dose, given_on = self.reports[inp.report_id]
        record = self.doses.get((vaccine, dose))
        if record is not None and record.administered_on is not None:
            return ActionOutcome(done=False, detail=f"{vaccine} dose {dose} was already recorded")
        if record is None:
            record = self.doses[(vaccine, dose)] = PlannedDoseRecord(given_on, None, False)
        record.administered_on = given_on
        given = {k: r.administered_on for k, r in self.doses.items() if r.administered_on is not None}
        assert self.registered_on is not None
        replanned = 0
        for number, (due, due_by) in rules.replan_after_dose(self.date_of_birth, self.registered_on, given,
                                                             vaccine, dose).items():
            later = self.doses.get((vaccine, number))
            if later is not None and later.administered_on is None and later.due_date != due:
                later.due_date, later.due_by = due, due_by
                replanned += 1
        return ActionOutcome(done=True, detail=f"{vaccine} dose {dose} recorded; {replanned} later dose(s) re-planned")
