"""Fixtures that start real meshes of ``mirror`` processes."""

import io
import zipfile

import pytest

from tests.mesh import Mesh, create_pg_database, drop_pg_database, script_mesh


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def core(request, tmp_path_factory, amqp_uri):
    """File server, central services and gateway, once on SQLite and once on PostgreSQL."""
    db_url = None
    if request.param == "postgres":
        db_url = request.getfixturevalue("pg_module_url")
    mesh = Mesh(tmp_path_factory.mktemp(f"core-{request.param}"), amqp_uri, db_url)
    try:
        yield mesh.start_core()
    finally:
        mesh.close()


@pytest.fixture(scope="module")
def pg_module_url():
    """A PostgreSQL database for one test module."""
    name, url = create_pg_database()
    yield url
    drop_pg_database(name)


@pytest.fixture(scope="module")
def manual(tmp_path_factory, amqp_uri):
    """A mesh with one agent (rid 1) in manual mode and the demo package registered."""
    from adapters.bundled import package_zip

    mesh = Mesh(tmp_path_factory.mktemp("manual"), amqp_uri)
    try:
        mesh.start_core()
        mesh.start_agent(1)
        mesh.demo_c_id = mesh.add_package("demo", package_zip("demo"))
        yield mesh
    finally:
        mesh.close()


@pytest.fixture(scope="module")
def autorun_mesh(tmp_path_factory, amqp_uri):
    """Core services and one autorun agent (rid 1, named ``alpha``, 8 slots).

    Scripts may use its ``shared/`` directory (``autorun_mesh.shared``).
    """
    with script_mesh(tmp_path_factory.mktemp("autorun"), amqp_uri, slots=8) as mesh:
        yield mesh


def make_package(adapter_xml, files=None):
    """A calculation package zip from an adapter text and ``{path: text}`` files."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("adapter.xml", adapter_xml)
        for name, text in (files or {}).items():
            archive.writestr(name, text)
    return buf.getvalue()
