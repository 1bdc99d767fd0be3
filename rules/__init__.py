"""Jurisdiction rules (Vietnam as reference), read from the YAML files in ``rules/data``.

Every fact that a law sets (province codes, the personal ID layout's century/sex digit, card validity,
immunization schedule, school entry age) lives in a data file with its legal source, so another
jurisdiction can swap the files rather than the code.
"""

from rules._data import RuleDataError
from rules.civil_registration import earliest_plausible_birth_date, max_years_from_birth_to_registration
from rules.dates import add_months
from rules.health_insurance import health_insurance_validity
from rules.personal_id import (
    Sex,
    compose_personal_id,
    decode_personal_id,
    earliest_birth_year_covered,
    personal_id_prefix,
    personal_id_problem,
)
from rules.provinces import is_known_province, province_name, provinces
from rules.school import school_entry_date, school_entry_year
from rules.vaccination import PlannedDose, vaccination_plan, vaccination_plan_for

__all__ = [
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
]
