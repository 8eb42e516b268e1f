"""What radtl prints while it works: its own lines, plain, on standard error; engine logs only when asked.

By default a command prints radtl's INFO lines (one per epoch while training, see
:class:`radtl.engines.EpochLog`) and every warning. The engines' own narration (Ignite's
"Epoch[1] Complete", MONAI's bundle and handler loggers, gensim's word counts) is
raised to WARNING: :data:`ENGINE_LOGGERS`. ``radtl --verbose`` or ``RADTL_VERBOSE=1`` shows
all of it at INFO, with timestamps and logger names. Progress bars appear only when standard
error is a terminal (:func:`show_progress`), so no carriage returns or cursor codes reach a log
file or a pipe.

A bundle run with ``python -m monai.bundle run`` follows the same rule through its
``configs/logging.conf`` (engine loggers at WARNING, ``radtl.*`` at INFO);
``--logging_file configs/logging_verbose.conf`` is the verbose twin. MONAI applies a bundle's
``logging.conf`` every time a workflow starts, so a command that runs bundles in this process
calls :func:`reapply` after that to put the command's own set-up back.

This module imports only the standard library: the command line sets logging up before it
knows which command runs, and importing torch, MONAI or Ignite here would slow every command.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = [
    "ENGINE_LOGGERS",
    "OWN_HANDLER_LOGGERS",
    "TRAIN_LOGGER",
    "VERBOSE_ENV",
    "configure",
    "is_verbose",
    "reapply",
    "show_progress",
]

#: The environment variable that turns the engine logs on (``1``, ``true``, ``yes``, ``on``).
VERBOSE_ENV = "RADTL_VERBOSE"
#: The logger of the per-epoch training lines.
TRAIN_LOGGER = "radtl.train"
#: Loggers (and their children) that narrate an engine's work; WARNING unless verbose.
#: ``ignite``: every engine's start, epoch and finish lines (MONAI's trainers and evaluators log
#: there too, e.g. "Got new best metric"); ``monai``: bundle workflows, transforms, inferers;
#: ``StatsHandler``: MONAI's per-iteration loss handler; ``gensim``: the report-text models of
#: ``radtl pseudolabel``; ``highdicom``: a line per module it copies into a SEG or SR. (codecarbon, the energy meter of ``radtl sweep``, is kept at ERROR by
#: :class:`radtl.energy.RunMeter` whatever the verbosity.)
ENGINE_LOGGERS = ("ignite", "monai", "StatsHandler", "gensim", "highdicom", "dicomweb_client")
#: Engine loggers that set themselves up with a handler of their own and no propagation, so the
#: levels above do not reach them: MONAI's ``get_logger`` (standard output, INFO, when its module
#: is imported or a ``StatsHandler`` is made) and Ignite's ``setup_logger`` (standard error, INFO,
#: when an ``EarlyStopping`` or ``TerminateOnNan`` is made). Both leave a logger that already
#: exists without a handler of theirs, so :func:`configure` creates these first, with radtl's
#: console handler at the verbosity's level (a bundle's ``logging.conf`` takes them over too).
OWN_HANDLER_LOGGERS = (
    "monai.bundle.workflows",
    "monai.bundle.scripts",
    "StatsHandler",
    "ignite.handlers.early_stopping.EarlyStopping",
    "ignite.handlers.terminate_on_nan.TerminateOnNan",
    "ignite.handlers.time_limit.TimeLimit",
)

_TRUE = ("1", "true", "yes", "on")
_VERBOSE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The verbosity of the last :func:`configure` call; None before the first.
_configured: bool | None = None
#: The root logger's handlers other than radtl's console when :func:`configure` ran (a test's capture, a file).
_others: list[logging.Handler] = []


class _ConsoleHandler(logging.StreamHandler):
    """The handler :func:`configure` installs (a class of its own, so a second call can find and replace it)."""


class _ConsoleFormatter(logging.Formatter):
    """INFO and below as the bare message; warnings and errors with their level and logger."""

    def __init__(self) -> None:
        super().__init__("%(message)s")
        self._flagged = logging.Formatter("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return self._flagged.format(record) if record.levelno >= logging.WARNING else super().format(record)


def is_verbose() -> bool:
    """Whether engine logs are shown: the last :func:`configure` call's choice, else ``RADTL_VERBOSE``."""
    if _configured is not None:
        return _configured
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in _TRUE


def _console(verbose: bool, level: int = logging.NOTSET) -> logging.Handler:
    handler = _ConsoleHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_VERBOSE_FORMAT) if verbose else _ConsoleFormatter())
    handler.setLevel(level)
    return handler


def configure(verbose: bool | None = None) -> None:
    """Set up console logging for a ``radtl`` command (call it once, before the command runs).

    The root logger gets one handler on standard error at INFO (a handler from an earlier call is
    replaced; handlers others installed are left alone, and :func:`reapply` puts them back).
    Without ``verbose`` radtl's own INFO lines are printed as bare messages, warnings and errors
    with their level and logger name, and :data:`ENGINE_LOGGERS` are raised to WARNING; with
    ``verbose`` every line is printed at INFO with its time, level and logger, as the engines
    write them.

    Args:
        verbose: show the engine logs; None reads ``RADTL_VERBOSE`` from the environment.
    """
    global _configured, _others
    if verbose is None:
        verbose = os.environ.get(VERBOSE_ENV, "").strip().lower() in _TRUE
    _configured = bool(verbose)
    root = logging.getLogger()
    _others = [h for h in root.handlers if not isinstance(h, _ConsoleHandler)]
    root.handlers = [*_others, _console(_configured)]
    root.setLevel(logging.INFO)
    for name in ENGINE_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if _configured else logging.WARNING)
    for name in OWN_HANDLER_LOGGERS:
        # Propagation off, as MONAI's get_logger sets it anyway: the record is printed here, once.
        logger = logging.getLogger(name)
        logger.handlers = [_console(_configured, logging.INFO if _configured else logging.WARNING)]
        logger.propagate = False


def reapply() -> None:
    """Put back the set-up of the last :func:`configure` call; nothing if it was never called.

    MONAI's ``ConfigWorkflow`` applies the bundle's ``configs/logging.conf`` when it is created,
    replacing the root logger's handlers and the levels it names. A command that runs a bundle
    in its own process calls this right after creating the workflow, so ``--verbose`` (and the
    console format) hold for the bundle's engines too: the root logger gets back the handlers
    it had when :func:`configure` ran, without the bundle's. A library caller that never
    configured logging keeps the bundle's set-up.
    """
    if _configured is not None:
        logging.getLogger().handlers = list(_others)
        configure(_configured)


def show_progress(progress: bool | None = None) -> bool:
    """Whether to draw a progress bar: ``progress`` if given, else only when standard error is a terminal.

    tqdm redraws its bar with carriage returns and cursor-movement codes; written to a file or a
    pipe they are noise, so every bar in radtl asks this first.

    Args:
        progress: True or False to decide; None (the default) for "on a terminal".
    """
    if progress is not None:
        return bool(progress)
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # a replaced stream without isatty, or a closed one
        return False
