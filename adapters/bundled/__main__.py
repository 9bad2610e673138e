"""``python -m adapters.bundled [--out DIR]``: write each bundled package as a zip."""

import argparse

from adapters.bundled import BUNDLED_DIR, write_zips


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m adapters.bundled", description="Write the bundled calculation packages."
    )
    parser.add_argument(
        "--out", default=str(BUNDLED_DIR), help=f"directory (default {BUNDLED_DIR})"
    )
    args = parser.parse_args(argv)
    for path in write_zips(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
