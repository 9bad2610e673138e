"""inspect_package: a calculation package is checked whole, without running any of it."""

import stat
import sys

import pytest

from adapters.errors import AdapterError, UnsafeXMLError, UnsafeZipError
from adapters.package import inspect_package

STEPS = b'<Steps><ExeArgument id="run" value="true" priority="1"/></Steps>'


def test_good_package(package_fixture):
    adapter = inspect_package(package_fixture("good"))
    assert adapter.name == "good" and adapter.hooks == "lib/hooks.py"
    assert adapter.step_ids == ("flow",)


def test_missing_adapter(package_fixture):
    with pytest.raises(AdapterError) as info:
        inspect_package(package_fixture("no_adapter"))
    assert str(info.value) == "package.zip: adapter.xml is missing"


def test_adapter_must_be_at_the_root(package_fixture):
    with pytest.raises(AdapterError) as info:
        inspect_package(package_fixture("adapter_in_subdir"), "upload.zip")
    assert str(info.value) == "upload.zip: adapter.xml is missing"


def test_invalid_adapter_names_adapter_xml(package_fixture):
    with pytest.raises(AdapterError) as info:
        inspect_package(package_fixture("bad_adapter"))
    assert str(info.value) == "adapter.xml:4: priority 'high' of step 'grid' is not an integer"


def test_hooks_module_missing(package_fixture):
    with pytest.raises(AdapterError) as info:
        inspect_package(package_fixture("hooks_missing"))
    assert str(info.value) == "adapter.xml:2: hooks module 'hooks.py' is missing from the package"


def test_hook_not_defined(package_fixture):
    with pytest.raises(AdapterError) as info:
        inspect_package(package_fixture("hook_undefined"))
    assert str(info.value) == (
        "adapter.xml:5: postmethod 'flowPost' of step 'flow' is not a function defined at "
        "top level in hooks.py"
    )


def test_imported_or_nested_functions_are_not_hooks(package_fixture):
    with pytest.raises(AdapterError) as info:
        inspect_package(package_fixture("hook_imported"))
    assert str(info.value) == (
        "adapter.xml:4: premethod 'gridPre' of step 'grid' is not a function defined at "
        "top level in hooks.py"
    )


def test_hooks_are_read_not_run(make_zip):
    adapter = (
        b'<Adapter name="t" hooks="hooks.py"><Steps>'
        b'<ExeArgument id="run" value="true" priority="1" premethod="pre"/></Steps></Adapter>'
    )
    hooks = b"import sys\nsys.modules['mirror_pwned'] = True\n\ndef pre(context):\n    pass\n"
    inspect_package(make_zip([("adapter.xml", adapter), ("hooks.py", hooks)]))
    assert "mirror_pwned" not in sys.modules


def test_hooks_syntax_error(make_zip):
    adapter = b'<Adapter name="t" hooks="hooks.py">' + STEPS + b"</Adapter>"
    hooks = b"def pre(context):\n    pass\n\ndef broken(:\n"
    with pytest.raises(AdapterError) as info:
        inspect_package(make_zip([("adapter.xml", adapter), ("hooks.py", hooks)]))
    assert str(info.value).startswith("hooks.py:4: syntax error: ")


def test_parafile_source_missing(package_fixture):
    with pytest.raises(AdapterError) as info:
        inspect_package(package_fixture("parafile_missing"))
    assert str(info.value) == (
        "adapter.xml:4: ParaFile source 'FLOW/flow.in.tpl' is not in the package "
        "(expected template/FLOW/flow.in.tpl)"
    )


def test_parafile_source_at_root_is_not_under_template(make_zip):
    adapter = (
        b'<Adapter name="t"><ParaFiles><ParaFile source="in.tpl"/></ParaFiles>'
        + STEPS
        + b"</Adapter>"
    )
    with pytest.raises(AdapterError, match=r"expected template/in.tpl"):
        inspect_package(make_zip([("adapter.xml", adapter), ("in.tpl", b"{x}")]))
    assert inspect_package(make_zip([("adapter.xml", adapter), ("template/in.tpl", b"{x}")]))


def test_parafile_source_from_a_file_rule_with_placeholders(make_zip):
    # A File target "GRID/{model}" can only provide GRID/...: other sources are still checked.
    adapter = (
        b'<Adapter name="t"><Files><File name="{model}" target="GRID/{model}" create="1"/></Files>'
        b'<ParaFiles><ParaFile source="GRID/wing.tpl"/><ParaFile source="FLOW/in.tpl"/></ParaFiles>'
        + STEPS
        + b"</Adapter>"
    )
    with pytest.raises(AdapterError, match="ParaFile source 'FLOW/in.tpl' is not in the package"):
        inspect_package(make_zip([("adapter.xml", adapter)]))


def test_zip_slip_in_a_package_is_refused(make_zip):
    adapter = b'<Adapter name="t">' + STEPS + b"</Adapter>"
    for name in ("../evil", "/abs", "template/..\\x"):
        with pytest.raises(UnsafeZipError, match="package.zip: entry"):
            inspect_package(make_zip([("adapter.xml", adapter), (name, b"x")]))
    with pytest.raises(UnsafeZipError, match="is a symbolic link"):
        inspect_package(
            make_zip([("adapter.xml", adapter), ("template/l", b"/", stat.S_IFLNK | 0o777)])
        )


def test_adapter_with_a_doctype(make_zip):
    adapter = b'<!DOCTYPE a [<!ENTITY x "y">]><Adapter name="&x;">' + STEPS + b"</Adapter>"
    with pytest.raises(UnsafeXMLError) as info:
        inspect_package(make_zip([("adapter.xml", adapter)]))
    assert (
        str(info.value) == "adapter.xml:1: DOCTYPE declarations (DTDs) and entities are not allowed"
    )


def test_oversize_adapter(make_zip):
    adapter = b'<Adapter name="t">' + STEPS + b"<!--" + b"x" * 1_000_000 + b"--></Adapter>"
    with pytest.raises(UnsafeZipError) as info:
        inspect_package(make_zip([("adapter.xml", adapter)]))
    assert str(info.value) == "package.zip: adapter.xml is larger than 1000000 bytes"


def test_not_a_zip():
    with pytest.raises(UnsafeZipError) as info:
        inspect_package(b"PK\x03\x04 nope", "mine.zip")
    assert str(info.value) == "mine.zip: not a readable zip archive: File is not a zip file"
