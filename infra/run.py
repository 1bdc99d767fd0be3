"""`make run`: the embedded stack, the migrations, then worker + bridge in the foreground.

Ctrl-C (or SIGTERM) drains the bridge and the worker, then stops the servers this command started.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from infra.redaction import install_redaction
from infra.settings import Settings
from infra.stack import EmbeddedStack, StackError
from registry.migrate import upgrade


def main() -> int:
    settings = Settings()
    stack = EmbeddedStack(settings)
    try:
        stack.start()
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        upgrade(settings.database_owner_url, settings.database_app_role)
        print(f"stack up — Temporal UI {settings.temporal_ui_url}; Ctrl-C stops", flush=True)
        import worker

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        install_redaction()
        logging.getLogger("temporalio").setLevel(logging.WARNING)
        asyncio.run(worker.run(settings))
    finally:
        stack.stop()
        print("stopped cleanly")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
