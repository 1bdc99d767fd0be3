"""Province codes (digits 1-3 of the personal identification number), from ``data/provinces.yaml``."""

from __future__ import annotations

import re
from functools import cache

from rules._data import RuleDataError, as_mapping, as_str, get, load_packaged

_FILE = "provinces.yaml"
_CODE = re.compile(r"[0-9]{3}")


@cache
def _table() -> dict[str, str]:
    raw = as_mapping(get(load_packaged(_FILE), "provinces", _FILE), f"{_FILE}: provinces")
    table: dict[str, str] = {}
    for code, name in raw.items():
        # An unquoted key such as 079 or 001 would not arrive as a 3-digit string.
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            raise RuleDataError(f"{_FILE}: province code {code!r} must be a quoted 3-digit string")
        table[code] = as_str(name, f"{_FILE}: provinces.{code}")
    if not table:
        raise RuleDataError(f"{_FILE}: no provinces")
    return table


def provinces() -> dict[str, str]:
    """All province codes and names, e.g. ``"079" -> "TP. Hồ Chí Minh"`` (a fresh copy each call)."""
    return dict(_table())


def is_known_province(code: str) -> bool:
    return code in _table()


def province_name(code: str) -> str:
    """Name of the province; ``ValueError("unknown province code '999'")`` if the code is not in the table."""
    try:
        return _table()[code]
    except (KeyError, TypeError):
        raise ValueError(f"unknown province code '{code}'") from None
