"""``python -m scripts.stack up|down|status|drill|restore-drill|render`` (see the package).

up [--scale tiny|demo|none] [--fresh]   the single-machine stack under var/stack
down [--wipe]                           stop it (and remove var/stack)
status                                  what runs, and the cluster as Patroni sees it
drill [--rate R --seconds S --kill-at K --keep]
                                        reports at R/s, the primary killed at K s; one line
                                        ending "lost L, duplicated D, failover F s, reads kept
                                        M%"; exit status 1 on any lost or duplicated report
restore-drill                           back up, write, restore to a point in time, verify
render --production DIR --hosts a,b,c   production configuration files and systemd units
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")
    parser = argparse.ArgumentParser(prog="python -m scripts.stack")
    commands = parser.add_subparsers(dest="command", required=True)
    up_command = commands.add_parser("up")
    up_command.add_argument("--scale", choices=("tiny", "demo", "none"), default="demo")
    up_command.add_argument("--fresh", action="store_true", help="wipe var/stack first")
    down_command = commands.add_parser("down")
    down_command.add_argument("--wipe", action="store_true")
    commands.add_parser("status")
    drill_command = commands.add_parser("drill")
    drill_command.add_argument("--rate", type=float, default=50.0, help="reports a second (default 50)")
    drill_command.add_argument("--seconds", type=float, default=60.0, help="length of the load (default 60)")
    drill_command.add_argument("--kill-at", type=float, default=15.0, help="when the primary is killed (default 15)")
    drill_command.add_argument("--keep", action="store_true", help="leave the stack up afterwards")
    restore_command = commands.add_parser("restore-drill")
    restore_command.add_argument("--keep", action="store_true", help="leave the stack up afterwards")
    render_command = commands.add_parser("render")
    render_command.add_argument("--production", type=Path, required=True, metavar="DIR")
    render_command.add_argument(
        "--hosts", required=True, help="database hosts, comma-separated (the first runs the app)"
    )
    options = parser.parse_args(argv)

    from .engines import StackError
    from .layout import local_layout, production_layout

    try:
        if options.command == "render":
            from .production import render_production

            layout = production_layout(hosts=options.hosts.split(","), secrets=options.production / "secrets")
            for path in render_production(layout, options.production):
                print(f"render: {path}")
            return 0
        layout = local_layout()
        if options.command == "up":
            from .lifecycle import up

            up(layout, scale=options.scale, fresh=options.fresh)
        elif options.command == "down":
            from .lifecycle import down

            down(layout, wipe=options.wipe)
        elif options.command == "status":
            from .lifecycle import status

            print("\n".join(status(layout)))
        elif options.command == "drill":
            from .drill import failover_drill

            result = failover_drill(
                layout, rate=options.rate, seconds=options.seconds, kill_at=options.kill_at, keep=options.keep
            )
            print(result.line())
            return 0 if result.passed else 1
        elif options.command == "restore-drill":
            from .restore import restore_drill

            result = restore_drill(layout, keep=options.keep)
            print(result.line())
            return 0 if result.passed else 1
    except StackError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
