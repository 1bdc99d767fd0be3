"""A synthetic population of parents and households, and synthetic births that reference it.

Everything is derived from the family index, so seeding twice gives the same people (nothing duplicated)
and the demo can name its sample mothers without asking the database.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy.dialects.postgresql import insert

import rules
from events.models import BirthRegistered
from registry.db import Registry
from registry.models import Address, Household, Person, ResidencePeriod
from registry.schools import seed_schools

NAMESPACE = uuid.UUID("6f1c2a4e-5b7d-4e8a-9c3f-1a2b3c4d5e6f")
VN_TZ = timezone(timedelta(hours=7))

FAMILY_NAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
                "Hồ", "Ngô", "Dương", "Lý"]
FEMALE_MIDDLE = ["Thị", "Ngọc", "Thu", "Minh", "Thanh", "Hoài"]
MALE_MIDDLE = ["Văn", "Đức", "Minh", "Quang", "Hữu", "Thành"]
FEMALE_GIVEN = ["Lan", "Hương", "Mai", "Linh", "Trang", "Hà", "Thảo", "Ngọc", "Anh", "Vy", "My", "Hạnh"]
MALE_GIVEN = ["Nam", "Hùng", "Dũng", "Minh", "Tuấn", "Long", "Quân", "Huy", "Phúc", "Khánh", "Bảo", "Sơn"]
STREETS = ["Lê Lợi", "Trần Hưng Đạo", "Nguyễn Huệ", "Hai Bà Trưng", "Lý Thường Kiệt", "Quang Trung",
           "Điện Biên Phủ", "Hùng Vương"]


@dataclass(frozen=True)
class SeedParent:
    person_id: uuid.UUID
    id_number: str
    full_name: str
    sex: str
    date_of_birth: date
    phone: str


@dataclass(frozen=True)
class SeedFamily:
    index: int
    province_code: str
    household_number: str
    household_id: uuid.UUID
    address_id: uuid.UUID
    ward_code: str
    ward_name: str
    district: str
    street: str
    mother: SeedParent
    father: SeedParent
    mother_in_household: bool
    """Every tenth mother is registered elsewhere (not in the household): the child follows the father."""


def _parent(rng: random.Random, index: int, province: str, sex: str, family_name: str) -> SeedParent:
    year = 1986 + (index + (0 if sex == "female" else 3)) % 14
    dob = date(year, 1 + rng.randrange(12), 1 + rng.randrange(28))
    serial = ((index * 7919 + 13) if sex == "female" else (index * 104729 + 7)) % 1_000_000
    id_number = rules.compose_personal_id(rules.personal_id_prefix(province, sex, dob), serial)  # type: ignore[arg-type]
    middle = rng.choice(FEMALE_MIDDLE if sex == "female" else MALE_MIDDLE)
    given = rng.choice(FEMALE_GIVEN if sex == "female" else MALE_GIVEN)
    return SeedParent(person_id=uuid.uuid5(NAMESPACE, id_number), id_number=id_number,
                      full_name=f"{family_name} {middle} {given}", sex=sex, date_of_birth=dob,
                      phone=f"09{rng.randrange(10**8):08d}")


def family(index: int) -> SeedFamily:
    codes = sorted(rules.provinces())
    province = codes[index % len(codes)]
    rng = random.Random(f"family-{index}")
    ward_no = 1 + (index // len(codes)) % 12
    household_number = f"HK{province}{index:08d}"
    return SeedFamily(
        index=index, province_code=province, household_number=household_number,
        household_id=uuid.uuid5(NAMESPACE, household_number),
        address_id=uuid.uuid5(NAMESPACE, "addr" + household_number),
        ward_code=f"{province}{ward_no:02d}", ward_name=f"Phường {ward_no}", district=f"Quận {1 + index % 5}",
        street=f"{1 + rng.randrange(300)} {rng.choice(STREETS)}",
        mother=_parent(rng, index, province, "female", rng.choice(FAMILY_NAMES)),
        father=_parent(rng, index, province, "male", rng.choice(FAMILY_NAMES)),
        mother_in_household=index % 10 != 9,
    )


def first_family_in(province_code: str, *, mother_in_household: bool = True) -> SeedFamily:
    codes = sorted(rules.provinces())
    index = codes.index(province_code)
    while family(index).mother_in_household != mother_in_household:
        index += len(codes)
    return family(index)


def families(count: int) -> Iterator[SeedFamily]:
    for i in range(count):
        yield family(i)


async def seed_population(registry: Registry, count: int, *, batch: int = 500,
                          progress: Callable[[int], None] | None = None) -> int:
    """Insert `count` families (idempotent), then synthetic schools for their wards; returns how many families were
    written in this call's batches."""
    for start in range(0, count, batch):
        chunk = [family(i) for i in range(start, min(count, start + batch))]
        async with registry.unit_of_work() as session:
            await session.execute(insert(Address).values([
                dict(id=f.address_id, province_code=f.province_code, district=f.district, ward_code=f.ward_code,
                     ward_name=f.ward_name, street=f.street) for f in chunk]).on_conflict_do_nothing())
            await session.execute(insert(Household).values([
                dict(id=f.household_id, household_number=f.household_number, address_id=f.address_id)
                for f in chunk]).on_conflict_do_nothing())
            people = []
            for f in chunk:
                for parent, in_household in ((f.mother, f.mother_in_household), (f.father, True)):
                    people.append(dict(id=parent.person_id, personal_id_number=parent.id_number,
                                       full_name=parent.full_name, sex=parent.sex,
                                       date_of_birth=parent.date_of_birth, phone=parent.phone,
                                       household_id=f.household_id if in_household else None,
                                       preferred_language="vi"))
            await session.execute(insert(Person).values(people).on_conflict_do_nothing())
            await session.execute(insert(ResidencePeriod).values([  # residence is a history: the current period
                dict(id=uuid.uuid5(NAMESPACE, f"period-{p['id']}"), person_id=p["id"], household_id=p["household_id"],
                     valid_from=p["date_of_birth"], started_by="backfill")
                for p in people if p["household_id"] is not None]).on_conflict_do_nothing())
        if progress:
            progress(len(chunk))
    await seed_schools(registry)  # synthetic primary schools for the wards these households live in
    return count


def synthetic_birth(fam: SeedFamily, *, registration_number: str, date_of_birth: date, sex: str,
                    registered_at: datetime | None = None, language: str = "vi", order: int = 1, size: int = 1,
                    given_name: str | None = None, with_father: bool = True,
                    office_code: str | None = None) -> BirthRegistered:
    rng = random.Random(registration_number)
    given = given_name or rng.choice(FEMALE_GIVEN if sex == "female" else MALE_GIVEN)
    middle = rng.choice(FEMALE_MIDDLE if sex == "female" else MALE_MIDDLE)
    family_name = fam.father.full_name.split(" ")[0]
    registered = registered_at or min(
        datetime.combine(date_of_birth + timedelta(days=3), datetime.min.time(), VN_TZ).replace(hour=9),
        datetime.now(VN_TZ).replace(microsecond=0) - timedelta(minutes=1))
    return BirthRegistered.model_validate({
        "registration_number": registration_number,
        "registered_at": registered.isoformat(),
        "office_code": office_code or f"UBND-{fam.ward_code}",
        "province_code": fam.province_code,
        "child": {"full_name": f"{family_name} {middle} {given}", "sex": sex,
                  "date_of_birth": date_of_birth.isoformat(),
                  "time_of_birth": f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:00",
                  "place_of_birth": f"Bệnh viện đa khoa {rules.province_name(fam.province_code)}",
                  "multiple_birth_order": order, "multiple_birth_size": size},
        "mother": {"id_number": fam.mother.id_number, "full_name": fam.mother.full_name},
        "father": {"id_number": fam.father.id_number, "full_name": fam.father.full_name} if with_father else None,
        "informant": {"phone": fam.mother.phone, "email": f"family{fam.index}@example.vn",
                      "preferred_language": language},
    })
