"""``python -m tests.chaos [--jobs N] [--seconds S] [--faults kinds]``: one JSON line, exit 1 unless clean.

The mesh processes run on their own; this process only calls them over nameko,
which needs the green socket modules first.
"""

# nameko's standalone proxy needs eventlet's patched modules before anything imports socket.
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import psycogreen.eventlet  # noqa: E402

psycogreen.eventlet.patch_psycopg()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

from tests.chaos.faults import KINDS  # noqa: E402
from tests.chaos.report import clean  # noqa: E402
from tests.chaos.run import soak  # noqa: E402

FIRST = ("jobs", "faults", "lost", "duplicated", "stuck", "orphans", "wall_s")


def kinds(text):
    chosen = [k for k in text.split(",") if k]
    unknown = set(chosen) - set(KINDS)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"fault kinds are {','.join(KINDS)}; got {text!r}")
    return chosen


def main(argv=None):
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000, help="states of the sweep (2000)")
    parser.add_argument(
        "--seconds", type=float, default=600, help="how long faults go on at most (600)"
    )
    parser.add_argument(
        "--faults", type=kinds, default=list(KINDS), help=f"comma-separated ({','.join(KINDS)})"
    )
    parser.add_argument("--settle", type=float, default=300, help="seconds to let jobs end (300)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault choices")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    verdict = soak(args.jobs, args.seconds, args.faults, args.settle, args.seed)
    ordered = {k: verdict[k] for k in FIRST} | verdict
    print(json.dumps(ordered), flush=True)
    return 0 if clean(verdict) else 1


if __name__ == "__main__":
    sys.exit(main())
