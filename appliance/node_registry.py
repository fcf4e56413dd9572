"""Node registry and warm registry in Redis: what nodes write and what the edge server reads.

Liveness is a key with a TTL that each heartbeat renews, so a node that dies (even by
``kill -9``) leaves the candidates within one TTL without anybody cleaning up after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from appliance import redis_keys as keys


@dataclass(frozen=True)
class NodeInfo:
    """One registered node as stored in its Redis hash."""

    node_id: str
    url: str
    boot_id: str
    engines: tuple[str, ...]
    model: str
    started_at: str
    last_heartbeat_at: str

    def to_hash(self) -> dict[Any, str]:
        """Flat string mapping for HSET."""
        return {
            "node_id": self.node_id,
            "url": self.url,
            "boot_id": self.boot_id,
            "engines": ",".join(self.engines),
            "model": self.model,
            "started_at": self.started_at,
            "last_heartbeat_at": self.last_heartbeat_at,
        }

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> NodeInfo:
        """Inverse of `to_hash`."""
        return cls(
            node_id=data["node_id"],
            url=data["url"],
            boot_id=data["boot_id"],
            engines=tuple(e for e in data.get("engines", "").split(",") if e),
            model=data.get("model", ""),
            started_at=data.get("started_at", ""),
            last_heartbeat_at=data.get("last_heartbeat_at", ""),
        )


def _text(value: bytes | str) -> str:
    # Clients are created with decode_responses=True; this keeps the types honest.
    return value.decode() if isinstance(value, bytes) else value


def _ttl_ms(ttl_s: float) -> int:
    return max(1, int(ttl_s * 1000))


async def forget_holdings(redis: Redis, node_id: str) -> None:
    """Remove every warm-registry entry of ``node_id`` (it restarted cold, or it is leaving)."""
    held = [_text(m) for m in await redis.smembers(keys.node_held(node_id))]
    async with redis.pipeline(transaction=True) as pipe:
        for member in held:
            _, speaker_id = keys.parse_held_member(member)
            pipe.srem(keys.warm(speaker_id), node_id)
        pipe.delete(keys.node_held(node_id))
        await pipe.execute()


async def register(redis: Redis, info: NodeInfo, ttl_s: float) -> None:
    """Announce a freshly started (cold) node: its old warm entries are cleared first."""
    await forget_holdings(redis, info.node_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.node(info.node_id), mapping=info.to_hash())
        pipe.pexpire(keys.node(info.node_id), _ttl_ms(ttl_s))
        pipe.sadd(keys.NODES, info.node_id)
        await pipe.execute()


async def heartbeat(redis: Redis, info: NodeInfo, ttl_s: float) -> None:
    """Renew liveness; re-creates the hash if it expired while this process was stalled."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.node(info.node_id), mapping=info.to_hash())
        pipe.pexpire(keys.node(info.node_id), _ttl_ms(ttl_s))
        pipe.sadd(keys.NODES, info.node_id)
        await pipe.execute()


async def deregister(redis: Redis, node_id: str) -> None:
    """A clean shutdown: leave the candidates, the registered nodes and the warm registry at once.

    A node that stopped cleanly holds nothing (its memory is gone), so no erasure owes it an
    eviction; one that died or froze stays registered until it answers again.
    """
    await forget_holdings(redis, node_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.node(node_id))
        pipe.srem(keys.NODES, node_id)
        await pipe.execute()


async def registered_ids(redis: Redis) -> set[str]:
    """Every node id registered and not cleanly stopped, online or not (frozen, killed)."""
    return {_text(m) for m in await redis.smembers(keys.NODES)}


async def assert_holdings(redis: Redis, node_id: str, pairs: Callable[[], Iterable[tuple[str, str]]]) -> bool:
    """Make the warm registry say exactly what ``node_id`` holds; True when it had to be repaired.

    ``pairs`` is read after Redis answered, so a hold or release that ran meanwhile is counted.
    Cheap when nothing changed (one SMEMBERS); called by the node on every heartbeat.
    """
    recorded = {_text(m) for m in await redis.smembers(keys.node_held(node_id))}
    wanted = {keys.held_member(t, s) for t, s in pairs()}
    if recorded == wanted:
        return False
    async with redis.pipeline(transaction=True) as pipe:
        for member in recorded - wanted:
            _, speaker_id = keys.parse_held_member(member)
            pipe.srem(keys.warm(speaker_id), node_id)
            pipe.srem(keys.node_held(node_id), member)
        for member in wanted - recorded:
            _, speaker_id = keys.parse_held_member(member)
            pipe.sadd(keys.warm(speaker_id), node_id)
            pipe.sadd(keys.node_held(node_id), member)
        await pipe.execute()
    return True


async def mark_held(redis: Redis, node_id: str, tenant_id: str, speaker_id: str) -> None:
    """Record that ``node_id`` holds the speaker."""
    await mark_held_many(redis, node_id, [(tenant_id, speaker_id)])


async def mark_held_many(redis: Redis, node_id: str, pairs: list[tuple[str, str]]) -> None:
    """Record that ``node_id`` holds every ``(tenant_id, speaker_id)`` pair."""
    async with redis.pipeline(transaction=True) as pipe:
        for tenant_id, speaker_id in pairs:
            pipe.sadd(keys.warm(speaker_id), node_id)
            pipe.sadd(keys.node_held(node_id), keys.held_member(tenant_id, speaker_id))
        await pipe.execute()


async def mark_released(redis: Redis, node_id: str, tenant_id: str, speaker_id: str) -> None:
    """Record that ``node_id`` no longer holds the speaker."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.srem(keys.warm(speaker_id), node_id)
        pipe.srem(keys.node_held(node_id), keys.held_member(tenant_id, speaker_id))
        await pipe.execute()


async def candidates(redis: Redis) -> list[NodeInfo]:
    """Nodes alive now (heartbeat within the TTL), sorted by id."""
    node_ids = sorted(_text(m) for m in await redis.smembers(keys.NODES))
    if not node_ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for node_id in node_ids:
            pipe.hgetall(keys.node(node_id))
        hashes = await pipe.execute()
    return [NodeInfo.from_hash(h) for h in hashes if h]


async def warm_node_ids(redis: Redis, speaker_id: str) -> set[str]:
    """Node ids the warm registry says hold the speaker."""
    return {_text(m) for m in await redis.smembers(keys.warm(speaker_id))}


async def warm_node_ids_many(redis: Redis, speaker_ids: list[str]) -> dict[str, set[str]]:
    """`warm_node_ids` of many speakers in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for speaker_id in speaker_ids:
            pipe.smembers(keys.warm(speaker_id))
        members = await pipe.execute()
    return {s: {_text(m) for m in found} for s, found in zip(speaker_ids, members, strict=True)}


async def holdings(redis: Redis, node_id: str) -> list[tuple[str, str]]:
    """``(tenant_id, speaker_id)`` pairs a node holds, per the warm registry."""
    return [keys.parse_held_member(_text(m)) for m in await redis.smembers(keys.node_held(node_id))]
