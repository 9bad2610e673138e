"""Load a package's hooks module in isolation and call its functions by name.

Run as ``python -m adapters.hooks FD``, the module makes one call in a
process of its own (`serve`): the agent never executes a package's code.
"""

import dataclasses
import hashlib
import importlib.util
import json
import os
import pathlib
import re
import sys
import types
from collections.abc import Mapping

from adapters.errors import AdapterError, HookError
from adapters.placeholders import is_identifier


@dataclasses.dataclass
class HookContext:
    """What a hook is called with: the job, the step, and a place to publish.

    ``publish`` is a dict the hook may fill with monitoring values
    (``{"residual": 1e-5}``); the agent reports them with the job's progress.
    """

    job_id: int
    job_dir: str
    workpath: str
    step: str
    params: dict
    publish: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Hooks:
    """The callable hooks of one package: its public top-level functions."""

    package_key: str
    path: str
    functions: Mapping[str, types.FunctionType]

    @property
    def names(self) -> tuple[str, ...]:
        """Names that `call` accepts, sorted."""
        return tuple(sorted(self.functions))

    def call(self, name: str, context) -> object:
        """Call hook ``name`` with ``context``.

        Raises `HookError` when ``name`` is not a public function defined in the
        module itself, or when the hook raises; the message then carries the
        hook's own error, e.g. ``hook gridPre failed: ValueError: bad mesh``.
        """
        function = self.functions.get(name) if isinstance(name, str) else None
        if function is None:
            raise HookError(
                "",
                None,
                f"hook {name!r} is not a function of the hooks module "
                f"{pathlib.PurePath(self.path).name} of package {self.package_key!r}",
            )
        try:
            return function(context)
        except (Exception, SystemExit) as exc:  # a hook calling sys.exit() must not end the agent
            raise HookError("", None, f"hook {name} failed: {type(exc).__name__}: {exc}") from exc


def module_name(path: pathlib.Path, package_key: str, source: bytes) -> str:
    """A private module name no two packages (or two versions) share."""
    safe_key = re.sub(r"[^0-9A-Za-z_]", "_", str(package_key))
    digest = hashlib.sha256(str(path).encode() + b"\0" + source).hexdigest()[:16]
    return f"mirror_hooks_{safe_key}_{digest}"


def public_functions(module: types.ModuleType) -> dict[str, types.FunctionType]:
    """Top-level functions defined in ``module`` itself, not imported, not private."""
    found = {}
    for name, value in vars(module).items():
        if (
            isinstance(value, types.FunctionType)
            and is_identifier(name)
            and not name.startswith("_")
            and value.__module__ == module.__name__
            # Defined under this very name at top level: not an alias, lambda or nested def.
            and value.__qualname__ == name
        ):
            found[name] = value
    return found


def load_hooks(path: pathlib.Path, package_key: str) -> Hooks:
    """Execute the hooks module at ``path`` under a private name and collect its hooks.

    The module is registered in ``sys.modules`` only while it executes (some
    code, ``dataclasses`` for one, looks itself up there) and under a name
    derived from ``package_key`` and the file, never under its bare file name:
    two packages that both ship ``hooks.py`` never see each other's functions.
    A module that fails to load raises `HookError`.
    """
    path = pathlib.Path(path)
    filename = path.name
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise HookError(filename, None, f"hooks module cannot be read: {exc}") from exc
    name = module_name(path, package_key, source)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise HookError(filename, None, "hooks module cannot be loaded (not a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        code = compile(source, str(path), "exec")
        exec(code, module.__dict__)
    except SyntaxError as exc:
        raise HookError(filename, exc.lineno, f"syntax error: {exc.msg}") from exc
    except (Exception, SystemExit) as exc:
        raise HookError(
            filename, None, f"hooks module failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        sys.modules.pop(name, None)
    functions = types.MappingProxyType(public_functions(module))
    return Hooks(package_key=str(package_key), path=str(path), functions=functions)


def plain(publish: dict) -> dict:
    """``publish`` with text keys and JSON values; anything else as its text (how it is reported)."""
    scalar = (str, int, float, bool, type(None))
    return {str(k): v if isinstance(v, scalar) else str(v) for k, v in publish.items()}


def serve(result_fd: int) -> None:
    """Make the hook call read as JSON on stdin; write its outcome as JSON to ``result_fd``.

    The request is ``{"path", "package_key", "name", "context"}``, and
    ``"user": [uid, gid, [groups]]`` to switch to before the module is read;
    the outcome ``{"publish": {...}}`` plus ``"error": [filename, line,
    problem]`` when loading or calling raised a `HookError`.
    """
    request = json.loads(sys.stdin.buffer.read())
    if request.get("user"):
        # Switched here, not before exec: the agent's interpreter may not be
        # readable by that user; nothing of the package has run yet.
        uid, gid, groups = request["user"]
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
    context = HookContext(**request["context"])
    outcome = {}
    try:
        load_hooks(request["path"], request["package_key"]).call(request["name"], context)
    except AdapterError as exc:
        outcome["error"] = [exc.filename, exc.line, exc.problem]
    outcome["publish"] = plain(context.publish)
    os.write(result_fd, json.dumps(outcome).encode())


if __name__ == "__main__":
    serve(int(sys.argv[1]))
