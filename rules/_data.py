"""Loading and validating the YAML rule files in ``rules/data``.

The files are parsed once per process (``functools.cache``); callers must treat the results as read-only.
"""

from __future__ import annotations

from calendar import monthrange
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

_PACKAGE = __name__.rpartition(".")[0]  # "rules"


class RuleDataError(ValueError):
    """A rule data file is missing a field or holds a value of the wrong shape."""


def _parse(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleDataError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RuleDataError(f"{origin}: top level must be a mapping")
    return data


@cache
def load_packaged(name: str) -> dict[str, Any]:
    """Parse ``rules/data/<name>`` shipped with the package (works from a wheel or a source checkout)."""
    text = resources.files(_PACKAGE).joinpath("data", name).read_text(encoding="utf-8")
    return _parse(text, name)


@cache
def load_path(path: Path) -> dict[str, Any]:
    """Parse an alternative rule file (another jurisdiction, tests)."""
    return _parse(path.read_text(encoding="utf-8"), str(path))


def get(mapping: dict[str, Any], key: str, origin: str) -> Any:
    if key not in mapping:
        raise RuleDataError(f"{origin}: missing '{key}'")
    return mapping[key]


def as_mapping(value: Any, origin: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise RuleDataError(f"{origin}: expected a mapping, got {type(value).__name__}")
    return value


def as_int(value: Any, origin: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    # bool is a subclass of int; `yes`/`true` in YAML must not pass as a number.
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleDataError(f"{origin}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise RuleDataError(f"{origin}: must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise RuleDataError(f"{origin}: must be <= {maximum}, got {value}")
    return value


def as_str(value: Any, origin: str) -> str:
    if not isinstance(value, str) or not value:
        raise RuleDataError(f"{origin}: expected a non-empty string, got {value!r}")
    return value


def as_bool(value: Any, origin: str) -> bool:
    if not isinstance(value, bool):
        raise RuleDataError(f"{origin}: expected true or false, got {value!r}")
    return value


def month_day(value: Any, origin: str) -> tuple[int, int]:
    """Read ``{month: 9, day: 30}``; the day is checked against a leap year so 29 Feb is accepted."""
    m = as_mapping(value, origin)
    month = as_int(get(m, "month", origin), f"{origin}.month", minimum=1, maximum=12)
    day = as_int(get(m, "day", origin), f"{origin}.day", minimum=1, maximum=31)
    if day > monthrange(2000, month)[1]:
        raise RuleDataError(f"{origin}: day {day} does not exist in month {month}")
    return month, day
