"""Setting the registry up: `migrate` and `seed-population`."""

from __future__ import annotations

import argparse

from tqdm import tqdm

from cli.common import EXIT_OK, CliError, print_json, registry_for
from infra.settings import Settings


# ---- migrate / seed ----------------------------------------------------------------------------------------
async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from registry.migrate import upgrade_async

    await upgrade_async(settings.database_owner_url, settings.database_app_role)
    print("database migrated to the latest revision")
    return EXIT_OK


async def cmd_seed_population(settings: Settings, args: argparse.Namespace) -> int:
    from registry.seed import seed_population

    if args.count < 1:
        raise CliError("count: must be a positive number of families")
    registry = registry_for(settings)
    try:
        with tqdm(total=args.count, unit="family", desc="seeding population", disable=args.json) as bar:
            await seed_population(registry, args.count, progress=bar.update)
    finally:
        await registry.close()
    if args.json:
        print_json({"families": args.count, "persons": args.count * 2})
    else:
        print(f"population ready: {args.count} households, {args.count * 2} parents (re-running adds no duplicates)")
    return EXIT_OK
