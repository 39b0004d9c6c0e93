"""Context directories (``detorm._io._context``): the same ``files`` as the det CLI, and refusals.

The det CLI 0.38.1 (``determined.common.context.read_legacy_context``) and pathspec are the
oracles: for generated trees, ``.detignore`` files, includes and patterns, detorm must build
exactly what they build, and refuse where they fail. The attacker's tests check the deliberate
differences: links out of the context, FIFOs, huge files.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import socket
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pathspec
import pytest
from determined.common import constants
from determined.common.context import read_legacy_context
from hypothesis import given, settings
from hypothesis import strategies as st
from pathspec.patterns.gitwildmatch import GitWildMatchPattern

from detorm._io._context import (
    DEFAULT_DETIGNORE,
    MAX_CONTEXT_SIZE,
    ContextWarning,
    read_context,
)
from detorm._io._wildmatch import PathSpec, PatternError
from detorm.errors import ContextError, InvalidType

pytestmark = [
    # GitWildMatchPattern is deprecated in pathspec 1.x (the CLI still uses it), and re warns
    # about classes such as "[[:alpha:]]" in both implementations.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

QUICK = settings(derandomize=True, database=None, deadline=None, max_examples=150)
MIB = 1 << 20


# --- the two implementations ------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """An implementation refused the context (the CLI raises various errors, detorm one)."""

    error: str


Result = list[dict[str, Any]] | Refused


def cli(
    root: Path | None, includes: Sequence[Path | str] = (), limit: int = MAX_CONTEXT_SIZE
) -> Result:
    """The det CLI's context, or how it failed (its progress messages are swallowed)."""
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            return read_legacy_context(root, [Path(i) for i in includes], limit)
        except (ValueError, OSError, RuntimeError, re.error) as err:
            return Refused(f"{type(err).__name__}: {err}")


def ours(
    root: Path | None, includes: Sequence[Path | str] = (), limit: int = MAX_CONTEXT_SIZE
) -> Result:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ContextWarning)
        try:
            return read_context(root, includes, limit=limit)
        except ContextError as err:
            return Refused(str(err))


def assert_same(
    root: Path | None, includes: Sequence[Path | str] = (), limit: int = MAX_CONTEXT_SIZE
) -> Result:
    """detorm builds what the CLI builds (same dicts, same order), or both refuse."""
    expected = cli(root, includes, limit)
    actual = ours(root, includes, limit)
    if isinstance(expected, Refused) or isinstance(actual, Refused):
        assert isinstance(expected, Refused) and isinstance(actual, Refused), (expected, actual)
    else:
        assert [list(e) for e in actual] == [list(e) for e in expected]  # keys in the same order
        assert actual == expected
    return actual


def paths(result: Result) -> list[str]:
    assert not isinstance(result, Refused), result
    return [e["path"] for e in result]


def entry(result: Result, path: str) -> dict[str, Any]:
    assert not isinstance(result, Refused), result
    (found,) = [e for e in result if e["path"] == path]
    return found


def content(result: Result, path: str) -> bytes:
    return base64.b64decode(entry(result, path)["content"])


# --- generated trees ----------------------------------------------------------------------------

# Names the default patterns and the generated ones hit, and names that are hard to match.
NAMES = [
    "a", "b.txt", "c.py", "d.pyc", "e.pyo", "f$py.class", "sub", "deep", "__pycache__", ".git",
    ".vscode", ".idea", ".mypy_cache", "terraform", "terraform_data", "terraform.tfstate.1",
    "terraform.tfvars.json", ".terraform.lock.hcl", "shared_fs", "x y", "q ", "#h", "!n", "[b]",
    "a\\b", "$", "nl\n", ".detignore",
]  # fmt: skip
Tree = dict[str, Any]  # name -> sub-tree, or (bytes, executable)
leaves = st.tuples(st.binary(max_size=7), st.booleans())
generated: st.SearchStrategy[Any] = st.recursive(
    leaves, lambda sub: st.dictionaries(st.sampled_from(NAMES), sub, max_size=5), max_leaves=20
)
# Every tree holds what the default patterns leave out, next to what they keep.
BASE: Tree = {
    "main.py": (b"import os\n", False),
    "m.pyc": (b"\0", False),
    "__pycache__": {"main.cpython-311.pyc": (b"\0", False)},
    ".git": {"HEAD": (b"ref", False)},
    "shared_fs": {"x": (b"", False)},
    "sub": {
        "deep": {"a": (b"a", True)},
        "terraform.tfstate.1": (b"{}", False),
        "b.txt": (b"", False),
    },
}


def _over_base(tree: Any) -> Tree:
    return {**BASE, **tree} if isinstance(tree, dict) else dict(BASE)


trees: st.SearchStrategy[Tree] = st.one_of(
    generated.map(_over_base), generated.filter(lambda t: isinstance(t, dict))
)

# Pattern lines: atoms joined into segments, segments into a path, with the line's options.
ATOMS = [
    "a", "b", "c", "*", "**", "?", ".py", ".pyc", "[ab]", "[!a]", "[^b]", "[]a]", "[a-c]", "sub",
    "deep", "__pycache__", "terraform*", "\\#h", "#", "!", "\\!n", " ", "\\ ", "[", "\\", "x y",
    ".", "$", "\\*", ".txt", "tf*", "*.py[co]", "a*b", "?b", "*a",
]  # fmt: skip
segments = st.lists(st.sampled_from(ATOMS), min_size=1, max_size=3).map("".join)
patterns = st.builds(
    lambda neg, anchor, segs, slash, tail: neg + anchor + "/".join(segs) + slash + tail,
    st.sampled_from(["", "", "!"]),
    st.sampled_from(["", "", "/", "**/"]),
    st.lists(st.one_of(segments, st.just("**")), min_size=1, max_size=3),
    st.sampled_from(["", "", "/"]),
    st.sampled_from(["", "", "", "", " ", "\t", "\\ "]),
)
pattern_lines = st.lists(
    st.one_of(patterns, st.sampled_from(["", "# comment", "/", "  "])), max_size=6
)
detignores = st.builds(
    lambda lines, newline, final: newline.join(lines) + (newline if final and lines else ""),
    pattern_lines,
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
)


def write_tree(directory: Path, tree: Tree) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in tree.items():
        path = directory / name
        if isinstance(value, dict):
            write_tree(path, value)
        else:
            data, executable = value
            path.write_bytes(data)
            path.chmod(0o755 if executable else 0o644)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the context, with a secret no context may send."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "id_rsa").write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    return directory


@pytest.fixture
def context(tmp_path: Path) -> Path:
    directory = tmp_path / "context"
    write_tree(directory, {"main.py": (b"print(1)\n", False), "sub": {"b.txt": (b"b", False)}})
    return directory


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    # Hypothesis runs many examples per test: each gets a fresh directory.
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


# --- oracle: whole contexts ---------------------------------------------------------------------


@QUICK
@given(tree=trees, detignore=detignores)
def test_generated_contexts_match_the_cli(tree: Tree, detignore: str) -> None:
    with scratch() as base:
        root = base / "context"
        write_tree(root, tree)
        if not (root / ".detignore").is_dir():
            (root / ".detignore").write_text(detignore)
        assert_same(root)


INCLUDE_NAMES = ["lib", "data.bin", "sub", "c.py", "deep"]


@QUICK
@given(
    tree=trees,
    detignore=detignores,
    includes=st.lists(
        st.tuples(
            st.sampled_from(INCLUDE_NAMES),
            st.one_of(leaves, trees),
            detignores,
            st.sampled_from(["{}", "./{}", "{}/../{}", "{}/"]),
        ),
        max_size=3,
    ),
    with_root=st.booleans(),
)
def test_generated_contexts_with_includes_match_the_cli(
    tree: Tree,
    detignore: str,
    includes: list[tuple[str, Any, str, str]],
    with_root: bool,
) -> None:
    with scratch() as base:
        root = base / "context"
        write_tree(root, tree)
        if not (root / ".detignore").is_dir():
            (root / ".detignore").write_text(detignore)
        spelled: list[str] = []
        for index, (name, value, include_detignore, spelling) in enumerate(includes):
            parent = base / f"include{index}"
            write_tree(parent, {name: value})
            if isinstance(value, dict) and not (parent / name / ".detignore").is_dir():
                (parent / name / ".detignore").write_text(include_detignore)
            spelled.append(str(parent / spelling.format(name, name)))
        result = assert_same(root if with_root else None, spelled)
        if not isinstance(result, Refused):
            assert not any(".." in p.split("/") for p in paths(result))


def test_the_default_patterns_and_limit_are_the_cli_s() -> None:
    assert list(DEFAULT_DETIGNORE) == constants.DEFAULT_DETIGNORE
    assert MAX_CONTEXT_SIZE == constants.MAX_CONTEXT_SIZE == 95 * MIB


def test_a_typical_project(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_tree(
        root,
        {
            "train.py": (b"import torch\n", False),
            "run.sh": (b"#!/bin/sh\n", True),
            "__pycache__": {"train.cpython-311.pyc": (b"\0", False)},
            ".git": {"config": (b"[remote]", False), "HEAD": (b"ref", False)},
            "terraform.tfstate": (b"{}", False),
            "data": {"big.bin": (b"0" * 100, False), "keep.bin": (b"1", False)},
            "shared_fs": {"x": (b"", False)},
            "nested": {"shared_fs": {"y": (b"", False)}, "notes.md": (b"n", False)},
        },
    )
    (root / ".detignore").write_text("# data\ndata/*\n!data/keep.bin\n**/notes.md\n")
    result = assert_same(root)
    assert sorted(paths(result)) == [
        "data", "data/keep.bin", "nested", "nested/shared_fs", "nested/shared_fs/y", "run.sh",
        "train.py",
    ]  # fmt: skip
    run, data = entry(result, "run.sh"), entry(result, "data")
    assert run["mode"] & 0o777 == 0o755 and run["type"] == ord("0") and run["uid"] == 0
    assert data["type"] == ord("5") and data["content"] == "" and isinstance(data["mtime"], int)


def test_nothing_to_send(tmp_path: Path) -> None:
    assert read_context(None) == [] == cli(None)
    assert read_context(None, []) == []
    (tmp_path / "empty").mkdir()
    assert_same(tmp_path / "empty")


def test_paths_may_be_str_or_pathlike(context: Path, tmp_path: Path) -> None:
    (tmp_path / "extra.txt").write_text("x")
    expected = cli(context, [tmp_path / "extra.txt"])
    assert read_context(str(context), [str(tmp_path / "extra.txt")]) == expected
    assert read_context(context, (tmp_path / "extra.txt",)) == expected


def test_includes_must_be_a_list_not_one_path(context: Path) -> None:
    with pytest.raises(InvalidType, match="list of paths"):
        read_context(None, str(context))  # type: ignore[arg-type]
    with pytest.raises(InvalidType, match="limit"):
        read_context(context, limit="1")  # type: ignore[arg-type]


# --- oracle: patterns ---------------------------------------------------------------------------

PATH_SEGMENTS = [
    "a", "b", "c", "ab", "a.py", "b.pyc", "sub", "deep", "__pycache__", "terraform.x", "tfa",
    "#h", "!n", "x y", "q ", "[b]", "a\\b", "$", ".", "*", "b.txt", "nl\n", " ",
]  # fmt: skip
match_paths = st.builds(
    lambda lead, segs, slash: lead + "/".join(segs) + slash,
    st.sampled_from(["", "", "", "/", "./"]),
    st.lists(st.sampled_from(PATH_SEGMENTS), min_size=1, max_size=4),
    st.sampled_from(["", "/"]),
)


def oracle_spec(lines: list[str]) -> pathspec.PathSpec[Any] | None:
    try:
        return pathspec.PathSpec.from_lines(GitWildMatchPattern, lines)
    except (ValueError, re.error):
        return None


def our_spec(lines: list[str]) -> PathSpec | None:
    try:
        return PathSpec(lines)
    except PatternError:
        return None


# Lines as a file gives them: most end with a newline, which is stripped with trailing spaces.
file_lines = st.lists(
    st.builds(
        str.__add__,
        st.one_of(patterns, st.sampled_from(["", "# c", "/"])),
        st.sampled_from(["", "\n"]),
    ),
    max_size=6,
)


@settings(derandomize=True, database=None, deadline=None, max_examples=600)
@given(
    lines=st.one_of(pattern_lines, file_lines), files=st.lists(match_paths, min_size=1, max_size=12)
)
def test_patterns_match_as_pathspec(lines: list[str], files: list[str]) -> None:
    expected, actual = oracle_spec(lines), our_spec(lines)
    assert (expected is None) == (actual is None), lines
    if expected is not None and actual is not None:
        for file in files:
            assert actual.match_file(file) == expected.match_file(file), (lines, file)


@pytest.mark.parametrize(
    ("line", "matched", "kept"),
    [
        ("*.py[co]", ["a.pyc", "d/b.pyo"], ["a.py", "a.pyx"]),
        ("__pycache__/", ["__pycache__/", "a/__pycache__/x"], ["__pycache__"]),
        ("/shared_fs", ["shared_fs", "shared_fs/x"], ["a/shared_fs"]),
        ("a/b", ["a/b", "a/b/c"], ["x/a/b"]),
        ("a/**/b", ["a/b", "a/x/y/b"], ["b"]),
        ("**/b", ["b", "x/y/b"], ["bb"]),
        ("a/**", ["a/x", "a/x/y"], ["a"]),
        ("\\#h", ["#h"], ["h"]),
        ("# comment", [], ["# comment"]),
        ("\\!n", ["!n"], ["n"]),
        ("q\\ ", ["q "], ["q"]),
        ("q   ", ["q"], ["q "]),
        ("[!a]", ["b"], ["a"]),
        ("?", ["a", "x/b"], ["ab"]),
        ("a*", ["a", "abc"], ["ba"]),
        ("a*b", ["ab", "axyb", "x/ab/c"], ["a/b", "a/xb"]),  # "*" and "?" stop at "/"
        ("a?b", ["axb"], ["a/b", "ab"]),
        ("[ab]c", ["ac", "bc"], ["cc", "[ab]c"]),
        ("[]a]", ["]", "a"], ["b"]),
        ("[a", [], ["[a", "a"]),  # an unclosed class: git drops the line
    ],
)
def test_pattern_examples(line: str, matched: list[str], kept: list[str]) -> None:
    expected = oracle_spec([line])
    actual = PathSpec([line])
    assert expected is not None
    for path in matched:
        assert actual.match_file(path) and expected.match_file(path), path
    for path in kept:
        assert not actual.match_file(path) and not expected.match_file(path), path


def test_last_match_wins() -> None:
    spec = PathSpec(["*.txt", "!keep.txt", "dir/"])
    assert spec.match_file("a.txt") and not spec.match_file("keep.txt")
    assert PathSpec(["!keep.txt", "*.txt"]).match_file("keep.txt")  # the later line decides
    assert spec.match_file("dir/") and not spec.match_file("dir")


@pytest.mark.parametrize("line", ["!", "a\\", "[z-a]", "x\\ \n"])
def test_lines_the_cli_fails_on_are_refused(line: str, context: Path) -> None:
    assert oracle_spec([line]) is None and our_spec([line]) is None
    (context / ".detignore").write_text(f"ok\n{line}")
    with pytest.raises(ContextError, match=r"\.detignore"):
        read_context(context)
    assert isinstance(cli(context), Refused)


# --- the size limit -------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[1], [2], [3], [4], [1, 1], [5, 7, 0], [0, 0], [3, 3, 3]])
def test_the_limit_boundary_is_the_cli_s(tmp_path: Path, sizes: list[int]) -> None:
    root = tmp_path / "context"
    write_tree(root, {f"f{i}": (b"x" * n, False) for i, n in enumerate(sizes)})
    # The CLI counts each file as len(base64) // 4 * 3: 3 * ceil(n / 3).
    counted = sum(-(-n // 3) * 3 for n in sizes)
    assert not isinstance(assert_same(root, limit=counted), Refused)
    if counted:
        assert isinstance(assert_same(root, limit=counted - 1), Refused)
    assert isinstance(assert_same(root, limit=-1), Refused)


def test_the_limit_covers_includes(tmp_path: Path, context: Path) -> None:
    (tmp_path / "blob").write_bytes(b"z" * 3000)
    assert isinstance(assert_same(context, [tmp_path / "blob"], limit=3000), Refused)
    assert not isinstance(assert_same(context, [tmp_path / "blob"], limit=3012), Refused)


def test_a_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    root = tmp_path / "context"
    root.mkdir()
    (root / "small.py").write_text("x = 1\n")
    with (root / "huge.bin").open("wb") as file:
        file.truncate(100 * MIB)  # sparse: takes no disk, but reading it would take 100 MiB
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ContextError) as refused:
            read_context(root, limit=1024)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1 and peak < MIB
    message = str(refused.value)
    assert "'huge.bin'" in message and "1.0 KiB" in message and "100.0 MiB" in message
    assert isinstance(refused.value, ValueError)


@pytest.mark.skipif(not os.path.exists("/proc/self/cmdline"), reason="needs /proc")
def test_a_file_larger_than_its_size_says_is_read_and_capped() -> None:
    # /proc files say they are empty: the CLI reads them anyway, and so does detorm, bounded.
    length = len(Path("/proc/self/cmdline").read_bytes())
    assert os.stat("/proc/self/cmdline").st_size == 0 < length
    result = assert_same(None, ["/proc/self/cmdline"])
    assert len(content(result, "cmdline")) == length
    assert isinstance(assert_same(None, ["/proc/self/cmdline"], limit=length - 4), Refused)


# --- paths and duplicates ---------------------------------------------------------------------


def test_the_context_must_be_an_existing_directory(tmp_path: Path, context: Path) -> None:
    with pytest.raises(ContextError, match="is a file"):
        read_context(context / "main.py")
    with pytest.raises(ContextError, match="does not exist"):
        read_context(tmp_path / "missing")
    with pytest.raises(ContextError, match="does not exist"):
        read_context(context, [tmp_path / "missing"])
    assert isinstance(cli(context / "main.py"), Refused)
    assert isinstance(cli(tmp_path / "missing"), Refused)
    assert isinstance(cli(context, [tmp_path / "missing"]), Refused)


def test_duplicate_top_level_paths_are_refused(tmp_path: Path, context: Path) -> None:
    write_tree(tmp_path / "a", {"sub": {"x": (b"", False)}})
    write_tree(tmp_path / "b", {"sub": (b"file", False), "lib": {}})
    for includes in ([tmp_path / "a" / "sub"], [tmp_path / "b" / "sub"]):
        assert isinstance(assert_same(context, includes), Refused)
        with pytest.raises(ContextError, match="'sub'"):
            read_context(context, includes)
    lib = tmp_path / "b" / "lib"
    assert isinstance(assert_same(None, [lib, lib]), Refused)
    # An ignored entry does not collide.
    (context / ".detignore").write_text("/sub\n")
    assert_same(context, [tmp_path / "a" / "sub"])


def test_includes_are_named_after_what_they_resolve_to(tmp_path: Path, context: Path) -> None:
    write_tree(tmp_path / "lib", {"sub": {"m.py": (b"m", False)}, "top.py": (b"t", False)})
    for spelled in ["lib/sub/..", "lib/./", "lib/sub/../../lib"]:
        result = assert_same(context, [str(tmp_path / spelled)])
        assert "lib" in paths(result) and "lib/top.py" in paths(result)
        assert not any(".." in p.split("/") for p in paths(result))
    # A link to an include is sent under its target's name, as the CLI does.
    (tmp_path / "alias").symlink_to(tmp_path / "lib")
    assert "lib/top.py" in paths(assert_same(context, [tmp_path / "alias"]))


def test_an_include_of_the_file_system_root_is_refused(context: Path) -> None:
    with pytest.raises(ContextError, match="no name"):
        read_context(context, ["/"])
    with pytest.raises(ContextError, match="no name"):
        read_context(context, ["/.."])
    assert isinstance(cli(context, ["/"]), Refused)


def test_a_detignore_directory_is_walked_like_any_directory(context: Path) -> None:
    write_tree(context / ".detignore", {"x": (b"x", False), ".detignore": (b"*", False)})
    result = assert_same(context)
    assert ".detignore/x" in paths(result) and ".detignore" in paths(result)
    assert ".detignore/.detignore" not in paths(result)


def test_an_undecodable_detignore_is_refused(context: Path) -> None:
    (context / ".detignore").write_bytes(b"\xff\xfe*\n")
    assert isinstance(assert_same(context), Refused)


# --- the attacker's tests ------------------------------------------------------------------


def test_a_link_to_a_file_outside_is_refused(context: Path, outside: Path) -> None:
    (context / "sub" / "key").symlink_to(outside / "id_rsa")
    with pytest.raises(ContextError, match=r"'sub/key'.*outside") as refused:
        read_context(context)
    assert "id_rsa" in str(refused.value)
    # The deliberate difference: the CLI sends the key.
    assert content(cli(context), "sub/key") == (outside / "id_rsa").read_bytes()


def test_a_relative_link_out_of_the_context_is_refused(context: Path, outside: Path) -> None:
    (context / "key").symlink_to("../outside/id_rsa")
    with pytest.raises(ContextError, match="'key'"):
        read_context(context)


def test_a_link_to_a_directory_outside_is_refused(context: Path, outside: Path) -> None:
    (context / "ssh").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ContextError, match=r"'ssh'.*directory"):
        read_context(context)
    assert "ssh" in paths(cli(context))  # the CLI sends an (empty) directory entry


def test_a_link_to_a_device_outside_is_refused_not_read(context: Path) -> None:
    (context / "zero").symlink_to("/dev/zero")
    with pytest.raises(ContextError, match="'zero'"):
        read_context(context)


def test_links_inside_the_context_are_sent_as_the_cli_sends_them(context: Path) -> None:
    (context / "alias.py").symlink_to("main.py")
    (context / "sub" / "up.py").symlink_to("../main.py")
    (context / "roundabout.py").symlink_to(f"../{context.name}/main.py")
    (context / "same").symlink_to(".", target_is_directory=True)
    (context / "subdir").symlink_to("sub", target_is_directory=True)
    result = assert_same(context)
    assert content(result, "alias.py") == content(result, "sub/up.py") == b"print(1)\n"
    # Directory links are entries, never walked.
    assert "same" in paths(result) and not any(p.startswith("same/") for p in paths(result))


def test_an_ignored_link_out_is_not_an_error(context: Path, outside: Path) -> None:
    (context / "key").symlink_to(outside / "id_rsa")
    (context / "ssh").symlink_to(outside, target_is_directory=True)
    (context / ".detignore").write_text("key\nssh\n")
    assert "key" not in paths(assert_same(context))


def test_a_link_out_of_an_included_directory_is_refused(tmp_path: Path, context: Path) -> None:
    write_tree(tmp_path / "lib", {"ok.py": (b"", False)})
    (tmp_path / "lib" / "main.py").symlink_to(context / "main.py")
    with pytest.raises(ContextError, match="'lib/main.py'"):
        read_context(context, [tmp_path / "lib"])


def test_the_context_itself_may_be_a_link(tmp_path: Path, context: Path) -> None:
    (tmp_path / "link").symlink_to(context, target_is_directory=True)
    assert assert_same(tmp_path / "link") == ours(context, [])


def test_an_included_file_may_live_anywhere(context: Path, outside: Path) -> None:
    # Asked for explicitly: not a link inside a walked directory.
    assert content(assert_same(context, [outside / "id_rsa"]), "id_rsa").startswith(b"-----")


def test_unreadable_files_are_skipped_as_by_the_cli(context: Path) -> None:
    (context / "dangling").symlink_to("nowhere")
    (context / "loop").symlink_to("loop")
    (context / "gone").symlink_to("../outside-and-missing/key")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(context / "sock"))
        expected = cli(context)
        with pytest.warns(ContextWarning, match="'dangling'") as caught:
            actual = read_context(context)
    finally:
        server.close()
    assert actual == expected
    assert {"dangling", "loop", "gone", "sock"}.isdisjoint(paths(actual))
    assert len(caught) == 1 and "4 file(s)" in str(caught[0].message)


def test_a_file_without_read_permission_is_skipped(
    context: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Opening it fails as it does for a user without read permission (root reads any file, so
    # the refusal is simulated at the open: the CLI's Path.open, detorm's os.open).
    (context / "secret").write_text("s")
    denied = PermissionError(13, "Permission denied")
    real_path_open, real_os_open = Path.open, os.open

    def path_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == "secret":
            raise denied
        return real_path_open(self, *args, **kwargs)

    def os_open(path: Any, *args: Any, **kwargs: Any) -> int:
        if os.path.basename(os.fsdecode(path)) == "secret":
            raise denied
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", path_open)
    expected = cli(context)
    monkeypatch.setattr(os, "open", os_open)
    with pytest.warns(ContextWarning, match="'secret'"):
        assert read_context(context) == expected
    assert all("secret" not in entry["path"] for entry in expected)


def test_an_include_neither_file_nor_directory_is_refused(context: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(context.parent / "sock"))
        with pytest.raises(ContextError, match="'.*sock' is neither a file nor a directory"):
            read_context(context, [context.parent / "sock"])
    finally:
        server.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs /proc")
def test_an_include_that_fails_to_read_is_refused_as_by_the_cli(context: Path) -> None:
    # /proc/self/mem opens, then fails to read (EIO). In a walked directory it would be skipped;
    # an include named explicitly fails, in the CLI too.
    assert isinstance(assert_same(context, ["/proc/self/mem"]), Refused)
    with pytest.raises(ContextError, match="cannot read the include"):
        read_context(context, ["/proc/self/mem"])


def test_a_fifo_is_refused_without_blocking(context: Path) -> None:
    os.mkfifo(context / "pipe")
    started = time.perf_counter()
    with pytest.raises(ContextError, match=r"'pipe'.*FIFO"):
        read_context(context)  # the CLI would block here for ever
    assert time.perf_counter() - started < 1
    (context / ".detignore").write_text("pipe\n")
    assert "pipe" not in paths(ours(context))
