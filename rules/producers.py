"""Producers of events and the CloudEvent `source` that names them (``data/producers.yaml``).

One producer kind per subject domain (``civil``, ``health``); each province has one producer identity of each
kind, and its events carry a source ``<prefix><province>[:<office>]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from rules._data import as_mapping, as_str, get, load_packaged

_FILE = "producers.yaml"


@dataclass(frozen=True)
class ProducerKind:
    domain: str
    source_prefix: str
    identity_prefix: str


@cache
def producer_kinds() -> dict[str, ProducerKind]:
    """Subject domain -> how its producers are named."""
    raw = as_mapping(get(load_packaged(_FILE), "producers", _FILE), f"{_FILE}: producers")
    kinds = {}
    for domain, spec in raw.items():
        spec = as_mapping(spec, f"{_FILE}: producers.{domain}")
        kinds[str(domain)] = ProducerKind(
            domain=str(domain),
            source_prefix=as_str(get(spec, "source_prefix", _FILE), f"{_FILE}: producers.{domain}.source_prefix"),
            identity_prefix=as_str(get(spec, "identity_prefix", _FILE),
                                   f"{_FILE}: producers.{domain}.identity_prefix"))
    return kinds


def producer_source(domain: str, province_code: str, office: str | None = None) -> str:
    """The source of an event produced in `province_code` by a producer of `domain` (`civil`, `health`)."""
    base = producer_kinds()[domain].source_prefix + province_code
    return f"{base}:{office}" if office else base


def source_province(domain: str, source: str) -> str | None:
    """The province a source names for `domain`, or None when it does not follow the convention."""
    kind = producer_kinds().get(domain)
    if kind is None or not source.startswith(kind.source_prefix):
        return None
    province = source[len(kind.source_prefix):].split(":", 1)[0]
    return province or None


def producer_identity(domain: str, province_code: str) -> str:
    """The name of the NATS identity that publishes `domain` events of `province_code`."""
    return f"{producer_kinds()[domain].identity_prefix}-{province_code}"
