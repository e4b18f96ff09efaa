"""`file` exporter: appends every request to a file as the collector's
fileexporter writes it — `json`: one OTLP/JSON export request per line (hex
trace/span IDs, lowerCamelCase keys, enums as integers, 64-bit integers as
strings); `proto`: each serialized request preceded by its length as 4 bytes,
big-endian. The file rolls over by size like the collector's (lumberjack):
`<name>-<UTC timestamp>.<ext>` backups, at most `max_backups` kept.

Encoding and writing happen in one worker thread, in arrival order, so the
event loop is never held by a big request or a slow disk; `consume` returns
once its request is in the file's buffer. Buffer bound: the 1 MiB write buffer
plus the requests being encoded — callers wait for their own write, so nothing
queues here. The buffer is flushed every `flush_interval`, and flushed and
fsynced on shutdown.
"""

from __future__ import annotations

import asyncio
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

from google.protobuf.message import Message

from llmtap.component import Exporter, Factory, Host, Kind, Settings, Signal, Stability
from llmtap.configtypes import Duration, doc
from llmtap.pdata import count_items, to_json

MIB = 1 << 20
_WRITE_BUFFER = MIB
_BACKUP_TIME_FORMAT = "%Y-%m-%dT%H-%M-%S.%f"  # as lumberjack: 2006-01-02T15-04-05.000


@dataclass
class RotationConfig:
    max_megabytes: int = field(default=100, metadata=doc(
        "Size in MiB at which the file is rotated (0 means the default, 100)."))
    max_days: int = field(default=0, metadata=doc(
        "Delete backups older than this many days; 0 keeps them regardless of age."))
    max_backups: int = field(default=100, metadata=doc(
        "Most backups kept (the oldest are deleted); 0 keeps all."))
    localtime: bool = field(default=False, metadata=doc(
        "Name backups with local time instead of UTC."))

    def validate(self) -> list[str]:
        return [f"{key}: must not be negative; got {getattr(self, key)}"
                for key in ("max_megabytes", "max_days", "max_backups") if getattr(self, key) < 0]


@dataclass
class Config:
    path: str = field(default="", metadata=doc("The file to append to (required). Its directory must exist."))
    format: Literal["json", "proto"] = field(default="json", metadata=doc(
        "`json`: one OTLP/JSON request per line; `proto`: length-prefixed OTLP protobuf."))
    rotation: RotationConfig = field(default_factory=RotationConfig, metadata=doc("Rotation by size."))
    flush_interval: Duration = field(default=Duration(1), metadata=doc(
        "How often buffered writes are flushed to the file; 0 flushes after every request."))

    def validate(self) -> list[str]:
        return [] if self.path.strip() else ["path: must be set (the file to write to)"]


class RotatingFile:
    """An append-only file that rolls over by size. Not thread-safe: one thread uses it."""

    def __init__(self, path: str | Path, rotation: RotationConfig):
        self.path = Path(path)
        self.rotation = rotation
        self.max_bytes = (rotation.max_megabytes or 100) * MIB
        stem, ext = os.path.splitext(self.path.name)
        self._backup_prefix, self._backup_ext = stem + "-", ext
        self._open()

    def _open(self) -> None:
        self._file = open(self.path, "ab", buffering=_WRITE_BUFFER)
        self.size = os.fstat(self._file.fileno()).st_size

    def write(self, payload: bytes) -> None:
        # A payload bigger than max_bytes still gets written, alone in a fresh file.
        if self.size and self.size + len(payload) > self.max_bytes:
            self.rotate()
        self._file.write(payload)
        self.size += len(payload)

    def flush(self, sync: bool = False) -> None:
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self.flush(sync=True)
            self._file.close()

    def _now(self) -> datetime:
        return datetime.now() if self.rotation.localtime else datetime.now(timezone.utc).replace(tzinfo=None)

    def _backup_path(self, moment: datetime) -> Path:
        stamp = moment.strftime(_BACKUP_TIME_FORMAT)[:-3]  # milliseconds
        return self.path.with_name(f"{self._backup_prefix}{stamp}{self._backup_ext}")

    def rotate(self) -> None:
        self.close()
        moment = self._now()
        backup = self._backup_path(moment)
        while backup.exists():  # two rotations within one millisecond
            moment += timedelta(milliseconds=1)
            backup = self._backup_path(moment)
        os.replace(self.path, backup)
        self._open()
        self._prune()

    def backups(self) -> list[tuple[datetime, Path]]:
        """Existing backups of this file, newest first."""
        found = []
        for entry in self.path.parent.iterdir():
            name = entry.name
            if not (name.startswith(self._backup_prefix) and name.endswith(self._backup_ext)):
                continue
            stamp = name[len(self._backup_prefix):len(name) - len(self._backup_ext) if self._backup_ext else None]
            try:
                found.append((datetime.strptime(stamp, _BACKUP_TIME_FORMAT), entry))
            except ValueError:
                continue  # someone else's file that happens to share the prefix
        return sorted(found, reverse=True)

    def _prune(self) -> None:
        backups = self.backups()
        doomed = backups[self.rotation.max_backups:] if self.rotation.max_backups else []
        if self.rotation.max_days:
            cutoff = self._now() - timedelta(days=self.rotation.max_days)
            doomed += [b for b in backups if b[0] < cutoff and b not in doomed]
        for _, path in doomed:
            try:
                path.unlink()
            except FileNotFoundError:
                pass


def encode(format: str, data: Message) -> bytes:
    if format == "proto":
        body = data.SerializeToString()
        return struct.pack(">I", len(body)) + body
    return to_json(data).encode() + b"\n"


class FileExporter(Exporter):
    def __init__(self, settings: Settings, config: Config):
        super().__init__(settings, config)
        self._label = str(self.id)
        self._telemetry = settings.telemetry
        self._file: RotatingFile | None = None
        self._worker: ThreadPoolExecutor | None = None
        self._flusher: asyncio.Task | None = None

    async def start(self, host: Host) -> None:
        path = self.config.path
        try:
            self._file = RotatingFile(path, self.config.rotation)
        except OSError as e:
            raise FileExporterError(f"cannot open {path!r} for appending: {e.strerror or e}") from e
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"{self.id} writer")
        if self.config.flush_interval:
            self._flusher = asyncio.create_task(self._flush_periodically(), name=f"{self.id} flusher")

    def _write(self, data: Message) -> None:
        assert self._file is not None
        self._file.write(encode(self.config.format, data))
        if not self.config.flush_interval:
            self._file.flush()

    async def _in_worker(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    async def consume(self, signal: Signal, data: Message) -> None:
        n = count_items(signal, data)
        if self._worker is None:
            raise FileExporterError(f"{self.id} is not started")
        try:
            await self._in_worker(self._write, data)
        except (OSError, ValueError) as e:
            self._telemetry.count("exporter", "send_failed", signal, n, exporter=self._label)
            self._telemetry.count("exporter", "dropped", signal, n, exporter=self._label, reason="write_failed")
            self.logger.error("cannot write to %s: %s", self.config.path, e, extra={"fields": {
                "exporter": self._label, "dropped_items": n}})
            return
        self._telemetry.count("exporter", "sent", signal, n, exporter=self._label)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval)
            try:
                await self._in_worker(self._file.flush)
            except OSError as e:
                self.logger.error("cannot flush %s: %s", self.config.path, e)

    async def shutdown(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._worker is not None:
            try:
                await self._in_worker(self._file.close)  # after every queued write: one worker, FIFO
            finally:
                self._worker.shutdown(wait=False)
                self._worker = None


class FileExporterError(Exception):
    pass


factory = Factory(
    type="file",
    kind=Kind.EXPORTER,
    config_class=Config,
    create=FileExporter,
    signals=frozenset(Signal),
    stability=Stability.ALPHA,
    description="Appends OTLP JSON lines (or length-prefixed protobuf) to a file, rotated by size",
)
