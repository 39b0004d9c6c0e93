"""Checkpoint and code downloads with the SDK and with the official client, against detorm.local.

Each SDK test runs through the sync API and through its async twin (``world.api``: ``api(x)``
is ``x``, or the awaited ``x``); the official client's tests run once (they check detorm.local).
"""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import tarfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import detorm
from detorm import RetryPolicy
from detorm._ops import _download
from detorm._ops._effects import Attempt
from detorm.errors import (
    DownloadError,
    InvalidType,
    InvalidValue,
    ServerError,
    StreamInterrupted,
    TransportError,
    UnsafeArchive,
)
from detorm.local import LocalMaster, Seeder, default_config
from detorm.local._storage import CheckpointStorage

from .apis import MODES, Api, Mode
from .archives import noise, tar_bytes, zeros_tar_gz


def _run_checkpoint(api: Api, *args: Any, **options: Any) -> Any:
    """The download op, run by the session's driver (the resources' methods do the same)."""
    op = _download.download_checkpoint(api.session, *args, **options)
    return api(api.session.transport.run(op))


def _run_code(api: Api, *args: Any, **options: Any) -> Any:
    op = _download.download_code(api.session, *args, **options)
    return api(api.session.transport.run(op))


RESOURCES = {"metadata.json": 300, "code/": 0, "code/model_def.py": 700, "weights.pth": 150_000}


@dataclass
class World:
    master: LocalMaster
    api: Api  # the sync API or the async one
    storage: CheckpointStorage
    experiment: int
    trial: int
    checkpoint: str  # COMPLETED, files of RESOURCES

    @property
    def session(self) -> Any:
        """``detorm.Session`` or ``detorm.aio.AsyncSession``."""
        return self.api.session

    def stored(self, uuid: str) -> dict[str, bytes]:
        return files_of(self.storage.directory(uuid))


def files_of(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@contextmanager
def logged_in(mode: Mode, url: str, environ: dict[str, str]) -> Iterator[Api]:
    """Either API, its session logged in: the sync session logs in when it opens, the async one
    before its first request (a constructor cannot await), which the tests that count requests
    or answer them with a fake would otherwise see."""
    with Api(mode, url, environ) as api:
        api(api.session.whoami())
        yield api


@pytest.fixture(params=MODES)
def api_mode(request: pytest.FixtureRequest) -> Mode:
    """Which API the test goes through (``sync_only`` pins it)."""
    mode: Mode = request.param
    return mode


sync_only = pytest.mark.parametrize("api_mode", ["sync"])
"""For the official client's tests: they check detorm.local, not our API."""


@pytest.fixture
def world(local_master: LocalMaster, environ: dict[str, str], api_mode: Mode) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        experiment = seed.experiment(name="downloads")
        trial = seed.trial(experiment)
        checkpoint = seed.checkpoint(
            trial, total_batches=100, resources=RESOURCES, metadata={"k": "v"}
        )
    with logged_in(api_mode, local_master.url, environ) as api:
        yield World(
            local_master,
            api,
            CheckpointStorage.of(local_master.db_path),
            experiment,
            trial,
            checkpoint,
        )


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Where downloads go (tmp_path also holds the token cache)."""
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


def seed_checkpoint(world: World, **kwargs: object) -> str:
    with Seeder(world.master.database) as seed:
        return seed.checkpoint(world.trial, **kwargs)  # type: ignore[arg-type]


# --- Checkpoint.download --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "direct", "master"])
def test_every_mode_downloads_the_stored_files(world: World, out: Path, mode: str) -> None:
    api = world.api
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    before = world.session.requests_sent
    result = api(checkpoint.download(out / "ckpt", mode=mode))
    assert result == out / "ckpt"
    assert files_of(result) == world.stored(world.checkpoint)
    assert (result / "code").is_dir()
    # direct reads the shared storage: only GetCheckpoint goes to the master
    assert world.session.requests_sent - before == (2 if mode == "master" else 1)
    assert sorted(p.name for p in out.iterdir()) == ["ckpt"]  # no staging directory left


def test_auto_goes_through_the_master_when_the_storage_is_not_here(
    world: World, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # download_checkpoint looks direct_source up in its module in both APIs
    monkeypatch.setattr(_download, "direct_source", lambda storage, uuid: None)
    before = world.session.requests_sent
    result = _run_checkpoint(world.api, world.checkpoint, out / "c")
    assert files_of(result) == world.stored(world.checkpoint)
    assert world.session.requests_sent - before == 2


def test_direct_needs_reachable_storage(
    local_master: LocalMaster, environ: dict[str, str], out: Path, api_mode: Mode
) -> None:
    config = {**default_config(name="s3"), "checkpoint_storage": {"type": "s3", "bucket": "b"}}
    with Seeder(local_master.database) as seed:
        uuid = seed.checkpoint(
            seed.trial(seed.experiment(name="s3", config=config)), total_batches=1
        )
    with logged_in(api_mode, local_master.url, environ) as api:
        with pytest.raises(DownloadError, match="s3 storage"):
            _run_checkpoint(api, uuid, out / "c", mode="direct")
        with pytest.raises(ServerError, match="cannot read s3 checkpoint storage"):
            _run_checkpoint(api, uuid, out / "c", mode="auto")
    assert list(out.iterdir()) == []


def test_direct_reports_a_missing_directory(world: World, out: Path) -> None:
    uuid = seed_checkpoint(world, total_batches=7)
    for file in world.storage.directory(uuid).iterdir():
        file.unlink()
    world.storage.directory(uuid).rmdir()
    with pytest.raises(DownloadError, match="not in its shared_fs storage on this machine"):
        _run_checkpoint(world.api, uuid, out / "c", mode="direct")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("state", ["ACTIVE", "ERROR", "DELETED"])
def test_only_completed_or_partially_deleted_checkpoints_download(
    world: World, out: Path, state: str
) -> None:
    api = world.api
    uuid = seed_checkpoint(world, total_batches=3, state=state)
    checkpoint = api(api.session.get(api.Checkpoint, uuid))
    with pytest.raises(
        DownloadError, match=f"checkpoint {uuid} is {state}: only COMPLETED or PARTIALLY_DELETED"
    ):
        api(checkpoint.download(out / "c"))
    assert list(out.iterdir()) == []


def test_partially_deleted_checkpoints_download(world: World, out: Path) -> None:
    api = world.api
    uuid = seed_checkpoint(
        world, total_batches=4, state="PARTIALLY_DELETED", resources={"metadata.json": 200}
    )
    checkpoint = api(api.session.get(api.Checkpoint, uuid))
    result = api(checkpoint.download(out / "c", mode="master"))
    assert files_of(result) == world.stored(uuid)


def test_the_state_is_read_again_before_downloading(world: World, out: Path) -> None:
    api = world.api
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    api(
        api.session.transport.send(
            detorm.Call(
                "DELETE", "/api/v1/checkpoints", body={"checkpointUuids": [world.checkpoint]}
            )
        )
    )
    with pytest.raises(DownloadError, match="is DELETED"):
        api(checkpoint.download(out / "c"))
    assert checkpoint.state == detorm.CheckpointState.DELETED  # the session saw the new state


def test_metadata_json_is_written_when_the_checkpoint_has_none(world: World, out: Path) -> None:
    api = world.api
    uuid = seed_checkpoint(
        world, total_batches=9, resources={"model.bin": 10}, metadata={"x": [1, 2]}
    )
    for mode in ("direct", "master"):
        checkpoint = api(api.session.get(api.Checkpoint, uuid))
        result = api(checkpoint.download(out / mode, mode=mode))
        expected = {
            "determined_version": "0.38.1",
            "steps_completed": 9,
            "format": "pickle",
            "x": [1, 2],
        }
        assert json.loads((result / "metadata.json").read_text()) == expected
        assert (result / "metadata.json").read_text() == json.dumps(expected, indent=2)
        assert (result / "model.bin").read_bytes() == world.stored(uuid)["model.bin"]


def test_downloading_into_an_existing_directory_merges(world: World, out: Path) -> None:
    api = world.api
    target = out / "c"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    (target / "metadata.json").write_text("stale")
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    api(checkpoint.download(target, mode="master"))
    assert files_of(target) == {**world.stored(world.checkpoint), "notes.txt": b"mine"}


def test_progress_bar_on_stderr(
    world: World, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = world.api
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    api(checkpoint.download(out / "c", mode="master", progress=True))
    err = capsys.readouterr().err
    assert world.checkpoint in err and "100%" in err and err.endswith("\n")
    api(checkpoint.download(out / "d", mode="direct"))
    assert capsys.readouterr().err == ""


def test_unknown_mode_is_refused(world: World, out: Path) -> None:
    api = world.api
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    with pytest.raises(InvalidValue, match="unknown download mode 'fast'"):
        api(checkpoint.download(out, mode="fast"))


def test_direct_refuses_links_leaving_the_checkpoint(world: World, out: Path) -> None:
    api = world.api
    secret = out / "secret.txt"
    secret.write_text("secret")
    os.symlink(secret, world.storage.directory(world.checkpoint) / "leak")
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    with pytest.raises(UnsafeArchive, match="symbolic link pointing outside the checkpoint"):
        api(checkpoint.download(out / "c", mode="direct"))
    assert sorted(p.name for p in out.iterdir()) == ["secret.txt"]
    # the master's archive has regular files only
    result = api(checkpoint.download(out / "m", mode="master"))
    assert "leak" not in files_of(result)


def test_a_bad_uuid_is_the_masters_error(world: World, out: Path) -> None:
    with pytest.raises(detorm.errors.NotFound):
        _run_checkpoint(world.api, "00000000-0000-0000-0000-000000000000", out / "c")
    assert list(out.iterdir()) == []


# --- what a checkpoint holds --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["direct", "master"])
def test_a_file_the_resources_do_not_list_is_refused(world: World, out: Path, mode: str) -> None:
    api = world.api
    (world.storage.directory(world.checkpoint) / "planted.py").write_text("import os")
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    with pytest.raises(UnsafeArchive, match="'planted.py': not one of the checkpoint's files"):
        api(checkpoint.download(out / "c", mode=mode))
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("mode", ["direct", "master"])
def test_a_file_of_another_size_than_listed_is_refused(world: World, out: Path, mode: str) -> None:
    api = world.api
    (world.storage.directory(world.checkpoint) / "weights.pth").write_bytes(bytes(10**7))
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    with pytest.raises(
        UnsafeArchive, match="'weights.pth': 10000000 bytes, where the checkpoint's resources list"
    ):
        api(checkpoint.download(out / "c", mode=mode))
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("mode", ["direct", "master"])
def test_a_listed_file_that_is_missing_is_an_error(world: World, out: Path, mode: str) -> None:
    api = world.api
    (world.storage.directory(world.checkpoint) / "weights.pth").unlink()
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    with pytest.raises(DownloadError, match="1 of the checkpoint's files are missing.*weights.pth"):
        api(checkpoint.download(out / "c", mode=mode))
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("mode", ["direct", "master"])
def test_a_checkpoint_without_resources_is_capped_by_max_size(
    world: World, out: Path, mode: str
) -> None:
    api = world.api
    uuid = seed_checkpoint(world, total_batches=5, resources={})
    world.storage.write_files(uuid, {"metadata.json": b"{}", "w.bin": noise(300_000)})
    checkpoint = api(api.session.get(api.Checkpoint, uuid))
    with pytest.raises(UnsafeArchive, match="more than max_size=100000 bytes"):
        api(checkpoint.download(out / "c", mode=mode, max_size=100_000))
    assert list(out.iterdir()) == []
    result = api(checkpoint.download(out / "c", mode=mode))
    assert files_of(result) == world.stored(uuid)


def test_set_id_bits_in_the_shared_storage_are_not_copied(world: World, out: Path) -> None:
    api = world.api
    os.chmod(world.storage.directory(world.checkpoint) / "weights.pth", 0o6755)
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    result = api(checkpoint.download(out / "c", mode="direct"))
    assert stat.S_IMODE((result / "weights.pth").stat().st_mode) == 0o755


class _BreaksOff(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that stops with a connection error after ``data`` (read by either
    driver)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self._data
        raise httpx.ReadError("connection reset by peer")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data
        raise httpx.ReadError("connection reset by peer")


def _breaking(world: World, monkeypatch: pytest.MonkeyPatch, times: int) -> None:
    """The next ``times`` downloads through the master break off after 20 kB (each driver
    makes its requests in its own ``_attempt``: the sync one's takes the open streams too)."""
    transport = world.session.transport
    real = transport._attempt
    left = {"breaks": times}

    def breaks(attempt: Attempt) -> bool:
        if left["breaks"] == 0 or not attempt.stream:
            return False
        left["breaks"] -= 1
        return True

    def broken(response: httpx.Response, archive: bytes) -> httpx.Response:
        return httpx.Response(200, stream=_BreaksOff(archive[:20_000]), request=response.request)

    def breaking(attempt: Attempt, opened: Any) -> httpx.Response | TransportError:
        response: httpx.Response | TransportError = real(attempt, opened)
        if not isinstance(response, httpx.Response) or not breaks(attempt):
            return response
        archive = response.read()
        response.close()
        return broken(response, archive)

    async def breaking_async(attempt: Attempt) -> httpx.Response | TransportError:
        response: httpx.Response | TransportError = await real(attempt)
        if not isinstance(response, httpx.Response) or not breaks(attempt):
            return response
        archive = await response.aread()
        await response.aclose()
        return broken(response, archive)

    replacement = breaking if world.api.mode == "sync" else breaking_async
    monkeypatch.setattr(transport, "_attempt", replacement)
    monkeypatch.setattr(transport, "retry", RetryPolicy(retries=2, backoff=0))


def test_a_download_that_breaks_off_starts_again(
    world: World, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = world.api
    _breaking(world, monkeypatch, times=2)
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    result = api(checkpoint.download(out / "c", mode="master", cache=False))
    assert world.session.retries == 2
    files = {n: size for n, size in checkpoint.resources.items() if not n.endswith("/")}
    written = {str(p.relative_to(result)): p.stat().st_size for p in result.rglob("*")}
    assert {name: size for name, size in written.items() if (result / name).is_file()} == files


def test_a_download_that_always_breaks_off_is_a_stream_interrupted(
    world: World, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = world.api
    _breaking(world, monkeypatch, times=3)
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    with pytest.raises(StreamInterrupted, match="the stream broke off"):
        api(checkpoint.download(out / "c", mode="master"))
    assert list(out.iterdir()) == []


# --- where a download may go ---------------------------------------------------------------------


def test_a_checkpoint_is_not_downloaded_into_a_file(world: World, out: Path) -> None:
    api = world.api
    (out / "file").write_text("mine")
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    before = world.session.requests_sent
    with pytest.raises(InvalidValue, match="it is a file"):
        api(checkpoint.download(out / "file"))
    assert world.session.requests_sent == before  # not even GetCheckpoint
    assert files_of(out) == {"file": b"mine"}


@pytest.mark.parametrize(
    ("max_size", "error", "message"),
    [("1GB", InvalidType, "max_size must be an int"), (True, InvalidType, "not bool"),
     (0, InvalidValue, "max_size must be a positive number of bytes, not 0")],
)  # fmt: skip
def test_max_size_is_checked_before_anything_is_sent(
    world: World, out: Path, max_size: object, error: type[Exception], message: str
) -> None:
    api = world.api
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    experiment = api(api.session.get(api.Experiment, world.experiment))
    before = world.session.requests_sent
    with pytest.raises(error, match=message):
        api(checkpoint.download(out / "c", max_size=max_size))
    with pytest.raises(error, match=message):
        api(experiment.download_code(out / "c", max_size=max_size))
    assert world.session.requests_sent == before
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("cache", [True, False])
def test_code_is_not_downloaded_into_a_file(world: World, out: Path, cache: bool) -> None:
    api = world.api
    (out / "file").write_text("mine")
    experiment = api(api.session.get(api.Experiment, world.experiment))
    before = world.session.requests_sent
    with pytest.raises(InvalidValue, match="it is a file; pass a directory"):
        api(experiment.download_code(out / "file", cache=cache))
    assert world.session.requests_sent == before
    assert files_of(out) == {"file": b"mine"}


def test_code_is_not_mixed_into_a_directory_that_has_files(world: World, out: Path) -> None:
    api = world.api
    (out / "mine").mkdir()
    (out / "mine" / "model_def.py").write_text("my own")
    experiment = api(api.session.get(api.Experiment, world.experiment))
    before = world.session.requests_sent
    with pytest.raises(InvalidValue, match="the directory is not empty"):
        api(experiment.download_code(out / "mine", cache=False))
    assert world.session.requests_sent == before
    assert files_of(out) == {"mine/model_def.py": b"my own"}
    (out / "empty").mkdir()
    result = api(experiment.download_code(out / "empty"))
    assert sorted(files_of(result)) == ["const.yaml", "model_def.py"]


def test_code_is_not_downloaded_under_a_file(world: World, out: Path) -> None:
    api = world.api
    (out / "file").write_text("mine")
    experiment = api(api.session.get(api.Experiment, world.experiment))
    before = world.session.requests_sent
    with pytest.raises(InvalidValue, match=r"cannot download into .*/code: .*/file is a file"):
        api(experiment.download_code(out / "file" / "sub" / "code"))
    assert world.session.requests_sent == before
    assert files_of(out) == {"file": b"mine"}


# --- Experiment.download_code -------------------------------------------------------------------------


def test_download_code_extracts_the_model_definition(world: World, out: Path) -> None:
    api = world.api
    experiment = api(api.session.get(api.Experiment, world.experiment))
    result = api(experiment.download_code(out / "code"))
    assert sorted(files_of(result)) == ["const.yaml", "model_def.py"]
    assert json.loads((result / "const.yaml").read_text())["name"] == "downloads"
    assert "class Trial" in (result / "model_def.py").read_text()


def test_download_code_refuses_a_malicious_model_definition(
    local_master: LocalMaster, environ: dict[str, str], out: Path, api_mode: Mode
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("../../escape.py")
        archive.addfile(info, io.BytesIO(b""))
    with Seeder(local_master.database) as seed:
        evil = seed.experiment(name="evil", model_definition=buffer.getvalue())
        empty = seed.experiment(name="unmanaged", model_definition=b"")
    with logged_in(api_mode, local_master.url, environ) as api:
        with pytest.raises(UnsafeArchive, match="'..'"):
            _run_code(api, evil, out / "code")
        with pytest.raises(DownloadError, match="has no model definition"):
            _run_code(api, empty, out / "code")
    assert list(out.iterdir()) == []


def test_a_code_bomb_is_refused_and_not_cached(
    local_master: LocalMaster, environ: dict[str, str], out: Path, api_mode: Mode
) -> None:
    with Seeder(local_master.database) as seed:
        bomb = seed.experiment(name="bomb", model_definition=zeros_tar_gz(1 << 30))
    with logged_in(api_mode, local_master.url, environ) as api:
        for _ in range(2):  # the second attempt asks the master again: nothing was cached
            before = api.session.requests_sent
            # the header declares 1 GiB: more than the default max_size, refused before writing
            with pytest.raises(UnsafeArchive, match="more than max_size=134217728 bytes"):
                _run_code(api, bomb, out / "code")
            assert api.session.requests_sent - before == 1
    assert list(out.iterdir()) == []


def test_download_code_obeys_max_size(world: World, out: Path) -> None:
    api = world.api
    experiment = api(api.session.get(api.Experiment, world.experiment))
    with pytest.raises(UnsafeArchive, match="the archive holds more than max_size=600 bytes"):
        api(experiment.download_code(out / "code", max_size=600))
    assert list(out.iterdir()) == []
    assert sorted(files_of(api(experiment.download_code(out / "code", max_size=2000)))) == [
        "const.yaml", "model_def.py",
    ]  # fmt: skip


def test_a_corrupt_model_definition_is_a_download_error(
    local_master: LocalMaster, environ: dict[str, str], out: Path, api_mode: Mode
) -> None:
    truncated = tar_bytes(("model_def.py", noise(5000)), gz=True)[:2000]
    with Seeder(local_master.database) as seed:
        corrupt = seed.experiment(name="corrupt", model_definition=truncated)
    with logged_in(api_mode, local_master.url, environ) as api:
        with pytest.raises(
            DownloadError, match=f"the code of experiment {corrupt}: not a valid tar.gz archive"
        ):
            _run_code(api, corrupt, out / "code")
    assert list(out.iterdir()) == []


def test_a_model_definition_that_is_not_base64_is_a_download_error(
    world: World, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def answer(attempt: Attempt, opened: Any) -> httpx.Response:
        return httpx.Response(200, json={"b64Tgz": "H4sI*"})

    async def answer_async(attempt: Attempt) -> httpx.Response:
        return answer(attempt, None)

    replacement = answer if world.api.mode == "sync" else answer_async
    monkeypatch.setattr(world.session.transport, "_attempt", replacement)
    with pytest.raises(DownloadError, match="the model definition is not valid base64"):
        _run_code(world.api, world.experiment, out / "code", cache=False)
    assert list(out.iterdir()) == []


# --- the official client ---------------------------------------------------------------------------------


@pytest.fixture
def official(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from determined.experimental import client

    monkeypatch.setenv("DET_DEBUG_CONFIG_PATH", str(tmp_path / "det-config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(client, "_determined", None)  # login() configures a module singleton once
    client.login(master=world.master.url, user="determined", password="")
    yield


@sync_only
@pytest.mark.parametrize("mode", ["MASTER", "DIRECT", "AUTO"])
def test_official_checkpoint_download(world: World, official: None, out: Path, mode: str) -> None:
    from determined.experimental import client

    checkpoint = client.get_checkpoint(world.checkpoint)
    path = checkpoint.download(str(out / "official"), mode=client.DownloadMode[mode])
    assert files_of(Path(path)) == world.stored(world.checkpoint)


@sync_only
def test_official_download_writes_metadata_json(world: World, official: None, out: Path) -> None:
    from determined.experimental import client

    uuid = seed_checkpoint(world, total_batches=11, resources={"w.bin": 20})
    path = Path(
        client.get_checkpoint(uuid).download(str(out / "c"), mode=client.DownloadMode.MASTER)
    )
    assert json.loads((path / "metadata.json").read_text())["steps_completed"] == 11
    assert (path / "w.bin").read_bytes() == world.stored(uuid)["w.bin"]


@sync_only
def test_official_download_code(world: World, official: None, out: Path) -> None:
    from determined.experimental import client

    path = client.get_experiment(world.experiment).download_code(str(out / "out"))
    assert Path(path).name == f"exp-{world.experiment}_model_def.tar.gz"
    b64 = world.session.transport.json(
        detorm.Call("GET", f"/api/v1/experiments/{world.experiment}/model_def")
    )
    assert Path(path).read_bytes() == base64.b64decode(b64["b64Tgz"])
    with tarfile.open(path, mode="r:gz") as archive:
        assert archive.getnames() == ["const.yaml", "model_def.py"]


# --- the disk cache -------------------------------------------------------------------------


def test_a_completed_checkpoint_is_downloaded_through_the_master_once(
    world: World, out: Path
) -> None:
    api = world.api
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    api(checkpoint.download(out / "first", mode="master"))
    before = world.session.requests_sent
    api(checkpoint.download(out / "second", mode="master"))
    assert world.session.requests_sent - before == 1  # the state check only
    assert files_of(out / "second") == files_of(out / "first")
    api(checkpoint.download(out / "third", mode="master", cache=False))
    assert world.session.requests_sent - before == 3


def test_a_corrupt_cached_archive_is_fetched_again(world: World, out: Path) -> None:
    api = world.api
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    api(checkpoint.download(out / "first", mode="master"))
    stored = [p for p in Path(world.session.cache.directory).rglob("*.val")]
    assert stored
    for path in stored:
        data = bytearray(path.read_bytes())
        data[600] ^= 0xFF
        path.write_bytes(bytes(data))
    before = world.session.requests_sent
    api(checkpoint.download(out / "again", mode="master"))
    assert world.session.requests_sent - before == 2
    assert files_of(out / "again") == files_of(out / "first")


def test_experiment_code_is_downloaded_once(world: World, out: Path) -> None:
    api = world.api
    experiment = api(api.session.get(api.Experiment, world.experiment))
    api(experiment.download_code(out / "a"))
    before = world.session.requests_sent
    api(experiment.download_code(out / "b"))
    assert world.session.requests_sent == before
    assert files_of(out / "a") == files_of(out / "b") and files_of(out / "a")


def test_checkpoint_delete(world: World) -> None:
    api = world.api
    checkpoint = api(api.session.get(api.Checkpoint, world.checkpoint))
    api(checkpoint.delete())
    assert checkpoint.state == detorm.CheckpointState.DELETED
