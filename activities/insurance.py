"""Health-insurance agency: the state-paid card for a child under 6 (Decree 146/2018 Art. 13–14)."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from temporalio.exceptions import ApplicationError

import rules
from activities.common import WRITTEN_CARD, log_access, recorded_in_this_transaction, registered_on
from registry.db import Registry, table_of, transaction_memo
from registry.models import HealthInsuranceCard, Person
from workflows.contracts import ChildRef, StepDone

AGENCY = "health-insurance"
CHILD_SCHEME = "TE1"  # card prefix of the "children under 6" beneficiary group
NOT_UNDER_6 = "no card: the child was already 6 or older when the birth was registered"


_ISSUE_CARD = (insert(table_of(HealthInsuranceCard)).on_conflict_do_nothing()
               .returning(HealthInsuranceCard.card_number, HealthInsuranceCard.valid_from,
                          HealthInsuranceCard.valid_until))
"""Core, built once; the card comes back when this attempt issued it (the notice tells the family from it)."""


def card_number_for(personal_id_number: str) -> str:
    """The project's card numbering: scheme prefix + the child's ID number (unique because the ID is)."""
    return f"{CHILD_SCHEME}{personal_id_number}"


class InsuranceAgency(Protocol):
    async def issue_child_card(self, inp: ChildRef) -> StepDone: ...


class RegistryInsuranceAgency:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def issue_child_card(self, inp: ChildRef) -> StepDone:
        async with self.registry.unit_of_work() as session:
            existing = None if recorded_in_this_transaction(session, inp.child_person_id) else await session.scalar(
                select(HealthInsuranceCard.card_number).where(HealthInsuranceCard.person_id == inp.child_person_id))
            if existing:
                return StepDone(newly_done=False)
            child = await session.get(Person, inp.child_person_id)
            if child is None or child.personal_id_number is None:
                raise ApplicationError("child has no personal ID number yet", type="NotReady")
            log_access(session, citizen=child.id, agency=AGENCY, purpose="issue under-6 health-insurance card",
                       workflow_id=inp.workflow_id, fields="personal_id_number,date_of_birth")
            if not rules.child_card_eligible(child.date_of_birth, await registered_on(session, child.id)):
                return StepDone(newly_done=False, applicable=False, basis=NOT_UNDER_6)
            valid_from, valid_until = rules.health_insurance_validity(child.date_of_birth)
            card = (await session.execute(_ISSUE_CARD, {
                "card_number": card_number_for(child.personal_id_number), "person_id": child.id,
                "scheme": CHILD_SCHEME, "valid_from": valid_from, "valid_until": valid_until})).first()
            if card is not None:
                transaction_memo(session, WRITTEN_CARD)[child.id] = card
            return StepDone(newly_done=card is not None)
