"""Benchmark: the school-capacity plan over 1,000,000 children.

Starts its own PostgreSQL (the embedded wheel) on a free port in a temporary folder, migrates, generates
250,000 households in the 756 wards of the 63 provinces and 1,000,000 children in them with
`INSERT ... SELECT generate_series(...)` (birth years spread over the six entry cohorts and two years either side,
0.5 % deceased, wards of unequal density), seeds the synthetic schools, then runs `compute_plan` for every province
for the next six entry years and prints the wall time (target <= 5 s) and the EXPLAIN (ANALYZE, BUFFERS) summary.

    .venv/bin/python bench/school_plan.py [CHILDREN]     (or `make bench-schools`)
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

import rules  # noqa: E402
from infra.settings import Settings  # noqa: E402
from infra.stack import EmbeddedStack, free_port  # noqa: E402
from registry.db import Registry, make_engine  # noqa: E402
from registry.migrate import upgrade_async  # noqa: E402
from registry.school_plan import compute_plan, entry_age, plan_query  # noqa: E402
from registry.schools import seed_schools  # noqa: E402
from rules.school import next_entry_year  # noqa: E402

TARGET_SECONDS = 5.0
HOUSEHOLDS = 250_000
WARDS_PER_PROVINCE = 12
YEARS = 6

GENERATE = [
    """CREATE TEMP TABLE bench_wards AS
       SELECT CAST(row_number() OVER (ORDER BY p.code, n) - 1 AS integer) AS w, p.code AS province_code,
              p.code || lpad(n::text, 2, '0') AS ward_code,
              0.4 + 1.2 * ((abs(hashtext(p.code || lpad(n::text, 2, '0'))) % 1000) / 1000.0) AS weight
       FROM unnest(CAST(:codes AS text[])) AS p(code), generate_series(1, :wards_per_province) AS n""",
    """CREATE TEMP TABLE bench_households AS
       SELECT g, gen_random_uuid() AS household_id, gen_random_uuid() AS address_id,
              CAST(g % (SELECT count(*) FROM bench_wards) AS integer) AS w
       FROM generate_series(0, :households - 1) AS g""",
    """INSERT INTO addresses (id, province_code, district, ward_code, ward_name, street)
       SELECT h.address_id, wd.province_code, 'Quận ' || (1 + h.g % 5), wd.ward_code,
              'Phường ' || right(wd.ward_code, 2), (1 + h.g % 300) || ' Lê Lợi'
       FROM bench_households h JOIN bench_wards wd USING (w)""",
    """INSERT INTO households (id, household_number, address_id)
       SELECT household_id, 'BENCH' || lpad(g::text, 8, '0'), address_id FROM bench_households""",
    # children per household: the ward's weight (0.4-1.6) times 4.8 on average, cut to exactly :children
    """INSERT INTO persons (id, full_name, sex, date_of_birth, household_id, preferred_language, status,
                           date_of_death)
       SELECT gen_random_uuid(), 'Trẻ ' || h.g || '-' || k, CASE WHEN random() < 0.5 THEN 'female' ELSE 'male' END,
              CAST(:born_from AS date) + CAST(floor(random() * :born_days) AS integer), h.household_id, 'vi',
              CASE WHEN random() < 0.005 THEN 'deceased' ELSE 'alive' END, NULL
       FROM bench_households h JOIN bench_wards wd USING (w),
            generate_series(1, CAST(floor(wd.weight * 9.6 * random()) AS integer)) AS k
       LIMIT :children""",
    "UPDATE persons SET date_of_death = date_of_birth + 30 WHERE status = 'deceased'",
]


async def generate(registry: Registry, children: int, first_entry_year: int) -> int:
    born_from = date(first_entry_year - entry_age() - 2, 1, 1)
    born_until = date(first_entry_year + YEARS - entry_age() + 2, 1, 1)
    params = {"codes": sorted(rules.provinces()), "wards_per_province": WARDS_PER_PROVINCE,
              "households": HOUSEHOLDS, "children": children, "born_from": born_from,
              "born_days": (born_until - born_from).days}
    async with registry.unit_of_work() as session:
        for statement in GENERATE:
            await session.execute(text(statement), {k: v for k, v in params.items() if f":{k}" in statement})
        count = int(await session.scalar(text("SELECT count(*) FROM persons")) or 0)
    async with registry.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE persons"))
        await conn.execute(text("VACUUM ANALYZE households"))
        await conn.execute(text("VACUUM ANALYZE addresses"))
    return count


async def explain(registry: Registry, first_entry_year: int) -> list[str]:
    statement, params = plan_query(first_entry_year=first_entry_year, years=YEARS)
    async with registry.unit_of_work() as session:
        rows = await session.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + statement.text), params)
        return [r[0] for r in rows]


def summary(plan: list[str], top: int = 14) -> list[str]:
    nodes = [line for line in plan if "->" in line or line == plan[0]]
    totals = [line for line in plan if line.startswith(("Planning Time", "Execution Time"))]
    return [line[:220] for line in nodes[:top]] + totals


async def main(children: int) -> None:
    first = next_entry_year(date.today())
    with tempfile.TemporaryDirectory(prefix="lifeevents-bench-schools-") as tmp:
        settings = Settings(LIFEEVENTS_DATA_DIR=Path(tmp), POSTGRES_PORT=free_port(), DATABASE_URL=None)
        stack = EmbeddedStack(settings, headless_ui=True)
        stack.start_postgres()  # the plan needs only the registry
        registry = Registry(make_engine(settings.database_url, pool_size=2))
        try:
            await upgrade_async(settings.database_owner_url, settings.database_app_role)
            t0 = time.perf_counter()
            count = await generate(registry, children, first)
            schools = await seed_schools(registry)
            async with registry.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("ANALYZE schools"))
            print(f"generated {count:,} children in {HOUSEHOLDS:,} households and {schools:,} schools "
                  f"in {time.perf_counter() - t0:.1f} s")
            walls = []
            for _ in range(3):
                start = time.perf_counter()
                async with registry.unit_of_work() as session:
                    cells = await compute_plan(session, first_entry_year=first, years=YEARS)
                walls.append(time.perf_counter() - start)
            plan = await explain(registry, first)
        finally:
            await registry.close()
            stack.stop_postgres()
    demand, places = sum(c.demand for c in cells), sum(c.places for c in cells)
    short = [c for c in cells if c.gap < 0]
    print(f"compute_plan, all provinces, entry years {first}-{first + YEARS - 1}: {len(cells):,} cells "
          f"({len({c.ward_code for c in cells})} wards)")
    print(f"wall time: first run {walls[0]:.2f} s, best of {len(walls)} {min(walls):.2f} s "
          f"(target {TARGET_SECONDS:.0f} s: {walls[0] / TARGET_SECONDS:.0%} of it)")
    print(f"children counted {demand:,} of {count:,} ({demand / count:.0%}: living, in the six cohorts); "
          f"places {places:,}; demand per place {demand / places:.2f}; "
          f"{len(short):,} ward-years short of places in {len({c.ward_code for c in short})} wards")
    print("EXPLAIN (ANALYZE, BUFFERS):")
    for line in summary(plan):
        print(f"  {line}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
