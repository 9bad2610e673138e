"""Hooks of the demo package: checks around the grid and flow steps.

Each hook takes one context (job_id, job_dir, workpath, step, params, publish)
and raises to fail its step; values put in ``context.publish`` are reported
with the job's monitoring data.
"""

import math
from pathlib import Path


def _data_lines(path):
    """Non-comment, non-empty lines of a text file."""
    with open(path, encoding="utf-8") as f:
        return [line for line in f if line.strip() and not line.lstrip().startswith("#")]


def gridPre(context):
    """The model file must be in the grid directory and hold a section."""
    model = Path(context.job_dir, context.workpath, context.params["model"])
    if not model.is_file():
        raise FileNotFoundError(f"model file {context.params['model']} is missing")
    points = len(_data_lines(model))
    if points < 3:
        raise ValueError(f"model file {model.name} has {points} points, at least 3 are needed")
    context.publish["model_points"] = points


def gridPost(context):
    """The grid step must have written a non-empty mesh.dat."""
    mesh = Path(context.job_dir, context.workpath, "mesh.dat")
    if not mesh.is_file():
        raise FileNotFoundError("grid wrote no mesh.dat")
    nodes = len(_data_lines(mesh))
    if nodes == 0:
        raise ValueError("mesh.dat is empty")
    context.publish["mesh_nodes"] = nodes


def flowPost(context):
    """The flow step must have converged: a finite, small final residual."""
    residual = Path(context.job_dir, context.workpath, "residual.dat")
    if not residual.is_file():
        raise FileNotFoundError("flow wrote no residual.dat")
    lines = _data_lines(residual)
    if not lines:
        raise ValueError("residual.dat is empty")
    final = float(lines[-1].split()[1])
    if not math.isfinite(final) or final > 1e-2:
        raise ValueError(f"flow did not converge: final residual {final:g}")
    context.publish["final_residual"] = final
