"""Payload encryption (infra/codec.py) and the codec server (infra/codec_server.py)."""

from __future__ import annotations

import base64
import json
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload

from infra.codec import ENCODING, KEY_ID, EncryptionCodec, PayloadKeyError, PayloadKeys, converter_with, load_keys
from infra.codec_server import make_server, running
from infra.settings import Settings

SECRET = "Trần Minh Khôi 079226123456"


def key_text(key_id: str, fill: int) -> str:
    return f"{key_id}:{base64.b64encode(bytes([fill]) * 32).decode()}"


def codec(text: str) -> EncryptionCodec:
    return EncryptionCodec(PayloadKeys.parse(text))


async def test_round_trip_through_the_data_converter() -> None:
    converter = converter_with(PayloadKeys.parse(key_text("k1", 1)))
    [payload] = await converter.encode([{"name": SECRET}])
    assert payload.metadata["encoding"] == ENCODING and payload.metadata[KEY_ID] == b"k1"
    assert SECRET.encode() not in payload.data and b"json/plain" not in payload.SerializeToString()
    assert await converter.decode([payload], [dict]) == [{"name": SECRET}]


async def test_plain_payloads_pass_through_decoding() -> None:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"a": 1}')
    assert await codec(key_text("k1", 1)).decode([plain]) == [plain]


async def test_rotation_old_payloads_decode_new_ones_use_the_newest_key() -> None:
    old = await codec(key_text("k1", 1)).encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])
    rotated = codec(f"{key_text('k1', 1)},{key_text('k2', 2)}")
    assert (await rotated.decode(old))[0].data == b"1"
    [new] = await rotated.encode([Payload(data=b"2")])
    assert new.metadata[KEY_ID] == b"k2"
    with pytest.raises(PayloadKeyError, match="'k2'"):
        await codec(key_text("k1", 1)).decode([new])


async def test_unknown_key_id_and_altered_data_are_clear_errors() -> None:
    [sealed] = await codec(key_text("gone", 3)).encode([Payload(data=b"x")])
    with pytest.raises(PayloadKeyError, match="key id 'gone'.*not among the keys at hand \\(k1\\)"):
        await codec(key_text("k1", 1)).decode([sealed])
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        await codec(key_text("gone", 4)).decode([sealed])


@pytest.mark.parametrize("text, error", [
    ("", "no key"), ("nokey", "id:base64key"), ("k1:!!!", "not valid base64"),
    (f"k1:{base64.b64encode(b'short').decode()}", "5 bytes"), (f"{key_text('a', 1)},{key_text('a', 2)}", "twice"),
])
def test_bad_key_settings(text: str, error: str) -> None:
    with pytest.raises(PayloadKeyError, match=error):
        PayloadKeys.parse(text)


def test_without_a_setting_a_key_is_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(LIFEEVENTS_DATA_DIR=tmp_path / "data", PAYLOAD_KEYS=None)  # type: ignore[call-arg]
    first = load_keys(settings)
    path = tmp_path / "data" / "payload-keys"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keys(settings) == first  # read again, not regenerated
    assert load_keys(Settings(LIFEEVENTS_DATA_DIR=tmp_path / "other")) != first  # type: ignore[call-arg]
    given = Settings(LIFEEVENTS_DATA_DIR=tmp_path / "data", PAYLOAD_KEYS=key_text("k9", 9))  # type: ignore[call-arg]
    assert load_keys(given).current_id == "k9"


# ---- codec server ----------------------------------------------------------------------------------------------

def call(url: str, method: str = "POST", body: dict[str, Any] | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


@pytest.fixture
def server_url(tmp_path: Path) -> Any:
    settings = Settings(LIFEEVENTS_DATA_DIR=tmp_path, PAYLOAD_KEYS=key_text("k1", 1),  # type: ignore[call-arg]
                        CODEC_SERVER_TOKEN="s3cret", CODEC_CORS_ORIGIN="http://ui.example:8233")
    with running(make_server(settings, port=0)) as url:
        yield url


async def test_codec_server_decodes_with_the_token_only(server_url: str) -> None:
    [sealed] = await codec(key_text("k1", 1)).encode([Payload(metadata={"encoding": b"json/plain"},
                                                              data=json.dumps(SECRET).encode())])
    body = {"payloads": [{"metadata": {k: base64.b64encode(v).decode() for k, v in sealed.metadata.items()},
                          "data": base64.b64encode(sealed.data).decode()}]}
    status, _, _ = call(f"{server_url}/decode", body=body)
    assert status == 401
    status, _, _ = call(f"{server_url}/decode", body=body, headers={"Authorization": "Bearer wrong"})
    assert status == 401

    status, headers, answer = call(f"{server_url}/decode", body=body, headers={"Authorization": "Bearer s3cret"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "http://ui.example:8233"
    [plain] = answer["payloads"]
    assert base64.b64decode(plain["metadata"]["encoding"]) == b"json/plain"
    assert json.loads(base64.b64decode(plain["data"])) == SECRET

    status, _, encoded = call(f"{server_url}/encode", body=answer, headers={"Authorization": "Bearer s3cret"})
    assert status == 200
    assert base64.b64decode(encoded["payloads"][0]["metadata"][KEY_ID]) == b"k1"


def test_codec_server_preflight_allows_the_ui(server_url: str) -> None:
    status, headers, _ = call(f"{server_url}/decode", method="OPTIONS", headers={
        "Origin": "http://ui.example:8233", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace"})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "http://ui.example:8233"
    assert headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type, X-Namespace"
    assert "POST" in headers["Access-Control-Allow-Methods"]
