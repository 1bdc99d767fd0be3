"""Workflow payloads encrypted with AES-256-GCM before they reach Temporal (a `PayloadCodec`).

Keys come from `PAYLOAD_KEYS` = `id:base64key,id:base64key,...` (32-byte keys): the newest (last) key encrypts,
every listed key decrypts, so a key is rotated by appending a new one and dropping the old one only once no
history needs it. Without the setting, a key is generated once into `<data dir>/payload-keys` (mode 600), which
the worker, the bridge and every CLI command of that data dir share.

An encrypted payload has metadata `encoding: binary/encrypted` and `encryption-key-id: <id>`; its data is the
12-byte nonce followed by the AES-GCM ciphertext of the whole original payload (its metadata included).
Payloads without that encoding (histories recorded before encryption) pass through decoding unchanged.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from infra.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
KEY_FILE = "payload-keys"
NONCE_BYTES = 12
KEY_BYTES = 32


class PayloadKeyError(ValueError):
    """A key setting that cannot be used, or a payload whose key is not at hand."""


@dataclass(frozen=True)
class PayloadKeys:
    keys: dict[str, bytes]
    """Every key by id, in the order given; the last one encrypts."""

    @property
    def current_id(self) -> str:
        return next(reversed(self.keys))

    @classmethod
    def parse(cls, text: str, *, source: str = "PAYLOAD_KEYS") -> PayloadKeys:
        keys: dict[str, bytes] = {}
        for item in text.replace("\n", ",").split(","):
            item = item.strip()
            if not item or item.startswith("#"):
                continue
            key_id, sep, encoded = item.partition(":")
            key_id = key_id.strip()
            if not sep or not key_id:
                raise PayloadKeyError(f"{source}: each key is written id:base64key (got an entry without an id)")
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except binascii.Error:
                raise PayloadKeyError(f"{source}: key {key_id!r} is not valid base64") from None
            if len(key) != KEY_BYTES:
                raise PayloadKeyError(f"{source}: key {key_id!r} has {len(key)} bytes, {KEY_BYTES} are needed")
            if key_id in keys:
                raise PayloadKeyError(f"{source}: key id {key_id!r} is given twice")
            keys[key_id] = key
        if not keys:
            raise PayloadKeyError(f"{source}: no key given")
        return cls(keys)

    @classmethod
    def generate(cls, key_id: str | None = None) -> PayloadKeys:
        return cls({key_id or f"local-{secrets.token_hex(4)}": AESGCM.generate_key(bit_length=8 * KEY_BYTES)})

    def to_text(self) -> str:
        return ",".join(f"{key_id}:{base64.b64encode(key).decode()}" for key_id, key in self.keys.items())


def key_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / KEY_FILE


def load_keys(settings: Settings) -> PayloadKeys:
    """`PAYLOAD_KEYS` if set; else the data dir's key file, created (mode 600) with a new key if absent."""
    if settings.payload_keys:
        return PayloadKeys.parse(settings.payload_keys)
    path = key_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(PayloadKeys.generate().to_text() + "\n")
        try:
            os.link(tmp, path)  # atomic: a process starting at the same moment keeps the key written first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return PayloadKeys.parse(path.read_text(), source=str(path))


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: PayloadKeys) -> None:
        self._keys = keys
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys.items()}

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._keys.current_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # recorded before encryption (or by a client without it): as it is
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadKeyError(f"payload encrypted with key id {key_id!r}, which is not among the keys at hand "
                                  f"({', '.join(self.key_ids)}); add it to PAYLOAD_KEYS")
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode())
        except InvalidTag:
            raise PayloadKeyError(f"payload with key id {key_id!r} does not decrypt: wrong key or altered data") \
                from None
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]


def converter_with(keys: PayloadKeys) -> DataConverter:
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keys))


def data_converter(settings: Settings) -> DataConverter:
    """The project's one data converter: pydantic JSON, then encrypted with the settings' keys."""
    return converter_with(load_keys(settings))
