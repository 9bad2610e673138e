"""Handed-out result URLs against a real mesh: each reaches its own job's published files only."""

import ftplib
import io
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from adapters.bundled import package_zip, project_files
from tests.integration.manual_jobs import ftp_download
from tests.integration.sweeps import wait_all
from tests.mesh import ROOT


@pytest.fixture(scope="module")
def finished(autorun_mesh):
    """Two completed demo jobs of one project: ``(mesh, c_id, p_id, [job, job])``."""
    mesh = autorun_mesh
    c_id = mesh.add_package("demo", package_zip("demo"))
    p_id = mesh.add_project("demo", project_files("demo"))
    ids = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=1)[:2]
    jobs = wait_all(mesh, ids, timeout=180)
    assert [j["state"] for j in jobs] == ["COMPLETED"] * 2, [j["error"] for j in jobs]
    return mesh, c_id, p_id, jobs


def login(url, password=None):
    parts = urlsplit(url)
    ftp = ftplib.FTP()
    ftp.connect(parts.hostname, parts.port, timeout=10)
    ftp.login(unquote(parts.username), password if password is not None else parts.password)
    return ftp


def read(ftp, path):
    buf = io.BytesIO()
    ftp.retrbinary(f"RETR {path}", buf.write)
    return buf.getvalue()


def test_each_url_names_its_own_job_account(finished):
    mesh, _, _, jobs = finished
    for job in jobs:
        data = mesh.ok("jobgetdata", "do", job_id=job["job_id"])
        for url in [*data["result"].values(), data["process"]["chart"]]:
            parts = urlsplit(url)
            assert parts.username == f"job{job['job_id']}", url
            # Neither the reader's (default) password nor the writer's.
            assert parts.password not in ("mirror", "mirror-agent"), url
        root = Path(job["path"])
        assert ftp_download(data["result"]["force"]) == (root / "POST/force.dat").read_bytes()
        assert ftp_download(data["process"]["chart"]) == (root / "FLOW/residual.dat").read_bytes()


def test_a_url_reaches_nothing_of_another_job_a_package_or_a_project(finished):
    mesh, c_id, p_id, (mine, theirs) = finished
    url = mesh.ok("jobgetdata", "do", job_id=mine["job_id"])["result"]["force"]
    ftp_root = Path(mesh.config["DATA_DIR"]) / "ftp"
    other = f"jobs/{theirs['job_id']}/result/force/force.dat"
    package = f"packages/{c_id}/package.zip"
    project = f"projects/{p_id}/files/para.xml"
    # They are there, for an account allowed to read them.
    for path in (other, package, project):
        assert (ftp_root / path).is_file(), path
    ftp = login(url)
    try:
        for path in (other, package, project):
            for spelled in (f"/{path}", f"/../../{path}", f"../../{path}"):
                with pytest.raises(ftplib.error_perm, match="^550"):
                    read(ftp, spelled)
        for directory in (
            f"/../{theirs['job_id']}",
            f"/jobs/{theirs['job_id']}",
            "/../../packages",
            "/../../projects",
        ):
            with pytest.raises(ftplib.error_perm, match=r"^5\d\d"):
                list(ftp.mlsd(directory))
        # Listing the top or above it shows this job's published directories only.
        ftp.cwd("/../..")
        assert ftp.pwd() == "/"
        assert sorted(ftp.nlst()) == ["process", "result"]
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.storbinary("STOR /result/evil.txt", io.BytesIO(b"x"))
    finally:
        ftp.quit()
    assert not (ftp_root / f"jobs/{mine['job_id']}/result/evil.txt").exists()


def test_a_wrong_password_is_refused(finished):
    mesh, _, _, (mine, theirs) = finished
    url = mesh.ok("jobgetdata", "do", job_id=mine["job_id"])["result"]["force"]
    other = mesh.ok("jobgetdata", "do", job_id=theirs["job_id"])["result"]["force"]
    password = urlsplit(url).password
    for wrong in (urlsplit(other).password, password[::-1], "", "mirror", "mirror-agent"):
        with pytest.raises(ftplib.error_perm, match="^530"):
            login(url, wrong)
    # Another job's password opens its own account only.
    ftp = login(other)
    ftp.quit()


def test_the_writer_and_the_reader_accounts_still_work(finished):
    mesh, c_id, _, (mine, _) = finished
    url = mesh.ok("jobgetdata", "do", job_id=mine["job_id"])["result"]["force"]
    parts = urlsplit(url)
    writer = ftplib.FTP()
    writer.connect(parts.hostname, parts.port, timeout=10)
    writer.login("mirror-agent", "mirror-agent")
    writer.storbinary("STOR /scratch/agent.txt", io.BytesIO(b"agent"))
    writer.delete("/scratch/agent.txt")
    writer.quit()
    # The admins' reader reads everything, packages included.
    reader = ftplib.FTP()
    reader.connect(parts.hostname, parts.port, timeout=10)
    reader.login("mirror", "mirror")
    package = Path(mesh.config["DATA_DIR"]) / "ftp" / f"packages/{c_id}/package.zip"
    assert read(reader, f"/packages/{c_id}/package.zip") == package.read_bytes()
    reader.quit()


def test_mirror_get_downloads_through_the_job_account(finished, tmp_path):
    mesh, _, _, (mine, _) = finished
    done = subprocess.run(
        mesh.command("get", str(mine["job_id"]), str(tmp_path / "out")),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    root = Path(mine["path"])
    assert (tmp_path / "out/force/force.dat").read_bytes() == (root / "POST/force.dat").read_bytes()
    assert (tmp_path / "out/mesh/mesh.dat").read_bytes() == (root / "GRID/mesh.dat").read_bytes()
