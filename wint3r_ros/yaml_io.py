"""The project's one YAML reader: bounded, alias-free, YAML-1.2 numbers, UTF-8 only.

Every YAML file the package reads (rig files, camera_info, Kalibr camchains, training configs,
process-bag's parameter files) goes through `load_yaml`, so one set of rules holds everywhere:

- at most ``max_bytes`` (1 MiB by default; a rig file is a few KB);
- strict UTF-8: any other encoding is an error naming the byte offset;
- no anchors or aliases (``&a`` / ``*a``): a 2 KB "billion laughs" file cannot expand into GBs,
  and no consumer has to walk a shared subtree twice;
- nesting at most ``max_depth`` levels deep, checked on the parser's flat event stream before
  anything is built (a 100 000-deep list would otherwise overflow Python's recursion);
- numbers as YAML 1.2 reads them: ``1e-3`` and ``2E+5`` are floats (YAML 1.1, and therefore
  PyYAML, reads them as strings);
- a duplicate key in one mapping is an error (YAML says keys are unique; PyYAML keeps the last).

Violations raise the caller's error type (`ConfigError` unless told otherwise) with the file
name, the line, and the reason, never the value itself beyond a short excerpt.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from wint3r_ros.errors import ConfigError, Wint3rError, brief

__all__ = ["load_yaml", "parse_yaml", "dump_yaml", "MAX_YAML_BYTES", "MAX_YAML_DEPTH"]

MAX_YAML_BYTES = 1 << 20
MAX_YAML_DEPTH = 32

# YAML 1.2 core schema floats that YAML 1.1 misses: an exponent without a dot ("1e-3") or an
# exponent without a sign ("1.5e3"). Plain integers stay integers (no exponent, no dot).
_FLOAT_12 = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """SafeLoader + YAML 1.2 exponent floats + unique keys (aliases are refused before it runs)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {brief(key)}", key_node.start_mark)
                seen[key] = True
            except TypeError:   # an unhashable key: SafeLoader reports it below
                break
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12,
                              list("-+.0123456789"))


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes a shared object out again instead of an anchor and alias, so
    every file the package writes is one `load_yaml` accepts."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any, **kwargs: Any) -> str:
    """YAML text of ``data`` (``yaml.safe_dump`` options), without anchors or aliases."""
    return yaml.dump(data, Dumper=_Dumper, **kwargs)


def _line(mark: Any) -> str:
    return f"line {mark.line + 1}" if mark is not None else "somewhere"


def _check_events(text: str, where: str, max_depth: int, error: type[Wint3rError]) -> None:
    """Refuse anchors, aliases and deep nesting from the parser's events (no tree built)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise error(f"{where}: {_line(event.start_mark)}: YAML anchors and aliases "
                        f"(&name / *name) are not allowed; write the values out")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > max_depth:
                raise error(f"{where}: {_line(event.start_mark)}: nested more than "
                            f"{max_depth} levels deep")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def parse_yaml(text: str | bytes, source: str, what: str = "YAML", *,
               error: type[Wint3rError] = ConfigError, max_bytes: int = MAX_YAML_BYTES,
               max_depth: int = MAX_YAML_DEPTH) -> Any:
    """Parse YAML ``text`` (str or UTF-8 bytes); ``source`` (a file name) and ``what`` ("rig
    calibration") name it in messages: ``"<source>: <problem> (<what>)"``."""
    size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    if size > max_bytes:
        raise error(f"{source}: {what} of {size} bytes or more is larger than this reader "
                    f"accepts ({max_bytes}); is it the right file?")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise error(f"{source}: {what} is not UTF-8 text (byte 0x{text[err.start]:02x} at "
                        f"offset {err.start}); save the file as UTF-8") from err
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        _check_events(text, f"{source}: {what}", max_depth, error)
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        where = _line(err.problem_mark or err.context_mark)
        raise error(f"{source}: not valid YAML ({what}) at {where}: "
                    f"{brief(err.problem or err, 160)}") from err
    except yaml.YAMLError as err:
        raise error(f"{source}: not valid YAML ({what}): {brief(err, 160)}") from err
    except RecursionError as err:   # cannot happen below max_depth; kept as a last guard
        raise error(f"{source}: {what} is nested too deeply") from err
    except Wint3rError:
        raise
    except Exception as err:  # PyYAML's constructors fail in many ways
        # a scalar the resolver typed but its constructor cannot build: a 5000-digit integer,
        # the date 2001-13-45, `!!int x` (ValueError), `!!timestamp 1` (AttributeError)
        raise error(f"{source}: not valid YAML ({what}): a value cannot be read: "
                    f"{brief(err, 120)}") from err


def load_yaml(path: str | Path, what: str = "YAML file", *,
              error: type[Wint3rError] = ConfigError, max_bytes: int = MAX_YAML_BYTES,
              max_depth: int = MAX_YAML_DEPTH) -> Any:
    """Read and parse the YAML file ``path``; ``what`` names it in messages ("rig calibration").

    Errors (missing, unreadable, too big, not UTF-8, invalid, aliases, too deep) raise ``error``
    with ``"<path>: ..."`` and the reason.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as err:
        raise error(f"{path}: cannot read {what}: {err.strerror or err}") from err
    return parse_yaml(data, str(path), what, error=error, max_bytes=max_bytes,
                      max_depth=max_depth)
