"""Helpers of the manual-mode tests: dispatching, waiting on a step, probe packages, FTP downloads."""

import ftplib
import io
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

from adapters.bundled import project_files
from tests.integration.conftest import make_package
from tests.mesh import wait_for


def ftp_download(url):
    """Download an ``ftp://user:pass@host:port/path`` URL with the account it names."""
    parts = urlsplit(url)
    ftp = ftplib.FTP()
    ftp.connect(parts.hostname, parts.port, timeout=10)
    ftp.login(parts.username, parts.password)
    buf = io.BytesIO()
    try:
        ftp.retrbinary(f"RETR {unquote(parts.path)}", buf.write)
    finally:
        ftp.quit()
    return buf.getvalue()


def wait_step(mesh, job_id, step, state="DONE", timeout=60):
    def ended():
        job = mesh.ok("job", "query", job_id=job_id)
        current = next(s for s in job["steps"] if s["id"] == step)
        return job if current["state"] == state and job["state"] != "RUNNING" else None

    return wait_for(ended, timeout, what=f"job {job_id} step {step} {state}")


def dispatch_demo(mesh, rid=1, name="demo"):
    p_id = mesh.add_project(name, project_files("demo"))
    return p_id, mesh.ok("jobdispatch", "do", p_id=p_id, c_id=mesh.demo_c_id, rid=rid)


PROBE_PARA = """<Para>
  <Param name="NCPUS" type="int">1</Param>
  <Param name="value" type="str">{value}</Param>
</Para>"""


def probe(mesh, name, steps_xml, hooks=None, value="plain", files=None, extra=""):
    """Register a package with the given steps and dispatch one job of it on rid 1."""
    hooks_attr = ' hooks="hooks.py"' if hooks else ""
    adapter = (
        f'<Adapter name="{name}"{hooks_attr}>\n<Steps>\n{steps_xml}\n</Steps>\n{extra}</Adapter>\n'
    )
    package = dict(files or {})
    if hooks:
        package["hooks.py"] = hooks
    c_id = mesh.add_package(name, make_package(adapter, package))
    p_id = mesh.add_project(name, {"para.xml": PROBE_PARA.format(value=escape(value)).encode()})
    (job_id,) = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=1)
    mesh.ok("jobdirbuild_1", "do", job_id=job_id)
    mesh.ok("jobfilebuild_1", "do", job_id=job_id)
    return job_id
