"""Who may do what on NATS: one nkey identity per producer and per service role, least privilege each.

- `civil-status-<province>`, a civil-status office (`starter.py publish`, the demo): publishes `civil.<province>.>`;
- `health-<province>`, a health station (vaccination reports): publishes `health.<province>.>`;
- `bridge`, the event bridge (`worker.py`): pulls and acks on its two durable consumers (CIVIL, HEALTH), publishes
  dead letters on `dlq.>`;
- `notifier`, the agencies' activities (`worker.py`): publishes `notify.>` (notices, health-station tasks,
  department notices);
- `dispatcher`, the notice dispatcher (`worker.py`, with the bridge): pulls and acks on its durable consumer on
  NOTIFY, publishes unreadable announcements on `dlq.notify.>`;
- `operator`, the operator CLI (`dlq`): reads the CIVIL_DLQ stream;
- `admin`, stream provisioning at the service's start-up: the JetStream API.

Each identity receives only on its own inbox prefix (`_INBOX_<identity>.>`), so no one reads another's replies, and
no identity but `admin` can create, change or delete a stream. The NATS server knows only the public keys and the
permissions (written into its configuration by the embedded stack); each process holds only its own seed.
Seeds live in the credentials folder (`NATS_CREDENTIALS_DIR`, default `<data dir>/nats-credentials`, mode 700,
files 600) as `<identity>.nk`; a cluster run by someone else may provide `<identity>.creds` (JWT) files instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rules
from rules.producers import producer_identity, producer_kinds

ADMIN, BRIDGE, DISPATCHER, NOTIFIER, OPERATOR = "admin", "bridge", "dispatcher", "notifier", "operator"
SEED_SUFFIX, CREDS_SUFFIX = ".nk", ".creds"


class NatsCredentialsMissing(RuntimeError):
    """No credentials for an identity; the message says where they were looked for and how to get them."""


@dataclass(frozen=True)
class Identity:
    name: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...] = ()

    @property
    def inbox_prefix(self) -> str:
        return f"_INBOX_{self.name}"

    def permissions(self) -> dict[str, Any]:
        return {"publish": {"allow": list(self.publish)},
                "subscribe": {"allow": [f"{self.inbox_prefix}.>", *self.subscribe]}}


def _pull_consumer_api(stream: str) -> list[str]:
    """What a durable pull consumer's owner needs on `stream`: create or update it, fetch, acknowledge."""
    return [f"$JS.API.STREAM.INFO.{stream}",
            f"$JS.API.CONSUMER.INFO.{stream}.*",
            f"$JS.API.CONSUMER.CREATE.{stream}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.*",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.*",
            f"$JS.ACK.{stream}.>"]


def service_identities(civil_stream: str, health_stream: str, dlq_stream: str,
                       notify_stream: str = "NOTIFY") -> list[Identity]:
    bridge_api = [*_pull_consumer_api(civil_stream), *_pull_consumer_api(health_stream)]
    return [
        Identity(ADMIN, ("$JS.API.>",)),
        Identity(BRIDGE, (*bridge_api, "dlq.>")),
        Identity(DISPATCHER, (*_pull_consumer_api(notify_stream), "dlq.notify.>")),
        Identity(NOTIFIER, ("notify.>",)),
        Identity(OPERATOR, (f"$JS.API.STREAM.INFO.{dlq_stream}", f"$JS.API.STREAM.MSG.GET.{dlq_stream}",
                            f"$JS.API.DIRECT.GET.{dlq_stream}")),
    ]


def producer_identities() -> list[Identity]:
    """One identity per province and producer kind, publishing on that province's subjects only."""
    return [Identity(producer_identity(domain, code), (f"{domain}.{code}.>",))
            for domain in producer_kinds() for code in sorted(rules.provinces())]


def all_identities(settings: Any) -> list[Identity]:
    return [*service_identities(settings.civil_stream, settings.health_stream, settings.dlq_stream,
                                settings.notify_stream),
            *producer_identities()]


# ---- credentials ---------------------------------------------------------------------------------------------
def ensure_seeds(folder: Path, identities: list[Identity]) -> dict[str, str]:
    """Each identity's public key, generating a user seed for those that have none yet (kept across restarts)."""
    import nkeys

    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    public: dict[str, str] = {}
    for identity in identities:
        path = folder / f"{identity.name}{SEED_SUFFIX}"
        if not path.exists():
            seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(seed + b"\n")
        public[identity.name] = nkeys.from_seed(bytearray(path.read_bytes().strip())).public_key.decode()
    return public


def authorization_block(folder: Path, identities: list[Identity]) -> str:
    """The `authorization { users = [...] }` section of a nats-server configuration for these identities."""
    public = ensure_seeds(folder, identities)
    users = [f"    {{ nkey: {json.dumps(public[i.name])}, permissions: {json.dumps(i.permissions())} }}"
             for i in identities]
    return "authorization {\n  users = [\n" + ",\n".join(users) + "\n  ]\n}\n"


def connect_options(folder: Path, identity: str) -> dict[str, Any]:
    """Keyword arguments for `nats.connect` that authenticate as `identity` and keep its replies private."""
    creds = folder / f"{identity}{CREDS_SUFFIX}"
    seed = folder / f"{identity}{SEED_SUFFIX}"
    options: dict[str, Any] = {"inbox_prefix": f"_INBOX_{identity}"}
    if creds.exists():
        options["user_credentials"] = str(creds)
    elif seed.exists():
        options["nkeys_seed_str"] = seed.read_text().strip()
    else:
        raise NatsCredentialsMissing(
            f"no NATS credentials for identity '{identity}': expected {seed} (or {creds.name}) in {folder}; "
            "the embedded stack creates them (`python -m infra.stack up`, `make demo`); for an external NATS, "
            "its operator provides them (see README, NATS identities)")
    return options
