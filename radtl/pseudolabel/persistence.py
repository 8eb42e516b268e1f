"""One file per fitted object: the attributes of a :class:`SavedState` subclass, tagged with its format."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Self

import joblib

from radtl.atomic import write_atomic

__all__ = ["SavedState", "check_saved_format"]


def check_saved_format(header: object, where: object, kind: str, format_name: str, version: int, hint: str = "") -> None:
    """Raise ValueError unless ``header`` (a saved file's leading dict) names ``format_name`` in ``version``.

    Args:
        header: what the file holds: a dict with ``"format"`` and ``"format_version"``.
        where: the file, for the message.
        kind: what the file should hold (a class name), for the message.
        format_name: the expected ``"format"``.
        version: the version this radtl reads.
        hint: what to do about another version, appended to that message.
    """
    found = header.get("format") if isinstance(header, dict) else None
    if found != format_name:
        raise ValueError(f"{where} holds {found!r}, not a saved {kind}")
    if header.get("format_version") != version:
        raise ValueError(f"{where} is a {kind} in format version {header.get('format_version')!r}; "
                         f"this radtl reads version {version}{hint}")


class SavedState:
    """``save`` / ``load`` of a fitted object's attributes as one joblib file (a pickle: load only files you trust).

    A subclass names its file format in ``STATE_FORMAT`` (bump it when the attributes change:
    :meth:`load` refuses any other) and says in :meth:`_check_savable` when it cannot be saved yet.
    """

    STATE_FORMAT: ClassVar[str]

    def _check_savable(self) -> None:
        """Raise if the object is not fitted."""

    def save(self, path: str | os.PathLike) -> Path:
        """Write the object to ``path`` under a temporary name, then rename it."""
        self._check_savable()
        return write_atomic(path, lambda tmp: joblib.dump({"format": self.STATE_FORMAT, "state": self.__dict__}, tmp))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Self:
        """Read an object written by :meth:`save`."""
        content = joblib.load(path)
        if not isinstance(content, dict) or content.get("format") != cls.STATE_FORMAT:
            raise ValueError(f"{path} is not a {cls.__name__} file written by this version of radtl ({cls.STATE_FORMAT})")
        restored = cls.__new__(cls)
        restored.__dict__.update(content["state"])
        return restored
