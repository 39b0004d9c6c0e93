"""Checkpoint archives and experiment code on detorm.local, as ``core_checkpoint.go``,
``core_experiment.go``, ``api_experiment.go`` and ``cache/cache.go`` serve them."""

from __future__ import annotations

import base64
import gzip
import io
import json
import shutil
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from detorm.local import LocalMaster, Seeder, default_config
from detorm.local._sniff import detect_content_type
from detorm.local._storage import CheckpointStorage, tar_end, tar_header
from tests.conftest import error_of, login

RESOURCES = {
    "metadata.json": 400, "code/": 0, "code/model_def.py": 1200, "state_dict.pth": 300_000,
    "z/deep/last.bin": 10,
}  # fmt: skip


@dataclass
class World:
    api: httpx.Client
    master: LocalMaster
    storage: CheckpointStorage
    experiment: int
    trial: int
    checkpoint: str  # COMPLETED, the files of RESOURCES
    url: str

    def stored(self, uuid: str) -> dict[str, bytes]:
        root = self.storage.directory(uuid)
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        experiment = seed.experiment(name="resnet (v2) / ablation: α")
        trial = seed.trial(experiment)
        checkpoint = seed.checkpoint(
            trial, total_batches=100, resources=RESOURCES, metadata={"note": "x"}
        )
    storage = CheckpointStorage.of(local_master.db_path)
    yield World(api, local_master, storage, experiment, trial, checkpoint, local_master.url)


def members(response: httpx.Response) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(response.content)) as archive:
        out = {}
        for member in archive:
            source = archive.extractfile(member)
            assert source is not None
            out[member.name] = source.read()
        return out


# --- the storage the Seeder writes ------------------------------------------------------------


def test_seeded_checkpoints_have_their_files_at_the_listed_sizes(world: World) -> None:
    stored = world.stored(world.checkpoint)
    assert {name: len(data) for name, data in stored.items()} == {
        name: size for name, size in RESOURCES.items() if not name.endswith("/")
    }
    metadata = json.loads(stored["metadata.json"])  # the checkpoint metadata, padded to size
    assert metadata == {
        "determined_version": "0.38.1",
        "steps_completed": 100,
        "format": "pickle",
        "note": "x",
    }
    assert stored["state_dict.pth"] == bytes(300_000)  # a large file is sparse
    assert stored["code/model_def.py"] != bytes(1200)  # a small one has deterministic content
    assert (world.storage.directory(world.checkpoint) / "code").is_dir()


def test_the_default_config_points_at_the_storage(world: World) -> None:
    config = world.api.get(f"/api/v1/experiments/{world.experiment}").json()["experiment"]["config"]
    storage = config["checkpoint_storage"]
    assert storage["type"] == "shared_fs"
    assert Path(storage["host_path"], storage["storage_path"]) == world.storage.root
    assert world.storage.root == world.master.db_path.parent / "checkpoints"


def test_other_storage_and_deleted_checkpoints_are_left_alone(local_master: LocalMaster) -> None:
    s3 = {**default_config(name="s3"), "checkpoint_storage": {"type": "s3", "bucket": "b"}}
    with Seeder(local_master.database) as seed:
        exp = seed.experiment(name="s3", config=s3)
        trial = seed.trial(exp)
        deleted = seed.checkpoint(trial, total_batches=1, state="DELETED")
    with Seeder(local_master.database, checkpoint_files=False) as seed:
        skipped = seed.checkpoint(trial, total_batches=2)
    storage = CheckpointStorage.of(local_master.db_path)
    assert not storage.directory(deleted).exists()
    assert not storage.directory(skipped).exists()
    api = login(local_master.url)
    assert api.get(f"/api/v1/experiments/{exp}").json()["experiment"]["config"]["checkpoint_storage"] == {
        "type": "s3", "bucket": "b",
    }  # fmt: skip


def test_an_explicit_default_config_keeps_its_storage_which_means_this_one(
    local_master: LocalMaster, api: httpx.Client
) -> None:
    # The demo passes default_config(...) itself: its rows must not depend on the database path.
    with Seeder(local_master.database) as seed:
        exp = seed.experiment(name="demo-like", config=default_config(name="demo-like"))
        uuid = seed.checkpoint(seed.trial(exp), total_batches=1, resources={"a.bin": 5})
    storage = api.get(f"/api/v1/experiments/{exp}").json()["experiment"]["config"][
        "checkpoint_storage"
    ]
    assert (storage["host_path"], storage["storage_path"]) == ("/tmp", "determined-checkpoint")
    response = api.get(f"/checkpoints/{uuid}")
    assert members(response) == {
        "a.bin": CheckpointStorage.of(local_master.db_path)
        .directory(uuid)
        .joinpath("a.bin")
        .read_bytes()
    }


# --- GET /checkpoints/{uuid} ------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [None, "*/*", "application/*", "application/x-tar"])
def test_tar_is_the_default_with_a_dry_run_content_length(world: World, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {"Accept": ""}
    response = world.api.get(f"/checkpoints/{world.checkpoint}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-tar"
    assert int(response.headers["content-length"]) == len(response.content)
    # filepath.Walk order, only files, paths relative to the checkpoint
    assert list(members(response)) == [
        "code/model_def.py",
        "metadata.json",
        "state_dict.pth",
        "z/deep/last.bin",
    ]
    assert members(response) == world.stored(world.checkpoint)


def test_tar_headers_are_written_like_the_master(world: World) -> None:
    response = world.api.get(f"/checkpoints/{world.checkpoint}")
    with tarfile.open(fileobj=io.BytesIO(response.content)) as archive:
        first = archive.next()
    assert first is not None
    assert (first.mode, first.mtime, first.uid, first.uname, first.type) == (
        0o666,
        0,
        0,
        "",
        tarfile.REGTYPE,
    )
    # two zero blocks at the end, no padding to a 10 KiB record
    assert response.content.endswith(tar_end())
    expected = sum(
        len(tar_header(n, s)) + s + (-s % 512) for n, s in RESOURCES.items() if not n.endswith("/")
    )
    assert len(response.content) == expected + 1024


def test_gzip_is_a_gzipped_tar_framed_like_go(world: World) -> None:
    response = world.api.get(
        f"/checkpoints/{world.checkpoint}", headers={"Accept": "application/gzip"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/gzip"
    assert "content-length" not in response.headers
    assert response.content[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    tar = gzip.decompress(response.content)
    assert tar.endswith(tar_end())
    assert members(httpx.Response(200, content=tar)) == world.stored(world.checkpoint)


def test_zip_holds_the_same_files(world: World) -> None:
    response = world.api.get(
        f"/checkpoints/{world.checkpoint}", headers={"Accept": "application/zip"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == [
            "code/model_def.py",
            "metadata.json",
            "state_dict.pth",
            "z/deep/last.bin",
        ]
        assert {n: archive.read(n) for n in archive.namelist()} == world.stored(world.checkpoint)


def test_an_empty_checkpoint_directory_is_an_empty_tar(world: World) -> None:
    with Seeder(world.master.database) as seed:
        empty = seed.checkpoint(world.trial, total_batches=5, resources={})
    response = world.api.get(f"/checkpoints/{empty}")
    assert response.status_code == 200
    assert response.content == tar_end() and response.headers["content-length"] == "1024"


@pytest.mark.parametrize(
    "accept", ["text/plain", "application/json", "application/gzip, */*", "APPLICATION/ZIP"]
)
def test_other_media_types_are_415(world: World, accept: str) -> None:
    response = world.api.get(f"/checkpoints/{world.checkpoint}", headers={"Accept": accept})
    assert response.status_code == 415
    assert response.content == (
        json.dumps({"message": f"unsupported media type to download a checkpoint: '{accept}'"},
                   separators=(",", ":")).encode() + b"\n"
    )  # fmt: skip


def test_authentication_comes_first(world: World) -> None:
    plain = httpx.get(f"{world.url}/checkpoints/not-a-uuid", headers={"Accept": "text/plain"})
    assert (plain.status_code, plain.json()) == (401, {"message": "Unauthorized"})
    token = world.api.headers["Authorization"].removeprefix("Bearer ")
    basic = httpx.get(
        f"{world.url}/checkpoints/{world.checkpoint}", headers={"Authorization": "Basic x"}
    )
    assert basic.status_code == 401
    unknown = httpx.get(
        f"{world.url}/checkpoints/{world.checkpoint}", headers={"Authorization": "Bearer nope"}
    )
    assert unknown.status_code == 401
    cookie = httpx.get(f"{world.url}/checkpoints/{world.checkpoint}", cookies={"auth": token})
    assert cookie.status_code == 200 and members(cookie) == world.stored(world.checkpoint)


def test_an_inactive_user_is_403(world: World) -> None:
    with Seeder(world.master.database) as seed:
        seed.user("gone", active=True)
    client = login(world.url, "gone")
    with Seeder(world.master.database) as seed:
        from sqlmodel import select

        from detorm.local import _tables as t

        row = seed.db.exec(select(t.UserRow).where(t.UserRow.username == "gone")).one()
        row.active = False
        seed.db.add(row)
    response = client.get(f"/checkpoints/{world.checkpoint}")
    assert (response.status_code, response.json()) == (403, {"message": "user not active"})


def test_bad_and_unknown_uuids(world: World) -> None:
    bad = world.api.get("/checkpoints/abc")
    assert (bad.status_code, bad.json()) == (
        400,
        {"message": "unable to parse checkpoint UUID abc: invalid UUID length: 3"},
    )
    missing = "00000000-0000-0000-0000-00000000000A"
    unknown = world.api.get(f"/checkpoints/{missing}")
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"message": f"checkpoint '{missing}' not found"},
    )
    upper = world.api.get(f"/checkpoints/{world.checkpoint.upper()}")  # uuid.Parse is case-blind
    assert upper.status_code == 200


def test_missing_storage_is_a_500_naming_the_directory(world: World) -> None:
    directory = world.storage.directory(world.checkpoint)
    shutil.rmtree(directory)
    tar = world.api.get(f"/checkpoints/{world.checkpoint}")
    assert (tar.status_code, tar.json()) == (500, {
        "message": f"unable to list checkpoint {world.checkpoint} files: lstat {directory}/: no such file or directory",
    })  # fmt: skip
    for accept in ("application/gzip", "application/zip"):
        other = world.api.get(f"/checkpoints/{world.checkpoint}", headers={"Accept": accept})
        assert (other.status_code, other.json()) == (500, {
            "message": f"unable to download checkpoint {world.checkpoint}: checkpoint archive failed, please"
            " verify that file system checkpoint storage is available to the server:"
            f" lstat {directory}/: no such file or directory",
        })  # fmt: skip


@pytest.mark.parametrize(
    ("storage", "status", "message"),
    [
        (
            {"type": "azure", "container": "c"},
            400,
            "checkpoint download via master is not supported for azure",
        ),
        ({"type": "shared_fs", "storage_path": "x"}, 400, "host_path must be set"),
    ],
)
def test_storage_the_master_cannot_proxy(
    local_master: LocalMaster, api: httpx.Client, storage: dict[str, str], status: int, message: str
) -> None:
    config = {**default_config(name="elsewhere"), "checkpoint_storage": storage}
    with Seeder(local_master.database) as seed:
        trial = seed.trial(seed.experiment(name="elsewhere", config=config))
        uuid = seed.checkpoint(trial, total_batches=1)
    response = api.get(f"/checkpoints/{uuid}")
    assert (response.status_code, response.json()) == (status, {"message": message})


def test_a_directory_storage_is_read_at_its_container_path(
    local_master: LocalMaster, api: httpx.Client, tmp_path: Path
) -> None:
    config = {
        **default_config(name="dir"),
        "checkpoint_storage": {"type": "directory", "container_path": str(tmp_path)},
    }
    with Seeder(local_master.database) as seed:
        trial = seed.trial(seed.experiment(name="dir", config=config))
        uuid = seed.checkpoint(trial, total_batches=1, resources={"a.txt": 3})
    CheckpointStorage(tmp_path).write_files(uuid, {"w.bin": b"weights", "sub/x": b"x"})
    assert members(api.get(f"/checkpoints/{uuid}")) == {"sub/x": b"x", "w.bin": b"weights"}


# --- experiment code: the RPCs ---------------------------------------------------------------------


def go_tar_gz(*entries: tuple[str, bytes | None]) -> bytes:
    """A model definition as the master stores it (directories without a trailing slash)."""
    data = bytearray()
    for name, content in entries:
        if content is None:
            data += tar_header(name, 0, mode=0o755, mtime=1_700_000_000, kind=tarfile.DIRTYPE)
        else:
            data += (
                tar_header(name, len(content), mode=0o644, mtime=1_700_000_000)
                + content
                + bytes(-len(content) % 512)
            )
    return gzip.compress(bytes(data + tar_end()), mtime=0)


def code_experiment(master: LocalMaster, model_definition: bytes) -> int:
    with Seeder(master.database) as seed:
        return seed.experiment(name="code", model_definition=model_definition)


def test_default_model_definition_has_the_code_and_the_config(world: World) -> None:
    b64 = world.api.get(f"/api/v1/experiments/{world.experiment}/model_def").json()["b64Tgz"]
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(b64)), mode="r:gz") as archive:
        names = archive.getnames()
        config = archive.extractfile("const.yaml")
        assert config is not None
        assert json.loads(config.read())["name"] == "resnet (v2) / ablation: α"
    assert names == ["const.yaml", "model_def.py"]


def test_model_def_is_the_stored_archive_in_base64(
    local_master: LocalMaster, api: httpx.Client
) -> None:
    archive = go_tar_gz(("a.py", b"print(1)\n"))
    exp = code_experiment(local_master, archive)
    assert api.get(f"/api/v1/experiments/{exp}/model_def").json() == {
        "b64Tgz": base64.b64encode(archive).decode()
    }
    empty = code_experiment(local_master, b"")
    assert api.get(f"/api/v1/experiments/{empty}/model_def").json() == {"b64Tgz": ""}
    missing = api.get("/api/v1/experiments/999/model_def")
    assert missing.status_code == 404 and error_of(missing) == {
        "code": 5, "reason": "NotFound", "error": "experiment '999' not found",
    }  # fmt: skip


def test_file_tree_nests_members_in_archive_order(
    local_master: LocalMaster, api: httpx.Client
) -> None:
    archive = go_tar_gz(
        ("model_def.py", b"import torch\n"), ("data", None), ("data/img.png", b"\x89PNG\r\n\x1a\nrest"),
        ("data/sub", None), ("data/sub/x.bin", b"\x00\x01\x02"), ("README.md", b"<html> hi"),
    )  # fmt: skip
    exp = code_experiment(local_master, archive)
    body = api.get(f"/api/v1/experiments/{exp}/file_tree").json()

    def shape(nodes: list[dict[str, object]]) -> list[object]:
        return [(n["name"], n["path"], n["isDir"], n["contentLength"], n["contentType"], shape(n["files"]))  # type: ignore[arg-type]
                for n in nodes]  # fmt: skip

    assert shape(body["files"]) == [
        ("model_def.py", "model_def.py", False, 13, "text/plain; charset=utf-8", []),
        ("data", "data", True, 0, "text/plain; charset=utf-8", [
            ("img.png", "data/img.png", False, 12, "image/png", []),
            ("sub", "data/sub", True, 0, "text/plain; charset=utf-8", [
                ("x.bin", "data/sub/x.bin", False, 3, "application/octet-stream", []),
            ]),
        ]),
        ("README.md", "README.md", False, 9, "text/html; charset=utf-8", []),
    ]  # fmt: skip
    assert body["files"][0]["modifiedTime"] == "2023-11-14T22:13:20Z"
    assert list(body["files"][0]) == [
        "path",
        "name",
        "modifiedTime",
        "contentLength",
        "isDir",
        "contentType",
        "files",
    ]


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (b"", "EOF"),
        (b"not gzip", "gzip: invalid header"),
        (go_tar_gz(("../escape.py", b"x")), "../escape.py is not a valid path"),
        (
            go_tar_gz(("pkg/mod.py", b"x")),
            "open /var/cache/determined/exp_model_def/{id}/pkg/mod.py: no such file or directory",
        ),
    ],
)
def test_file_tree_failures_are_plain_errors(
    local_master: LocalMaster, api: httpx.Client, archive: bytes, message: str
) -> None:
    exp = code_experiment(local_master, archive)
    response = api.get(f"/api/v1/experiments/{exp}/file_tree")
    assert response.status_code == 500
    assert error_of(response) == {"code": 13, "reason": "Internal", "error": message.format(id=exp)}


def test_file_returns_one_file_in_base64(local_master: LocalMaster, api: httpx.Client) -> None:
    exp = code_experiment(local_master, go_tar_gz(("pkg", None), ("pkg/mod.py", b"x = 1\n")))
    found = api.post(f"/api/v1/experiments/{exp}/file", json={"path": "pkg/mod.py"})
    assert found.json() == {"file": base64.b64encode(b"x = 1\n").decode()}
    for path in ("pkg", "nope.py", "", "./pkg/mod.py"):
        response = api.post(f"/api/v1/experiments/{exp}/file", json={"path": path})
        assert response.status_code == 500
        assert error_of(response) == {
            "code": 13,
            "reason": "Internal",
            "error": "file does not exist",
        }


# --- experiment code: the Echo routes ----------------------------------------------------------------


def test_echo_model_def_is_the_archive_as_an_attachment(world: World) -> None:
    response = world.api.get(f"/experiments/{world.experiment}/model_def")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-gtar"
    # only [A-Za-z0-9_ -()[].{}] survive in the name
    assert response.headers["content-disposition"] == (
        f'attachment; filename="exp{world.experiment}_resnet (v2)  ablation _model_def.tar.gz"'
    )
    b64 = world.api.get(f"/api/v1/experiments/{world.experiment}/model_def").json()["b64Tgz"]
    assert response.content == base64.b64decode(b64)


def test_echo_file_download_sniffs_the_type(local_master: LocalMaster, api: httpx.Client) -> None:
    exp = code_experiment(
        local_master, go_tar_gz(("img.png", b"\x89PNG\r\n\x1a\n..."), ("a.py", b"x = 1\n"))
    )
    image = api.get(f"/experiments/{exp}/file/download", params={"path": "img.png"})
    assert (image.status_code, image.headers["content-type"]) == (200, "image/png")
    assert image.headers["content-disposition"] == f'attachment; filename="exp{exp}/img.png"'
    assert image.content == b"\x89PNG\r\n\x1a\n..."
    text = api.get(f"/experiments/{exp}/file/download?path=a.py")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"


def test_echo_code_route_errors(local_master: LocalMaster, api: httpx.Client) -> None:
    exp = code_experiment(local_master, go_tar_gz(("a.py", b"x")))
    cases = [
        (f"/experiments/{exp}/file/download", 400, "missing parameter: path"),
        (f"/experiments/{exp}/file/download?path=b.py", 500, "file does not exist"),
        ("/experiments/abc/model_def", 400, 'unable to parse to int: abc: strconv.Atoi: parsing "abc": invalid syntax'),
        ("/experiments/99999999999999999999/model_def", 400,
         'unable to parse to int: 99999999999999999999: strconv.Atoi: parsing "99999999999999999999": value out of range'),
        ("/experiments/404/model_def", 404, "experiment '404' not found"),
        ("/experiments/+404/file/download?path=a.py", 404, "experiment '404' not found"),
    ]  # fmt: skip
    for url, status, message in cases:
        response = api.get(url)
        assert (response.status_code, response.json()) == (status, {"message": message}), url
    assert httpx.get(f"{local_master.url}/experiments/{exp}/model_def").status_code == 401


# --- content sniffing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "text/plain; charset=utf-8"),
        (b"  <!DOCTYPE html>", "text/html; charset=utf-8"),
        (b"<?xml version='1.0'?>", "text/xml; charset=utf-8"),
        (b"%PDF-1.4", "application/pdf"),
        (b"\xef\xbb\xbfhello", "text/plain; charset=utf-8"),
        (b"GIF89a...", "image/gif"),
        (b"\x1f\x8b\x08\x00", "application/x-gzip"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "video/mp4"),
        (b"\x00asm\x01", "application/wasm"),
        (b"plain\x00binary", "application/octet-stream"),
        (b"#!/bin/sh\necho hi\n", "text/plain; charset=utf-8"),
    ],
)
def test_detect_content_type_matches_go(data: bytes, expected: str) -> None:
    assert detect_content_type(data) == expected
