"""Ending a command-line process that used a Temporal client."""

from __future__ import annotations

import logging
import os
import sys


def exit_now(code: int) -> None:
    """Flush what was printed and logged, then end the process without interpreter finalization.

    The Temporal SDK's core runtime keeps native threads that may call back into Python while the interpreter
    finalizes, which can abort an otherwise successful process ("PyGILState_Release", exit 134). Everything the
    command had to do is done when this is called, so skipping finalization loses nothing.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        logging.shutdown()
        os._exit(code)
