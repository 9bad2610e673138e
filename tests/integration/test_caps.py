"""Caps with clear errors: a sweep whose parameters would swamp the database is refused whole."""

import pytest

from adapters.bundled import package_zip
from tests.mesh import Mesh

CAP = 64 * 1024


@pytest.fixture(scope="module")
def capped(tmp_path_factory, amqp_uri):
    mesh = Mesh(tmp_path_factory.mktemp("capped"), amqp_uri, DISPATCH={"max_param_bytes": CAP})
    try:
        mesh.start_core()
        mesh.demo_c_id = mesh.add_package("demo", package_zip("demo"))
        yield mesh
    finally:
        mesh.close()


def sweep(text_bytes, states):
    """A para.xml for the demo package with one long text value repeated in ``states`` states."""
    xs = ";".join(str(i) for i in range(states))
    return (
        f'<Para><Param name="note" type="str">{"n" * text_bytes}</Param>'
        '<Param name="model" type="file">wing.dat</Param>'
        '<Param name="iterations" type="int">3</Param>'
        '<Param name="mach" type="float">0.5</Param>'
        f'<Param name="alpha" type="int" multistate="1">{xs}</Param></Para>'
    ).encode()


def test_a_sweep_over_the_parameter_cap_is_refused_with_its_figures(capped):
    # A 16 KiB value in 100 states: a small file, 1.6 MB of stored parameters.
    p_id = capped.add_project("big", {"para.xml": sweep(16 * 1024, 100)})
    code, message = capped.rpc("jobdispatch", "do", p_id=p_id, c_id=capped.demo_c_id, rid=1)
    assert code == -1
    assert message.startswith("para.xml: the resolved parameters of its 100 states take 1.6 MiB")
    assert "over the cap of 0.1 MiB (DISPATCH.max_param_bytes)" in message
    assert capped.ok("job", "list", p_id=p_id) == []


def test_a_sweep_under_the_cap_is_dispatched(capped):
    p_id = capped.add_project("small", {"para.xml": sweep(100, 100)})
    capped.ok("machine", "heartbeat", rid=1, name="m1", slots=1)  # known, no agent
    ids = capped.ok("jobdispatch", "do", p_id=p_id, c_id=capped.demo_c_id, rid=1)
    assert len(ids) == 100
