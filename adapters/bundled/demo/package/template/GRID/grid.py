"""Demo grid generator: an O-mesh around the section read from the model file.

Usage: python grid.py MODEL. Writes mesh.dat in the current directory.
"""

import math
import sys

LAYERS = 8
GROWTH = 1.4


def read_section(path):
    """The (x, y) points of the model file; '#' starts a comment."""
    points = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if fields:
                points.append((float(fields[0]), float(fields[1])))
    return points


def o_mesh(points):
    """Push each surface point outwards from the section's centre, layer by layer."""
    cx = sum(x for x, _ in points) / len(points)
    cy = sum(y for _, y in points) / len(points)
    nodes = []
    for j in range(LAYERS):
        scale = GROWTH**j
        for i, (x, y) in enumerate(points):
            dx, dy = x - cx, y - cy
            length = math.hypot(dx, dy) or 1.0
            offset = 0.05 * (scale - 1) / (GROWTH - 1)
            nodes.append((i, j, x + offset * dx / length, y + offset * dy / length))
    return nodes


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: python grid.py MODEL")
    points = read_section(argv[1])
    if len(points) < 3:
        sys.exit(f"{argv[1]}: a section needs at least 3 points, found {len(points)}")
    nodes = o_mesh(points)
    with open("mesh.dat", "w", encoding="utf-8") as out:
        out.write(f"# O-mesh: {len(points)} x {LAYERS} nodes; columns: i j x y\n")
        for i, j, x, y in nodes:
            out.write(f"{i} {j} {x:.6f} {y:.6f}\n")
    print(f"grid: {len(nodes)} nodes written to mesh.dat")


if __name__ == "__main__":
    main(sys.argv)
