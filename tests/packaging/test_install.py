"""detorm as a user installs it: a wheel built with ``python -m build`` and an editable install,
each in a fresh virtual environment, then used and type-checked from a directory outside the
clone, as an editor would.

Offline and fast: the venvs are made without pip and see the test environment's third-party
packages through a ``.pth`` line (never its detorm: ``.pth`` files of a directory added that way
are not read, and each test checks where ``detorm`` came from); builds run without isolation
(``--no-isolation``, ``--no-build-isolation``) with the setuptools the ``test`` extra installs.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import detorm

ROOT = Path(__file__).resolve().parents[2]

# A script a user writes: two deliberate type errors and a reveal_type prove that detorm's own
# types were found (a missing package would make every name Any: no error at all).
SCRIPT = """\
import detorm
from detorm import Experiment

newest: Experiment = Experiment.query().order_by("-start_time").first()
version: int = detorm.__version__
reveal_type(Experiment.query().filter(state="ACTIVE"))
"""
MYPY_EXPECTED = [
    'script.py:4: error: Incompatible types in assignment (expression has type "Experiment | None",'
    ' variable has type "Experiment")  [assignment]',
    'script.py:5: error: Incompatible types in assignment (expression has type "str", variable has'
    ' type "int")  [assignment]',
    'script.py:6: note: Revealed type is "detorm._api._sync.ExperimentQuery"',
    "Found 2 errors in 1 file (checked 1 source file)",
]
PYRIGHT_EXPECTED = [
    ("4", "error", 'Type "Experiment | None" is not assignable to declared type "Experiment"'),
    ("5", "error", 'Type "str" is not assignable to declared type "int"'),
    (
        "6",
        "information",
        'Type of "Experiment.query().filter(state="ACTIVE")" is "ExperimentQuery"',
    ),
]


def _run(*args: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def _checked(*args: str | Path, cwd: Path, env: dict[str, str]) -> str:
    done = _run(*args, cwd=cwd, env=env)
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("packaging")


@pytest.fixture(scope="module")
def env(work: Path) -> dict[str, str]:
    """No user configuration (mypy's, pip's, the det CLI's), no network, no PYTHONPATH."""
    home = work / "home"
    home.mkdir()
    keep = {"PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT"}
    environ = {k: v for k, v in os.environ.items() if k in keep}
    environ.update(
        HOME=str(home),
        DETORM_CACHE_DIR=str(work / "cache"),
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_CONFIG_FILE=os.devnull,
        PYRIGHT_PYTHON_IGNORE_WARNINGS="1",  # no "newer version" look-up
        PYTHONDONTWRITEBYTECODE="1",
    )
    return environ


@pytest.fixture(scope="module")
def source(work: Path) -> Path:
    """What a clone holds for packaging (a copy: builds write build/ and egg-info beside it)."""
    copy = work / "detorm-src"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md"):
        shutil.copy2(ROOT / name, copy / name)
    shutil.copytree(
        ROOT / "detorm",
        copy / "detorm",
        ignore=shutil.ignore_patterns("__pycache__", "*.sqlite*"),
    )
    return copy


@pytest.fixture(scope="module")
def dist(source: Path, work: Path, env: dict[str, str]) -> Path:
    """``python -m build``: the sdist, then the wheel built from that sdist."""
    out = work / "dist"
    _checked(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, source, cwd=work,
             env=env)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("detorm-*.whl")
    return found


@dataclass(frozen=True)
class Venv:
    python: Path
    site_packages: Path

    @property
    def bin(self) -> Path:
        return self.python.parent


def _venv(where: Path, env: dict[str, str]) -> Venv:
    _checked(sys.executable, "-m", "venv", "--without-pip", where, cwd=where.parent, env=env)
    python = where / "bin" / "python"
    purelib = _checked(
        python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=where, env=env
    ).strip()
    # The test environment's packages (pip, mypy, pydantic...), after the venv's own.
    Path(purelib, "_test_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return Venv(python, Path(purelib))


@pytest.fixture(scope="module")
def from_wheel(work: Path, wheel: Path, env: dict[str, str]) -> Venv:
    venv = _venv(work / "venv-wheel", env)
    _checked(venv.python, "-m", "pip", "install", "--no-deps", wheel, cwd=work, env=env)
    return venv


@pytest.fixture(scope="module")
def editable(work: Path, source: Path, env: dict[str, str]) -> Venv:
    venv = _venv(work / "venv-editable", env)
    _checked(venv.python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-e",
             source, cwd=work, env=env)  # fmt: skip
    return venv


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    """A user's directory, outside the clone, holding the script and an empty mypy config."""
    directory = tmp_path / "my-scripts"
    directory.mkdir()
    (directory / "script.py").write_text(SCRIPT)
    (directory / "mypy.ini").write_text("[mypy]\n")
    yield directory


def _detorm_location(venv: Venv, cwd: Path, env: dict[str, str]) -> Path:
    out = _checked(venv.python, "-c", "import detorm; print(detorm.__file__)", cwd=cwd, env=env)
    return Path(out.strip()).parent


def test_the_wheel_holds_the_package_its_types_and_the_declared_dependencies(wheel: Path) -> None:
    assert wheel.name == f"detorm-{detorm.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"detorm-{detorm.__version__}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert {n.split("/")[0] for n in names} == {"detorm", info}  # no tests, docs or scripts
    assert "detorm/py.typed" in names and "detorm/local/__init__.py" in names
    headers = [line.partition(": ") for line in metadata.split("\n\n")[0].splitlines()]
    requires = [value for key, _, value in headers if key == "Requires-Dist"]
    assert sorted(r for r in requires if "extra ==" not in r) == [
        "diskcache<6,>=5.6",
        "httpx<1,>=0.27",
        "pydantic<3,>=2.11",
    ]
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {value for key, _, value in headers if key == "Provides-Extra"}
    assert extras == set(declared["optional-dependencies"])
    assert {"local", "pandas", "polars", "progress", "s3", "gcs", "azure", "all", "test"} <= extras
    assert ("Requires-Python", ": ", ">=3.11") in headers
    pythons = {v for k, _, v in headers if k == "Classifier" and "Python :: 3." in v}
    assert pythons == {f"Programming Language :: Python :: 3.{minor}" for minor in (11, 12, 13)}
    assert "detorm = detorm._cli:main" in entry_points and "detorm = detorm.testing" in entry_points


def test_the_sdist_builds_the_wheel_and_holds_what_it_needs(dist: Path) -> None:
    import tarfile

    (sdist,) = dist.glob("detorm-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "detorm/py.typed", "detorm/__init__.py"} <= names


SMOKE = """\
import importlib.metadata, pathlib, sys
import detorm
from detorm import Experiment
from detorm.local import LocalMaster, Seeder

assert pathlib.Path(detorm.__file__).is_relative_to(sys.prefix), detorm.__file__
assert detorm.__version__ == importlib.metadata.version("detorm")
with LocalMaster(process=False) as master:
    with Seeder(master.database) as seed:
        exp_id = seed.experiment(name="from-the-wheel", labels=["smoke"])
    with detorm.Session(master.url, user="determined", password="") as session:
        exp = session.get(Experiment, exp_id)
        print(exp.name, sorted(exp.tags), Experiment.query(session).count())
"""


def test_the_wheel_installs_in_a_clean_venv_and_talks_to_a_local_master(
    from_wheel: Venv, work: Path, env: dict[str, str]
) -> None:
    out = _checked(from_wheel.python, "-c", SMOKE, cwd=work, env=env)
    assert out.splitlines()[-1] == "from-the-wheel ['smoke'] 1"
    version = _checked(from_wheel.bin / "detorm", "--version", cwd=work, env=env)
    assert version.strip() == f"detorm {detorm.__version__}"


def test_the_editable_install_is_a_static_path_that_follows_the_clone(
    editable: Venv, source: Path, elsewhere: Path, env: dict[str, str]
) -> None:
    # A .pth naming the clone, which type checkers read, not an import-hook finder they cannot.
    assert not list(editable.site_packages.glob("__editable__*finder*"))
    (pth,) = editable.site_packages.glob("__editable__.detorm-*.pth")
    assert pth.read_text().strip() == str(source)
    assert _detorm_location(editable, elsewhere, env) == source / "detorm"
    probe = source / "detorm" / "_editable_probe.py"
    probe.write_text("EDITED = True\n")
    try:
        out = _checked(editable.python, "-c", "import detorm._editable_probe as p; print(p.EDITED)",
                       cwd=elsewhere, env=env)  # fmt: skip
    finally:
        probe.unlink()
    assert out.strip() == "True"


def _mypy(venv: Venv, where: Path, env: dict[str, str]) -> list[str]:
    done = _run(venv.python, "-m", "mypy", "--strict", "--no-incremental", "script.py",
                cwd=where, env=env)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr  # type errors, not a crash
    return done.stdout.splitlines()


@pytest.mark.parametrize("install", ["wheel", "editable"])
def test_mypy_finds_detorms_types_from_another_directory(
    install: str, request: pytest.FixtureRequest, elsewhere: Path, env: dict[str, str]
) -> None:
    venv: Venv = request.getfixturevalue("from_wheel" if install == "wheel" else "editable")
    assert not _detorm_location(venv, elsewhere, env).is_relative_to(ROOT)  # not this clone's
    assert _mypy(venv, elsewhere, env) == MYPY_EXPECTED


def _pyright(venv: Venv, where: Path, env: dict[str, str]) -> list[tuple[str, str, str]]:
    pyright = Path(sys.executable).parent / "pyright"
    done = _run(pyright, "--pythonpath", venv.python, "script.py", cwd=where, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    found = []
    for line in done.stdout.splitlines():
        # "  /path/script.py:4:19 - error: Type ... (reportAssignmentType)"
        place, _, rest = line.strip().partition(" - ")
        if place.startswith(str(where / "script.py")) and rest:
            kind, _, message = rest.partition(": ")
            found.append((place.split(":")[-2], kind, message.split(" (report")[0]))
    return found


@pytest.mark.parametrize("install", ["wheel", "editable"])
def test_pyright_finds_detorms_types_from_another_directory(
    install: str, request: pytest.FixtureRequest, elsewhere: Path, env: dict[str, str]
) -> None:
    venv: Venv = request.getfixturevalue("from_wheel" if install == "wheel" else "editable")
    assert _pyright(venv, elsewhere, env) == PYRIGHT_EXPECTED
