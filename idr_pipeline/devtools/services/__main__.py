"""``python -m idr_pipeline.services up|down|status|endpoints``: the Makefile's way in before the CLI.

Prints JSON so scripts can pick out ports and URLs; exits non-zero from ``status`` when a
service is not healthy, so ``make`` targets can gate on it.
"""

from __future__ import annotations

import argparse
import json
import sys

from idr_pipeline.devtools.services.manager import down, service_endpoints, status, up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m idr_pipeline.services", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "endpoints"])
    parser.add_argument("--run-dir", default=None, help="default: IDR_RUN_DIR or <repo>/run")
    args = parser.parse_args(argv)
    code = 0
    if args.command == "up":
        result: object = up(args.run_dir)
    elif args.command == "down":
        result = down(args.run_dir)
    elif args.command == "status":
        result = status(args.run_dir)
        code = 0 if result["kafka"]["healthy"] and result["mariadb"]["healthy"] else 1
    else:
        try:
            result = service_endpoints(args.run_dir)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
    print(json.dumps(result, indent=2, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
