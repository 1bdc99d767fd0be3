"""`make run`: the embedded stack, the migrations, then the service in the foreground.

    python -m infra.run                          # worker + bridge in this process
    python -m infra.run --workers 4 --bridges 2  # 4 worker and 2 bridge processes, restarted if they exit

Servers given by URL (`TEMPORAL_ADDRESS`, `NATS_URL`, `DATABASE_URL`) are used as they are, so the same command
scales out against external clusters. Ctrl-C (or SIGTERM) drains every process, then stops the servers this
command started.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from infra.redaction import install_redaction
from infra.service_processes import ServiceFleet
from infra.settings import Settings
from infra.stack import EmbeddedStack, StackError
from registry.migrate import upgrade


async def run_fleet(settings: Settings, workers: int, bridges: int) -> None:
    """`workers` worker processes and `bridges` bridge processes until SIGINT/SIGTERM, then drain them all."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    fleet = ServiceFleet.build(settings, workers, bridges, log_files=False)
    fleet.start()
    print(f"running {workers} worker and {bridges} bridge process(es); Ctrl-C stops them all", flush=True)
    await stop.wait()
    await fleet.stop()
    restarts = {p.name: p.starts - 1 for p in fleet.processes if p.starts > 1}
    if restarts:
        print(f"processes restarted after exiting: {restarts}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1, help="Temporal worker processes")
    parser.add_argument("--bridges", type=int, default=1, help="NATS→Temporal bridge processes")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.bridges < 0:
        parser.error("--workers must be at least 1 and --bridges at least 0")
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
        if args.workers == 1 and args.bridges == 1:
            try:
                asyncio.run(worker.run(settings))
            except worker.ServiceTaskDied as err:
                print(f"error: {err}", file=sys.stderr)
                return 1
        else:
            asyncio.run(run_fleet(settings, args.workers, args.bridges))
    finally:
        stack.stop()
        print("stopped cleanly")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
