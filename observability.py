"""Logging set-up shared by every Leadflow process: one JSON object per line when stderr is
not a terminal, readable lines when it is; lead and workflow ids carried on each record."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow

CONTEXT_FIELDS = ("lead_id", "workflow_id", "run_id", "activity", "rep_id", "kind")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}
_DROP = {"color_message"}  # uvicorn's ANSI-coloured copy of msg


class TemporalContext(logging.Filter):
    """Adds the workflow id (and activity name) of the running activity to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if activity.in_activity():
            info = activity.info()
            record.__dict__.setdefault("workflow_id", info.workflow_id)
            record.__dict__.setdefault("activity", info.activity_type)
            workflow_id = info.workflow_id or ""
            if workflow_id.startswith("lead-"):
                record.__dict__.setdefault("lead_id", workflow_id.removeprefix("lead-"))
        elif workflow.in_workflow():
            record.__dict__.setdefault("workflow_id", workflow.info().workflow_id)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if (
                key not in _STANDARD
                and key not in _DROP
                and not key.startswith("_")
                and key not in out
            ):
                out[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        tags = " ".join(
            f"{k}={record.__dict__[k]}" for k in CONTEXT_FIELDS if record.__dict__.get(k)
        )
        return f"{base}  [{tags}]" if tags else base


def setup_logging(level: str = "INFO", json_lines: bool | None = None, process: str = "") -> None:
    """Configure the root logger once per process."""
    use_json = (not sys.stderr.isatty()) if json_lines is None else json_lines
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TemporalContext())
    if use_json:
        handler.setFormatter(JsonFormatter())
    else:
        prefix = f"{process:<8} " if process else ""
        handler.setFormatter(
            TextFormatter(f"%(asctime)s {prefix}%(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
