"""Encrypted cache of speaker embeddings, one per (speaker, model).

An embedding is biometric data too: it is sealed like a blob (fresh data key, wrapped by the
master key, bound to tenant, speaker and model) and shredded with the speaker's recordings.
It only exists to make a restarted node warm again in seconds instead of re-embedding every
reference; the reference blob stays the source of truth (another model re-embeds from it).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import sqlite_utils

from appliance import node_protocol as proto
from appliance.clock import utc_now
from appliance.crypto import Sealer
from edge_server.cluster import NodeResult


def _name(speaker_id: str, model: str) -> str:
    return f"embedding/{speaker_id}/{model}"


def store(
    db: sqlite_utils.Database, key: Sealer, tenant_id: str, speaker_id: str, model: str, vector: np.ndarray
) -> None:
    """Seal and keep ``vector``, unless the speaker was erased meanwhile."""
    sealed = key.seal(proto.encode_samples(vector), tenant_id, _name(speaker_id, model))
    with db.atomic():
        db.execute(
            "INSERT OR REPLACE INTO speaker_embeddings "
            "SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS "
            "(SELECT 1 FROM speakers WHERE id = ? AND deleted_at IS NULL)",
            [speaker_id, tenant_id, model, sealed.ciphertext, sealed.wrapped_key, sealed.master_key_id, utc_now(),
             speaker_id],
        )  # fmt: skip


def remember(
    db: sqlite_utils.Database, key: Sealer, tenant_id: str, speaker_id: str, results: Mapping[str, NodeResult]
) -> None:
    """Cache the embedding the first accepting node computed (every node of a model agrees)."""
    for result in results.values():
        if result.ok and result.body and "embedding" in result.body:
            vector = proto.decode_vector(result.body["embedding"])
            store(db, key, tenant_id, speaker_id, str(result.body["model"]), vector)
            return


def load(
    db: sqlite_utils.Database, key: Sealer, speaker_ids: list[str], model: str
) -> dict[str, tuple[str, np.ndarray]]:
    """speaker_id -> (tenant_id, vector) for the live speakers cached for ``model``."""
    found: dict[str, tuple[str, np.ndarray]] = {}
    for start in range(0, len(speaker_ids), 500):
        chunk = speaker_ids[start : start + 500]
        rows = db.execute(
            "SELECT e.speaker_id, e.tenant_id, e.ciphertext, e.wrapped_key FROM speaker_embeddings e "
            "JOIN speakers s ON s.id = e.speaker_id AND s.deleted_at IS NULL "
            f"WHERE e.model = ? AND e.speaker_id IN ({','.join('?' * len(chunk))})",
            [model, *chunk],
        ).fetchall()
        for speaker_id, tenant_id, ciphertext, wrapped in rows:
            plain = key.open(ciphertext, wrapped, tenant_id, _name(speaker_id, model))
            found[speaker_id] = (tenant_id, proto.decode_samples(plain))
    return found


def shred(db: sqlite_utils.Database, speaker_id: str) -> None:
    """Delete every cached embedding of a speaker (secure_delete zeroes the pages)."""
    with db.atomic():
        db.execute("DELETE FROM speaker_embeddings WHERE speaker_id = ?", [speaker_id])
