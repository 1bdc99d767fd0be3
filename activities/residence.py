"""Residence agency: permanent residence of the newborn at a parent's household (Decree 63/2024).

Once-only: the household is found in the registry from the mother's record (else the father's), never
taken from the event. When neither parent has a household on record, a person must decide: the outcome
says why, and the workflow waits for an operator to supply the household.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from sqlalchemy.dialects.postgresql import insert

from activities.common import log_access, recorded_in_this_transaction
from registry.births import parent_match_of
from registry.db import Registry, table_of
from registry.matching import attention_reason
from registry.models import Household, Person, ResidencePeriod, ResidenceRegistration
from workflows.contracts import ResidenceInput, ResidenceOutcome

AGENCY = "residence"


class ResidenceAgency(Protocol):
    async def register_residence(self, inp: ResidenceInput) -> ResidenceOutcome: ...


class RegistryResidenceAgency:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def register_residence(self, inp: ResidenceInput) -> ResidenceOutcome:
        async with self.registry.unit_of_work() as session:
            done = (None if recorded_in_this_transaction(session, inp.child_person_id)
                    else await session.get(ResidenceRegistration, inp.child_person_id))
            if done is not None:
                return ResidenceOutcome(registered=True, household_id=done.household_id, basis=done.basis)
            child = await session.get(Person, inp.child_person_id)
            if child is None:
                return ResidenceOutcome(registered=False, attention_reason="child-record-missing")

            household_id: uuid.UUID | None
            if inp.household_id is not None:
                if await session.get(Household, inp.household_id) is None:
                    return ResidenceOutcome(registered=False, attention_reason="supplied-household-unknown")
                household_id, basis = inp.household_id, "operator"
            else:
                mismatch = attention_reason(await parent_match_of(session, child.id))
                if mismatch is not None:  # an ID number in the event pointed at someone else: a person decides
                    return ResidenceOutcome(registered=False, attention_reason=mismatch)
                mother = await session.get(Person, child.mother_id) if child.mother_id else None
                father = await session.get(Person, child.father_id) if child.father_id else None
                for parent in (mother, father):
                    if parent is not None:
                        log_access(session, citizen=parent.id, agency=AGENCY,
                                   purpose="find household for newborn's residence", workflow_id=inp.workflow_id,
                                   fields="household")
                if mother is not None and mother.household_id is not None:
                    household_id, basis = mother.household_id, "mother"
                elif father is not None and father.household_id is not None:
                    household_id, basis = father.household_id, "father"
                else:
                    reason = ("mother-not-in-registry" if mother is None
                              else "no-household-on-record-for-parents")
                    return ResidenceOutcome(registered=False, attention_reason=reason)

            result = await session.execute(
                insert(table_of(ResidenceRegistration))
                .values(person_id=child.id, household_id=household_id, basis=basis, workflow_id=inp.workflow_id)
                .on_conflict_do_nothing())
            if result.rowcount:  # type: ignore[attr-defined]
                session.add(ResidencePeriod(person_id=child.id, household_id=household_id,
                                            valid_from=child.date_of_birth,
                                            started_by="operator" if basis == "operator" else "birth",
                                            workflow_id=inp.workflow_id))
            child.household_id = household_id
            return ResidenceOutcome(registered=True, household_id=household_id, basis=basis)
