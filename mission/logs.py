"""Logging for servers and workers: one JSON object per line (or readable text on a terminal),
with the mission and job in hand bound to every line."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_bound: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("mission_log_fields", default=None)

# Fields a record may carry (``extra=``) that are worth a column of their own.
EXTRA_FIELDS = (
    "mission_id",
    "job_id",
    "attempt",
    "error_id",
    "key_id",
    "worker",
    "template",
    "tenant",
    "status",
    "duration_s",
    "spent",
    "budget",
)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add fields to every log line written inside the block (in this task)."""
    token = _bound.set({**(_bound.get() or {}), **fields})
    try:
        yield
    finally:
        _bound.reset(token)


def _bind_at_creation(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """Copy the bound fields onto each record when it is made (a record may be formatted later,
    in another task or thread)."""

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        for name, value in (_bound.get() or {}).items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return record

    make.binds_mission_fields = True  # type: ignore[attr-defined]
    return make


if not getattr(logging.getLogRecordFactory(), "binds_mission_fields", False):
    logging.setLogRecordFactory(_bind_at_creation(logging.getLogRecordFactory()))


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in EXTRA_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            found[name] = value
    return found


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        return text + ("  " + " ".join(f"{k}={v}" for k, v in fields.items()) if fields else "")


def configure(level: str = "INFO", fmt: str = "auto") -> None:
    """Root logging to stderr; ``fmt`` is json, text, or auto (text on a terminal, else JSON)."""
    use_text = fmt == "text" or (fmt == "auto" and sys.stderr.isatty())
    handler = logging.StreamHandler()
    handler.setFormatter(TextFormatter() if use_text else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if level.upper() != "DEBUG":
        # a line per job, per HTTP request (model calls, health polls, the CLI's requests): our own say more
        for noisy in ("arq.worker", "httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
