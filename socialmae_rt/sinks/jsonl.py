"""Records, events and (optionally) status as JSON lines, appended to a file that survives crashes mid-line."""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path
from typing import Any

from socialmae_rt.results import SocialPerception, event_to_json
from socialmae_rt.stream.postprocess import LaughterEvent
from socialmae_rt.stream.status import PipelineStatus

log = logging.getLogger(__name__)


def _end_of_last_line(path: Path, size: int, block: int = 1 << 16) -> int:
    """Offset just after the last newline in the first `size` bytes of `path` (0: none)."""
    with open(path, "rb") as handle:
        end = size
        while end > 0:
            start = max(0, end - block)
            handle.seek(start)
            newline = handle.read(end - start).rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
    return 0


class JsonlSink:
    """One JSON object per line: results, events and (optionally) status records.

    The file stays valid JSONL whatever happens to the process or the disk:
    - it is appended to (`fresh=True` starts it afresh), and a partial last line left by a killed
      writer is cut off when the file is opened again;
    - each record is written as one whole line with one write call on the file descriptor; if the
      write fails (disk full, I/O error), the file is cut back to its last complete line, the
      error is logged once, the record is counted as lost, and the next record tries again, so
      writing resumes by itself when space returns. The other sinks never notice.
    """

    def __init__(self, path: str | Path, stream: str = "default", include_embedding: bool = False,
                 include_status: bool = False, fresh: bool = False) -> None:
        self.path = Path(path)
        self.stream = stream
        self.include_embedding = include_embedding
        self.include_status = include_status
        self.lost = 0  # records not written because writing failed
        self.repaired_bytes = 0  # bytes of a partial last line cut off at open
        self.error: str | None = None  # the current write error, None while writing works
        for folder in (self.path.parent, *self.path.parent.parents):
            if folder.exists() and not folder.is_dir():
                raise ValueError(f"--output {self.path}: {folder} is a file, not a folder")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if fresh else 0), 0o644)
        except OSError as err:
            raise ValueError(f"--output {self.path}: cannot write there ({err.strerror})") from err
        self._size = self._repair()

    def _repair(self) -> int:
        """Cut a partial last line (a writer killed mid-line); -> the size of the valid file."""
        size = os.fstat(self._fd).st_size
        end = _end_of_last_line(self.path, size)
        if end < size:
            os.ftruncate(self._fd, end)
            self.repaired_bytes = size - end
            log.warning("%s ended in a partial line (a writer was killed mid-record): cut %d bytes; appending after "
                        "the last complete record", self.path, size - end)
        return end

    def _write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")
        try:
            written = os.write(self._fd, line)
            if written != len(line):  # the disk filled up during this line
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as err:
            self._failed(err)
            return
        self._size += len(line)
        if self.error is not None:
            log.warning("%s: writing again (%d record(s) lost while it failed)", self.path, self.lost)
            self.error = None

    def _failed(self, err: OSError) -> None:
        try:  # never leave a partial line behind
            os.ftruncate(self._fd, self._size)
        except OSError:
            pass  # the truncate itself failed: the open-time repair cuts the partial line next time
        self.lost += 1
        message = err.strerror or str(err)
        if self.error != message:  # reported once per kind of failure, not per record
            log.error("%s: cannot write records (%s); other outputs go on, and writing resumes when it can",
                      self.path, message)
        self.error = message

    def write_result(self, result: SocialPerception) -> None:
        self._write(result.to_json(self.include_embedding))

    def write_event(self, event: LaughterEvent) -> None:
        self._write(event_to_json(event, self.stream))

    def write_status(self, status: PipelineStatus) -> None:
        if self.include_status:
            self._write({"schema": "socialmae_rt.status/1", **status.to_dict()})

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
