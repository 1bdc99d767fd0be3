"""Calendar arithmetic shared by the rules."""

from __future__ import annotations

from calendar import monthrange
from datetime import date


def add_months(d: date, n: int) -> date:
    """``d`` plus ``n`` calendar months, clamped to the last day of the target month.

    31 January + 1 month = 28 (or 29) February; 29 February 2024 + 72 months = 28 February 2030.
    """
    index = d.year * 12 + (d.month - 1) + n
    year, month0 = divmod(index, 12)
    month = month0 + 1
    return date(year, month, min(d.day, monthrange(year, month)[1]))


def clamped_date(year: int, month: int, day: int) -> date:
    """``date(year, month, day)``, with a day past the end of the month clamped (29 Feb in a common year)."""
    return date(year, month, min(day, monthrange(year, month)[1]))
