"""Primary schools and their grade-1 places: a synthetic list for every ward that has households, or a real list
loaded from a CSV file (`starter.py load-schools FILE`).

CSV format (UTF-8, a header line first, one school a line):

    code,name,province_code,ward_code,grade1_places
    TH0790001,Trường Tiểu học Lê Văn Tám,079,26734,120

A file with any bad row loads nothing: `SchoolCsvError` lists every bad row by line number with the reason.
A good file replaces **all** schools of the provinces it names (schools of other provinces stay as they were);
a school already known by its code is updated in place.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

import rules
from registry.db import Registry
from registry.models import School

CSV_COLUMNS = ("code", "name", "province_code", "ward_code", "grade1_places")
WARD_CODE = re.compile(r"[0-9]{5}")
"""Vietnamese ward / commune codes are 5 digits (the national list of administrative units)."""
MAX_CODE, MAX_NAME = 20, 200
SCHOOLLESS_ONE_IN = 8
"""About one ward in eight gets no synthetic school of its own (its children go to a neighbouring ward's or an
inter-commune school), so a seeded registry has wards short of places as well as wards with room to spare."""


@dataclass(frozen=True)
class SchoolRow:
    code: str
    name: str
    province_code: str
    ward_code: str
    grade1_places: int


class SchoolCsvError(ValueError):
    """A schools CSV with bad rows; `problems` holds (line number, reason) for each, in file order."""

    def __init__(self, path: str, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        lines = "\n".join(f"  line {line}: {reason}" for line, reason in problems)
        super().__init__(f"{path}: {len(problems)} bad row(s), nothing loaded:\n{lines}")


def synthetic_schools(province_code: str, ward_code: str) -> list[SchoolRow]:
    """The synthetic schools of a ward, the same on every call (random.Random seeded with the ward code):
    usually 1-3 schools of 40-160 grade-1 places each, sometimes none."""
    rng = random.Random(ward_code)
    if rng.randrange(SCHOOLLESS_ONE_IN) == 0:
        return []
    return [SchoolRow(code=f"TH{ward_code}{n}", name=f"Trường Tiểu học số {n} phường {ward_code}",
                      province_code=province_code, ward_code=ward_code, grade1_places=rng.randint(40, 160))
            for n in range(1, rng.randint(1, 3) + 1)]


async def seed_schools(registry: Registry) -> int:
    """Synthetic schools for every ward with households (idempotent; returns how many were added). Provinces whose
    schools were loaded from a real list (any code that is not a synthetic `TH<its ward code><n>`) are left alone."""
    async with registry.unit_of_work() as session:
        listed = set((await session.scalars(text(
            "SELECT DISTINCT province_code FROM schools WHERE code !~ ('^TH' || ward_code || '[1-3]$')"))).all())
        wards = (await session.execute(text(
            "SELECT DISTINCT a.province_code, a.ward_code FROM addresses a "
            "WHERE EXISTS (SELECT 1 FROM households h WHERE h.address_id = a.id) "
            "ORDER BY a.province_code, a.ward_code"))).all()
        rows = [s for province, ward in wards if province not in listed for s in synthetic_schools(province, ward)]
        added = 0
        for start in range(0, len(rows), 1000):
            result = await session.execute(insert(School).values(
                [vars(r) for r in rows[start:start + 1000]]).on_conflict_do_nothing(index_elements=["code"])
                .returning(School.code))
            added += len(result.all())
    return added


def _check_row(row: dict[str, str], seen: dict[str, int]) -> tuple[SchoolRow | None, list[str]]:
    reasons: list[str] = []
    code, name = row["code"].strip(), row["name"].strip()
    province, ward, places = row["province_code"].strip(), row["ward_code"].strip(), row["grade1_places"].strip()
    if not code:
        reasons.append("code: empty")
    elif len(code) > MAX_CODE:
        reasons.append(f"code: longer than {MAX_CODE} characters")
    elif code in seen:
        reasons.append(f"code: duplicate of line {seen[code]}")
    if not name:
        reasons.append("name: empty")
    elif len(name) > MAX_NAME:
        reasons.append(f"name: longer than {MAX_NAME} characters")
    if not rules.is_known_province(province):
        reasons.append(f"province_code: unknown province {province!r}")
    if not WARD_CODE.fullmatch(ward):
        reasons.append(f"ward_code: {ward!r} is not a 5-digit ward code")
    if not places.isdigit() or not places.isascii():
        reasons.append(f"grade1_places: {places!r} is not a non-negative whole number")
    if reasons:
        return None, reasons
    return SchoolRow(code, name, province, ward, int(places)), []


def parse_schools_csv(content: str, *, source: str = "CSV") -> list[SchoolRow]:
    """Every row of a schools CSV, validated; `SchoolCsvError` naming each bad row's line if any is bad."""
    reader = csv.reader(io.StringIO(content.removeprefix("\ufeff"), newline=""))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != CSV_COLUMNS:
        raise SchoolCsvError(source, [(1, f"header must be {','.join(CSV_COLUMNS)}")])
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    rows: list[SchoolRow] = []
    for values in reader:
        line = reader.line_num
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(CSV_COLUMNS):
            problems.append((line, f"{len(values)} fields, expected {len(CSV_COLUMNS)}"))
            continue
        school, reasons = _check_row(dict(zip(CSV_COLUMNS, values, strict=True)), seen)
        if school is None:
            problems.extend((line, reason) for reason in reasons)
        else:
            seen[school.code] = line
            rows.append(school)
    if problems:
        raise SchoolCsvError(source, problems)
    if not rows:
        raise SchoolCsvError(source, [(1, "no schools in the file")])
    return rows


async def load_schools_csv(registry: Registry, path: Path) -> int:
    """Load a real list of schools (see the module's docstring); returns how many schools it holds."""
    try:
        content = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SchoolCsvError(str(path), [(1, f"not UTF-8 text ({exc.reason})")]) from None
    rows = parse_schools_csv(content, source=str(path))
    provinces = sorted({r.province_code for r in rows})
    async with registry.unit_of_work() as session:
        for start in range(0, len(rows), 1000):
            stmt = insert(School).values([vars(r) for r in rows[start:start + 1000]])
            await session.execute(stmt.on_conflict_do_update(index_elements=["code"], set_={
                "name": stmt.excluded.name, "province_code": stmt.excluded.province_code,
                "ward_code": stmt.excluded.ward_code, "grade1_places": stmt.excluded.grade1_places}))
        await session.execute(text("DELETE FROM schools WHERE province_code = ANY(:provinces) "
                                   "AND NOT code = ANY(:codes)"),
                              {"provinces": provinces, "codes": [r.code for r in rows]})
    return len(rows)


async def count_schools(registry: Registry, province: str | None = None) -> int:
    query = select(func.count()).select_from(School)
    if province:
        query = query.where(School.province_code == province)
    async with registry.unit_of_work() as session:
        return int(await session.scalar(query) or 0)
