"""The query commands of ``detorm`` (ls, show, metrics, logs, tag, archive, completion): the
SDK from a terminal. ``detorm/_cli.py`` adds them to its parser and hands them their args."""

from ._commands import QUERY_COMMANDS, add_query_commands, descending_orders, run_query_command

__all__ = ["QUERY_COMMANDS", "add_query_commands", "descending_orders", "run_query_command"]
