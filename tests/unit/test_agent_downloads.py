"""Directory build: the free space floor of the work root, and sha256 checks of every download."""

import re

import pytest
from agent_support import make_job

from services.agent import stages
from services.agent.workspace import parse_size
from services.common.errors import MirrorError
from services.config import ConfigError


@pytest.mark.parametrize(
    ("value", "size"),
    [(0, 0), (4096, 4096), ("1GiB", 1024**3), ("500MB", 500 * 1000**2), ("1.5 KiB", 1536)],
)
def test_parse_size(value, size):
    assert parse_size(value, "AGENT.min_free") == size


@pytest.mark.parametrize("value", ["lots", "-1", True, "1XB"])
def test_parse_size_refuses_what_is_no_size(value):
    with pytest.raises(ConfigError, match="AGENT.min_free must be a size such as 1GiB"):
        parse_size(value, "AGENT.min_free")


def test_directory_build_refuses_below_the_free_space_floor(machine):
    job, served = make_job()
    rt = machine(job, served, min_free="1000TiB")
    with pytest.raises(MirrorError) as info:
        stages.build_directory(rt, job)

    assert re.fullmatch(
        f"directory build of job 5 refused: the work root {re.escape(str(rt.workspace.root))} "
        r"has \d+\.\d (KiB|MiB|GiB|TiB) free, below the floor AGENT.min_free of 1000.0 TiB",
        str(info.value),
    )
    assert rt.workspace.job_dirs(5) == []
    assert rt.central.calls == []


def test_directory_build_goes_on_above_the_floor(machine):
    job, served = make_job()
    rt = machine(job, served, min_free="1MiB")
    stages.build_directory(rt, job)
    assert rt.central.job["state"] == "PREPARING"


def test_a_corrupt_package_download_is_refused_naming_the_file(machine):
    job, served = make_job()
    served["/packages/3.zip"] += b"tampered"
    rt = machine(job, served)

    with pytest.raises(MirrorError) as info:
        stages.build_directory(rt, job)

    digest = job["package"]["sha256"]
    assert str(info.value).startswith(
        "directory build of job 5 failed: package 3 (/packages/3.zip) is corrupt after "
        "download: sha256 "
    )
    assert str(info.value).endswith(f", expected {digest}")
    assert not list((rt.workspace.cache / "packages").iterdir())
    assert rt.workspace.job_dirs(5) == []


def test_a_corrupt_project_file_download_is_refused_naming_the_file(machine):
    job, served = make_job()
    entry = job["project_files"][0]
    served[entry["ftp_path"]] = b"not what was uploaded"
    rt = machine(job, served)

    with pytest.raises(MirrorError) as info:
        stages.build_directory(rt, job)

    assert str(info.value).startswith(
        f"directory build of job 5 failed: project file {entry['name']} ({entry['ftp_path']}) "
        "is corrupt after download: sha256 "
    )
    assert not (rt.workspace.cache / "projects" / "1" / entry["sha256"]).exists()
    # Served right again, the next build downloads it again and goes on.
    served[entry["ftp_path"]] = make_job()[1][entry["ftp_path"]]
    stages.build_directory(rt, job)
    assert rt.central.job["state"] == "PREPARING"
