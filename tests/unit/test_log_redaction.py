"""The log redaction the service installs: ID numbers, phones, e-mails and Vietnamese names never reach a log."""

from __future__ import annotations

import logging

import pytest

from infra.redaction import install_redaction, redact


@pytest.mark.parametrize(("text", "secret"), [
    ("mother Nguyễn Thị Lan registered", "Nguyễn Thị Lan"),
    ("id 079226123456 not found", "079226123456"),
    ("call +84912345678", "+84912345678"),
    ("call 0912345678", "0912345678"),
    ("mail family7@example.vn", "family7@example.vn"),
    ("at 296 Hùng Vương, Phường 2", "Hùng Vương"),
])
def test_personal_values_are_replaced(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_codes_and_technical_words_stay() -> None:
    text = "event DEMO26HN0001 on civil.079.birth_registered seq 12: BirthRegistrationWorkflow Temporal Server"
    assert redact(text) == text


def test_every_logger_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").info("row (%s, %s) failed", "Trần Minh Khôi", "079226123456")
    assert "Trần Minh Khôi" not in caplog.text and "079226123456" not in caplog.text
    assert "<name>" in caplog.text and "<id-number>" in caplog.text
