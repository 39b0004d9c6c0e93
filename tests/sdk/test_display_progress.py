"""Progress bars: optional tqdm, drawn only when asked or when someone watches (a terminal, a
notebook), the same through both APIs; nothing changes but the bar without tqdm."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import detorm
from detorm import _progress
from detorm.errors import InvalidType
from tests.sdk.apis import Api
from tests.sdk.conftest import Cluster


@pytest.fixture
def no_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    """tqdm as if it were not installed (its import fails)."""
    for name in [m for m in sys.modules if m == "tqdm" or m.startswith("tqdm.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> None:
    """stderr as a terminal (pytest captures it), and automatic bars shown at once."""
    monkeypatch.setattr(_progress, "_watched", lambda: True)
    monkeypatch.setattr(_progress, "AUTO_DELAY", 0)


def read_metrics(api: Api, cluster: Cluster, **options: object) -> list[tuple[int, int | None]]:
    stream = api.session.metrics(
        cluster.trials["resnet-base"], "validation", cache=False, **options
    )
    return [(r.trial_id, r.step) for r in api.list(stream)]


def test_a_forced_bar_counts_the_trials_read_with_tqdm(
    api: Api, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = read_metrics(api, cluster, progress=True)
    captured = capsys.readouterr()
    assert "validation metrics: 100%" in captured.err and "2/2" in captured.err
    assert "trial" in captured.err and captured.out == ""
    assert rows == read_metrics(api, cluster, progress=False)
    assert capsys.readouterr().err == ""


def test_automatic_bars_only_where_someone_watches(
    api: Api, cluster: Cluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    read_metrics(api, cluster)  # stderr is captured: not a terminal, not a notebook
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(_progress, "_watched", lambda: True)
    monkeypatch.setattr(_progress, "AUTO_DELAY", 0)
    read_metrics(api, cluster)
    assert "validation metrics: 100%" in capsys.readouterr().err


def test_the_session_option_is_the_default_of_its_calls(
    api: Api, cluster: Cluster, capsys: pytest.CaptureFixture[str], watched: None
) -> None:
    api.session.progress = False
    read_metrics(api, cluster)
    assert capsys.readouterr().err == ""
    read_metrics(api, cluster, progress=True)  # the call's own choice wins
    assert "2/2" in capsys.readouterr().err
    api.session.progress = True
    read_metrics(api, cluster)
    assert "2/2" in capsys.readouterr().err
    with pytest.raises(InvalidType, match=r"session.progress must be True, False or None"):
        api.session.progress = "yes"
    with pytest.raises(InvalidType, match=r"metrics\(progress\) must be True, False or None"):
        read_metrics(api, cluster, progress=1)


def test_without_tqdm_a_forced_bar_is_plain_text_and_an_automatic_one_is_not_drawn(
    api: Api, cluster: Cluster, capsys: pytest.CaptureFixture[str], no_tqdm: None, watched: None
) -> None:
    with pytest.raises(ImportError):
        import tqdm  # noqa: F401
    expected = read_metrics(api, cluster, progress=False)
    assert read_metrics(api, cluster) == expected
    assert capsys.readouterr().err == ""
    assert read_metrics(api, cluster, progress=True) == expected
    err = capsys.readouterr().err
    assert err.startswith("\rvalidation metrics [") and err.endswith("100% 2/2 trial\n")


def test_a_stopped_read_closes_its_bar(
    api: Api, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = api.session.metrics(cluster.trials["resnet-base"], "validation", progress=True)
    if api.mode == "sync":
        first = next(iter(stream))
        iterator = iter(stream)
        next(iterator)
        iterator.close()  # type: ignore[attr-defined]
    else:
        first = api.list(stream)[0]
    assert first.trial_id == min(cluster.trials["resnet-base"])
    assert capsys.readouterr().err.endswith("\n")  # tqdm closed: the line is ended


def test_records_draw_the_same_bar(
    api: Api, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = api.session.metrics(cluster.trials["resnet-base"], "validation", progress=True)
    records = api(stream.to_records())
    assert {r["trial_id"] for r in records} == set(cluster.trials["resnet-base"])
    assert "2/2" in capsys.readouterr().err


def test_a_large_commit_counts_its_requests(
    writer_api: Api, fresh_cluster: Cluster, capsys: pytest.CaptureFixture[str], watched: None
) -> None:
    api = writer_api
    Experiment = api.of(detorm.Experiment)
    exps = api.list(Experiment.query(api.session))
    for exp in exps[:3]:
        exp.description = "small"
    api(api.session.commit())  # automatic: too small for a bar
    assert capsys.readouterr().err == ""
    for exp in exps:
        exp.description = "large"
    api.session.progress = True  # forced: any commit
    requests = len(api.session.pending())
    api(api.session.commit())
    err = capsys.readouterr().err
    assert "commit: 100%" in err and f"{requests}/{requests}" in err and "request" in err
    assert {e.description for e in api.list(Experiment.query(api.session))} == {"large"}


def test_a_download_draws_its_bar_with_the_session_option(
    api: Api, cluster: Cluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trial = api(api.session.get(api.of(detorm.Trial), cluster.trials["resnet-base"][0]))
    checkpoint = api.list(trial.checkpoints)[0]
    api.session.progress = True
    api(checkpoint.download(tmp_path / "a", mode="master", cache=False))
    err = capsys.readouterr().err
    assert checkpoint.uuid in err and "100%" in err
    api(checkpoint.download(tmp_path / "b", mode="master", cache=False, progress=False))
    assert capsys.readouterr().err == ""


def test_a_notebook_counts_as_watched(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not _progress.in_notebook() and not _progress.wanted(None)  # pytest: no terminal

    class ZMQInteractiveShell:  # the kernel's shell, as IPython names it
        pass

    fake = type(sys)("IPython")
    fake.get_ipython = ZMQInteractiveShell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert _progress.in_notebook() and _progress.wanted(None)
    assert not _progress.wanted(False) and _progress.wanted(True)


def test_tqdm_is_imported_only_when_a_bar_is_drawn() -> None:
    import subprocess

    code = "import sys, detorm, detorm.aio; assert 'tqdm' not in sys.modules, 'tqdm imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
