"""The seed-001 client across two Mirror meshes: clusters whose head_address is an AMQP URI."""

import pytest
import yaml

from services.client import functions as seed
from services.client import (
    get_job_info,
    get_job_status,
    initialize_scheduler_environment,
    stop_job,
    submit_job,
    wait_for_all_jobs,
)
from tests.mesh import script_mesh, wait_for


@pytest.fixture(scope="module")
def meshes(tmp_path_factory, amqp_uri):
    """``near`` (the main mesh: machine alpha, 2 cores) and ``far`` (machine beta, 8 cores)."""
    root = tmp_path_factory.mktemp("seed001-meshes")
    (root / "near").mkdir()
    (root / "far").mkdir()
    with (
        script_mesh(root / "near", amqp_uri, "alpha", slots=2) as near,
        script_mesh(root / "far", amqp_uri, "beta", slots=8) as far,
    ):
        clusters = {
            "mirror": {"config": str(near.config_path)},
            "clusters": {
                "near": {"machine": "alpha", "prefer": True},
                "far": {
                    "machine": "beta",
                    "head_address": far.config["AMQP_URI"],
                    "rpc_exchange": far.exchange,
                    "tags": ["big"],
                },
            },
        }
        path = root / "clusters.yaml"
        path.write_text(yaml.safe_dump(clusters))
        yield near, far, path


@pytest.fixture
def scheduler(meshes, monkeypatch):
    near, far, path = meshes
    monkeypatch.chdir(near.tmp)
    monkeypatch.delenv("MIRROR_CONFIG", raising=False)
    scheduler = initialize_scheduler_environment(config_file_path=str(path))
    yield scheduler
    scheduler.close()
    seed._default = None


def mesh_of(scheduler, submission_id):
    """The name of the cluster whose mesh holds the submission, asked of each mesh."""
    holders = [
        name
        for name, cluster in scheduler.clusters.items()
        if scheduler.clients[cluster.mesh].jobs(submission_id=submission_id, limit=1)
    ]
    return holders


def test_jobs_go_to_the_other_mesh_by_preference_tags_and_room(scheduler):
    clusters = {c["name"]: c for c in scheduler.list_clusters()}
    assert clusters["far"]["online"] and clusters["far"]["slots"] == 8
    assert clusters["near"]["online"] and clusters["near"]["slots"] == 2
    assert ":***@" in clusters["far"]["head_address"]  # the password is not shown

    by_name = submit_job("echo far-by-name", preferred_cluster="far")
    by_tag = submit_job("echo far-by-tag", tags=["big"])
    by_room = submit_job("echo far-by-room", resource_requirements={"CPU": 4})
    here = submit_job("echo near")
    assert wait_for_all_jobs([by_name, by_tag, by_room, here], check_interval=1, timeout=120)

    for sub in (by_name, by_tag, by_room):
        assert mesh_of(scheduler, sub) == ["far"]
        info = get_job_info(sub)
        assert info["cluster"] == "far" and info["status"] == "SUCCEEDED"
    assert "far-by-name" in get_job_info(by_name)["logs"]
    assert mesh_of(scheduler, here) == ["near"]
    assert get_job_status(here) == "SUCCEEDED"


def test_a_job_on_the_other_mesh_is_stopped_and_found_from_a_new_scheduler(meshes, scheduler):
    sub = submit_job("sleep 120", preferred_cluster="far")
    wait_for(lambda: get_job_status(sub) == "RUNNING", 60, what="the far job running")
    # A scheduler started afresh knows nothing of the submission: it asks each mesh.
    seed._default = None
    initialize_scheduler_environment(config_file_path=str(meshes[2]))
    assert stop_job(sub) is True
    wait_for(lambda: get_job_status(sub) == "STOPPED", 60, what="the far job stopped")
    with pytest.raises(RuntimeError, match="STOPPED"):
        wait_for_all_jobs([sub], check_interval=1, timeout=30)
