"""What every CLI command shares: exit codes, the error type, JSON output, a registry connection."""

from __future__ import annotations

import json
from typing import Any

from infra.settings import Settings
from registry.db import Registry, make_engine

EXIT_OK, EXIT_ERROR, EXIT_NOT_FOUND = 0, 1, 3
READER = "operator-cli"


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def registry_for(settings: Settings) -> Registry:
    return Registry(make_engine(settings.database_url, pool_size=5))


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def require_id_number(value: str) -> None:
    """A well-formed personal ID number, or a CLI error naming the argument (never echoing the number)."""
    import rules

    problem = rules.personal_id_problem(value)
    if problem:
        raise CliError(f"ID_NUMBER: {problem}")
