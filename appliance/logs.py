"""Logging for every appliance process: text or one JSON object a line, secrets redacted.

Nothing logs audio, embeddings or transcripts (the code never passes them to a logger); as a
second line of defence every record is scrubbed of API keys and bearer tokens before it is
written, whatever the format.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

#: `sce_<key id>_<secret>`: the id may be logged, the secret never.
_API_KEY = re.compile(r"\b(sce_[0-9a-f]{16})_[A-Za-z0-9_\-]{20,}")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s'\"]+")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with API key secrets and bearer tokens replaced."""
    return _BEARER.sub(rf"\1{REDACTED}", _API_KEY.sub(rf"\1_{REDACTED}", text))


class RedactingFilter(logging.Filter):
    """Scrub the message (with its arguments merged in) of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, process label, msg (and exc when there is one)."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "process": self.process,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup(process: str, fmt: str = "text", level: str = "INFO") -> None:
    """Configure the root logger of this process (``process`` names it in every line)."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {process} %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
