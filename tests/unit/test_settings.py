"""The settings tree: defaults, TOML file, overrides, unknown keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from appliance.settings import load_settings


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(tmp_path)
    assert (s.server.host, s.server.port, s.nodes.count) == ("127.0.0.1", 8080, 2)
    assert s.db_path == tmp_path / "scaiecho.db"
    assert s.models.embedding == "campplus"


def test_config_file_then_overrides(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[server]\nport = 9000\n[nodes]\ncount = 4\n")
    s = load_settings(tmp_path, overrides={"nodes": {"count": 1}})
    assert s.server.port == 9000
    assert s.nodes.count == 1


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[server]\nprot = 9000\n")
    with pytest.raises(ValidationError):
        load_settings(tmp_path)
