"""Packing an ended job's directory for its user, against a fake file server."""

import io
import tarfile

import pytest
from agent_support import make_job, prepared, run_to_end

from services.agent import packing
from services.common.errors import MirrorError


def failed_job(machine, **agent):
    job, served = make_job()
    rt = machine(job, served, **agent)
    prepared(rt, job)
    run_to_end(rt, job)
    job["state"] = "FAILED"
    return rt, job


def test_an_ended_jobs_directory_is_published_as_a_tar_gz(machine):
    rt, job = failed_job(machine)

    packed = packing.pack(rt, job)

    assert packed["url"] == "ftp://files/jobs/5/directory/job5.tar.gz"
    data = rt.files.uploaded["/jobs/5/directory/job5.tar.gz"]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = {m.name for m in tar.getmembers() if m.isfile()}
        assert tar.extractfile("input.txt").read() == b"x = 2\n"
    assert {"input.txt", ".mirror/steps"} <= names
    assert packed["files"] == len(names)
    assert packed["bytes"] == packing.directory_size(job["path"])[0]
    # Nothing of the packing is left in the work root.
    assert not list(rt.workspace.root.glob(".pack-*"))


def test_a_directory_over_the_cap_is_refused_with_its_size(machine):
    rt, job = failed_job(machine, directory_cap="1KiB")
    (rt.workspace.root / "job5" / "big.dat").write_bytes(b"0" * 4096)

    with pytest.raises(MirrorError, match=r"holds 4\.\d KiB, over the 1\.0 KiB .*directory_cap"):
        packing.pack(rt, job)
    assert rt.files.uploaded == {}


def test_a_running_job_or_one_without_directory_is_refused(machine):
    rt, job = failed_job(machine)
    job["state"] = "RUNNING"
    with pytest.raises(MirrorError, match="job 5 is RUNNING; its directory can be fetched once"):
        packing.pack(rt, job)
    job.update(state="FAILED", path=None)
    with pytest.raises(MirrorError, match="job 5 has no directory to fetch: it FAILED before"):
        packing.pack(rt, job)


def test_sizes_read_in_the_unit_they_fill():
    assert [packing.human(n) for n in (512, 4096, 3 * 1024**2, 5 * 1024**3)] == [
        "512 bytes",
        "4.0 KiB",
        "3.0 MiB",
        "5.0 GiB",
    ]
