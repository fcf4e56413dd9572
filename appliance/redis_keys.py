"""The one place that names Redis keys. Nobody else formats `scaiecho:` strings.

Schema (all values are plain strings):

- ``scaiecho:nodes`` (set): every node id that ever registered; liveness is the key below.
- ``scaiecho:node:{node_id}`` (hash, TTL = heartbeat TTL): ``url``, ``boot_id``, ``engines``,
  ``model``, ``started_at``, ``last_heartbeat_at``. A node is a candidate while it exists.
- ``scaiecho:node:{node_id}:held`` (set): ``{tenant_id}/{speaker_id}`` the node holds in memory.
- ``scaiecho:warm:{speaker_id}`` (set): node ids that hold the speaker (the warm registry).
"""

from __future__ import annotations

PREFIX = "scaiecho"

NODES = f"{PREFIX}:nodes"


def node(node_id: str) -> str:
    """Hash describing one live node; expires when its heartbeats stop."""
    return f"{PREFIX}:node:{node_id}"


def node_held(node_id: str) -> str:
    """Set of ``tenant/speaker`` pairs one node holds."""
    return f"{PREFIX}:node:{node_id}:held"


def warm(speaker_id: str) -> str:
    """Set of node ids holding one speaker."""
    return f"{PREFIX}:warm:{speaker_id}"


def held_member(tenant_id: str, speaker_id: str) -> str:
    """Member of a node's held set."""
    return f"{tenant_id}/{speaker_id}"


def parse_held_member(member: str) -> tuple[str, str]:
    """Inverse of `held_member`: ``(tenant_id, speaker_id)``."""
    tenant_id, _, speaker_id = member.partition("/")
    return tenant_id, speaker_id
