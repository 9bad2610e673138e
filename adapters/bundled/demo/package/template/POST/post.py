"""Demo post-processor: lift and drag from thin-aerofoil theory.

Reads ../FLOW/flow.in and ../FLOW/residual.dat, writes force.dat.
"""

import math
import sys


def read_input(path):
    """The ``key = value`` pairs of flow.in; '#' starts a comment."""
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.split("#", 1)[0].partition("=")
            if sep:
                values[key.strip()] = value.strip()
    return values


def final_residual(path):
    """The residual of the last iteration in residual.dat."""
    last = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if len(fields) == 2:
                last = float(fields[1])
    if last is None:
        sys.exit(f"{path}: no residuals")
    return last


def main():
    config = read_input("../FLOW/flow.in")
    mach = float(config["mach"])
    alpha = math.radians(float(config["alpha"]))
    # Prandtl-Glauert corrected thin-aerofoil lift, a parabolic drag polar.
    beta = math.sqrt(1.0 - mach * mach)
    cl = 2.0 * math.pi * alpha / beta
    cd = 0.008 + cl * cl / (math.pi * 8.0 * 0.9)
    cm = -cl / 4.0
    residual = final_residual("../FLOW/residual.dat")
    with open("force.dat", "w", encoding="utf-8") as out:
        out.write(f"mach {mach:.4f}\n")
        out.write(f"alpha {math.degrees(alpha):.4f}\n")
        out.write(f"CL {cl:.6f}\n")
        out.write(f"CD {cd:.6f}\n")
        out.write(f"CM {cm:.6f}\n")
        out.write(f"residual {residual:.3e}\n")
    print(f"post: CL={cl:.4f} CD={cd:.5f}")


if __name__ == "__main__":
    main()
