"""The project's typed errors: one base class, one subclass per area.

Messages name the offending value and where it came from (topic, file, field), so a user can
act on them without a traceback; the CLI prints them in one line.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

__all__ = [
    "brief",
    "MAX_MESSAGE_CHARS",
    "reject_unknown_fields",
    "Wint3rError",
    "ConfigError",
    "CheckpointError",
    "SyncError",
    "CalibrationError",
    "BagError",
    "InputError",
    "EnvironmentProblem",
]


MAX_MESSAGE_CHARS = 2000


def brief(value: Any, limit: int = 80) -> str:
    """``repr(value)`` (``str`` for exceptions, on one line) cut to about ``limit`` characters,
    for messages.

    Error messages quote the offending value; this keeps a huge or deeply nested value (a whole
    YAML subtree, a long string) from turning one error line into megabytes. Only the first few
    items of a container are looked at, so the cost is bounded too.
    """
    if isinstance(value, BaseException):    # one line: a library's message may span many
        text = " ".join(str(value)[:4 * limit + 400].split())
    else:
        text = _bounded_repr(value, limit)
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text)} chars)"
    return text


def _bounded_repr(value: Any, limit: int) -> str:
    """A repr whose nesting and lengths are bounded (reprlib), so formatting is cheap."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother = 3, limit, limit
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = 8
    return r.repr(value)


class Wint3rError(Exception):
    """Base of every error the package raises on purpose.

    The message is capped at ``MAX_MESSAGE_CHARS`` characters: whatever a caller formatted into
    it, a printed error stays one readable line.
    """

    def __init__(self, *args: Any) -> None:
        if args and isinstance(args[0], str) and len(args[0]) > MAX_MESSAGE_CHARS:
            cut = args[0]
            args = (f"{cut[:MAX_MESSAGE_CHARS]}... (message cut, {len(cut)} chars)",
                    *args[1:])
        super().__init__(*args)


class ConfigError(Wint3rError, ValueError):
    """A configuration value (YAML, parameter, CLI flag) is wrong."""


class CheckpointError(Wint3rError):
    """A checkpoint is missing, corrupt, unsafe or does not match the architecture."""


class SyncError(Wint3rError):
    """Synchronisation or windowing got input it cannot use."""


class CalibrationError(Wint3rError):
    """A rig or camera calibration is missing, malformed or does not fit."""


class BagError(Wint3rError):
    """A rosbag2 file is missing, corrupt, truncated or lacks the expected topics."""


class InputError(Wint3rError, ValueError):
    """A message or array (image, camera_info, WindowBatch) is malformed."""


class EnvironmentProblem(Wint3rError):
    """The runtime environment lacks something (ROS, generated messages, torch)."""


def reject_unknown_fields(cls: type, keys: Iterable[Any], what: str) -> None:
    """Raise a ConfigError naming the keys that are not fields of dataclass `cls` (and the known
    ones), so a misspelt YAML key is an error instead of a silently ignored setting."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in set(keys) - names)
    if unknown:
        raise ConfigError(f"{what}: unknown setting(s) {unknown}; known: {sorted(names)}")
