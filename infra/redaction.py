"""Personal data out of the logs: every log record's message is redacted when the record is made.

ID numbers (12 digits), phone numbers, e-mail addresses and names (two or more capitalised words, at least one
with a Vietnamese letter) are replaced by a placeholder. The code does not log personal data on purpose; this
is the net under it (a library's message quoting a row, an exception text).
"""

from __future__ import annotations

import logging
import re
from typing import Any

_ID_NUMBER = re.compile(r"(?<!\d)\d{12}(?!\d)")
_PHONE = re.compile(r"(?<![\w+])(?:\+84|0)\d{8,10}(?!\d)")
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _is_name_word(word: str) -> bool:
    return word[:1].isupper() and (len(word) == 1 or word[1:].islower())


def _redact_names(text: str) -> str:
    """Runs of 2+ capitalised words (spaces between) containing a non-ASCII letter: a Vietnamese name."""
    out: list[str] = []
    pos = 0
    words = list(_WORD.finditer(text))
    i = 0
    while i < len(words):
        j = i
        while (j + 1 < len(words) and _is_name_word(words[j].group()) and _is_name_word(words[j + 1].group())
               and text[words[j].end():words[j + 1].start()] == " "):
            j += 1
        run = words[i:j + 1]
        if j > i and any(not w.group().isascii() for w in run):
            out.append(text[pos:run[0].start()] + "<name>")
            pos = run[-1].end()
        i = j + 1
    out.append(text[pos:])
    return "".join(out)


def redact(text: str) -> str:
    text = _EMAIL.sub("<email>", text)
    text = _ID_NUMBER.sub("<id-number>", text)
    text = _PHONE.sub("<phone>", text)
    return _redact_names(text)


def install_redaction() -> None:
    """Redact every log record's message from now on (idempotent; works for every logger and handler)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's problem to report, not ours
            return record
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return record

    factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
