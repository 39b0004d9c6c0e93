"""Rows printed as an aligned table, JSON Lines or CSV.

``--json`` writes JSON Lines (one object per line, as the rows arrive), which ``jq`` and
``pandas.read_json(lines=True)`` read and which needs no closing bracket when a listing is cut
short; ``--csv`` writes a header and one line per row (nested values as JSON).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TextIO

from .._wire import Timestamp, WireEnum

__all__ = ["Format", "jsonable", "text_cell", "write_fields", "write_rows"]

Format = Literal["table", "json", "csv"]


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON: enums by name, times in RFC 3339, sets as sorted lists."""
    if isinstance(value, WireEnum):  # before str: Determined's enums are str enums
        return value.short
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # JSON has no NaN
    if isinstance(value, Timestamp):
        return value.rfc3339()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)) or type(value).__name__ == "TagSet":
        return sorted(jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return jsonable(dump(mode="json", by_alias=True))
    return str(value)


def text_cell(value: Any, *, short: bool = True) -> str:
    """One value as a table or CSV cell (``short``: floats to 6 significant digits)."""
    plain = jsonable(value)
    if plain is None:
        return ""
    if isinstance(plain, bool):
        return "true" if plain else "false"
    if isinstance(plain, float):
        return f"{plain:.6g}" if short else repr(plain)
    if isinstance(plain, list) and all(isinstance(v, (str, int)) for v in plain):
        return ",".join(str(v) for v in plain)
    if isinstance(plain, (list, dict)):
        return json.dumps(plain, separators=(",", ":"), sort_keys=False)
    return str(plain)


def write_rows(
    rows: Iterable[Mapping[str, Any]], fmt: Format, out: TextIO,
    columns: Sequence[str] | None = None,
) -> int:  # fmt: skip
    """Write ``rows`` (only ``columns`` when given); returns how many were written."""
    if fmt == "json":
        return _write_json(rows, out, columns)
    if fmt == "csv":
        return _write_csv(rows, out, columns)
    return _write_table(list(rows), out, columns)


def _picked(row: Mapping[str, Any], columns: Sequence[str] | None) -> dict[str, Any]:
    return dict(row) if columns is None else {c: row.get(c) for c in columns}


def _write_json(
    rows: Iterable[Mapping[str, Any]], out: TextIO, columns: Sequence[str] | None
) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(jsonable(_picked(row, columns))) + "\n")
        out.flush()  # a follower (`| jq`) sees each row as it comes
        count += 1
    return count


def _write_csv(
    rows: Iterable[Mapping[str, Any]], out: TextIO, columns: Sequence[str] | None
) -> int:
    writer: csv.DictWriter[str] | None = None
    count = 0
    for row in rows:
        if writer is None:
            # The rows of one listing carry the same fields: the first one names them.
            fieldnames = list(columns) if columns is not None else list(row)
            writer = csv.DictWriter(out, fieldnames=fieldnames, extrasaction="ignore")
            writer.writeheader()
        writer.writerow({k: text_cell(v, short=False) for k, v in _picked(row, columns).items()})
        count += 1
    if writer is None and columns is not None:
        csv.DictWriter(out, fieldnames=list(columns)).writeheader()
    return count


def _write_table(rows: list[Mapping[str, Any]], out: TextIO, columns: Sequence[str] | None) -> int:
    if not rows:
        return 0  # the caller says "no ... match" on stderr: stdout stays empty
    names = list(columns) if columns is not None else _union_of_keys(rows)
    cells = [[text_cell(row.get(name)) for name in names] for row in rows]
    widths = [max([len(name), *(len(line[i]) for line in cells)]) for i, name in enumerate(names)]
    out.writelines(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in [[name.upper() for name in names], *cells]
    )
    return len(rows)


def _union_of_keys(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def write_fields(fields: Mapping[str, Any], fmt: Format, out: TextIO) -> None:
    """One object: ``field  value`` lines, one JSON object, or a one-row CSV."""
    if fmt == "json":
        out.write(json.dumps(jsonable(fields), indent=2) + "\n")
    elif fmt == "csv":
        _write_csv([fields], out, None)
    else:
        width = max((len(name) for name in fields), default=0)
        out.writelines(
            f"{name.ljust(width)}  {text_cell(value, short=False)}".rstrip() + "\n"
            for name, value in fields.items()
        )
