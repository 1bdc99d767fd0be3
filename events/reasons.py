"""Why an event is not accepted: :class:`InvalidEvent` and reasons that are safe to log and put in headers.

Each reason is ``"<field path>: <rule>"``. It names the field and the rule that failed, never a personal value
(names, ID numbers, dates of birth, phone numbers, e-mail addresses), and is printable ASCII so that it is safe
as a message header value. :mod:`events.envelope` re-exports these names.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from pydantic import ValidationError
from pydantic_core import PydanticCustomError


class InvalidEvent(Exception):
    """An event that cannot be accepted; ``reasons`` lists every problem as ``"<field path>: <rule>"``."""

    def __init__(self, reasons: Sequence[str] | str) -> None:
        self.reasons: list[str] = [reasons] if isinstance(reasons, str) else list(reasons)
        super().__init__(self.reasons)

    def __str__(self) -> str:
        return "; ".join(self.reasons)


_MAX_REASON = 300
_MAX_ECHO = 80


def _safe_text(text: str, limit: int = _MAX_REASON) -> str:
    """Printable ASCII only (header-safe): control characters become ``?``, other non-ASCII is escaped."""
    out: list[str] = []
    for ch in text:
        if " " <= ch <= "~":
            out.append(ch)
        elif unicodedata.category(ch).startswith("C"):
            out.append("?")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    safe = "".join(out)
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


def _echo(value: object) -> str:
    """A short, header-safe rendering of a non-personal value (an event type, a code) for a reason."""
    return _safe_text(repr(value), _MAX_ECHO)


def _reason(path: str, message: str) -> str:
    return _safe_text(f"{path}: {message}")


# Messages for pydantic's built-in error types: they state the rule and never echo the input.
_MESSAGES: Final[Mapping[str, Callable[[Mapping[str, Any]], str]]] = {
    "missing": lambda ctx: "is required",
    "extra_forbidden": lambda ctx: "is not a known field",
    "string_type": lambda ctx: "must be a string",
    "int_type": lambda ctx: "must be an integer",
    "model_type": lambda ctx: "must be an object",
    "model_attributes_type": lambda ctx: "must be an object",
    "dict_type": lambda ctx: "must be an object",
    "timezone_aware": lambda ctx: "must include a timezone offset",
    "string_pattern_mismatch": lambda ctx: f"must match the pattern {ctx.get('pattern')}",
    "too_short": lambda ctx: _length_message("at least", ctx.get("min_length")),
    "string_too_short": lambda ctx: _length_message("at least", ctx.get("min_length")),
    "too_long": lambda ctx: _length_message("at most", ctx.get("max_length")),
    "string_too_long": lambda ctx: _length_message("at most", ctx.get("max_length")),
    "greater_than_equal": lambda ctx: f"must be at least {ctx.get('ge')}",
    "less_than_equal": lambda ctx: f"must be at most {ctx.get('le')}",
}


def _length_message(bound: str, length: object) -> str:
    if bound == "at least" and length == 1:
        return "must not be empty"
    unit = "character" if length == 1 else "characters"
    return f"must be {bound} {length} {unit}"


def validation_reasons(exc: ValidationError, prefix: str = "") -> list[str]:
    """Turn a pydantic ``ValidationError`` into ``"<prefix>.<field path>: <rule>"`` reasons.

    Our own rules raise ``PydanticCustomError`` whose message is written not to contain personal values; a
    ``field`` entry in their context (``"child.date_of_birth"``) extends the location of model-level checks.
    Pydantic's own messages are used only for error types known not to echo the input.
    """
    reasons: list[str] = []
    for err in exc.errors(include_url=False, include_input=False):
        ctx: Mapping[str, Any] = err.get("ctx") or {}
        loc = [str(part) for part in err["loc"]]
        field = ctx.get("field")
        if isinstance(field, str) and field:
            loc.extend(field.split("."))
        path = ".".join(part for part in (prefix, *loc) if part) or prefix or "event"
        kind = err["type"]
        if kind in _MESSAGES:
            message = _MESSAGES[kind](ctx)
        elif kind.startswith("custom_"):
            message = err["msg"]
        elif kind == "literal_error":
            message = f"must be {ctx.get('expected')}"
        elif kind in ("value_error", "assertion_error"):
            message = "is not valid"
        else:
            # Pydantic's parsing messages ("Input should be a valid date, month value is outside expected
            # range") describe the rule, not the value.
            message = err["msg"][:1].lower() + err["msg"][1:]
        reasons.append(_reason(path, message))
    return reasons


def _fail(rule: str, message: str, field: str | None = None, **values: object) -> PydanticCustomError:
    ctx: dict[str, object] = dict(values)
    if field:
        ctx["field"] = field
    return PydanticCustomError(f"custom_{rule}", message, ctx)
