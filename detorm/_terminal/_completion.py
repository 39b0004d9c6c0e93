"""``detorm completion bash|zsh``: a completion script written from the parser itself.

argparse has no completion of its own, and a completer package would be a dependency for one
script. The script is generated from what the parser declares (commands, their options, which
options take a value) and from the column catalog (the filter keys and orderings of each
resource), so it cannot drift from either. zsh runs the same function through its
``bashcompinit`` layer.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Final

from .._plan._columns import COLUMNS, SUPPORTS_HP_AND_METRICS
from .._plan._text_filters import filter_keys
from ._names import RESOURCES

__all__ = ["completion_script"]

# Commands whose first positional is a resource.
_RESOURCE_FIRST: Final = ("ls", "show", "archive", "unarchive")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """Every option string, and those that take a value."""
    every: list[str] = []
    valued: list[str] = []
    for action in parser._actions:
        every += action.option_strings
        if action.option_strings and action.nargs != 0:
            valued += action.option_strings
    return every, valued


def _words(words: list[str]) -> str:
    return shlex.quote(" ".join(words))


def _case(entries: dict[str, list[str]], default: str = "") -> str:
    lines = [f"    {name}) echo {_words(words)} ;;" for name, words in entries.items()]
    if default:
        lines.append(f"    *) echo {default} ;;")
    return "\n".join(lines)


def completion_script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script of ``shell`` (``bash`` or ``zsh``)."""
    commands = _subcommands(parser)
    top_options, top_valued = _options(parser)
    fields: dict[str, list[str]] = {}
    orders: dict[str, list[str]] = {}
    for name, cls_name in RESOURCES.items():
        fields[name] = [f"{key}=" for key in filter_keys(cls_name)]
        sortable = [c.name for c in COLUMNS[cls_name].values() if c.sortable]
        orders[name] = sortable + [f"-{s}" for s in sortable]
        if cls_name in SUPPORTS_HP_AND_METRICS:
            fields[name] += ["hp.", "validation.", "training."]
            orders[name] += ["hp.", "-hp.", "validation.", "-validation."]
    command_options: dict[str, list[str]] = {}
    valued: set[str] = set(top_valued)
    for name, sub in commands.items():
        every, takes_value = _options(sub)
        command_options[name] = every
        valued.update(takes_value)
    positionals = {
        **{name: list(RESOURCES) for name in _RESOURCE_FIRST},
        "tag": ["add", "remove"],
        "completion": ["bash", "zsh"],
    }
    taggable = _taggable(commands)
    script = _BASH.format(
        commands=_words(list(commands)),
        top_options=_words(top_options),
        top_valued="|".join(top_valued) or "--no-such-option",
        valued="|".join(sorted(valued)),
        fields=_case(fields),
        orders=_case(orders),
        options=_case(command_options),
        positionals=_case({k: v for k, v in positionals.items() if k in commands}),
        taggable=_words(taggable),
    )
    if shell == "zsh":
        return _ZSH_PRELUDE + script
    return script


def _taggable(commands: dict[str, argparse.ArgumentParser]) -> list[str]:
    from ._commands import TAGGABLE

    return list(TAGGABLE) if "tag" in commands else []


_ZSH_PRELUDE: Final = """\
# detorm completion for zsh: eval "$(detorm completion zsh)" in ~/.zshrc (after compinit).
autoload -U +X bashcompinit && bashcompinit
"""

# The positional words of a command are counted without options and their values; the
# resource is the first positional (ls, show, archive), or --on's value (tag).
_BASH: Final = """\
# detorm completion for bash: eval "$(detorm completion bash)" in ~/.bashrc.
_detorm_fields() {{
  case "$1" in
{fields}
  esac
}}
_detorm_orders() {{
  case "$1" in
{orders}
  esac
}}
_detorm_options() {{
  case "$1" in
{options}
  esac
}}
_detorm_positionals() {{
  case "$1" in
{positionals}
  esac
}}
_detorm() {{
  local cur prev cmd="" resource="" on="" i word
  local -a positional=()
  cur="${{COMP_WORDS[COMP_CWORD]}}"
  prev="${{COMP_WORDS[COMP_CWORD-1]}}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="${{COMP_WORDS[i]}}"
    case "$word" in
      --on) on="${{COMP_WORDS[i+1]}}"; i=$((i + 1)) ;;
      {valued}) i=$((i + 1)) ;;
      -*) ;;
      *) if [[ -z "$cmd" ]]; then cmd="$word"; else positional+=("$word"); fi ;;
    esac
  done
  if [[ -z "$cmd" ]]; then
    case "$prev" in {top_valued}) COMPREPLY=(); return ;; esac
    COMPREPLY=($(compgen -W {commands}" "{top_options} -- "$cur"))
    return
  fi
  case "$cmd" in
    ls|show|archive|unarchive) resource="${{positional[0]}}" ;;
    tag) resource="$on" ;;
  esac
  case "$cmd" in archive|unarchive|tag) resource="${{resource:-experiments}}" ;; esac
  case "$prev" in
    -f|--filter|-x|--exclude)
      compopt -o nospace 2>/dev/null
      COMPREPLY=($(compgen -W "$(_detorm_fields "$resource")" -- "$cur"))
      return ;;
    -o|--order)
      COMPREPLY=($(compgen -W "$(_detorm_orders "$resource")" -- "$cur"))
      return ;;
    --on)
      COMPREPLY=($(compgen -W {taggable} -- "$cur"))
      return ;;
    {valued}) COMPREPLY=(); return ;;
  esac
  if [[ "$cur" == -* || ${{#positional[@]}} -gt 0 && "$cmd" != tag ]]; then
    COMPREPLY=($(compgen -W "$(_detorm_options "$cmd")" -- "$cur"))
    return
  fi
  if [[ "$cmd" == tag && ${{#positional[@]}} -gt 0 ]]; then
    COMPREPLY=()
    return
  fi
  COMPREPLY=($(compgen -W "$(_detorm_positionals "$cmd")" -- "$cur"))
}}
complete -F _detorm detorm
"""
