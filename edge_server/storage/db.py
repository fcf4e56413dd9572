"""SQLite metadata through sqlite-utils: connection pragmas and numbered migrations."""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path
from typing import Any

import sqlite_utils

from appliance.clock import utc_now


def connect(path: Path) -> sqlite_utils.Database:
    """Open (creating) the database in WAL mode with foreign keys and secure delete on."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Autocommit at the driver level; multi-statement writes use db.atomic() (savepoints nest).
    conn = sqlite3.connect(path, check_same_thread=False, timeout=10.0, isolation_level=None)
    # secure_delete: freed pages (e.g. a destroyed wrapped key) are zeroed, not left behind.
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "secure_delete=ON", "synchronous=FULL"):
        conn.execute(f"PRAGMA {pragma}")
    path.chmod(0o600)
    return sqlite_utils.Database(conn)


def migration_scripts() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every packaged migration, in order."""
    folder = resources.files("edge_server.storage") / "migrations"
    scripts = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            scripts.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(scripts)


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations not applied yet, each atomically; returns their names."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at TEXT NOT NULL)"
    )
    applied = {row[0] for row in db.execute("SELECT version FROM schema_migrations").fetchall()}
    done = []
    for version, name, sql in migration_scripts():
        if version in applied:
            continue
        # executescript commits first, so the whole migration and its bookkeeping row are
        # wrapped in one explicit transaction: a failing migration leaves no trace.
        record = f"INSERT INTO schema_migrations VALUES ({version}, '{name}', '{utc_now()}');"
        try:
            db.conn.executescript(f"BEGIN;\n{sql}\n{record}\nCOMMIT;")
        except sqlite3.Error:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        done.append(name)
    return done


def open_database(path: Path) -> sqlite_utils.Database:
    """Connect and bring the schema up to date."""
    db = connect(path)
    migrate(db)
    return db


def newest_first(
    db: sqlite_utils.Database, sql: str, params: list[object], key: str, limit: int, before: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Rows of ``sql`` (ending in a WHERE clause) newest first by the integer column ``key``, from
    just before ``before``; and the ``key`` the next page starts before, or None on the last page."""
    after = f" AND {key} < ?" if before is not None else ""
    rows = list(
        db.query(
            f"{sql}{after} ORDER BY {key} DESC LIMIT ?", [*params, *([before] if before is not None else []), limit + 1]
        )
    )
    following = rows[limit - 1][key] if len(rows) > limit else None
    return rows[:limit], following


def purge_wal(db: sqlite_utils.Database) -> bool:
    """Copy the WAL into the database file and truncate it to zero bytes; False when a reader blocked it.

    Needed after destroying secrets: ``secure_delete`` zeroes freed cells in the database file,
    but older page images stay in the WAL until it is reset.
    """
    busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return int(busy) == 0
