"""detorm's pytest plugin (``detorm.testing``), used as a user would: test files written by
``pytester`` and run by pytest, the plugin loaded through its ``pytest11`` entry point."""

from __future__ import annotations

import re
import textwrap

import pytest

from tests.conftest import ROOT

DOCS_PAGE = ROOT / "docs" / "testing.md"
DOCS_FILE = re.compile(r"<!-- file: (\S+) -->\n```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def docs_files() -> dict[str, str]:
    """The test files of docs/testing.md, by path (each block follows a ``file:`` comment)."""
    return dict(DOCS_FILE.findall(DOCS_PAGE.read_text()))


def write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", *args)


def test_the_docs_examples_pass_as_a_users_test_suite(pytester: pytest.Pytester) -> None:
    files = docs_files()
    assert {"test_finished.py", "baseline/conftest.py", "test_async.py"} <= set(files)
    write(pytester, files)
    result = run(pytester, "-v")
    # baseline/ runs first (names sort): the tests after it start from the empty cluster again
    result.assert_outcomes(passed=9)
    lines = [line for line in result.outlines if "PASSED" in line]
    assert lines[0].startswith("baseline/test_with_baseline.py::")


def test_the_three_line_example(pytester: pytest.Pytester) -> None:
    source = docs_files()["test_finished.py"]
    body = source.split("def test_finished_experiments(detorm_seed, detorm_session):\n", 1)[1]
    assert len(body.strip().splitlines()) == 3  # what the docs promise
    write(pytester, {"test_finished.py": source})
    run(pytester).assert_outcomes(passed=1)
    # the same test fails when the code under test is wrong: the assertion is real
    broken = source.replace('filter(state="COMPLETED")', 'filter(state="ACTIVE")')
    write(pytester, {"test_finished.py": broken})
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert "AssertionError: assert ['cifar'] == ['mnist']" in result.stdout.str()


ISOLATION = """
import os

import detorm
from detorm.local._storage import CheckpointStorage


def check_and_change(detorm_seed, detorm_session, detorm_cluster):
    # what the other test left is gone: rows, ids, checkpoint files, edits made through the API
    storage = CheckpointStorage.of(detorm_cluster.db_path).root
    assert not storage.exists() or not os.listdir(storage)
    assert detorm_session.query(detorm.Experiment).count() == 0
    assert [w.name for w in detorm_session.query(detorm.Workspace)] == ["Uncategorized"]
    with detorm_seed as seed:
        project = seed.project("p", workspace=seed.workspace("w"))
        experiment = seed.experiment(project=project, name="e")
        seed.checkpoint(seed.trial(experiment), total_batches=100)
        seed.user("someone")
    assert (project, experiment) == (2, 1)  # the ids start over
    assert len(os.listdir(storage)) == 1
    found = detorm_session.get(detorm.Experiment, experiment)
    found.tags.add("edited")
    detorm_session.commit()
    detorm_session.query(detorm.Experiment).archive()


def test_first(detorm_seed, detorm_session, detorm_cluster):
    check_and_change(detorm_seed, detorm_session, detorm_cluster)


def test_second(detorm_seed, detorm_session, detorm_cluster):
    check_and_change(detorm_seed, detorm_session, detorm_cluster)


def test_third(detorm_seed, detorm_session, detorm_cluster):
    check_and_change(detorm_seed, detorm_session, detorm_cluster)
"""


def test_each_test_starts_from_an_empty_cluster(pytester: pytest.Pytester) -> None:
    write(pytester, {"test_isolation.py": ISOLATION})
    run(pytester).assert_outcomes(passed=3)


def test_a_test_asking_only_for_the_master_shares_its_data(pytester: pytest.Pytester) -> None:
    write(pytester, {"test_shared.py": '''
        from detorm.local import Seeder

        def count(master):
            with Seeder(master.database) as seed:
                return seed.experiment(name="x")

        def test_one(detorm_master):
            assert count(detorm_master) == 1

        def test_two(detorm_master):
            assert count(detorm_master) == 2  # not reset

        def test_three(detorm_cluster):
            assert count(detorm_cluster) == 1  # reset
    '''})  # fmt: skip
    run(pytester).assert_outcomes(passed=3)


def test_sessions_default_session_and_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = pytester.path / "home"
    home.mkdir()
    for name, value in {
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
        "DET_MASTER": "http://127.0.0.1:9", "DET_USER": "nobody", "DET_PASS": "wrong",
        "DETORM_CACHE_DIR": str(home / "cache"),
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    write(pytester, {"test_env.py": '''
        import os
        from pathlib import Path

        import detorm

        def test_sessions(detorm_session, detorm_admin_session, detorm_environ):
            assert detorm.default_session() is detorm_session
            assert detorm_session.whoami().username == "determined"
            me = detorm_admin_session.whoami()
            assert (me.username, me.admin) == ("admin", True)
            assert "DET_USER" not in os.environ and "DET_PASS" not in os.environ
            assert os.environ["DET_MASTER"] == detorm_session.master
            with detorm.connect() as mine:  # a script connecting by itself reaches the master
                assert mine.master == detorm_session.master
                assert mine.whoami().username == "determined"
            config = Path(detorm_environ["DET_DEBUG_CONFIG_PATH"])
            assert not config.is_relative_to(Path.home())

        def test_closed_after_the_test():
            assert os.environ["DET_MASTER"] == "http://127.0.0.1:9"
    '''})  # fmt: skip
    run(pytester).assert_outcomes(passed=2)
    # the user's own det config and detorm cache were never written
    assert sorted(p.name for p in home.rglob("*")) == []


def test_a_seeder_outside_its_block_says_how_to_use_it(pytester: pytest.Pytester) -> None:
    write(pytester, {"test_misuse.py": '''
        import pytest

        def test_seed_without_with(detorm_seed):
            detorm_seed.experiment(name="x")

        def test_nested_blocks(detorm_seed):
            with detorm_seed:
                with pytest.raises(RuntimeError, match="already inside a `with` block"):
                    with detorm_seed:
                        pass
            with detorm_seed as seed:  # usable again after its block
                assert seed.experiment(name="x") == 1
    '''})  # fmt: skip
    result = run(pytester)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        ["*RuntimeError: a Seeder writes only inside `with seeder:`*with seeder as seed:*"]
    )


def test_without_the_local_extra_the_fixtures_name_it(pytester: pytest.Pytester) -> None:
    # sqlmodel missing, as without detorm[local]: in a process of its own (this one has it)
    write(pytester, {
        "conftest.py": 'import sys\nsys.modules["sqlmodel"] = None\n',
        "test_no_extra.py": '''
            def test_needs_the_master(detorm_session):
                pass

            def test_without_fixtures():
                pass
        ''',
    })  # fmt: skip
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    output = result.stdout.str()
    assert "detorm's pytest fixtures run detorm.local, which needs the 'local' extra" in output
    assert "pip install 'detorm[local]'" in output
    assert "During handling" not in output  # one message, not a chain


def test_loading_the_plugin_starts_and_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    write(pytester, {"test_lazy.py": '''
        import sys
        import threading

        def test_nothing_started(request):
            assert request.config.pluginmanager.get_plugin("detorm") is not None
            heavy = {"detorm.local", "sqlmodel", "sqlalchemy", "starlette", "uvicorn"}
            assert heavy.isdisjoint(sys.modules)
            assert [t.name for t in threading.enumerate()] == ["MainThread"]
    '''})  # fmt: skip
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_plugin_is_registered_by_its_entry_point() -> None:
    from importlib.metadata import entry_points

    [entry] = [e for e in entry_points(group="pytest11") if e.name == "detorm"]
    assert entry.value == "detorm.testing"


def test_the_readme_shows_the_docs_three_line_example() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Testing your own scripts", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert block == docs_files()["test_finished.py"]  # run by the tests above
