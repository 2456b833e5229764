"""The project's typed errors: one base class, one subclass per area.

Messages name the offending value and where it came from (topic, file, field), so a user can
act on them without a traceback; the CLI prints them in one line.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable

__all__ = [
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


class Wint3rError(Exception):
    """Base of every error the package raises on purpose."""


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
