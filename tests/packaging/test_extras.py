"""``pip install detorm`` is the SDK alone; detorm.local, DataFrames, progress bars and cloud
storages are extras. The README's set-up commands install what they run, and CI runs the
README's test command itself."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# detorm.local's stack and every optional library: `import detorm` loads none of them.
LOCAL_STACK = {"sqlmodel", "sqlalchemy", "starlette", "uvicorn", "httptools", "yaml"}
OPTIONAL = LOCAL_STACK | {"pandas", "polars", "numpy", "tqdm", "boto3", "botocore", "google",
                          "azure", "determined"}  # fmt: skip

# A sys.meta_path entry that makes the given top-level modules missing, as when an extra is not
# installed (the modules are installed here, for the rest of the suite).
Done = subprocess.CompletedProcess[str]
BLOCKER = """
import sys
class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
"""


def _python(code: str, blocked: frozenset[str] | set[str] = frozenset()) -> Done:
    program = BLOCKER.format(blocked=sorted(blocked)) + code
    return subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_the_sdks_own_dependencies_are_pydantic_httpx_and_diskcache_only() -> None:
    names = {
        re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower() for req in PYPROJECT["dependencies"]
    }
    assert names == {"pydantic", "httpx", "diskcache"}


def test_import_detorm_and_every_public_name_loads_no_optional_library() -> None:
    code = f"""
import json, sys
import detorm, detorm.aio, detorm.errors
for module in (detorm, detorm.aio):
    for name in module.__all__:
        getattr(module, name)
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({sorted(OPTIONAL)!r}))
print(json.dumps([loaded, "detorm.local" in sys.modules]))
"""
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[], False]


def test_the_sdk_works_with_the_local_stack_and_optional_libraries_missing() -> None:
    code = """
import detorm
from detorm import Q, metrics
from detorm._wire import _experiments as wx
condition = Q(state="ACTIVE") | (metrics.validation.loss.min < 0.1)
run = wx.FlatRun.model_validate_json('{"id": 3, "state": "STATE_COMPLETED"}')
print(type(condition).__name__, run.id, run.state.name)
"""
    done = _python(code, blocked=OPTIONAL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Or 3 COMPLETED"


def test_the_pytest_plugin_loads_without_the_local_extra() -> None:
    # It is an entry point: every pytest run of a project that installed detorm imports it.
    done = _python("import detorm.testing; print('loaded')", blocked=LOCAL_STACK)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded"


@pytest.mark.parametrize(
    "argv", [["serve", "--port", "0"], ["demo"], ["set-password", "alice", "--db", "x.sqlite"]]
)
@pytest.mark.parametrize("missing", ["sqlmodel", "starlette", "uvicorn", "yaml"])
def test_local_commands_without_the_local_extra_name_it(argv: list[str], missing: str) -> None:
    done = _python(
        f"from detorm._cli import main; raise SystemExit(main({argv!r}))", blocked={missing}
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"detorm {argv[0]}: detorm.local needs the 'local' extra (no module")
    assert line.endswith("): pip install 'detorm[local]'")
    named = re.search(r"no module named '([\w.]+)'", line)
    assert named is not None and named[1].split(".")[0] == missing


def test_other_commands_work_without_the_local_extra(tmp_path: Path) -> None:
    argv = ["cache", "clear", "--dir", str(tmp_path)]
    done = _python(f"from detorm._cli import main; raise SystemExit(main({argv!r}))", LOCAL_STACK)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("removed 0 cached entries")


def test_extras_cover_every_optional_library_and_the_test_extra_all_of_them() -> None:
    extras: dict[str, list[str]] = PYPROJECT["optional-dependencies"]
    assert {"local", "pandas", "polars", "progress", "s3", "gcs", "azure", "all", "test"} <= set(
        extras
    )
    local = " ".join(extras["local"])
    for library in ("sqlmodel", "starlette", "uvicorn", "httptools", "pyyaml"):
        assert library in local
    (everything,) = extras["all"]
    assert everything.startswith("detorm[") and everything.endswith("]")
    assert set(everything[len("detorm[") : -1].split(",")) == set(extras) - {"all", "test"}
    assert "detorm[all]" in extras["test"]


def _readme_setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Set-up\n", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    ")]


def test_the_readme_has_two_setup_commands_that_install_what_they_run() -> None:
    demo, tests = _readme_setup_commands()
    assert demo == "python3 -m pip install -e '.[local]' && python3 -m detorm demo"
    assert tests == "python3 -m pip install -e '.[test]' && python3 -m pytest"


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    _, tests = _readme_setup_commands()
    script = (ROOT / ".ci" / "run").read_text()
    assert [line.strip() for line in script.splitlines() if line.strip() == tests] == [tests]


@pytest.mark.parametrize("library", ["pandas", "polars"])
def test_dataframes_without_their_extra_name_it(library: str) -> None:
    code = f"""
from detorm.errors import ConfigurationError
from detorm._ops._metrics import to_{library}
try:
    to_{library}([{{"trial_id": 1}}])
except ConfigurationError as err:
    print(err)
"""
    done = _python(code, blocked={library})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"to_{library}() needs {library}: pip install 'detorm[{library}]'"
