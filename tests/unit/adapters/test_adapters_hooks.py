"""load_hooks / Hooks.call: a package's own functions, by identifier, in isolation."""

import pathlib
import sys

import pytest

from adapters.errors import HookError
from adapters.hooks import HookContext, load_hooks, module_name

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def context(step="grid", **params) -> HookContext:
    return HookContext(job_id=7, job_dir="/tmp/job", workpath="GRID", step=step, params=params)


@pytest.fixture
def alpha():
    return load_hooks(FIXTURES / "hooks" / "alpha" / "hooks.py", "c1")


@pytest.fixture
def beta():
    return load_hooks(FIXTURES / "hooks" / "beta" / "hooks.py", "c2")


def test_calls_a_hook(alpha):
    assert alpha.call("whoami", context()) == "alpha"


def test_two_packages_with_the_same_file_name_are_isolated(alpha, beta):
    assert alpha.call("whoami", context()) == "alpha"
    assert beta.call("whoami", context()) == "beta"
    with pytest.raises(HookError):
        beta.call("failing", context())
    assert alpha.names == ("failing", "publish", "quitter", "whoami")
    assert beta.names == ("whoami",)


def test_no_module_is_left_behind(alpha, beta):
    assert "hooks" not in sys.modules
    assert not [name for name in sys.modules if name.startswith("mirror_hooks_")]


def test_module_names_are_private_and_distinct(tmp_path):
    a = module_name(tmp_path / "hooks.py", "c1", b"x")
    assert a.startswith("mirror_hooks_c1_")
    assert a != module_name(tmp_path / "hooks.py", "c2", b"x")
    assert a != module_name(tmp_path / "hooks.py", "c1", b"y")
    assert module_name(tmp_path / "h.py", "odd key/../x", b"").startswith(
        "mirror_hooks_odd_key____x_"
    )


def test_hook_may_publish(alpha):
    ctx = context(step="flow", mach=0.5)
    assert alpha.call("publish", ctx) == 0.5
    assert ctx.publish == {"residual": 1e-5, "step": "flow"}


def test_exception_becomes_hook_error_with_its_message(alpha):
    with pytest.raises(HookError) as info:
        alpha.call("failing", context())
    assert str(info.value) == "hook failing failed: ValueError: bad mesh"
    assert isinstance(info.value.__cause__, ValueError)


def test_sys_exit_in_a_hook_does_not_end_the_caller(alpha):
    with pytest.raises(HookError) as info:
        alpha.call("quitter", context())
    assert str(info.value) == "hook quitter failed: SystemExit: 3"


@pytest.mark.parametrize(
    "name",
    [
        "_private",  # private
        "alias",  # an alias of another hook, not defined under this name
        "shortcut",  # a lambda
        "join_path",  # an imported function
        "join",  # imported
        "Record",  # a class
        "SEEN",  # data
        "dataclasses",  # a module
        "__import__",
        "os.system",
        "whoami()",
        "",
        None,
        "nope",
    ],
)
def test_only_public_top_level_functions_are_callable(alpha, name):
    with pytest.raises(HookError) as info:
        alpha.call(name, context())
    assert str(info.value) == (
        f"hook {name!r} is not a function of the hooks module hooks.py of package 'c1'"
    )


def test_context_publish_defaults_to_a_fresh_dict():
    a, b = context(), context()
    a.publish["x"] = 1
    assert b.publish == {}


def test_syntax_error_is_a_hook_error(tmp_path):
    path = tmp_path / "hooks.py"
    path.write_text("def ok(context):\n    return 1\n\ndef broken(context:\n    pass\n")
    with pytest.raises(HookError) as info:
        load_hooks(path, "c9")
    assert info.value.filename == "hooks.py" and info.value.line == 4
    assert str(info.value).startswith("hooks.py:4: syntax error: ")


def test_import_error_is_a_hook_error(tmp_path):
    path = tmp_path / "hooks.py"
    path.write_text("import no_such_module_for_mirror_tests\n")
    with pytest.raises(HookError) as info:
        load_hooks(path, "c9")
    assert str(info.value) == (
        "hooks.py: hooks module failed to load: ModuleNotFoundError: "
        "No module named 'no_such_module_for_mirror_tests'"
    )
    assert not [name for name in sys.modules if name.startswith("mirror_hooks_")]


def test_missing_file_is_a_hook_error(tmp_path):
    with pytest.raises(HookError, match="hooks module cannot be read"):
        load_hooks(tmp_path / "nope.py", "c9")


def test_loading_twice_gives_fresh_state(tmp_path):
    path = tmp_path / "hooks.py"
    path.write_text(
        "COUNT = []\n\ndef tick(context):\n    COUNT.append(1)\n    return len(COUNT)\n"
    )
    first, second = load_hooks(path, "c3"), load_hooks(path, "c3")
    assert first.call("tick", context()) == 1
    assert first.call("tick", context()) == 2
    assert second.call("tick", context()) == 1
