"""Schools and the school-capacity plan against the real registry: a CSV with a bad row loads nothing, a good one
replaces its province's schools, and the plan counts a small known population by hand — then a death and a move
change exactly the cells they should."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from infra.settings import Settings
from registry.models import Address, Household, Person, School
from registry.school_plan import compute_plan
from registry.schools import SchoolCsvError, load_schools_csv, seed_schools
from tests.integration.test_cli import cli

pytestmark = pytest.mark.integration

PROVINCE = "096"  # the session's population lives in wards 09601-09612; these tests use 09696-09699 only
WARDS = ("09696", "09697", "09698", "09699")
GOOD_CSV = """code,name,province_code,ward_code,grade1_places
PLAN-96-A,Trường Tiểu học A,096,09696,40
PLAN-97-A,Trường Tiểu học B,096,09697,30
PLAN-97-B,"Trường Tiểu học C, cơ sở 2",096,09697,20
PLAN-98-A,Trường Tiểu học D,096,09698,3
"""
BAD_CSV = """code,name,province_code,ward_code,grade1_places
BAD-1,Trường Tiểu học A,096,09696,40
BAD-2,Trường Tiểu học B,999,09697,30
,Trường Tiểu học C,096,09697,20
BAD-4,Trường Tiểu học D,096,9698,-3
BAD-1,Trường Tiểu học E,096,09698,12
BAD-6,Trường Tiểu học F,096,09698,many
"""


async def schools_by_province(service: Any) -> dict[str, int]:
    async with service.registry.unit_of_work() as session:
        rows = (await session.execute(select(School.province_code, func.count()).group_by(School.province_code)))
        return {p: int(n) for p, n in rows.all()}


async def test_the_seeded_population_has_schools_in_most_wards_and_none_in_some(service: Any) -> None:
    async with service.registry.unit_of_work() as session:
        wards = set((await session.scalars(select(Address.ward_code).join(
            Household, Household.address_id == Address.id).distinct())).all())
        with_school = set((await session.scalars(select(School.ward_code).distinct())).all())
    assert wards and len(wards & with_school) > len(wards) * 0.7
    assert wards - with_school, "some wards have no school of their own (short of places whenever they have children)"
    assert await seed_schools(service.registry) == 0, "seeding again adds nothing"


async def test_a_csv_with_bad_rows_is_refused_by_line_number_and_nothing_is_loaded(service: Any,
                                                                                  tmp_path: Path) -> None:
    file = tmp_path / "schools.csv"
    file.write_text(BAD_CSV, encoding="utf-8")
    before = await schools_by_province(service)
    with pytest.raises(SchoolCsvError) as refused:
        await load_schools_csv(service.registry, file)
    lines = [line for line, _ in refused.value.problems]
    assert lines == [3, 4, 5, 5, 6, 7], refused.value.problems
    message = str(refused.value)
    for expected in ("line 3: province_code: unknown province '999'", "line 4: code: empty",
                     "line 5: ward_code: '9698' is not a 5-digit ward code",
                     "line 5: grade1_places: '-3' is not a non-negative whole number",
                     "line 6: code: duplicate of line 2", "line 7: grade1_places: 'many'"):
        assert expected in message
    assert await schools_by_province(service) == before


async def test_load_schools_cli_exits_1_with_the_bad_lines(settings: Settings, service: Any, tmp_path: Path) -> None:
    file = tmp_path / "schools.csv"
    file.write_text(BAD_CSV, encoding="utf-8")
    code, out, err = await cli(settings, "load-schools", str(file))
    assert code == 1 and "line 3: province_code" in err and "line 7:" in err and "nothing loaded" in err, err


async def add_household(session: Any, ward: str) -> uuid.UUID:
    address = Address(province_code=PROVINCE, district="Huyện thử", ward_code=ward, ward_name=f"Xã {ward}",
                      street="1 Đường thử")
    session.add(address)
    await session.flush()
    household = Household(household_number=f"PLAN-{ward}-{uuid.uuid4().hex[:8]}", address_id=address.id)
    session.add(household)
    await session.flush()
    return household.id


async def plan(service: Any) -> dict[tuple[str, int], tuple[int, int]]:
    async with service.registry.unit_of_work() as session:
        cells = await compute_plan(session, first_entry_year=2030, years=3, province=PROVINCE)
    return {(c.ward_code, c.entry_year): (c.demand, c.places) for c in cells if c.ward_code in WARDS}


async def test_demand_per_ward_and_year_and_what_a_death_and_a_move_change(service: Any, tmp_path: Path) -> None:
    file = tmp_path / "schools.csv"
    file.write_text(GOOD_CSV, encoding="utf-8")
    others_before = {p: n for p, n in (await schools_by_province(service)).items() if p != PROVINCE}
    assert await load_schools_csv(service.registry, file) == 4
    after = await schools_by_province(service)
    assert after[PROVINCE] == 4, "the list replaces every school of the province it covers"
    assert {p: n for p, n in after.items() if p != PROVINCE} == others_before
    assert await seed_schools(service.registry) == 0, "a province with a real list gets no synthetic schools"

    born = {"09697": [2024, 2024, 2024, 2025, 2023, 2027], "09698": [2025, 2025, 2026], "09699": [2024]}
    async with service.registry.unit_of_work() as session:
        households = {ward: await add_household(session, ward) for ward in ("09697", "09698", "09699")}
        children: dict[str, list[Person]] = {}
        for ward, years in born.items():
            children[ward] = [Person(full_name="Trẻ Thử", sex="female", date_of_birth=date(y, 6, 15),
                                     household_id=households[ward]) for y in years]
            session.add_all(children[ward])
        session.add(Person(full_name="Trẻ Đã Mất", sex="male", date_of_birth=date(2025, 2, 1),
                           household_id=households["09697"], status="deceased", date_of_death=date(2025, 3, 1)))
        session.add(Person(full_name="Trẻ Không Hộ", sex="male", date_of_birth=date(2025, 2, 1)))

    # (ward, entry year): (demand, places) — entry at 6 by birth year: born 2024 → 2030, 2025 → 2031, 2026 → 2032
    expected = {
        ("09696", 2030): (0, 40), ("09696", 2031): (0, 40), ("09696", 2032): (0, 40),
        ("09697", 2030): (3, 50), ("09697", 2031): (1, 50), ("09697", 2032): (0, 50),
        ("09698", 2030): (0, 3), ("09698", 2031): (2, 3), ("09698", 2032): (1, 3),
        ("09699", 2030): (1, 0), ("09699", 2031): (0, 0), ("09699", 2032): (0, 0),
    }
    assert await plan(service) == expected

    async with service.registry.unit_of_work() as session:
        await session.execute(update(Person).where(Person.id == children["09697"][0].id)
                              .values(status="deceased", date_of_death=date(2026, 1, 5)))
    expected[("09697", 2030)] = (2, 50)
    assert await plan(service) == expected

    async with service.registry.unit_of_work() as session:
        await session.execute(update(Person).where(Person.id == children["09698"][0].id)
                              .values(household_id=households["09699"]))
    expected[("09698", 2031)] = (1, 3)
    expected[("09699", 2031)] = (1, 0)
    assert await plan(service) == expected
