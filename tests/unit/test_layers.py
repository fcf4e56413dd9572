"""The layering of docs/architecture.md, enforced: imports only look down (or sideways inside a room).

    models/            0  the ML layer: audio, preflight, VAD, embedding, ASR, their settings
    appliance/         1  the shared base: settings, crypto, Redis keys, node protocol, TLS, …
    edge_server/       2  the edge service          appliance/node/  2  the node service
    gui/               2  the desktop client (never the services: it installs without them)
    appliance/programs 3  programs: `up`, the admin CLI, backup, key rotation

A module may import its own layer's package and any lower layer; the three layer-2 packages never
import each other. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("models", "appliance", "edge_server", "gui")


def package_of(module: str) -> str | None:
    """The layering unit a dotted module name belongs to (None: not ours)."""
    if module.startswith("appliance.programs"):
        return "programs"
    if module.startswith("appliance.node.") or module == "appliance.node":
        return "node"
    top = module.split(".")[0]
    return {"models": "models", "appliance": "base", "edge_server": "edge", "gui": "gui"}.get(top)


LAYER = {"models": 0, "base": 1, "edge": 2, "node": 2, "gui": 2, "programs": 3}


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, resolved to absolute dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def violations() -> list[str]:
    """``file imports module`` lines that break the layering."""
    bad = []
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            mine = package_of(module)
            assert mine is not None
            for imported in sorted(imports_of(path)):
                theirs = package_of(imported)
                if theirs is None or theirs == mine:
                    continue
                if LAYER[theirs] > LAYER[mine] or (LAYER[theirs] == LAYER[mine] == 2):
                    bad.append(f"{path.relative_to(ROOT)} imports {imported}")
    return sorted(set(bad))


def test_imports_only_look_down() -> None:
    assert violations() == []


def test_the_check_catches_an_upward_import() -> None:
    assert package_of("appliance.settings") == "base" and package_of("appliance.programs.supervisor") == "programs"
    assert LAYER[package_of("edge_server.app") or ""] > LAYER[package_of("appliance.crypto") or ""]
    assert package_of("appliance.node.service") == "node" and package_of("numpy") is None
