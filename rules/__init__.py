"""Jurisdiction rules (Vietnam as reference), read from the YAML files in ``rules/data``.

Every fact that a law sets (province codes, the personal ID layout's century/sex digit, card validity,
immunization schedule, school entry age) lives in a data file with its legal source, so another
jurisdiction can swap the files rather than the code.
"""

from rules._data import RuleDataError
from rules.civil_registration import earliest_plausible_birth_date, max_years_from_birth_to_registration
from rules.dates import add_months
from rules.health_insurance import child_card_eligible, health_insurance_validity
from rules.identity_card import IdCardMilestone, id_card_milestones
from rules.lifecycle import (
    CitizenFacts,
    DoseFact,
    PlannedItem,
    citizen_agenda,
    jurisdiction_tz,
    life_stage,
    lifecycle_policy,
    local_date,
    notice_time,
)
from rules.personal_id import (
    Sex,
    compose_personal_id,
    decode_personal_id,
    earliest_birth_year_covered,
    personal_id_prefix,
    personal_id_problem,
)
from rules.provinces import is_known_province, province_name, provinces
from rules.school import enrolment_notice_date, school_entry_date, school_entry_passed, school_entry_year
from rules.vaccination import PlannedDose, replan_after_dose, vaccination_plan, vaccination_plan_for, vaccine_names

__all__ = [
    "CitizenFacts",
    "DoseFact",
    "IdCardMilestone",
    "PlannedItem",
    "child_card_eligible",
    "citizen_agenda",
    "enrolment_notice_date",
    "id_card_milestones",
    "jurisdiction_tz",
    "life_stage",
    "local_date",
    "notice_time",
    "lifecycle_policy",
    "school_entry_passed",
    "PlannedDose",
    "RuleDataError",
    "Sex",
    "add_months",
    "compose_personal_id",
    "decode_personal_id",
    "earliest_birth_year_covered",
    "earliest_plausible_birth_date",
    "health_insurance_validity",
    "is_known_province",
    "max_years_from_birth_to_registration",
    "personal_id_prefix",
    "personal_id_problem",
    "province_name",
    "provinces",
    "school_entry_date",
    "school_entry_year",
    "vaccination_plan",
    "vaccination_plan_for",
    "vaccine_names",
    "replan_after_dose",
]
