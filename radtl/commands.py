"""What the ``radtl`` command line knows about its commands, read from the methods of :class:`radtl.cli.RadtlCLI`.

``fire`` dispatches a command to its method; this module does what comes before and after that:

- the listing ``radtl`` and ``radtl --help`` print (every command, with the hyphenated name the docs use and the
  first line of its docstring), and each command's ``--help`` (arguments, options with their defaults, an example),
  all read from the method's signature and its Google-style docstring (``Args:``, ``Example:``);
- the check of a command line against the method before anything runs: an option the command does not take is
  refused, naming the closest one it does take (``--lr``: did you mean ``--lrs``?), and a missing argument is named;
- the one line a user error becomes: ``radtl <command>: <what is wrong>; <what to do>``.

It imports only the standard library and :mod:`radtl.errors`, so ``radtl --help`` starts as fast as Python does.
"""

from __future__ import annotations

import inspect
import os
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from radtl.errors import RadtlError, UsageError, closest

__all__ = [
    "Command", "GLOBAL_OPTIONS", "Option", "check_arguments", "commands", "find_command", "is_user_error", "listing",
    "positional", "user_error_line",
]

#: Options every command takes; the command line removes them before ``fire`` sees the rest.
GLOBAL_OPTIONS = {
    "--debug": "show an error's traceback, not one line (or RADTL_DEBUG=1)",
    "--verbose": "also show the engines' own logs: Ignite, MONAI (or RADTL_VERBOSE=1)",
}
_SECTIONS = ("Args:", "Arguments:", "Example:", "Examples:", "Returns:", "Raises:")


@dataclass(frozen=True)
class Option:
    """One parameter of a command: a positional argument (``SRC``) or an option (``--size N``)."""

    name: str
    help: str
    default: object = inspect.Parameter.empty
    annotation: str = ""
    positional: bool = False
    variadic: bool = False

    @property
    def required(self) -> bool:
        return not self.variadic and self.default is inspect.Parameter.empty

    @property
    def is_flag(self) -> bool:
        """A boolean option: ``--name`` alone sets it, ``--noname`` clears it (fire's convention)."""
        return isinstance(self.default, bool) or self.annotation.replace(" ", "") in ("bool", "bool|None")

    @property
    def metavar(self) -> str:
        if self.is_flag:
            return ""
        if self.name == "set":
            return "KEY=VALUE"
        if "int" in self.annotation and "str" not in self.annotation:
            return "N"
        if "float" in self.annotation and "str" not in self.annotation:
            return "X"
        return self.name.upper()

    def usage(self) -> str:
        if self.positional:
            shown = self.name.upper()
            return f"[{shown} ...]" if self.variadic else (shown if self.required else f"[{shown}]")
        return f"--{self.name}" + (f" {self.metavar}" if self.metavar else "")

    def needed(self) -> bool:
        """A required option (a keyword-only parameter without a default): ``radtl send ... --to URL``."""
        return not self.positional and self.required


@dataclass(frozen=True)
class Command:
    """A ``radtl`` command: its name as typed (hyphens), the method that runs it, and what its docstring says."""

    name: str
    method: Callable
    summary: str
    description: str
    options: tuple[Option, ...]
    examples: tuple[str, ...] = field(default=())

    @property
    def attribute(self) -> str:
        """The method's name (underscores), what ``fire`` is given."""
        return self.method.__name__

    def option(self, name: str) -> Option | None:
        """The parameter ``--name`` gives: an option, or an argument given by name (fire takes both)."""
        key = name.replace("-", "_")
        return next((o for o in self.options if not o.variadic and o.name == key), None)

    def usage(self) -> str:
        positional = " ".join(o.usage() for o in self.options if o.positional)
        needed = " ".join(o.usage() for o in self.options if o.needed())
        flags = " [options]" if any(not o.positional and not o.needed() for o in self.options) else ""
        return " ".join(part for part in (f"radtl {self.name}", positional, needed) if part) + flags

    def help(self, width: int = 100) -> str:
        """The text ``radtl <command> --help`` prints."""
        lines = [f"usage: {self.usage()}", "", self.summary]
        if self.description:
            lines += ["", self.description]
        for title, positional in (("arguments", True), ("options", False)):
            chosen = [o for o in self.options if o.positional == positional]
            if not chosen:
                continue
            lines += ["", f"{title}:"]
            for option in chosen:
                lines += _described(option.usage().strip("[]. ") if positional else option.usage(),
                                    option.help + _default_text(option), width)
        lines += ["", "global options:"]
        for flag, text in GLOBAL_OPTIONS.items():
            lines += _described(flag, text, width)
        if self.examples:
            lines += ["", "example:" if len(self.examples) == 1 else "examples:"]
            lines += [f"  {example}" for example in self.examples]
        return "\n".join(lines)


def _default_text(option: Option) -> str:
    if option.positional or option.default is inspect.Parameter.empty:
        return ""
    if option.is_flag:
        return {True: " (default: on; --no{0} turns it off)".format(option.name), False: " (default: off)"}.get(
            option.default, " (default: on a terminal)")
    if option.default is None or option.default == ():
        return ""
    return f" (default: {option.default})"


def _described(term: str, text: str, width: int, column: int = 28) -> list[str]:
    """``term`` in a column of ``column``, ``text`` wrapped beside it (on the next line when the term is longer)."""
    indent = " " * (column + 2)
    body = textwrap.wrap(" ".join(text.split()), width - len(indent), break_on_hyphens=False) or [""]
    if len(term) <= column - 2:
        return [f"  {term:<{column}}{body[0]}"] + [indent + line for line in body[1:]]
    return [f"  {term}"] + [indent + line for line in body]


def positional(*names: str) -> Callable[[Callable], Callable]:
    """Mark parameters with a default as positional in the help (``radtl segment [SERIES_DIR]``), as fire takes them."""

    def mark(method: Callable) -> Callable:
        method.__radtl_positional__ = names
        return method

    return mark


def _parse_docstring(doc: str) -> tuple[str, str, dict[str, str], tuple[str, ...]]:
    """A Google-style docstring as (summary, description, {argument: text}, examples), reST literals unquoted."""
    doc = inspect.cleandoc(doc or "").replace("``", "")
    paragraphs = doc.split("\n\n", 1)
    summary = " ".join(paragraphs[0].split())
    rest = paragraphs[1] if len(paragraphs) > 1 else ""
    section, description, args, examples = None, [], {}, []
    current = None
    for line in rest.splitlines():
        stripped = line.strip()
        if not line.startswith(" ") and stripped in _SECTIONS:
            section = stripped.rstrip(":").lower()
            continue
        if section is None:
            description.append(line)
        elif section in ("args", "arguments"):
            match = re.match(r"^ {4}(\*{0,2}\w+)(?: \([^)]*\))?: ?(.*)$", line)
            if match:
                current = match.group(1).lstrip("*")
                args[current] = match.group(2)
            elif current and stripped:
                args[current] += " " + stripped
        elif section in ("example", "examples") and stripped:
            examples.append(stripped)
    return summary, "\n".join(description).strip(), args, tuple(examples)


def commands(cli: type) -> dict[str, Command]:
    """Every public method of ``cli`` as a :class:`Command`, by its hyphenated name, in the order defined."""
    found = {}
    for attribute, method in vars(cli).items():
        if attribute.startswith("_") or not inspect.isfunction(method):
            continue
        summary, description, args, examples = _parse_docstring(method.__doc__)
        options, marked = [], getattr(method, "__radtl_positional__", ())
        for parameter in list(inspect.signature(method).parameters.values())[1:]:
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            positional = parameter.kind is parameter.VAR_POSITIONAL or parameter.name in marked or (
                parameter.default is inspect.Parameter.empty and parameter.kind is not parameter.KEYWORD_ONLY)
            options.append(Option(
                name=parameter.name,
                help=args.get(parameter.name, ""),
                default=parameter.default,
                annotation=str(parameter.annotation) if parameter.annotation is not inspect.Parameter.empty else "",
                positional=positional,
                variadic=parameter.kind is parameter.VAR_POSITIONAL,
            ))
        name = attribute.replace("_", "-")
        found[name] = Command(name, method, summary, description, tuple(options), examples)
    return found


def listing(table: dict[str, Command], width: int = 100) -> str:
    """What ``radtl`` and ``radtl --help`` print: every command with its one-line purpose."""
    lines = ["usage: radtl COMMAND [ARGUMENTS] [options]", "",
             "radtl: radiology transfer learning on MONAI. Commands:", ""]
    for command in table.values():
        lines += _described(command.name, command.summary, width, column=18)
    lines += ["", "global options:"]
    for flag, text in {**GLOBAL_OPTIONS, "--version": "print radtl's version"}.items():
        lines += _described(flag, text, width, column=18)
    lines += ["", "radtl COMMAND --help shows a command's arguments, options and an example."]
    return "\n".join(lines)


def find_command(table: dict[str, Command], name: str) -> Command:
    """The command typed as ``name`` (hyphens or underscores), or a :class:`UsageError` naming the closest one."""
    command = table.get(name.replace("_", "-"))
    if command is None:
        near = closest(name, list(table))
        raise UsageError(f"unknown command {name!r}",
                         hint=(f"did you mean {near!r}? " if near else "") + "radtl --help lists the commands")
    return command


_TRUE_FALSE = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def check_arguments(command: Command, arguments: Sequence[str]) -> None:
    """Refuse a command line ``fire`` would misread: an unknown option, or a required argument left out.

    ``fire`` hands an option a method does not take to its ``**kwargs`` (where a bundle would receive it) or fails
    with its own usage text; here it is refused first, with the closest option the command has.

    Raises:
        UsageError: naming the option or the missing argument.
    """
    positional = 0
    index = 0
    arguments = list(arguments)
    given: set[str] = set()
    while index < len(arguments):
        token = arguments[index]
        index += 1
        if token == "--":
            break
        if not token.startswith("--") or len(token) == 2:
            if not (token.startswith("-") and len(token) > 1 and not _is_number(token)):
                positional += 1
                continue
            raise UsageError(f"unknown option {token!r}", hint=f"radtl {command.name} --help lists the options")
        name, has_value = token[2:].split("=", 1)[0], "=" in token
        option = command.option(name)
        if option is None and name.startswith("no"):
            negated = command.option(name[2:])
            if negated is not None and negated.is_flag:
                continue
        if option is None:
            names = [o.name for o in command.options if not o.positional]
            near = closest(name, names)
            raise UsageError(
                f"unknown option --{name}",
                hint=(f"did you mean --{near}? " if near else "") + f"radtl {command.name} --help lists the options"
                + ("; a bundle setting goes as --set key=value" if command.option("set") else ""),
            )
        given.add(option.name)
        if option.is_flag and not has_value:
            if index < len(arguments) and arguments[index].lower() in _TRUE_FALSE:
                index += 1
            continue
        if has_value:
            value = token.split("=", 1)[1]
        elif index >= len(arguments) or (arguments[index].startswith("--") and len(arguments[index]) > 2):
            raise UsageError(f"--{name} needs a value", hint=f"radtl {command.name} --help shows it")
        else:
            value, index = arguments[index], index + 1
        _check_number(command, option, value)
    positional += sum(1 for token in arguments[index:])
    required = [o for o in command.options if o.positional and o.required and o.name not in given]
    if positional < len(required):
        missing = " ".join(o.name.upper() for o in required[positional:])
        raise UsageError(f"missing {missing}", hint=f"usage: {command.usage()}")
    needed = [o.usage() for o in command.options if o.needed() and o.name not in given]
    if needed:
        raise UsageError(f"missing {' '.join(needed)}", hint=f"usage: {command.usage()}")


def _check_number(command: Command, option: Option, value: str) -> None:
    """Refuse text where the option takes a number (``--size abc``), before fire hands it on as a string."""
    kind = {"N": int, "X": float}.get(option.metavar)
    if kind is None or value.lower() == "none":
        return
    try:
        kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise UsageError(f"--{option.name} takes {what}, got {value!r}",
                         hint=f"radtl {command.name} --help shows it") from None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


#: Errors of the operating system about a path the user gave, in words.
_OS_WORDS = {
    FileNotFoundError: ("no such file or folder", "check the path"),
    FileExistsError: ("already exists", "choose another output or remove it"),
    IsADirectoryError: ("is a folder, not a file", "give a file"),
    NotADirectoryError: ("is not a folder", "give a folder"),
    PermissionError: ("permission denied", "check who may read and write there"),
}


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is about the input (one line for the user) rather than a fault in radtl (a traceback).

    User errors: every :class:`~radtl.errors.RadtlError`; the operating system's errors about a path
    (:data:`_OS_WORDS`); an optional package that is not installed; DuckDB's errors in the user's SQL; and a
    ``ValueError`` (a value radtl or a library it calls cannot take), which ``--debug`` traces to its source.
    """
    if isinstance(error, (RadtlError, ValueError, ModuleNotFoundError)):
        return True
    if isinstance(error, tuple(_OS_WORDS)):
        return True
    return type(error).__module__.split(".")[0] in ("duckdb", "_duckdb")


def user_error_line(command: str, error: BaseException) -> str:
    """``radtl <command>: <what is wrong>; <what to do>``: a user error in one line, without a traceback."""
    hint = getattr(error, "hint", "")
    if isinstance(error, OSError) and type(error) in _OS_WORDS:
        words, hint = _OS_WORDS[type(error)]
        what = f"{words}: {error.filename}" if error.filename is not None else " ".join(str(error).split())
    elif isinstance(error, ModuleNotFoundError) and error.name:
        what, hint = f"needs the package {error.name}, which is not installed", f"pip install {error.name}"
    else:
        what = " ".join(str(error).split()) or type(error).__name__
        if isinstance(error, KeyError) and not isinstance(error, RadtlError):
            what = f"{type(error).__name__}: {what}"
    prefix = f"radtl {command}" if command else "radtl"
    line = f"{prefix}: {what}"
    if hint and hint not in what:
        line += f"; {hint}"
    return line


def debug_requested(arguments: Sequence[str]) -> bool:
    return "--debug" in arguments or os.environ.get("RADTL_DEBUG", "").lower() in ("1", "true", "yes", "on")
