"""TensorBoard files: ``experiment.download_tensorboard`` and ``delete_tensorboard_files``.

detorm.local keeps its ``shared_fs`` checkpoint storage next to its database; the tests write
TensorBoard files there in the harness's layout (``write_tensorboard``), as a trial's
TensorboardManager uploads them. S3 goes through a real boto3 client whose requests are
answered by botocore's Stubber (no network); GCS and Azure through fakes of their clients'
shape. Each SDK test runs through the sync API and its async twin (``world.api``).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from detorm._ops import _tensorboard
from detorm.errors import (
    ConfigurationError,
    DownloadError,
    InvalidType,
    InvalidValue,
    ServerError,
    UnsafeArchive,
)
from detorm.local import LocalMaster, Seeder, default_config
from detorm.local._routes.master import CLUSTER_ID
from detorm.local._storage import CheckpointStorage

from .apis import MODES, Api, Mode
from .test_download import files_of, logged_in


def tensorboard_root(storage_root: Path, experiment: int) -> Path:
    """The experiment's directory in the harness's layout (determined.tensorboard.build)."""
    return storage_root / CLUSTER_ID / "tensorboard" / "experiment" / str(experiment)


def write_tensorboard(
    storage_root: Path, experiment: int, trial: int, files: dict[str, bytes]
) -> Path:
    """Write a trial's files where its TensorboardManager would have uploaded them."""
    directory = tensorboard_root(storage_root, experiment) / "trial" / str(trial)
    for name, content in files.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return directory


FIRST = {
    "events.out.tfevents.1700000000.host-1.1.0": b"\x18\x00first trial events" * 10,
    # the harness appends "#<rank>" to profiler files; ".." inside a name is a valid name
    "plugins/profile/2024_01_01/host#0.trace.json.gz": b"trace" * 100,
    "validation/events..out.tfevents.1700000001.host-1": b"validation",
}
SECOND = {"events.out.tfevents.1700000002.host-2.1.0": b"second trial events"}


@dataclass
class World:
    master: LocalMaster
    api: Api
    storage: Path  # the shared_fs storage root the seeded experiments' configs name
    experiment: int
    trials: list[int]
    other_trial: int  # of another experiment

    @property
    def session(self) -> Any:
        return self.api.session

    def experiment_object(self) -> Any:
        return self.api(self.session.get(self.api.Experiment, self.experiment))


@pytest.fixture(params=MODES)
def api_mode(request: pytest.FixtureRequest) -> Mode:
    mode: Mode = request.param
    return mode


@pytest.fixture
def world(local_master: LocalMaster, environ: dict[str, str], api_mode: Mode) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        experiment = seed.experiment(name="tensorboard")
        trials = [seed.trial(experiment), seed.trial(experiment)]
        other_trial = seed.trial(seed.experiment(name="other"))
    storage = CheckpointStorage.of(local_master.db_path).root
    write_tensorboard(storage, experiment, trials[0], FIRST)
    write_tensorboard(storage, experiment, trials[1], SECOND)
    with logged_in(api_mode, local_master.url, environ) as api:
        yield World(local_master, api, storage, experiment, trials, other_trial)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


def expected(world: World, trial_files: dict[int, dict[str, bytes]]) -> dict[str, bytes]:
    return {
        f"trial/{trial}/{name}": content
        for trial, files in trial_files.items()
        for name, content in files.items()
    }


def seed_with_storage(world: World, storage: dict[str, Any]) -> tuple[int, int]:
    """An experiment whose config names ``storage``, and one trial of it."""
    config = {**default_config(name="elsewhere"), "checkpoint_storage": storage}
    with Seeder(world.master.database) as seed:
        experiment = seed.experiment(name="elsewhere", config=config)
        return experiment, seed.trial(experiment)


# --- shared_fs, against detorm.local -------------------------------------------------------------


def test_downloads_every_trial_in_the_harness_layout(world: World, out: Path) -> None:
    api = world.api
    exp = world.experiment_object()
    before = world.session.requests_sent
    result = api(exp.download_tensorboard(out / "tb"))
    assert result == out / "tb"
    first, second = world.trials
    assert files_of(result) == expected(world, {first: FIRST, second: SECOND})
    # GetExperiment (config, trial ids) and GetMaster (cluster id); the files are read here
    assert world.session.requests_sent - before == 2
    assert api(world.session.get(api.Experiment, world.experiment)) is exp  # merged, not copied
    assert sorted(p.name for p in out.iterdir()) == ["tb"]  # no staging directory left


def test_downloads_the_trials_asked_for(world: World, out: Path) -> None:
    api = world.api
    exp = world.experiment_object()
    first, second = world.trials
    trial = api(world.session.get(api.Trial, second))
    only_second = api(exp.download_tensorboard(out / "a", trials=[trial]))
    assert files_of(only_second) == expected(world, {second: SECOND})
    by_id = api(exp.download_tensorboard(out / "b", trials=(first, first)))
    assert files_of(by_id) == expected(world, {first: FIRST})


def test_downloading_again_merges_newer_files(world: World, out: Path) -> None:
    api = world.api
    exp = world.experiment_object()
    api(exp.download_tensorboard(out / "tb"))
    first, second = world.trials
    newer = {"events.out.tfevents.1700000000.host-1.1.0": b"more events, appended later"}
    write_tensorboard(world.storage, world.experiment, first, newer)
    result = api(exp.download_tensorboard(out / "tb"))
    assert files_of(result) == expected(world, {first: {**FIRST, **newer}, second: SECOND})


def test_an_experiment_without_files_downloads_an_empty_directory(world: World, out: Path) -> None:
    api = world.api
    with Seeder(world.master.database) as seed:
        quiet = seed.experiment(name="quiet")
        seed.trial(quiet)
    exp = api(world.session.get(api.Experiment, quiet))
    result = api(exp.download_tensorboard(out / "tb"))
    assert result.is_dir() and files_of(result) == {}


def test_bad_trials_are_refused_before_anything_is_sent(world: World, out: Path) -> None:
    api = world.api
    exp = world.experiment_object()
    stranger = api(world.session.get(api.Trial, world.other_trial))
    before = world.session.requests_sent
    with pytest.raises(InvalidValue, match=f"belongs to experiment {stranger.experiment_id}"):
        api(exp.download_tensorboard(out / "tb", trials=[stranger]))
    with pytest.raises(InvalidValue, match="trials is empty"):
        api(exp.download_tensorboard(out / "tb", trials=[]))
    with pytest.raises(InvalidType, match="trials must be Trial objects or trial ids"):
        api(exp.download_tensorboard(out / "tb", trials=str(world.trials[0])))
    with pytest.raises(InvalidValue, match="each trial"):
        api(exp.download_tensorboard(out / "tb", trials=[0]))
    with pytest.raises(InvalidType, match="max_size must be an int"):
        api(exp.download_tensorboard(out / "tb", max_size="1GB"))
    assert world.session.requests_sent == before
    assert list(out.iterdir()) == []


def test_a_trial_id_of_another_experiment_is_refused(world: World, out: Path) -> None:
    exp = world.experiment_object()
    with pytest.raises(
        DownloadError,
        match=rf"experiment {world.experiment} has no trial {world.other_trial} \(its trials:"
        rf" {world.trials[0]}, {world.trials[1]}\)",
    ):
        world.api(exp.download_tensorboard(out / "tb", trials=[world.other_trial]))
    assert list(out.iterdir()) == []


def test_a_symbolic_link_leaving_the_experiment_is_refused(
    world: World, out: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for TensorBoard")
    directory = tensorboard_root(world.storage, world.experiment) / "trial" / str(world.trials[1])
    (directory / "events.out.tfevents.9.evil").symlink_to(secret)
    exp = world.experiment_object()
    with pytest.raises(UnsafeArchive, match="symbolic link pointing outside the experiment's"):
        world.api(exp.download_tensorboard(out / "tb"))
    assert list(out.iterdir()) == []  # nothing written, no staging directory left


def test_a_trial_directory_that_is_a_symbolic_link_is_refused(
    world: World, out: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "id_rsa").write_text("private")
    trial_dir = tensorboard_root(world.storage, world.experiment) / "trial" / "999999"
    trial_dir.symlink_to(elsewhere, target_is_directory=True)
    exp = world.experiment_object()
    with pytest.raises(UnsafeArchive, match="'trial/999999': symbolic link pointing outside"):
        world.api(exp.download_tensorboard(out / "tb"))
    # a link to another trial's directory stays inside, but directories are not followed
    trial_dir.unlink()
    trial_dir.symlink_to(str(world.trials[0]), target_is_directory=True)
    with pytest.raises(UnsafeArchive, match="'trial/999999': symbolic link to a directory"):
        world.api(exp.download_tensorboard(out / "tb"))
    assert list(out.iterdir()) == []


def test_a_link_in_the_layout_above_the_trial_is_refused(
    world: World, out: Path, tmp_path: Path
) -> None:
    # trial/<id> itself a link: asked for by id, the walk would start inside the link's target
    first = world.trials[0]
    trial_dir = tensorboard_root(world.storage, world.experiment) / "trial" / str(first)
    moved = tmp_path / "moved"
    trial_dir.rename(moved)
    trial_dir.symlink_to(moved, target_is_directory=True)
    exp = world.experiment_object()
    with pytest.raises(UnsafeArchive, match="a symbolic link in the TensorBoard layout"):
        world.api(exp.download_tensorboard(out / "tb", trials=[first]))
    assert list(out.iterdir()) == []


def test_links_inside_the_experiment_are_copied_as_files(world: World, out: Path) -> None:
    second = world.trials[1]
    directory = tensorboard_root(world.storage, world.experiment) / "trial" / str(second)
    (directory / "alias").symlink_to("events.out.tfevents.1700000002.host-2.1.0")
    result = world.api(world.experiment_object().download_tensorboard(out / "tb"))
    copied = result / "trial" / str(second) / "alias"
    assert not copied.is_symlink() and copied.read_bytes() == b"second trial events"


def test_more_than_max_size_is_refused_before_anything_is_copied(world: World, out: Path) -> None:
    exp = world.experiment_object()
    size = sum(map(len, FIRST.values())) + sum(map(len, SECOND.values()))
    # each file and directory counts 512 bytes too, as an archive's members do: trial/,
    # trial/<id>/ twice, plugins/profile/2024_01_01/ and validation/ are 7 directories
    total = size + 512 * (4 + 7)
    with pytest.raises(UnsafeArchive, match=f"4 files of {size} bytes in all .*\\({total} with"):
        world.api(exp.download_tensorboard(out / "tb", max_size=total - 1))
    assert list(out.iterdir()) == []
    result = world.api(exp.download_tensorboard(out / "tb", max_size=total))
    assert len(files_of(result)) == 4


def test_a_storage_that_is_not_on_this_machine(world: World, out: Path, tmp_path: Path) -> None:
    missing = tmp_path / "not-mounted"
    experiment, _ = seed_with_storage(
        world, {"type": "shared_fs", "host_path": str(missing), "storage_path": "ckpts"}
    )
    exp = world.api(world.session.get(world.api.Experiment, experiment))
    with pytest.raises(DownloadError, match=f"not on this machine \\(tried {missing}/ckpts or"):
        world.api(exp.download_tensorboard(out / "tb"))
    assert list(out.iterdir()) == []


def test_a_directory_storage_is_read_at_its_container_path(
    world: World, out: Path, tmp_path: Path
) -> None:
    mounted = tmp_path / "mounted"
    experiment, trial = seed_with_storage(
        world, {"type": "directory", "container_path": str(mounted)}
    )
    write_tensorboard(mounted, experiment, trial, SECOND)
    exp = world.api(world.session.get(world.api.Experiment, experiment))
    assert files_of(world.api(exp.download_tensorboard(out / "tb"))) == expected(
        world, {trial: SECOND}
    )


def test_a_storage_path_that_leaves_its_host_path_is_not_read(
    world: World, out: Path, tmp_path: Path
) -> None:
    # shared._full_storage_path: the storage must stay under host_path
    (tmp_path / "outside").mkdir()
    experiment, _ = seed_with_storage(
        world,
        {"type": "shared_fs", "host_path": str(world.storage), "storage_path": "../../outside"},
    )
    exp = world.api(world.session.get(world.api.Experiment, experiment))
    with pytest.raises(DownloadError, match="no usable host_path"):
        world.api(exp.download_tensorboard(out / "tb"))


def test_progress_is_drawn_on_stderr(
    world: World, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.api(world.experiment_object().download_tensorboard(out / "tb", progress=True))
    assert f"the TensorBoard files of experiment {world.experiment}" in capsys.readouterr().err


# --- DeleteTensorboardFiles --------------------------------------------------------------------


def test_delete_removes_the_experiments_files(world: World, out: Path) -> None:
    api = world.api
    exp = world.experiment_object()
    before = world.session.requests_sent
    assert api(exp.delete_tensorboard_files()) is None
    assert world.session.requests_sent - before == 1  # DELETE .../tensorboard-files
    assert not tensorboard_root(world.storage, world.experiment).exists()
    assert files_of(api(exp.download_tensorboard(out / "tb"))) == {}


def test_delete_of_an_experiment_that_does_not_exist(world: World) -> None:
    # db.ExperimentByID's ErrNotFound, unmapped: the master answers 500 "not found"
    op = _tensorboard.delete_tensorboard_files(world.session, 99999)
    with pytest.raises(ServerError, match=r"DELETE /api/v1/experiments/99999/tensorboard-files"):
        world.api(world.session.transport.run(op))


def test_a_file_removed_after_the_listing_is_left_out(
    world: World, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a writer's temporary file, renamed into place between the listing and the copy
    first = world.trials[0]
    directory = write_tensorboard(world.storage, world.experiment, first, {"events.tmp": b"t"})
    real_copy = _tensorboard.copy_files

    def copy_after_rename(files: Any, *args: Any, **kwargs: Any) -> None:
        listed = list(files)
        (directory / "events.tmp").unlink()
        real_copy(listed, *args, **kwargs)

    monkeypatch.setattr(_tensorboard, "copy_files", copy_after_rename)
    result = world.api(world.experiment_object().download_tensorboard(out / "tb", trials=[first]))
    assert files_of(result) == expected(world, {first: FIRST})


# --- object stores ---------------------------------------------------------------------------------

MODIFIED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def layout_key(prefix: str, experiment: int, trial: int, name: str) -> str:
    return f"{prefix}{CLUSTER_ID}/tensorboard/experiment/{experiment}/trial/{trial}/{name}"


def stubbed_s3(
    responses: list[tuple[str, dict[str, Any], dict[str, Any]]],
) -> tuple[Any, Any]:
    """A real boto3 S3 client whose calls are answered, in order, by botocore's Stubber."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    stubber = Stubber(client)
    for method, response, params in responses:
        stubber.add_response(method, response, params)
    stubber.activate()
    return client, stubber


def s3_object(bucket: str, key: str, content: bytes) -> tuple[str, dict[str, Any], dict[str, Any]]:
    from botocore.response import StreamingBody

    body = StreamingBody(io.BytesIO(content), len(content))
    return (
        "get_object",
        {"Body": body, "ContentLength": len(content)},
        {"Bucket": bucket, "Key": key},
    )


def test_s3_lists_pages_and_reads_objects(
    world: World, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = {"type": "s3", "bucket": "tb-bucket", "prefix": "/team//runs/", "access_key": "a"}
    experiment, trial = seed_with_storage(world, storage)
    prefix = f"team/runs/{CLUSTER_ID}/tensorboard/experiment/{experiment}/"  # normalize_prefix
    one = layout_key("team/runs/", experiment, trial, "events.out.tfevents.1.h")
    two = layout_key("team/runs/", experiment, trial, "plugins/profile/x/h#0.trace.json.gz")
    client, stubber = stubbed_s3([
        ("list_objects_v2",
         {"Contents": [{"Key": one, "Size": 6, "LastModified": MODIFIED}], "IsTruncated": True,
          "NextContinuationToken": "page-2"},
         {"Bucket": "tb-bucket", "Prefix": prefix}),
        ("list_objects_v2",
         {"Contents": [{"Key": two, "Size": 5, "LastModified": MODIFIED}], "IsTruncated": False},
         {"Bucket": "tb-bucket", "Prefix": prefix, "ContinuationToken": "page-2"}),
        s3_object("tb-bucket", one, b"events"),
        s3_object("tb-bucket", two, b"trace"),
    ])  # fmt: skip
    seen: list[Any] = []
    monkeypatch.setattr(_tensorboard, "s3_client", lambda config: seen.append(config) or client)
    exp = world.api(world.session.get(world.api.Experiment, experiment))
    result = world.api(exp.download_tensorboard(out / "tb"))
    stubber.assert_no_pending_responses()
    assert files_of(result) == {
        f"trial/{trial}/events.out.tfevents.1.h": b"events",
        f"trial/{trial}/plugins/profile/x/h#0.trace.json.gz": b"trace",
    }
    assert (result / f"trial/{trial}/events.out.tfevents.1.h").stat().st_mtime == (
        MODIFIED.timestamp()
    )
    assert seen[0]["bucket"] == "tb-bucket" and seen[0]["access_key"] == "a"


def test_s3_client_follows_the_storage_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(boto3, "client", lambda *a, **k: calls.append((a, k)) or "client")
    config = {"type": "s3", "bucket": "b", "endpoint_url": "http://minio:9000",
              "access_key": "ak", "secret_key": "sk", "prefix": None}  # fmt: skip
    assert _tensorboard.s3_client(config) == "client"
    assert calls == [(("s3",), {"endpoint_url": "http://minio:9000", "aws_access_key_id": "ak",
                                "aws_secret_access_key": "sk"})]  # fmt: skip


@pytest.mark.parametrize(
    "name", ["../../../escaped", "a/../../b", "..\\..\\windows", "nul\x00byte"]
)
def test_object_keys_cannot_leave_the_destination(
    world: World, out: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    experiment, trial = seed_with_storage(world, {"type": "s3", "bucket": "b"})
    key = layout_key("", experiment, trial, name)
    client, _ = stubbed_s3([
        ("list_objects_v2", {"Contents": [{"Key": key, "Size": 1}], "IsTruncated": False},
         {"Bucket": "b", "Prefix": f"{CLUSTER_ID}/tensorboard/experiment/{experiment}/"}),
    ])  # fmt: skip
    monkeypatch.setattr(_tensorboard, "s3_client", lambda config: client)
    exp = world.api(world.session.get(world.api.Experiment, experiment))
    with pytest.raises(UnsafeArchive):
        world.api(exp.download_tensorboard(out / "tb"))
    assert list(out.iterdir()) == []
    assert not (out.parent / "escaped").exists()


def test_s3_without_boto3_names_the_extra(
    world: World, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment, _ = seed_with_storage(world, {"type": "s3", "bucket": "b"})
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 raises ImportError
    exp = world.api(world.session.get(world.api.Experiment, experiment))
    with pytest.raises(ConfigurationError, match=r"needs boto3.*pip install 'detorm\[s3\]'"):
        world.api(exp.download_tensorboard(out / "tb"))
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("kind", "module", "extra"),
    [("gcs", "google.cloud.storage", "gcs"), ("azure", "azure.storage.blob", "azure")],
)
def test_gcs_and_azure_without_their_library_name_the_extra(
    world: World, out: Path, monkeypatch: pytest.MonkeyPatch, kind: str, module: str, extra: str
) -> None:
    storage = {"type": kind, "bucket": "b", "container": "c", "connection_string": "x"}
    experiment, _ = seed_with_storage(world, storage)
    monkeypatch.setitem(sys.modules, module, None)
    exp = world.api(world.session.get(world.api.Experiment, experiment))
    with pytest.raises(ConfigurationError, match=rf"pip install 'detorm\[{extra}\]'"):
        world.api(exp.download_tensorboard(out / "tb"))


def test_a_client_error_is_a_download_error(
    world: World, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment, _ = seed_with_storage(world, {"type": "s3", "bucket": "b"})
    client, stubber = stubbed_s3([])
    stubber.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
    monkeypatch.setattr(_tensorboard, "s3_client", lambda config: client)
    exp = world.api(world.session.get(world.api.Experiment, experiment))
    with pytest.raises(DownloadError, match="listing s3://b/.*AccessDenied"):
        world.api(exp.download_tensorboard(out / "tb"))


class FakeBlob(SimpleNamespace):
    pass


class FakeGCS:
    """The calls the GCS storage makes of a google.cloud.storage.Client."""

    def __init__(self, bucket: str, objects: dict[str, bytes]) -> None:
        self.bucket_name = bucket
        self.objects = objects
        self.prefixes: list[str] = []

    def list_blobs(self, bucket: str, *, prefix: str) -> Iterator[FakeBlob]:
        assert bucket == self.bucket_name
        self.prefixes.append(prefix)
        for name, content in sorted(self.objects.items()):
            if name.startswith(prefix):
                yield FakeBlob(name=name, size=len(content), updated=MODIFIED)

    def bucket(self, name: str) -> Any:
        assert name == self.bucket_name
        objects = self.objects
        return SimpleNamespace(
            blob=lambda key: SimpleNamespace(open=lambda mode: io.BytesIO(objects[key]))
        )


def test_gcs_reads_the_prefix_of_the_bucket(
    world: World, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment, trial = seed_with_storage(world, {"type": "gcs", "bucket": "g", "prefix": "p"})
    other = layout_key("p/", experiment + 1000, trial, "events.out.tfevents.x")
    fake = FakeGCS("g", {
        layout_key("p/", experiment, trial, "events.out.tfevents.1.h"): b"gcs events",
        layout_key("p/", experiment, trial, "sub/"): b"",  # a "folder" placeholder object
        other: b"another experiment's",
    })  # fmt: skip
    monkeypatch.setattr(_tensorboard, "gcs_client", lambda config: fake)
    exp = world.api(world.session.get(world.api.Experiment, experiment))
    result = world.api(exp.download_tensorboard(out / "tb", trials=[trial]))
    assert files_of(result) == {f"trial/{trial}/events.out.tfevents.1.h": b"gcs events"}
    assert (result / f"trial/{trial}/sub").is_dir()
    assert fake.prefixes == [f"p/{CLUSTER_ID}/tensorboard/experiment/{experiment}/trial/{trial}/"]


def test_a_listing_outside_the_prefix_is_refused(
    world: World, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment, _ = seed_with_storage(world, {"type": "gcs", "bucket": "g"})

    class Lying(FakeGCS):
        def list_blobs(self, bucket: str, *, prefix: str) -> Iterator[FakeBlob]:
            yield FakeBlob(name="somewhere/else", size=1, updated=None)

    monkeypatch.setattr(_tensorboard, "gcs_client", lambda config: Lying("g", {}))
    exp = world.api(world.session.get(world.api.Experiment, experiment))
    with pytest.raises(UnsafeArchive, match="an object outside the prefix listed"):
        world.api(exp.download_tensorboard(out / "tb"))


def test_an_object_is_copied_as_listed(
    world: World, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a file appended to between the listing and the read is copied as it was listed; one
    # that shrank is reported as truncated
    experiment, trial = seed_with_storage(world, {"type": "gcs", "bucket": "g"})
    key = layout_key("", experiment, trial, "events.out.tfevents.1.h")

    class Growing(FakeGCS):
        def list_blobs(self, bucket: str, *, prefix: str) -> Iterator[FakeBlob]:
            yield FakeBlob(name=key, size=self.listed, updated=None)

    fake = Growing("g", {key: b"0123456789"})
    monkeypatch.setattr(_tensorboard, "gcs_client", lambda config: fake)
    exp = world.api(world.session.get(world.api.Experiment, experiment))
    fake.listed = 4  # type: ignore[attr-defined]
    result = world.api(exp.download_tensorboard(out / "tb"))
    assert files_of(result) == {f"trial/{trial}/events.out.tfevents.1.h": b"0123"}
    fake.listed = 12  # type: ignore[attr-defined]
    with pytest.raises(DownloadError, match="holds 10 bytes, not the 12 declared"):
        world.api(exp.download_tensorboard(out / "again"))
    assert not (out / "again").exists()


class FakeAzure:
    """The calls the Azure storage makes of a BlobServiceClient and its ContainerClient."""

    def __init__(self, container: str, objects: dict[str, bytes]) -> None:
        self.container = container
        self.objects = objects
        self.prefixes: list[str] = []

    def get_container_client(self, container: str) -> FakeAzure:
        assert container == self.container
        return self

    def list_blobs(self, *, name_starts_with: str) -> Iterator[FakeBlob]:
        self.prefixes.append(name_starts_with)
        for name, content in sorted(self.objects.items()):
            if name.startswith(name_starts_with):
                yield FakeBlob(name=name, size=len(content), last_modified=MODIFIED)

    def download_blob(self, name: str) -> io.BytesIO:
        return io.BytesIO(self.objects[name])


def test_azure_reads_the_container_and_its_sub_path(
    world: World, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = {"type": "azure", "container": "tb/team/", "connection_string": "cs"}
    experiment, trial = seed_with_storage(world, storage)
    fake = FakeAzure("tb", {
        layout_key("team/", experiment, trial, "events.out.tfevents.1.h"): b"azure events",
        layout_key("team/", experiment, trial, "../../../../../../oops"): b"x",
    })  # fmt: skip
    monkeypatch.setattr(_tensorboard, "azure_client", lambda config: fake)
    exp = world.api(world.session.get(world.api.Experiment, experiment))
    with pytest.raises(UnsafeArchive, match=r"the path leaves the destination \('..'\)"):
        world.api(exp.download_tensorboard(out / "tb"))
    del fake.objects[layout_key("team/", experiment, trial, "../../../../../../oops")]
    result = world.api(exp.download_tensorboard(out / "tb"))
    assert files_of(result) == {f"trial/{trial}/events.out.tfevents.1.h": b"azure events"}
    assert fake.prefixes[-1] == f"team/{CLUSTER_ID}/tensorboard/experiment/{experiment}/"


def test_azure_client_follows_the_storage_config() -> None:
    # real azure-storage-blob clients; building them sends nothing
    key = "a2V5" * 11  # base64
    connection = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key};EndpointSuffix=core.windows.net"  # fmt: skip
    by_string = _tensorboard.azure_client({"type": "azure", "connection_string": connection})
    assert by_string.account_name == "acct"
    by_url = _tensorboard.azure_client(
        {"type": "azure", "account_url": "https://other.blob.core.windows.net", "credential": "sas"}
    )
    assert by_url.account_name == "other"
    assert by_url.get_container_client("tb").container_name == "tb"


def test_azure_needs_a_connection_string_or_an_account_url() -> None:
    with pytest.raises(DownloadError, match="names no connection_string or account_url"):
        _tensorboard.azure_client({"type": "azure", "container": "c"})


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ({"type": "s3", "bucket": "b", "prefix": "a/../.."}, "prefix 'a/../..' contains '..'"),
        ({"type": "s3"}, "the s3 checkpoint storage names no bucket"),
        ({"type": "hdfs", "path": "/x"}, "'hdfs' checkpoint storage, which detorm cannot read"),
    ],
)
def test_storage_configs_that_cannot_be_read(
    world: World, out: Path, storage: dict[str, Any], message: str
) -> None:
    experiment, _ = seed_with_storage(world, storage)
    exp = world.api(world.session.get(world.api.Experiment, experiment))
    with pytest.raises(DownloadError, match=message.replace("(", r"\(").replace(".", r"\.")):
        world.api(exp.download_tensorboard(out / "tb"))
    assert list(out.iterdir()) == []


def test_tensorboard_directory_is_the_harness_sync_path() -> None:
    from determined.tensorboard import get_experiment_sync_path, get_sync_path

    assert _tensorboard.tensorboard_directory("c", 3, 7) == f"{get_sync_path('c', '3', '7')}/"
    assert _tensorboard.tensorboard_directory("c", 3) == f"{get_experiment_sync_path('c', '3')}/"


# --- end to end: an experiment run by detorm.local's simulation -----------------------------------


def test_the_files_of_a_simulated_experiment(
    environ: dict[str, str], api_mode: Mode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detorm.local import _scheduler

    monkeypatch.setattr(_scheduler, "PULLING_SECONDS", 0.01)
    monkeypatch.setattr(_scheduler, "STARTING_SECONDS", 0.01)
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("print('training')\n")
    config = {
        "name": "tensorboard-e2e",
        "entrypoint": "python3 train.py",
        "searcher": {"name": "grid", "metric": "validation_loss", "max_length": 200},
        "hyperparameters": {"lr": {"type": "categorical", "vals": [0.1, 0.01]}},
    }
    with (
        LocalMaster(process=False, time_scale=50.0) as master,
        logged_in(api_mode, master.url, environ) as api,
    ):
        exp = api(api.Experiment.create(config, code, session=api.session))
        assert api(exp.wait(timeout=120)).name == "COMPLETED"
        api(exp.refresh())
        assert len(exp.trial_ids) == 2
        result = api(exp.download_tensorboard(tmp_path / "tb"))
        storage = tensorboard_root(CheckpointStorage.of(master.db_path).root, exp.id)
        downloaded = files_of(result)
        assert downloaded == files_of(storage)
        for trial_id in exp.trial_ids:
            events = [n for n in downloaded if n.startswith(f"trial/{trial_id}/events.out.")]
            assert len(events) == 1
            assert b"brain.Event:2" in downloaded[events[0]]
            assert b"Determined/validation_loss" in downloaded[events[0]]
        api(exp.delete_tensorboard_files())
        assert not storage.exists()
