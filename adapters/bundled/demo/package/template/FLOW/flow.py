"""Demo flow solver: pretends to converge for about three seconds.

Reads flow.in (``key = value`` lines). Each iteration appends ``current total``
to progress.txt and ``iteration residual`` to residual.dat, flushing both, so
that monitoring sees the run progress. MIRROR_DEMO_SECONDS overrides the
duration.
"""

import math
import os
import sys
import time


def read_input(path):
    """The ``key = value`` pairs of flow.in; '#' starts a comment."""
    values = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            key, sep, value = text.partition("=")
            if not sep:
                sys.exit(f"{path}:{number}: expected 'key = value'")
            values[key.strip()] = value.strip()
    return values


def main():
    config = read_input("flow.in")
    mach = float(config["mach"])
    alpha = float(config["alpha"])
    iterations = int(config["iterations"])
    if iterations < 1:
        sys.exit("flow.in: iterations must be at least 1")
    seconds = float(os.environ.get("MIRROR_DEMO_SECONDS", "3"))
    pause = seconds / iterations
    # Compressibility slows convergence a little, as it would in a real solver.
    rate = 6.0 / (1.0 + mach * mach)
    with (
        open("progress.txt", "w", encoding="utf-8") as progress,
        open("residual.dat", "w", encoding="utf-8") as residual,
    ):
        residual.write(f"# mach={mach} alpha={alpha}; columns: iteration residual\n")
        for k in range(1, iterations + 1):
            value = 10 ** (-rate * k / iterations) * (1 + 0.2 * math.sin(k))
            residual.write(f"{k} {value:.6e}\n")
            residual.flush()
            progress.write(f"{k} {iterations}\n")
            progress.flush()
            time.sleep(pause)
    print(f"flow: {iterations} iterations, final residual {value:.3e}")


if __name__ == "__main__":
    main()
