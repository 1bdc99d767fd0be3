"""What the embedded stack reports: a server that could not start, and the ports it needs."""

from __future__ import annotations

from dataclasses import dataclass


class StackError(RuntimeError):
    """A server of the embedded stack could not start; the message says what to do."""


@dataclass(frozen=True)
class PortSpec:
    service: str
    port: int
    env_var: str
