"""Media types of CloudEvents: ``datacontenttype`` and the ``content-type`` header (case-insensitive,
parameters allowed, a charset must be UTF-8)."""

from __future__ import annotations

import re
from typing import Final

from events.reasons import _echo

__all__ = ["JSON_MEDIA_TYPE", "JSON_MEDIA_TYPE_PATTERN", "media_type_problem"]

JSON_MEDIA_TYPE: Final = "application/json"
_CHARSETS: Final = frozenset({"utf-8", "utf8"})


def _any_case(text: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in text)


JSON_MEDIA_TYPE_PATTERN: Final = rf"^\s*{_any_case(JSON_MEDIA_TYPE)}\s*(;.*)?$"
"""The media types :func:`media_type_problem` may accept as ``application/json`` (the charset is checked there)."""


def media_type_problem(value: str, expected: str) -> str | None:
    """Why ``value`` is not the media type ``expected`` (case-insensitive, parameters allowed, a charset must be
    UTF-8), or None. The problem quotes the media type, never anything else."""
    essence, *parameters = value.split(";")
    found = essence.strip().lower()
    if found != expected:
        return f"must be {expected} (parameters allowed), got {_echo(found)}"
    for parameter in parameters:
        name, sep, argument = parameter.partition("=")
        if not sep or not name.strip():
            return f"parameter {_echo(parameter.strip())} is not name=value"
        if name.strip().lower() == "charset" and argument.strip().strip('"').lower() not in _CHARSETS:
            return f"charset must be utf-8, got {_echo(argument.strip().strip(chr(34)))}"
    return None
