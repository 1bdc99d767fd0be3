"""The school-capacity plan: grade-1 demand against places, per province, ward and entry year.

Demand is the number of **living** children who **currently** live in the ward (their household's address) and
reach the school entry age (`rules/data/school.yaml`, counted by birth year) in that year: they are the children
who will ask for a grade-1 place there if nobody moves. Places are the grade-1 places of the ward's schools
(`schools.grade1_places`, the same every year). One SQL statement of aggregates; persons never leave the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

import rules


@dataclass(frozen=True)
class PlanCell:
    province_code: str
    ward_code: str
    entry_year: int
    demand: int
    places: int

    @property
    def gap(self) -> int:
        """Places minus demand: negative is a shortfall."""
        return self.places - self.demand

    @property
    def ratio(self) -> float | None:
        """Demand per place; None when the ward has no places."""
        return self.demand / self.places if self.places else None


def entry_age() -> int:
    """The school entry age of the rules, in years (age counted by birth year)."""
    return rules.school_entry_year(date(2000, 1, 1)) - 2000


_PLAN_SQL = """
WITH demand AS (
    SELECT a.province_code, a.ward_code,
           CAST(EXTRACT(YEAR FROM p.date_of_birth) AS integer) + :entry_age AS entry_year,
           count(*) AS demand
    FROM persons p
    JOIN households h ON h.id = p.household_id
    JOIN addresses a ON a.id = h.address_id
    WHERE p.status = 'alive' AND p.date_of_birth >= :born_from AND p.date_of_birth < :born_before
      {address_filter}
    GROUP BY 1, 2, 3
), places AS (
    SELECT province_code, ward_code, sum(grade1_places) AS places
    FROM schools {school_filter}
    GROUP BY 1, 2
), wards AS (
    SELECT province_code, ward_code FROM demand
    UNION
    SELECT province_code, ward_code FROM places
)
SELECT w.province_code, w.ward_code, y.entry_year,
       coalesce(d.demand, 0) AS demand, coalesce(pl.places, 0) AS places
FROM wards w
CROSS JOIN generate_series(CAST(:first_entry_year AS integer), CAST(:last_entry_year AS integer)) AS y(entry_year)
LEFT JOIN demand d ON d.province_code = w.province_code AND d.ward_code = w.ward_code
                  AND d.entry_year = y.entry_year
LEFT JOIN places pl ON pl.province_code = w.province_code AND pl.ward_code = w.ward_code
ORDER BY w.province_code, w.ward_code, y.entry_year
"""


def plan_query(*, first_entry_year: int, years: int = 6,
               province: str | None = None) -> tuple[TextClause, dict[str, Any]]:
    """The plan's SQL statement and its parameters (the benchmark EXPLAINs the same statement)."""
    if years < 1:
        raise ValueError("years: must be at least 1")
    if province is not None and not rules.is_known_province(province):
        raise ValueError(f"province: unknown province code {province!r}")
    age = entry_age()
    sql = _PLAN_SQL.format(address_filter="AND a.province_code = :province" if province else "",
                           school_filter="WHERE province_code = :province" if province else "")
    params: dict[str, Any] = {
        "entry_age": age, "first_entry_year": first_entry_year, "last_entry_year": first_entry_year + years - 1,
        "born_from": date(first_entry_year - age, 1, 1), "born_before": date(first_entry_year + years - age, 1, 1)}
    if province:
        params["province"] = province
    return text(sql), params


async def compute_plan(session: AsyncSession, *, first_entry_year: int, years: int = 6,
                       province: str | None = None) -> list[PlanCell]:
    """Every ward with children of the cohorts or with schools, for each entry year in
    [first_entry_year, first_entry_year + years): demand against places, ordered by province, ward, year."""
    statement, params = plan_query(first_entry_year=first_entry_year, years=years, province=province)
    rows = (await session.execute(statement, params)).all()
    return [PlanCell(province_code=r.province_code, ward_code=r.ward_code, entry_year=int(r.entry_year),
                     demand=int(r.demand), places=int(r.places)) for r in rows]
