"""Log lines never carry API key secrets or bearer tokens, in text or JSON."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from appliance import logs

SECRET_KEY = "sce_0123456789abcdef_" + "s3cr3t-" * 6


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """`logs.setup` rewires the root logger; the rest of the session keeps pytest's."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def capture(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    logs.setup("test", fmt)
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    return logging.getLogger("scaiecho.test"), stream


def test_secrets_are_redacted_in_text_lines() -> None:
    log, out = capture("text")
    log.info("key %s sent Authorization: Bearer %s", SECRET_KEY, "abc.def")
    line = out.getvalue()
    assert "s3cr3t" not in line and "abc.def" not in line
    assert "sce_0123456789abcdef_[redacted]" in line  # the key id stays, for the audit trail


def test_json_lines_are_objects_and_redacted() -> None:
    log, out = capture("json")
    try:
        raise ValueError(f"bad key {SECRET_KEY}")
    except ValueError:
        log.exception("request failed for %s", SECRET_KEY)
    entry = json.loads(out.getvalue())
    assert entry["level"] == "ERROR" and entry["logger"] == "scaiecho.test" and entry["process"] == "test"
    assert "s3cr3t" not in entry["msg"] and "s3cr3t" not in entry["exc"]
    assert entry["ts"].endswith("Z")
