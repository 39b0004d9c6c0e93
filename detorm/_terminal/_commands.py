"""``detorm ls | show | metrics | logs | tag | archive | unarchive | completion``.

Every command is a thin layer over the public SDK: ``ls`` builds ``Resource.query()`` with
filters parsed by ``detorm._plan._text_filters`` (the lookups of ``filter()``), ``tag`` and
``archive`` edit through the unit of work or the bulk actions, and ``--dry-run`` prints the
requests the planner made for them without sending them. Errors of detorm print one line on
stderr: exit status 2 for bad input (nothing was sent), 1 for a failure of the master or the
connection, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, TextIO

from ..errors import CommitError, DetormError, InvalidValue, QueryError
from ._names import COLUMNS_SHOWN, RESOURCES, resource_named
from ._output import jsonable, write_fields, write_rows

if TYPE_CHECKING:
    from .._api._sync import Query, Session
    from .._plan._call import Call
    from .._plan._edits import BulkResult
    from .._resources._base import Resource

__all__ = ["QUERY_COMMANDS", "add_query_commands", "descending_orders", "run_query_command"]

QUERY_COMMANDS: Final = (
    "ls", "show", "metrics", "logs", "tag", "archive", "unarchive", "completion",
)  # fmt: skip
TAGGABLE: Final = {"experiments": "tags", "models": "labels", "model-versions": "labels"}
# Experiments and trials through their bulk actions; the others through the unit of work.
ARCHIVABLE: Final = ("experiments", "trials", "models", "projects", "workspaces")
USAGE_ERRORS: Final = (QueryError, InvalidValue)


def descending_orders(argv: Sequence[str]) -> list[str]:
    """``--order -start_time`` as ``--order=-start_time``: argparse takes a value that starts
    with ``-`` for an option, and a descending order always does."""
    out: list[str] = []
    words = iter(argv)
    for word in words:
        if word in ("-o", "--order"):
            value = next(words, None)
            if value is not None and value.startswith("-") and len(value) > 1:
                out.append(f"--order={value}")
                continue
            out += [word] if value is None else [word, value]
            continue
        out.append(word)
    return out


# --- the parser --------------------------------------------------------------------------------
def _connection_options() -> argparse.ArgumentParser:
    """-m and -u, also accepted after the command (``detorm ls experiments -m URL``)."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("connection")
    group.add_argument(
        "-m", "--master", default=argparse.SUPPRESS,
        help="master URL (default: $DET_MASTER, else http://127.0.0.1:8080)",
    )  # fmt: skip
    group.add_argument(
        "-u",
        "--user",
        default=argparse.SUPPRESS,
        help="user name (default: $DET_USER, else the det CLI's cached login, else determined;"
        " the password comes from $DET_PASS)",
    )
    return options


def _format_options(parser: argparse.ArgumentParser, *, csv: bool = True) -> None:
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument(
        "--json", dest="format", action="store_const", const="json", default="table",
        help="JSON Lines: one JSON object per line",
    )  # fmt: skip
    if csv:
        formats.add_argument(
            "--csv", dest="format", action="store_const", const="csv", help="CSV with a header"
        )


def _filter_options(parser: argparse.ArgumentParser, *, exclude: bool = True) -> None:
    parser.add_argument(
        "-f", "--filter", action="append", default=[], metavar="FIELD[__LOOKUP]=VALUE",
        help="keep rows where it holds, as filter(field__lookup=value) does: state=ACTIVE,"
        " name__contains=bert, hp.lr__gt=0.01, validation.loss.min__lt=0.3,"
        " tags=a,b (the whole set), id__in=1,2,3 (repeatable: all must hold)",
    )  # fmt: skip
    if exclude:
        parser.add_argument(
            "-x",
            "--exclude",
            action="append",
            default=[],
            metavar="FIELD[__LOOKUP]=VALUE",
            help="drop rows where it holds (repeatable)",
        )


def add_query_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add the query commands to ``detorm``'s subcommands."""
    connection = _connection_options()
    resources = ", ".join(RESOURCES)

    ls = commands.add_parser(
        "ls", parents=[connection], help="list a resource, filtered and ordered",
        description="List the objects of a resource (singular names work too), filtered"
        " with the lookups of Python's filter().",
    )  # fmt: skip
    ls.add_argument("resource", type=resource_named, metavar="RESOURCE", help=resources)
    _filter_options(ls)
    ls.add_argument(
        "-o", "--order", action="append", default=[], metavar="FIELD",
        help="sort by a field (-field descends; hp.lr, validation.loss.min); repeatable",
    )  # fmt: skip
    ls.add_argument("-n", "--limit", type=int, default=None, help="at most this many rows")
    ls.add_argument(
        "-c",
        "--columns",
        default=None,
        metavar="A,B,...|all",
        help="fields to print (default: a few per resource in the table, every loaded field"
        " in --json and --csv)",
    )
    _format_options(ls)

    show = commands.add_parser(
        "show", parents=[connection], help="every field of one object",
        description="Print every field of one object: `detorm show trial 12`.",
    )  # fmt: skip
    show.add_argument("resource", type=resource_named, metavar="RESOURCE", help=resources)
    show.add_argument("key", help="its id (uuid for checkpoints, name for templates and pools)")
    _format_options(show, csv=False)

    metrics = commands.add_parser(
        "metrics", parents=[connection], help="metric reports of trials",
        description="The reports of one metric group of some trials (one streamed request).",
    )  # fmt: skip
    metrics.add_argument("trials", type=int, nargs="+", metavar="TRIAL", help="trial ids")
    metrics.add_argument(
        "-g", "--group", default="validation", help="metric group (default: validation)"
    )
    metrics.add_argument("--no-cache", action="store_true", help="skip the disk cache")
    _format_options(metrics)

    logs = commands.add_parser(
        "logs", parents=[connection], help="logs of a trial or a task",
        description="The log lines of a trial (an int id) or a task (a task id).",
    )  # fmt: skip
    logs.add_argument("target", metavar="TRIAL|TASK", help="a trial id or a task id")
    logs.add_argument("-F", "--follow", action="store_true", help="wait for new lines")
    logs.add_argument("-s", "--search", default=None, help="lines containing this text")
    logs.add_argument("--regex", action="store_true", help="--search is a regular expression")
    logs.add_argument(
        "-l", "--level", action="append", default=None, metavar="LEVEL",
        help="only these levels (repeatable: DEBUG, INFO, WARNING, ERROR, CRITICAL, TRACE)",
    )  # fmt: skip
    logs.add_argument("--since", default=None, help="lines after this RFC 3339 time")
    logs.add_argument("--until", default=None, help="lines before this RFC 3339 time")
    logs.add_argument("--tail", type=int, default=None, help="only the last N lines")
    logs.add_argument("--limit", type=int, default=None, help="at most N lines")
    _format_options(logs, csv=False)

    tag = commands.add_parser(
        "tag", parents=[connection], help="add or remove tags (labels) of matching objects",
        description="Add or remove tags of experiments, or labels of models and versions.",
    )  # fmt: skip
    tag.add_argument("action", choices=("add", "remove"))
    tag.add_argument("tags", nargs="+", metavar="TAG")
    tag.add_argument(
        "--on", type=lambda t: resource_named(t, tuple(TAGGABLE)), default="experiments",
        metavar="RESOURCE", help=f"what to tag: {', '.join(TAGGABLE)} (default: experiments)",
    )  # fmt: skip
    _edit_options(tag)

    for action in ("archive", "unarchive"):
        edit = commands.add_parser(
            action, parents=[connection], help=f"{action} matching objects",
            description=f"{action.capitalize()} the objects matching the filters.",
        )  # fmt: skip
        edit.add_argument(
            "resource", nargs="?", default="experiments", metavar="RESOURCE",
            type=lambda t: resource_named(t, ARCHIVABLE),
            help=f"{', '.join(ARCHIVABLE)} (default: experiments)",
        )  # fmt: skip
        _edit_options(edit)

    completion = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description='Print a completion script: eval "$(detorm completion bash)" in ~/.bashrc,'
        " or the same with zsh in ~/.zshrc.",
    )
    completion.add_argument("shell", choices=("bash", "zsh"))


def _edit_options(parser: argparse.ArgumentParser) -> None:
    _filter_options(parser)
    parser.add_argument(
        "--all", action="store_true", help="act on every object when no filter is given"
    )
    parser.add_argument(
        "--dry-run", action="store_true",
        help="print the requests that would be sent (method, path, query, body); send none",
    )  # fmt: skip
    _format_options(parser, csv=False)


# --- running -----------------------------------------------------------------------------------
def run_query_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run a query command; detorm's errors become one line on stderr and an exit status."""
    out, err = sys.stdout, sys.stderr
    if args.command == "completion":
        from ._completion import completion_script

        out.write(completion_script(args.shell, parser))
        return 0
    try:
        with _session(args) as session:
            return _HANDLERS[args.command](args, session, out, err)
    except USAGE_ERRORS as error:
        err.write(f"detorm {args.command}: {error}\n")
        return 2
    except DetormError as error:
        err.write(f"detorm {args.command}: {type(error).__name__}: {error}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit flush quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _session(args: argparse.Namespace) -> Session:
    from .._api._sync import Session

    return Session(getattr(args, "master", None), user=getattr(args, "user", None))


def _resource_class(name: str) -> type[Resource]:
    import detorm

    cls: type[Resource] = getattr(detorm, RESOURCES[name])
    return cls


def _query(session: Session, resource: str, args: argparse.Namespace) -> Query[Any]:
    """The query of ``resource`` with the command's --filter and --exclude."""
    from .._plan._text_filters import parse_text_filter

    cls_name = RESOURCES[resource]
    query: Query[Any] = session._query(_resource_class(resource))
    for text in args.filter:
        query = query._filter([parse_text_filter(cls_name, text)], {})
    for text in getattr(args, "exclude", []):
        query = query._exclude([parse_text_filter(cls_name, text)], {})
    return query


def _ls(args: argparse.Namespace, session: Session, out: TextIO, err: TextIO) -> int:
    from .._plan._query import record

    query = _query(session, args.resource, args)
    if args.order:
        query = query._order_by(args.order)
    if args.limit is not None:
        query = query.limit(args.limit)
    columns = _columns(args)
    rows = (record(obj) for obj in query)
    count = write_rows(rows, args.format, out, columns)
    if count == 0 and args.format == "table":
        err.write(f"no {args.resource} match\n")
    return 0


def _columns(args: argparse.Namespace) -> list[str] | None:
    if args.columns == "all" or (args.columns is None and args.format != "table"):
        return None
    if args.columns is None:
        return list(COLUMNS_SHOWN[RESOURCES[args.resource]])
    names = [name.strip() for name in args.columns.split(",") if name.strip()]
    if not names:
        raise InvalidValue("--columns names at least one field (or all)")
    return names


def _show(args: argparse.Namespace, session: Session, out: TextIO, err: TextIO) -> int:
    from .._plan._columns import COLUMNS
    from .._plan._query import record

    cls = _resource_class(args.resource)
    key_field = cls._key_field
    key: int | str = args.key
    if COLUMNS[RESOURCES[args.resource]][key_field].kind == "int":
        try:
            key = int(args.key)
        except ValueError:
            raise InvalidValue(
                f"{RESOURCES[args.resource]} {key_field} must be an int, not {args.key!r}"
            ) from None
    write_fields(record(session.get(cls, key)), args.format, out)
    return 0


def _metrics(args: argparse.Namespace, session: Session, out: TextIO, err: TextIO) -> int:
    stream = session.metrics(args.trials, args.group, cache=not args.no_cache)
    count = write_rows(stream.to_records(), args.format, out)
    if count == 0 and args.format == "table":
        err.write(f"no {args.group} reports\n")
    return 0


def _logs(args: argparse.Namespace, session: Session, out: TextIO, err: TextIO) -> int:
    from .._api._sync import Task, Trial

    target: Trial | Task
    if args.target.isdigit():
        target = session.resolve(Trial, int(args.target))
    else:
        target = session.resolve(Task, args.target)
    entries = target.logs(
        follow=args.follow, search=args.search, regex=args.regex, levels=args.level,
        since=args.since, until=args.until, tail=args.tail, limit=args.limit,
    )  # fmt: skip
    for entry in entries:
        if args.format == "json":
            out.write(_json_line(vars(entry) if hasattr(entry, "__dict__") else _slots(entry)))
        else:
            out.write(entry.message if entry.message.endswith("\n") else entry.message + "\n")
        out.flush()  # --follow: each line as it comes
    return 0


def _slots(obj: object) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return {name: getattr(obj, name) for name in getattr(obj, "__slots__", ())}


def _json_line(fields: dict[str, Any]) -> str:
    import json

    return json.dumps(jsonable(fields)) + "\n"


# --- edits ---------------------------------------------------------------------------------------
def _require_scope(args: argparse.Namespace, resource: str) -> None:
    """An edit of every object must be asked for: no filter means nothing unless --all."""
    if not args.filter and not args.exclude and not args.all:
        raise InvalidValue(
            f"no --filter given: that would {args.command} every one of the {resource}; "
            "add --all if that is what you mean"
        )


def _tag(args: argparse.Namespace, session: Session, out: TextIO, err: TextIO) -> int:
    _require_scope(args, args.on)
    field = TAGGABLE[args.on]
    matched = _query(session, args.on, args).all()
    for obj in matched:
        tags = getattr(obj, field)
        for tag in args.tags:
            if args.action == "add":
                tags.add(tag)
            else:
                tags.discard(tag)
    verb = "tagged" if args.action == "add" else "untagged"
    return _flush(session, args, out, err, f"{verb} {{n}} of {len(matched)} {args.on}")


def _archive(args: argparse.Namespace, session: Session, out: TextIO, err: TextIO) -> int:
    from .._ops._actions import bulk_call
    from .._ops._runs import run_calls

    resource = args.resource
    _require_scope(args, resource)
    query = _query(session, resource, args)
    action = args.command
    if resource in ("experiments", "trials"):
        if args.dry_run:
            if resource == "experiments":
                call = session.transport.run(bulk_call(query, action))
                calls = [] if call is None else [call]
            else:
                calls = session.transport.run(run_calls(query, action))
            _print_calls(calls, args, out, err)
            return 0
        # ExperimentQuery.archive() / TrialQuery.archive() and their unarchive().
        bulk: Callable[[], BulkResult[int]] = getattr(query, action)
        result = bulk()
        return _report_bulk(result, resource, action, out, err)
    matched = query.all()
    for obj in matched:
        obj.archived = action == "archive"
    return _flush(session, args, out, err, f"{action}d {{n}} of {len(matched)} {resource}")


def _flush(
    session: Session, args: argparse.Namespace, out: TextIO, err: TextIO, summary: str
) -> int:
    """Commit the session's edits, or print the calls of the commit with --dry-run."""
    plan = session.pending()
    changed = len({c.obj for planned in plan for c in planned.changes})
    if args.dry_run:
        if plan.reads:
            # Labels the master replaces whole are read again first (others' edits kept).
            err.write(f"the commit reads {len(plan.reads)} object(s) again before sending:\n")
        _print_calls([planned.call for planned in plan], args, out, err)
        return 0
    try:
        session.commit()
    except CommitError as error:
        err.write(f"detorm {args.command}: {error}\n")
        return 1
    out.write(summary.format(n=changed) + f" ({len(plan)} requests)\n")
    return 0


def _print_calls(calls: Iterable[Call], args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    count = 0
    for call in calls:
        out.write(_json_line(call.describe()) if args.format == "json" else f"{call}\n")
        count += 1
    err.write(f"dry run: {count} request(s) not sent; nothing was changed\n")


def _report_bulk(
    result: BulkResult[int], resource: str, action: str, out: TextIO, err: TextIO
) -> int:
    failed = result.failed
    out.write(f"{action}d {len(result.succeeded)} {resource}\n")
    err.writelines(f"  {key}: {message}\n" for key, message in sorted(failed.items()))
    return 1 if failed else 0


_HANDLERS: Final[dict[str, Callable[[argparse.Namespace, Session, TextIO, TextIO], int]]] = {
    "ls": _ls,
    "show": _show,
    "metrics": _metrics,
    "logs": _logs,
    "tag": _tag,
    "archive": _archive,
    "unarchive": _archive,
}
