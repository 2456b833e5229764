"""Recovery of a bag a killed writer left behind: copy every complete mcap chunk or committed
sqlite3 row into a new, complete bag (``wint3r-ros recover-bag``).

The mcap scan reads records one by one without trusting the (missing) summary and footer, so a
file cut anywhere gives every message of its complete chunks; a corrupt record ends the scan
with what came before. sqlite3 bags are rolled back on a copy first (rosbags reads them
immutable and ignores a hot journal). See `wint3r_ros.data.bag` for how writers flush.
"""
from __future__ import annotations

import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wint3r_ros.data.bag import (
    BagReader,
    BagWriter,
    hot_journal,
    is_rosbags_error,
    rolled_back_copy,
    storage_files,
)
from wint3r_ros.errors import BagError, brief

__all__ = ["recover_bag"]

_MCAP_MAGIC = b"\x89MCAP0\r\n"
_MAX_CHUNK = 1 << 30           # a decompressed chunk larger than this is treated as corrupt


class _Buf:
    """Little-endian fields of one mcap record; running past its end raises struct.error."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> Any:
        value = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return value[0] if len(value) == 1 else value

    def bytes(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise struct.error("field runs past the end of its record")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def string(self) -> str:
        return self.bytes(self.take("I")).decode("utf-8")


def _decompress(data: bytes, compression: str, size: int) -> bytes:
    if size > _MAX_CHUNK:
        raise ValueError(f"chunk claims {size} bytes")
    if compression == "":
        return data
    if compression == "zstd":
        try:
            from compression import zstd
        except ImportError:
            from backports import zstd
        return zstd.ZstdDecompressor().decompress(data, max_length=size)
    if compression == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=size)
    raise ValueError(f"unknown chunk compression {compression!r}")


def _mcap_records(f: Any, size: int) -> Iterator[tuple[int, bytes]]:
    """(opcode, body) of each complete top-level record; stops at the first cut one."""
    while True:
        head = f.read(9)
        if len(head) < 9:
            return
        op, n = struct.unpack("<BQ", head)
        if n > size - f.tell():
            return
        body = f.read(n)
        if len(body) < n:
            return
        yield op, body


def _mcap_scan(path: Path) -> Iterator[tuple[str, Any]]:
    """Schemas, channels and messages of an mcap file, in file order, without its summary.

    Yields ("schema", (id, name, encoding, text)), ("channel", (id, schema_id, topic,
    metadata)) and ("message", (channel_id, log_time, data)). Stops at the first record that is
    cut or malformed (where the writer was killed): everything before it is complete."""
    size = path.stat().st_size
    with path.open("rb") as f:
        if f.read(8) != _MCAP_MAGIC:
            raise BagError(f"{path} is not an mcap file")
        for op, body in _mcap_records(f, size):
            try:
                if op == 0x06:                          # chunk: its records, decompressed
                    b = _Buf(body)
                    _start, _end, usize, crc = b.take("QQQI")
                    compression = b.string()
                    data = _decompress(b.bytes(b.take("Q")), compression, usize)
                    if len(data) != usize or (crc and zlib.crc32(data) != crc):
                        return
                    records = list(_inner_records(data))
                else:
                    records = [(op, body)]
                for rop, rbody in records:
                    item = _mcap_item(rop, rbody)
                    if item is not None:
                        yield item
            except (struct.error, ValueError, UnicodeDecodeError, OSError, RuntimeError):
                return
            except Exception as err:   # the decompressors' own errors
                if is_rosbags_error(err):
                    return
                raise
            if op in (0x02, 0x0F):                      # footer / data end: the rest is index
                return


def _inner_records(data: bytes) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos + 9 <= len(data):
        op, n = struct.unpack_from("<BQ", data, pos)
        if pos + 9 + n > len(data):
            raise ValueError("record runs past the end of its chunk")
        yield op, data[pos + 9:pos + 9 + n]
        pos += 9 + n


def _mcap_item(op: int, body: bytes) -> tuple[str, Any] | None:
    b = _Buf(body)
    if op == 0x03:
        sid = b.take("H")
        name, encoding = b.string(), b.string()
        return "schema", (sid, name, encoding, b.bytes(b.take("I")).decode("utf-8"))
    if op == 0x04:
        cid, sid = b.take("HH")
        topic, _encoding = b.string(), b.string()
        meta = _Buf(b.bytes(b.take("I")))
        metadata = {}
        while meta.pos < len(meta.data):
            key = meta.string()
            metadata[key] = meta.string()
        return "channel", (cid, sid, topic, metadata)
    if op == 0x05:
        cid, _seq, log_time, _pub = b.take("HIQQ")
        return "message", (cid, log_time, body[b.pos:])
    return None


def _parse_qos(text: str) -> list[Any]:
    from rosbags.rosbag2.metadata import parse_qos

    try:
        return parse_qos(text)
    except Exception:
        return []


def recover_bag(source: str | Path, out: str | Path, *,
                log: Any = None) -> dict[str, Any]:
    """Copy every message of an interrupted or damaged bag that reached the disk into a new
    bag at ``out`` (same storage format). Returns ``{"messages", "topics": {topic: count},
    "start_ns", "end_ns", "skipped": {topic: reason}}``.

    A bag that opens normally (a killed sqlite3 recording: every committed row; a closed bag
    marked incomplete) is copied message by message; an mcap file without its summary (a
    killed mcap recording) is read record by record up to the first incomplete one."""
    source, out = Path(source), Path(out)
    if not source.exists():
        raise BagError(f"bag {source} does not exist")
    files = storage_files(source) if source.is_dir() else [source]
    if len(files) != 1:
        raise BagError(f"{source}: expected one .mcap or .db3 storage file, found "
                       f"{[p.name for p in files]}")
    storage = "mcap" if files[0].suffix == ".mcap" else "sqlite3"
    stats: dict[str, Any] = {"messages": 0, "topics": {}, "start_ns": None, "end_ns": None,
                             "skipped": {}}

    def count(topic: str, t: int) -> None:
        stats["messages"] += 1
        stats["topics"][topic] = stats["topics"].get(topic, 0) + 1
        stats["start_ns"] = t if stats["start_ns"] is None else min(stats["start_ns"], t)
        stats["end_ns"] = t if stats["end_ns"] is None else max(stats["end_ns"], t)

    target = source if (source / "metadata.yaml").exists() else files[0]
    workdir = None
    if hot_journal(files[0]):
        out.parent.mkdir(parents=True, exist_ok=True)
        workdir = tempfile.TemporaryDirectory(prefix=".recover-", dir=out.parent)
        target = rolled_back_copy(files[0], Path(workdir.name))
    try:
        reader: BagReader | None = BagReader(target)
    except BagError:
        if storage != "mcap":
            raise
        reader = None
    try:
        custom = reader.custom_data if reader is not None else {}
        with BagWriter(out, storage, custom_data=custom) as writer:
            if reader is not None:
                for conn in reader._reader.connections:
                    _add_recovered_topic(writer, conn.topic, conn.msgtype, conn.msgdef.data,
                                         getattr(conn.ext, "offered_qos_profiles", []) or [],
                                         stats["skipped"])
                for conn, t, raw in reader.raw_messages():
                    if conn.topic in writer._topics:
                        writer.write_raw(conn.topic, raw, t)
                        count(conn.topic, t)
            else:
                _copy_mcap_records(files[0], writer, count, stats["skipped"])
    finally:
        if reader is not None:
            reader.close()
        if workdir is not None:
            workdir.cleanup()
    if log is not None:
        for topic, why in stats["skipped"].items():
            log(f"recover-bag: {topic} not recovered: {why}")
    return stats


def _copy_mcap_records(path: Path, writer: BagWriter, count: Any,
                       skipped: dict[str, str]) -> None:
    schemas: dict[int, tuple[str, str]] = {}
    channels: dict[int, str] = {}
    for kind, item in _mcap_scan(path):
        if kind == "schema":
            schemas[item[0]] = (item[1], item[3])
        elif kind == "channel":
            cid, sid, topic, meta = item
            name, text = schemas.get(sid, ("", ""))
            if _add_recovered_topic(writer, topic, name, text,
                                    _parse_qos(meta.get("offered_qos_profiles", "")), skipped):
                channels[cid] = topic
        elif item[0] in channels:
            writer.write_raw(channels[item[0]], item[2], item[1])
            count(channels[item[0]], item[1])


def _add_recovered_topic(writer: BagWriter, topic: str, msgtype: str, msgdef: str,
                         qos: list[Any], skipped: dict[str, str]) -> bool:
    """Declare a recovered topic; a type neither our typestore nor its stored definition can
    describe is skipped with the reason."""
    if topic in writer._topics:
        return True
    if msgtype not in writer.typestore.fielddefs and msgdef:
        from rosbags.typesys import get_types_from_msg

        try:
            writer.typestore.register(get_types_from_msg(msgdef, msgtype))
        except Exception as err:
            skipped[topic] = f"type {msgtype} has a definition rosbags cannot parse: " \
                             f"{brief(err, 120)}"
            return False
    try:
        writer.add_topic(topic, msgtype, qos or None)
    except BagError as err:
        skipped[topic] = str(err)
        return False
    return True
