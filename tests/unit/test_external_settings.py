"""Settings for servers the project did not start: TLS, API keys, and what `infra.stack status` says."""

from __future__ import annotations

from pathlib import Path

from temporalio.service import TLSConfig

from infra.settings import Settings
from infra.stack import EmbeddedStack
from worker import temporal_tls

EXTERNAL = {"TEMPORAL_ADDRESS": "temporal.example.gov.vn:7233",
            "NATS_URL": "nats://bridge:s3cret@nats.example.gov.vn:4222",
            "DATABASE_URL": "postgresql://lifeevents_app:pa55word@db.example.gov.vn:5432/lifeevents"}


def test_status_says_external_for_servers_given_by_url_and_shows_no_password(tmp_path: Path) -> None:
    status = EmbeddedStack(Settings(LIFEEVENTS_DATA_DIR=tmp_path, **EXTERNAL)).status()  # type: ignore[arg-type]
    assert status["temporal"] == "external temporal.example.gov.vn:7233"
    assert status["nats"] == "external nats://nats.example.gov.vn:4222"
    assert status["postgres"] == "external postgresql+asyncpg://db.example.gov.vn:5432/lifeevents"
    assert status["worker"] == "stopped"
    assert "s3cret" not in str(status) and "pa55word" not in str(status)


def test_embedded_servers_are_running_or_stopped(tmp_path: Path) -> None:
    status = EmbeddedStack(Settings(LIFEEVENTS_DATA_DIR=tmp_path, TEMPORAL_ADDRESS=None, NATS_URL=None,
                                    DATABASE_URL=None)).status()
    assert set(status.values()) == {"stopped"}


def test_database_tls_mode_is_passed_to_asyncpg(tmp_path: Path) -> None:
    plain = Settings(LIFEEVENTS_DATA_DIR=tmp_path, **EXTERNAL)  # type: ignore[arg-type]
    assert "ssl" not in plain.database_url
    tls = Settings(LIFEEVENTS_DATA_DIR=tmp_path, DATABASE_SSL="verify-full", **EXTERNAL)  # type: ignore[arg-type]
    assert tls.database_url.endswith("/lifeevents?ssl=verify-full")
    given = Settings(LIFEEVENTS_DATA_DIR=tmp_path, DATABASE_SSL="require",
                     DATABASE_URL="postgresql://a:b@h/db?ssl=disable&application_name=x")
    assert given.database_url == "postgresql+asyncpg://a:b@h/db?application_name=x&ssl=require"


def test_temporal_tls_from_settings(tmp_path: Path) -> None:
    assert temporal_tls(Settings(LIFEEVENTS_DATA_DIR=tmp_path, TEMPORAL_ADDRESS=None)) is False
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    mtls = temporal_tls(Settings(LIFEEVENTS_DATA_DIR=tmp_path, TEMPORAL_TLS_CA_FILE=ca,
                                 TEMPORAL_TLS_SERVER_NAME="temporal.example.gov.vn"))
    assert isinstance(mtls, TLSConfig)
    assert mtls.server_root_ca_cert == ca.read_bytes() and mtls.domain == "temporal.example.gov.vn"
    with_key = temporal_tls(Settings(LIFEEVENTS_DATA_DIR=tmp_path, TEMPORAL_API_KEY="k"))  # type: ignore[arg-type]
    assert isinstance(with_key, TLSConfig) and with_key.server_root_ca_cert is None  # system roots
