"""Seed-001 placement, cluster files and env_vars expansion, without a mesh."""

import subprocess

import pytest

from services.client.clusters import Cluster, default_settings, read_clusters
from services.client.placement import check_cpus, choose, split_environment
from services.client.scheduler import seed_status

MACHINES = [
    {"rid": 1, "name": "alpha", "online": True, "slots": 8, "used_cores": 0},
    {"rid": 2, "name": "beta", "online": True, "slots": 4, "used_cores": 0},
    {"rid": 3, "name": "gamma", "online": False, "slots": 32, "used_cores": 0},
]


def test_the_seed_cluster_file_names_machines(tmp_path):
    path = tmp_path / "clusters.yaml"
    path.write_text(
        "mirror: {config: mesh.yaml}\n"
        "clusters:\n"
        "  cpu_cluster:\n"
        "    head_address: '123.456.789.0:10001'\n"
        "    runtime_env: {pip: [numpy], env_vars: ['PYTHONPATH=/opt/code']}\n"
        "    prefer: true\n    weight: 1.0\n    tags: [cpu, stable]\n"
        "  gpu:\n    machine: beta\n    weight: 0.8\n"
    )
    settings = read_clusters(path)
    assert settings.mirror_config == str(tmp_path / "mesh.yaml")
    cpu, gpu = settings.clusters["cpu_cluster"], settings.clusters["gpu"]
    assert (cpu.machine, cpu.prefer, cpu.tags) == ("cpu_cluster", True, ["cpu", "stable"])
    assert cpu.runtime_env["env_vars"] == {"PYTHONPATH": "/opt/code"}
    assert (gpu.machine, gpu.weight, gpu.prefer) == ("beta", 0.8, False)


def test_no_configuration_anywhere_is_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_settings({}) is None
    (tmp_path / "clusters.yaml").write_text("clusters: {}\n")
    assert default_settings({}).source == "clusters.yaml"


def test_placement_rules():
    clusters = {
        "a": Cluster("a", "alpha", weight=1.0, tags=["cpu"]),
        "b": Cluster("b", "beta", prefer=True, weight=1.0, tags=["gpu"]),
        "g": Cluster("g", "gamma", prefer=True, weight=9.0),
    }
    assert choose(clusters, MACHINES, 2, preferred="a").name == "a"
    assert choose(clusters, MACHINES, 2).name == "b"  # prefer wins; gamma is offline
    assert choose(clusters, MACHINES, 2, tags=["cpu"]).name == "a"  # tags first
    assert choose(clusters, MACHINES, 6, preferred="b").name == "a"  # b has no room
    with pytest.warns(UserWarning, match="'nowhere' is not a configured cluster"):
        assert choose(clusters, MACHINES, 1, preferred="nowhere").name == "b"
    assert choose({}, MACHINES, 1, preferred="beta").machine == "beta"


def test_an_amqp_head_address_puts_a_cluster_on_a_mesh_of_its_own(tmp_path):
    path = tmp_path / "clusters.yaml"
    path.write_text(
        "clusters:\n"
        "  near: {machine: alpha}\n"
        "  far: {head_address: 'amqp://u:secret@far.example.org/v', machine: alpha}\n"
        "  other: {head_address: 'amqps://far.example.org', rpc_exchange: x, machine: b}\n"
        "  ray: {head_address: '123.456.789.0:10001'}\n"
    )
    clusters = read_clusters(path).clusters
    assert clusters["near"].mesh is None and clusters["ray"].mesh is None
    assert clusters["far"].mesh == ("amqp://u:secret@far.example.org/v", "mirror_com")
    assert clusters["other"].mesh == ("amqps://far.example.org", "x")
    described = clusters["far"].describe()
    assert "secret" not in str(described) and described["mesh"].endswith("mirror_com")


def test_clusters_on_other_meshes_compete_by_the_same_rules():
    far = ("amqp://far", "mirror_com")
    clusters = {
        "near": Cluster("near", "alpha", weight=1.0),
        "far": Cluster("far", "alpha", weight=1.0, head_address=far[0], tags=["big"]),
    }
    machines = [
        {"mesh": None, "name": "alpha", "online": True, "slots": 8, "used_cores": 6},
        {"mesh": far, "name": "alpha", "online": True, "slots": 8, "used_cores": 0},
    ]
    # The same machine name on two meshes: each cluster sees its own mesh's machine.
    assert choose(clusters, machines, 4).name == "far"
    assert choose(clusters, machines, 2, preferred="near").name == "near"
    assert choose(clusters, machines, 4, preferred="near").name == "far"  # near is full
    machines[1]["online"] = False
    assert choose(clusters, machines, 4) is None


def test_more_cpu_than_any_machine_is_refused():
    check_cpus(32, MACHINES)
    with pytest.raises(RuntimeError, match="asks for 33 CPU .* largest machine \\(gamma"):
        check_cpus(33, MACHINES)


def test_env_vars_with_references_expand_in_the_job_shell():
    literal, exports = split_environment(
        {"A": "plain $ 1", "P": "/code:$PYTHONPATH", "Q": "${HOME}/x'$(id)`id`"}
    )
    assert literal == {"A": "plain $ 1"}
    script = "\n".join([*exports, 'printf "%s|%s" "$P" "$Q"'])
    env = {"PYTHONPATH": "/base", "HOME": "/root dir", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True).stdout
    assert out == "/code:/base|/root dir/x'$(id)`id`"


@pytest.mark.parametrize(
    ("state", "word"),
    [
        ("QUEUED", "PENDING"),
        ("PREPARING", "PENDING"),
        ("READY", "PENDING"),
        ("RUNNING", "RUNNING"),
        ("COMPLETED", "SUCCEEDED"),
        ("FAILED", "FAILED"),
        ("KILLED", "STOPPED"),
    ],
)
def test_states_in_the_seed_words(state, word):
    assert seed_status(state) == word
