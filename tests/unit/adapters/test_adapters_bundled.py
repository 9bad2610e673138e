"""The bundled demo and trivial packages: valid, deterministic, and they really run."""

import io
import os
import pathlib
import subprocess
import sys
import time
import zipfile

import pytest

from adapters import bundled
from adapters.bundled.__main__ import main as bundled_main
from adapters.errors import where_of
from adapters.filegen import data_path, generate_files, step_workdir
from adapters.hooks import HookContext, load_hooks
from adapters.package import inspect_package
from adapters.params import parse_params
from adapters.progress import read_progress
from adapters.safezip import extract_zip
from adapters.substitute import build_argv


def test_bundled_names():
    assert bundled.names() == ("demo", "script", "trivial")


def test_package_zip_is_deterministic():
    assert bundled.package_zip("demo") == bundled.package_zip("demo")


def test_unknown_bundle():
    with pytest.raises(ValueError, match="no bundled package 'nope'"):
        bundled.package_zip("nope")


def test_demo_package_is_valid():
    adapter = inspect_package(bundled.package_zip("demo"), "demo.zip")
    assert adapter.name == "demo" and adapter.hooks == "hooks.py"
    assert adapter.step_ids == ("grid", "flow", "post")
    assert [s.type for s in adapter.steps] == ["shell"] * 3
    assert adapter.step("grid").value == "python grid.py {model}"
    assert adapter.hook_names == ("gridPre", "gridPost", "flowPost")
    assert adapter.progress == "FLOW/progress.txt"
    assert [(d.key, d.path) for d in adapter.process] == [("chart", "FLOW/residual.dat")]
    assert [(d.key, d.path) for d in adapter.result] == [
        ("mesh", "GRID/mesh.dat"),
        ("force", "POST/force.dat"),
    ]
    names = zipfile.ZipFile(io.BytesIO(bundled.package_zip("demo"))).namelist()
    assert "template/FLOW/flow.in.tpl" in names and "hooks.py" in names


def test_demo_project():
    files = bundled.project_files("demo")
    assert sorted(files) == ["para.xml", "wing.dat"]
    states = parse_params(files["para.xml"])
    assert [s.name for s in states] == ["mach=0.5,alpha=0", "mach=0.6,alpha=2", "mach=0.7,alpha=4"]
    assert all(s.params["NCPUS"] == 1 and s.params["model"] == "wing.dat" for s in states)


def test_trivial_package_and_project():
    adapter = inspect_package(bundled.package_zip("trivial"), "trivial.zip")
    assert adapter.step_ids == ("prepare", "compute", "finish")
    assert {s.type for s in adapter.steps} == {"exec"}
    assert adapter.hooks is None
    assert [(d.key, d.path) for d in adapter.result] == [("result", "result.txt")]
    states = parse_params(bundled.project_files("trivial")["para.xml"])
    assert [s.name for s in states] == ["x=1", "x=2", "x=3"]


def test_main_writes_the_zips(tmp_path, capsys):
    assert bundled_main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.zip", "script.zip", "trivial.zip"]
    assert (tmp_path / "demo.zip").read_bytes() == bundled.package_zip("demo")
    assert "demo.zip" in capsys.readouterr().out


# --- end to end: what directory build, file generation and the run stage do ------------


def run_bundled(name: str, state_index: int, root: pathlib.Path):
    """Build a job of bundled package ``name`` under ``root`` and run every step.

    Returns (job dir, state, published hook values, progress seen while running).
    """
    package = bundled.package_zip(name)
    adapter = inspect_package(package)
    calc, project, job = root / "calc", root / "project", root / "job"
    extract_zip(package, calc)
    for rel, data in bundled.project_files(name).items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_bytes(data)
    extract_zip(package, job, members_prefix="template/")
    state = parse_params((project / "para.xml").read_bytes())[state_index]
    generate_files(adapter, state.params, job, project)
    hooks = load_hooks(calc / adapter.hooks, f"bundled-{name}") if adapter.hooks else None
    published, progress_seen = {}, []
    for step in adapter.steps:
        workdir = step_workdir(step, state.params, job)
        context = HookContext(1, str(job), step.workpath, step.id, state.params)
        if step.premethod:
            hooks.call(step.premethod, context)
        argv = build_argv(step, state.params, where_of("adapter.xml", step.line, "attribute value"))
        env = dict(
            os.environ,
            PATH=os.pathsep.join(
                [os.path.dirname(sys.executable), str(job), str(workdir), os.environ["PATH"]]
            ),
            MIRROR_JOB_ID="1",
            MIRROR_JOB_DIR=str(job),
            MIRROR_STEP=step.id,
            NCPUS=str(state.params["NCPUS"]),
        )
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        while proc.poll() is None:
            if adapter.progress:
                progress_seen.append(read_progress(job / adapter.progress))
            time.sleep(0.1)
        output = proc.stdout.read().decode()
        proc.stdout.close()
        assert proc.returncode == 0, (step.id, output)
        published[step.id] = (time.monotonic() - started, output)
        if step.postmethod:
            hooks.call(step.postmethod, context)
        published.update({f"{step.id}:{k}": v for k, v in context.publish.items()})
    return adapter, job, state, published, progress_seen


def test_demo_runs_end_to_end(tmp_path):
    adapter, job, state, published, progress_seen = run_bundled("demo", 1, tmp_path)
    assert state.name == "mach=0.6,alpha=2"
    assert (job / "GRID/wing.dat").is_file()
    assert (job / "FLOW/flow.in").read_text().splitlines()[1:] == [
        "mach = 0.6",
        "alpha = 2.0",
        "iterations = 30",
    ]
    for item in adapter.result + adapter.process:
        assert data_path(item, state.params, job).stat().st_size > 0
    assert read_progress(job / adapter.progress) == (30, 30)
    # Monitoring saw the run in progress: the solver flushes each iteration.
    partial = [p for p in progress_seen if p and 0 < p[0] < p[1]]
    assert partial, progress_seen
    assert published["flow"][0] >= 2.0  # about three seconds of "solving"
    assert published["grid:model_points"] == 25
    assert published["grid:mesh_nodes"] == 200
    assert published["flow:final_residual"] < 1e-2
    force = dict(line.split() for line in (job / "POST/force.dat").read_text().splitlines())
    assert float(force["mach"]) == 0.6 and float(force["CL"]) > 0


def test_demo_hook_fails_without_the_model(tmp_path):
    package = bundled.package_zip("demo")
    extract_zip(package, tmp_path / "calc")
    hooks = load_hooks(tmp_path / "calc/hooks.py", "demo")
    context = HookContext(1, str(tmp_path), "GRID", "grid", {"model": "wing.dat"})
    with pytest.raises(Exception) as info:
        hooks.call("gridPre", context)
    assert (
        str(info.value) == "hook gridPre failed: FileNotFoundError: model file wing.dat is missing"
    )


def test_trivial_runs_end_to_end(tmp_path):
    adapter, job, state, published, _ = run_bundled("trivial", 2, tmp_path)
    assert (job / "result.txt").read_text() == "x = 3\n"
    assert data_path(adapter.result[0], state.params, job) == (job / "result.txt").resolve()
    assert sum(seconds for seconds, _ in published.values()) < 3
