"""The seed-001 job API (services.client module functions) against a real mesh.

Every example of the seed's text runs as written; only its imports (the
``ray_multicluster_scheduler`` modules are ``services.client``) and its
placeholder paths (``/path/to``, ``/home/user``: scripts under the mesh's
shared directory) are adapted.
"""

import os
import re
import textwrap
import uuid

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

SCRIPT = "import os, sys\nprint('ran', os.path.basename(__file__), *sys.argv[1:])\n"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, amqp_uri):
    """One autorun machine ``alpha`` with 16 cores; the seed's scripts in its shared dir."""
    with script_mesh(tmp_path_factory.mktemp("seed001"), amqp_uri, slots=16) as mesh:
        for folder in ("path/to", "home/user/project", "home/user/code", "absolute/path/to"):
            (mesh.shared / folder).mkdir(parents=True, exist_ok=True)
        for name in ("script.py", "job1.py", "job2.py", "train.py", "preprocess.py", "evaluate.py"):
            (mesh.shared / "path/to" / name).write_text(SCRIPT)
        (mesh.shared / "absolute/path/to/script.py").write_text(SCRIPT)
        (mesh.shared / "home/user/project/main.py").write_text(
            "import os\nprint('PYTHONPATH=' + os.environ['PYTHONPATH'])\n"
            "print('CUDA=' + os.environ['CUDA_VISIBLE_DEVICES'], 'cwd=' + os.getcwd())\n"
        )
        clusters = {
            "mirror": {"config": str(mesh.config_path)},
            "clusters": {
                "cpu_cluster": {
                    "machine": "alpha",
                    "head_address": "123.456.789.0:10001",
                    "runtime_env": {"pip": ["numpy"], "env_vars": ["PYTHONPATH=/opt/code"]},
                    "prefer": True,
                    "weight": 1.0,
                    "tags": ["cpu", "stable"],
                },
                "gpu_cluster": {
                    "machine": "alpha",
                    "runtime_env": {"env_vars": {"CLUSTER": "gpu"}},
                    "prefer": False,
                    "weight": 0.8,
                    "tags": ["gpu", "experimental"],
                },
            },
        }
        mesh.clusters_path = mesh.tmp / "clusters.yaml"
        mesh.clusters_path.write_text(yaml.safe_dump(clusters))
        yield mesh


@pytest.fixture
def scheduler(mesh, monkeypatch):
    monkeypatch.chdir(mesh.tmp)
    monkeypatch.delenv("MIRROR_CONFIG", raising=False)
    scheduler = initialize_scheduler_environment(config_file_path=str(mesh.clusters_path))
    yield scheduler
    scheduler.close()
    seed._default = None


def adapt(code, mesh):
    """The seed's example with services.client imports and paths under the shared dir."""
    code = re.sub(r"ray_multicluster_scheduler\.app\.client_api\.\w+", "services.client", code)
    for placeholder in ("/absolute/path/to/", "/path/to/", "/home/user/"):
        target = f"{mesh.shared}/{placeholder.strip('/')}/"
        code = code.replace(f'"{placeholder}', f'"{target}').replace(
            f" {placeholder}", f" {target}"
        )
    return textwrap.dedent(code)


def run_example(code, mesh, name="__example__"):
    namespace = {"__name__": name}
    exec(compile(adapt(code, mesh), "<seed-001 example>", "exec"), namespace)  # noqa: S102
    return namespace


def mirror_job(scheduler, submission_id):
    return scheduler.client.query(scheduler.resolve(submission_id))


QUICK_START = """
from ray_multicluster_scheduler.app.client_api.submit_job import submit_job, get_job_status, wait_for_all_jobs

# 初始化调度器环境（需要集群配置文件）
from ray_multicluster_scheduler.app.client_api.unified_scheduler import initialize_scheduler_environment
task_lifecycle_manager = initialize_scheduler_environment(config_file_path="clusters.yaml")

# 提交作业
entrypoint = "python /absolute/path/to/script.py --arg1 value1 --arg2 value2"
submission_id = submit_job(
    entrypoint=entrypoint,
    job_id="my_job_001",
    preferred_cluster="gpu_cluster",
    resource_requirements={"CPU": 4, "GPU": 1, "memory": 16.0}
)

print(f"作业提交成功，Submission ID: {submission_id}")

# 等待作业完成
wait_for_all_jobs([submission_id], check_interval=10)

# 查询作业状态
status = get_job_status(submission_id, "gpu_cluster")
print(f"作业状态: {status}")
"""


def test_quick_start(scheduler, mesh, capsys):
    with pytest.warns(UserWarning, match="GPU, memory"):
        ns = run_example(QUICK_START, mesh)
    assert re.fullmatch(r"sub_[0-9a-f]{32}", ns["submission_id"])
    assert ns["status"] == "SUCCEEDED"
    assert f"Submission ID: {ns['submission_id']}" in capsys.readouterr().out
    info = get_job_info(ns["submission_id"], "gpu_cluster")
    assert (info["job_id"], info["cluster"], info["status"]) == (
        "my_job_001",
        "gpu_cluster",
        "SUCCEEDED",
    )
    assert info["logs"] == "ran script.py --arg1 value1 --arg2 value2\n"
    record = mirror_job(ns["task_lifecycle_manager"], ns["submission_id"])
    assert (record["ncpus"], record["environment"]) == (4, {"CLUSTER": "gpu"})


DECORATOR = """
from ray_multicluster_scheduler.app.client_api.submit_job import graceful_shutdown_on_keyboard_interrupt

@graceful_shutdown_on_keyboard_interrupt
def my_workflow():
    # 提交多个作业
    job1 = submit_job("python /path/to/job1.py", job_id="job1")
    job2 = submit_job("python /path/to/job2.py", job_id="job2")

    # 等待作业完成
    wait_for_all_jobs([job1, job2])
    print("所有作业完成")

if __name__ == "__main__":
    # 初始化调度器
    from ray_multicluster_scheduler.app.client_api.unified_scheduler import initialize_scheduler_environment
    initialize_scheduler_environment()

    # 运行工作流（Ctrl+C 会自动停止远程作业）
    my_workflow()
"""


def test_decorator_example(mesh, monkeypatch, capsys):
    monkeypatch.chdir(mesh.tmp)  # initialize_scheduler_environment() finds clusters.yaml here
    namespace = {"submit_job": submit_job, "wait_for_all_jobs": wait_for_all_jobs}
    try:
        exec(
            compile(adapt(DECORATOR, mesh), "<decorator>", "exec"),
            {**namespace, "__name__": "__main__"},
        )  # noqa: S102
    finally:
        seed._default.close()
        seed._default = None
    assert "所有作业完成" in capsys.readouterr().out


BATCH = """
# 批量提交多个作业
jobs = []
for i in range(5):
    entrypoint = f"python /path/to/train.py --job_id job_{i}"
    submission_id = submit_job(
        entrypoint=entrypoint,
        job_id=f"batch_job_{i}",
        resource_requirements={"CPU": 2, "memory": 8.0},
        tags=["batch_training", f"iteration_{i}"]
    )
    jobs.append(submission_id)
    print(f"提交作业 {i}: {submission_id}")

# 等待所有作业完成
try:
    wait_for_all_jobs(jobs, check_interval=10, timeout=3600)
    print("所有批量作业完成")
except RuntimeError as e:
    print(f"部分作业失败: {e}")
"""


def test_batch_example(scheduler, mesh, capsys):
    namespace = {"submit_job": submit_job, "wait_for_all_jobs": wait_for_all_jobs}
    with pytest.warns(UserWarning, match="memory"):
        exec(compile(adapt(BATCH, mesh), "<batch>", "exec"), namespace)  # noqa: S102
    assert "所有批量作业完成" in capsys.readouterr().out
    assert [get_job_info(s)["logs"] for s in namespace["jobs"]] == [
        f"ran train.py --job_id job_{i}\n" for i in range(5)
    ]


CUSTOM_ENV = """
# 为特定作业定制运行时环境
custom_env = {
    "pip": [
        "torch==2.0.0",
        "torchvision==0.15.0",
        "transformers==4.30.0"
    ],
    "env_vars": {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "PYTHONPATH": "/home/user/code:$PYTHONPATH"
    },
    "working_dir": "/home/user/project",
    "excludes": ["*.log", "tmp/*"]
}

submission_id = submit_job(
    entrypoint="python /home/user/project/main.py",
    runtime_env=custom_env,
    job_id="torch_training",
    preferred_cluster="gpu_cluster",
    resource_requirements={"CPU": 16, "GPU": 2, "memory": 64.0}
)
"""


def test_custom_runtime_env_expands_against_the_job_environment(scheduler, mesh):
    namespace = {"submit_job": submit_job}
    with pytest.warns(UserWarning) as warned:
        exec(compile(adapt(CUSTOM_ENV, mesh), "<env>", "exec"), namespace)  # noqa: S102
    assert any("excludes, pip" in str(w.message) for w in warned)
    submission_id = namespace["submission_id"]
    assert wait_for_all_jobs([submission_id], check_interval=0.2, timeout=60)
    # The machine's own PYTHONPATH (the agent's environment) is what $PYTHONPATH expands to.
    machine_path = os.environ.get("PYTHONPATH", "")
    assert get_job_info(submission_id)["stdout"] == (
        f"PYTHONPATH={mesh.shared}/home/user/code:{machine_path}\n"
        f"CUDA=0,1 cwd={mesh.shared}/home/user/project\n"
    )


DEPENDENCIES = """
# 实现作业间的依赖关系
preprocess_id = submit_job(
    entrypoint="python /path/to/preprocess.py --input data.csv",
    job_id="preprocess",
    tags=["preprocessing"]
)

# 等待预处理完成
wait_for_all_jobs([preprocess_id])

# 提交训练作业
train_id = submit_job(
    entrypoint="python /path/to/train.py --model bert",
    job_id="train",
    metadata={"depends_on": preprocess_id},
    tags=["training"]
)

# 等待训练完成
wait_for_all_jobs([train_id])

# 提交评估作业
eval_id = submit_job(
    entrypoint="python /path/to/evaluate.py --model output/model.pt",
    job_id="evaluate",
    metadata={"depends_on": train_id},
    tags=["evaluation"]
)
"""


def test_dependencies_example(scheduler, mesh):
    namespace = {"submit_job": submit_job, "wait_for_all_jobs": wait_for_all_jobs}
    exec(compile(adapt(DEPENDENCIES, mesh), "<deps>", "exec"), namespace)  # noqa: S102
    eval_id = namespace["eval_id"]
    assert wait_for_all_jobs([eval_id], check_interval=0.2, timeout=60)
    info = get_job_info(eval_id)
    assert info["metadata"] == {"depends_on": namespace["train_id"]}
    assert info["tags"] == ["evaluation"]
    assert info["logs"] == "ran evaluate.py --model output/model.pt\n"


ERRORS = """
# 错误：使用相对路径
try:
    submit_job("python script.py")  # ValueError
except ValueError as e:
    relative_error = e

# 正确：使用绝对路径
fine = submit_job("python /home/user/script.py")

# 指定不存在的集群
try:
    fallback = submit_job("python /path/script.py", preferred_cluster="non_existent_cluster")
except Exception as e:
    print(f"集群不可用: {e}")

# 请求超出集群可用资源的作业
try:
    submit_job("python /path/script.py", resource_requirements={"CPU": 1000})
except Exception as e:
    print(f"资源不足: {e}")
    resource_error = e

import logging
logging.basicConfig(level=logging.DEBUG)

job_info = get_job_info(fine, "cpu_cluster")
if job_info and 'logs' in job_info:
    print(f"作业日志:\\n{job_info['logs']}")

from ray_multicluster_scheduler.app.client_api.unified_scheduler import get_unified_scheduler
scheduler = get_unified_scheduler()
clusters = scheduler.list_clusters()
print(f"可用集群: {clusters}")
"""


def test_error_handling_and_debugging_examples(scheduler, mesh, capsys):
    namespace = {"submit_job": submit_job, "get_job_info": get_job_info}
    with pytest.warns(UserWarning, match="'non_existent_cluster' is not a configured cluster"):
        exec(compile(adapt(ERRORS, mesh), "<errors>", "exec"), namespace)  # noqa: S102
    assert "relative path" in str(namespace["relative_error"])
    assert isinstance(namespace["resource_error"], RuntimeError)
    assert "1000 CPU" in str(namespace["resource_error"])
    out = capsys.readouterr().out
    assert "作业日志:" in out and "'cpu_cluster'" in out and "'online': True" in out
    # The fallback runs on a configured cluster all the same (and fails: no such script).
    assert mirror_job(scheduler, namespace["fallback"])["rid"] == 1


def test_no_configuration_anywhere_raises(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIRROR_CONFIG", raising=False)
    monkeypatch.delenv("MIRROR_CLUSTERS", raising=False)
    seed._default = None
    for call in (
        lambda: submit_job("python /path/script.py"),
        lambda: get_job_status("sub_x"),
        initialize_scheduler_environment,
    ):
        with pytest.raises(RuntimeError, match="not initialized and no configuration"):
            call()
    assert seed._default is None


def test_submission_ids_job_ids_and_states(scheduler, mesh):
    sub = submit_job("/bin/echo hello; echo oops >&2", submission_id="fixed-1")
    assert sub == "fixed-1"
    assert submit_job("/bin/echo hello; echo oops >&2", submission_id="fixed-1") == sub
    with pytest.raises(RuntimeError, match="submission_id 'fixed-1' is already used by Mirror job"):
        submit_job("/bin/echo other", submission_id="fixed-1")
    mirror_id = scheduler.resolve(sub)
    assert wait_for_all_jobs([sub, mirror_id], check_interval=0.2, timeout=60)
    assert (
        get_job_status(sub)
        == get_job_status(mirror_id)
        == get_job_status(str(mirror_id))
        == "SUCCEEDED"
    )
    info = get_job_info(sub)
    assert (info["stdout"], info["stderr"], info["logs"]) == ("hello\n", "oops\n", "hello\noops\n")
    assert re.fullmatch(r"job_[0-9a-f]{32}", info["job_id"])
    # Another process (a fresh scheduler) finds the submission on central.
    fresh = initialize_scheduler_environment(config_file_path=str(mesh.clusters_path))
    assert fresh.resolve(sub) == mirror_id
    assert get_job_status("sub_nobody") == "UNKNOWN" and get_job_status(999999) == "UNKNOWN"
    assert get_job_info("sub_nobody") is None and stop_job("sub_nobody") is False

    unique = f"named-{uuid.uuid4().hex[:6]}"
    first = submit_job("/bin/sleep 60", job_id=unique)
    with pytest.raises(RuntimeError, match=f"job_id '{unique}' is already used"):
        submit_job("/bin/true", job_id=unique)
    submit_job("/bin/true", job_id=unique, metadata={"user": "someone-else"})
    wait_for(lambda: get_job_status(first) == "RUNNING", 30, what="RUNNING")
    assert stop_job(first) is True
    wait_for(lambda: get_job_status(first) == "STOPPED", 30, what="STOPPED")
    with pytest.raises(RuntimeError, match=f"job {first} STOPPED"):
        wait_for_all_jobs([first], check_interval=0.2, timeout=30)
    failing = submit_job("sh -c 'exit 3'")
    with pytest.raises(RuntimeError, match=f"job {failing} FAILED: .+"):
        wait_for_all_jobs([failing], check_interval=0.2, timeout=60)
    pending = submit_job("/bin/true", resource_requirements={"CPU": 16}, job_id=f"p-{unique}")
    assert get_job_status(pending) in {"PENDING", "RUNNING", "SUCCEEDED"}
