"""The file server's rules: no anonymous login, read-only accounts, confinement, an upload cap."""

import ftplib
import io
import subprocess
import sys

import pytest
import yaml

from services.jobaccess import job_password, job_user, url_key
from tests.mesh import ROOT, free_port, wait_for

CAP = 64 * 1024


@pytest.fixture(scope="module")
def ftp(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ftp")
    port, passive = free_port(), free_port()
    config = {
        "DATA_DIR": str(tmp / "data"),
        "FTP": {"port": port, "passive_ports": [passive, passive], "max_upload": CAP},
    }
    path = tmp / "mirror.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "--config", str(path), "ftp"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: connect(port, "mirror", "mirror"), 20, what="the file server")
        yield port, tmp / "data" / "ftp"
    finally:
        proc.terminate()
        proc.wait(10)


def connect(port, user, password):
    client = ftplib.FTP()
    client.connect("127.0.0.1", port, timeout=5)
    client.login(user, password)
    return client


def test_anonymous_and_wrong_passwords_are_refused(ftp):
    port, _ = ftp
    for user, password in (("anonymous", "a@b"), ("mirror", "wrong"), ("mirror-agent", "")):
        with pytest.raises(ftplib.error_perm, match="530"):
            connect(port, user, password)


def test_the_writer_stores_and_the_reader_only_reads(ftp):
    port, root = ftp
    writer = connect(port, "mirror-agent", "mirror-agent")
    writer.mkd("/jobs")
    writer.storbinary("STOR /jobs/out.txt", io.BytesIO(b"result"))
    writer.quit()
    assert (root / "jobs" / "out.txt").read_bytes() == b"result"
    reader = connect(port, "mirror", "mirror")
    buf = io.BytesIO()
    reader.retrbinary("RETR /jobs/out.txt", buf.write)
    assert buf.getvalue() == b"result"
    for command in (
        lambda: reader.storbinary("STOR /jobs/evil.txt", io.BytesIO(b"x")),
        lambda: reader.delete("/jobs/out.txt"),
        lambda: reader.mkd("/new"),
        lambda: reader.rename("/jobs/out.txt", "/jobs/moved.txt"),
    ):
        with pytest.raises(ftplib.error_perm, match="550"):
            command()
    reader.quit()
    assert (root / "jobs" / "out.txt").exists() and not (root / "jobs" / "evil.txt").exists()


def test_the_writer_stores_into_new_directories_in_one_command(ftp):
    port, root = ftp
    writer = connect(port, "mirror-agent", "mirror-agent")
    writer.storbinary("STOR /jobs/7/result/force/force.dat", io.BytesIO(b"f"))
    writer.quit()
    assert (root / "jobs/7/result/force/force.dat").read_bytes() == b"f"
    reader = connect(port, "mirror", "mirror")
    with pytest.raises(ftplib.error_perm, match="550"):
        reader.storbinary("STOR /made/by/reader.txt", io.BytesIO(b"x"))
    reader.quit()
    assert not (root / "made").exists()
    # Above the root is the root: the directories are made inside it.
    writer = connect(port, "mirror-agent", "mirror-agent")
    writer.storbinary("STOR /../../up/x.txt", io.BytesIO(b"x"))
    writer.quit()
    assert (root / "up/x.txt").exists() and not (root.parent.parent / "up").exists()


def test_users_are_confined_to_the_root(ftp):
    port, _ = ftp
    reader = connect(port, "mirror", "mirror")
    reader.cwd("/..")
    assert reader.pwd() == "/"
    with pytest.raises(ftplib.error_perm):
        reader.retrbinary("RETR ../../../../etc/passwd", io.BytesIO().write)
    reader.quit()


def test_uploads_past_the_cap_are_cut(ftp):
    port, root = ftp
    writer = connect(port, "mirror-agent", "mirror-agent")
    with pytest.raises((ftplib.error_temp, ftplib.error_perm, EOFError, OSError)):
        writer.storbinary("STOR /big.bin", io.BytesIO(b"x" * (CAP * 8)))
    writer.close()
    assert not (root / "big.bin").exists()
    # Below the cap, uploads go through.
    writer = connect(port, "mirror-agent", "mirror-agent")
    writer.storbinary("STOR /small.bin", io.BytesIO(b"x" * (CAP // 2)))
    writer.quit()
    assert (root / "small.bin").stat().st_size == CAP // 2


def test_mirror_ftp_beyond_loopback_refuses_default_passwords(tmp_path):
    port = free_port()
    config = {"DATA_DIR": str(tmp_path / "data"), "FTP": {"bind": "0.0.0.0", "port": port}}
    path = tmp_path / "mirror.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "--config", str(path), "ftp"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "mirror: file server bound to 0.0.0.0 refuses a default or empty password: set "
        "FTP.writer.password (env FTP_WRITER_PASSWORD) and FTP.reader.password "
        "(env FTP_READER_PASSWORD) to a secret of your own, e.g. from `openssl rand -hex 32`"
    ]
    assert not (tmp_path / "data" / "ftp").exists()


# -- the job accounts of handed-out URLs ---------------------------------------------------
def job_account(job_id):
    """User and password of job ``job_id`` under this server's key (the default writer's)."""
    user = job_user(job_id)
    return user, job_password(url_key({"writer": {"password": "mirror-agent"}}), user)


def read(client, path):
    buf = io.BytesIO()
    client.retrbinary(f"RETR {path}", buf.write)
    return buf.getvalue()


def test_a_job_account_reads_its_own_job_and_nothing_else(ftp):
    port, root = ftp
    writer = connect(port, "mirror-agent", "mirror-agent")
    for path, data in (
        ("/jobs/21/result/force/force.dat", b"mine"),
        ("/jobs/22/result/force/force.dat", b"theirs"),
        ("/packages/1/package.zip", b"zip"),
        ("/projects/1/files/para.xml", b"<Para/>"),
    ):
        writer.storbinary(f"STOR {path}", io.BytesIO(data))
    writer.quit()
    (root / "jobs/21/result/link").symlink_to(root / "jobs/22/result/force/force.dat")

    job = connect(port, *job_account(21))
    assert job.pwd() == "/"
    assert read(job, "/result/force/force.dat") == b"mine"
    assert [name for name, _ in job.mlsd("/result/force")] == ["force.dat"]
    assert job.nlst("/") == ["result"]
    # Above its home is its home: the root's other directories are out of reach.
    job.cwd("/..")
    assert job.pwd() == "/" and job.nlst() == ["result"]
    for path in (
        "../22/result/force/force.dat",
        "/../22/result/force/force.dat",
        "/jobs/22/result/force/force.dat",
        "/../../packages/1/package.zip",
        "/../../projects/1/files/para.xml",
        "/result/link",
    ):
        with pytest.raises(ftplib.error_perm, match="550"):
            read(job, path)
    for directory in ("/../22", "../22/result", "/../../packages/1", "/../../projects/1"):
        # Each names a directory inside the home, where there is none such.
        with pytest.raises(ftplib.error_perm, match=r"^5\d\d No such"):
            list(job.mlsd(directory))
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            job.cwd(directory)
    for command in (
        lambda: job.storbinary("STOR /result/evil.txt", io.BytesIO(b"x")),
        lambda: job.delete("/result/force/force.dat"),
        lambda: job.mkd("/new"),
        lambda: job.rename("/result/force/force.dat", "/moved.dat"),
    ):
        with pytest.raises(ftplib.error_perm, match="550"):
            command()
    job.quit()
    assert (root / "jobs/21/result/force/force.dat").read_bytes() == b"mine"
    assert not (root / "jobs/21/result/evil.txt").exists()


def test_job_accounts_with_a_wrong_password_are_refused(ftp):
    port, _ = ftp
    user, password = job_account(21)
    _, other = job_account(22)
    for name, secret in (
        (user, other),
        (user, password[:-1]),
        (user, ""),
        (user, "mirror"),
        ("job021", password),
        # A job with no published directory has nothing to log into.
        job_account(999),
    ):
        with pytest.raises(ftplib.error_perm, match="530"):
            connect(port, name, secret)
