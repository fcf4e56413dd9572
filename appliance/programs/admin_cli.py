"""`scaiecho-admin`: operator commands on the box (tenants, API keys, audit, CA, backup, key rotation)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sqlite_utils
from cryptography.hazmat.primitives import serialization

from appliance.programs.backup import BackupError, backup, restore
from appliance.programs.key_rotation import rotate
from appliance.settings import Settings, load_settings
from appliance.tls import TlsFiles, ensure_ca, fingerprint
from edge_server.access.scopes import unknown_scopes
from edge_server.access.tenancy import create_key, create_tenant, find_tenant, revoke_key
from edge_server.speakers.retention import due
from edge_server.storage import policies
from edge_server.storage.audit import AuditSeal, verify
from edge_server.storage.db import open_database


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="scaiecho-admin", description="ScaiEcho operator commands.")
    parser.add_argument("--data-dir", type=Path, default=None, help="same default as scaiecho-appliance up")
    # The same option after the subcommand too (`audit verify --data-dir D`); SUPPRESS keeps a
    # value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", type=Path, default=argparse.SUPPRESS, help="same default as scaiecho-appliance up"
    )
    sub = parser.add_subparsers(dest="area", required=True)
    tenant = sub.add_parser("tenant").add_subparsers(dest="action", required=True)
    tenant_create = tenant.add_parser("create", parents=[common], help="create a tenant; prints its id")
    tenant_create.add_argument("name")
    key = sub.add_parser("key").add_subparsers(dest="action", required=True)
    key_create = key.add_parser("create", parents=[common], help="create an API key; prints it once")
    key_create.add_argument("--tenant", required=True, help="tenant id or name")
    key_create.add_argument("--scopes", required=True, help="comma-separated, e.g. scaiecho:enroll,scaiecho:transcribe")
    key_create.add_argument("--name", default="cli")
    key_revoke = key.add_parser("revoke", parents=[common], help="revoke an API key at once")
    key_revoke.add_argument("key_id")
    audit_parser = sub.add_parser("audit").add_subparsers(dest="action", required=True)
    audit_parser.add_parser(
        "verify", parents=[common], help="walk the erasure audit hash chain; exit 1 on the first broken link"
    )
    retention_parser = sub.add_parser("retention").add_subparsers(dest="action", required=True)
    due_parser = retention_parser.add_parser(
        "due", parents=[common], help="dry run: the speakers the retention job would erase now (changes nothing)"
    )
    due_parser.add_argument("--tenant", default=None, help="tenant id or name (default: every tenant)")
    ca = sub.add_parser("ca").add_subparsers(dest="action", required=True)
    ca.add_parser("export", parents=[common], help="print the appliance CA certificate (PEM) for clients to trust")
    backup_parser = sub.add_parser("backup", parents=[common], help="archive the data dir while the appliance runs")
    backup_parser.add_argument("out", type=Path, help="the archive to write (a new .tar file)")
    backup_parser.add_argument(
        "--with-master-key", action="store_true", help="include the master keys (else keep them safe separately)"
    )
    restore_parser = sub.add_parser(
        "restore", parents=[common], help="unpack an archive into the data dir (appliance stopped)"
    )
    restore_parser.add_argument("archive", type=Path)
    restore_parser.add_argument("--master-key", type=Path, default=None, help="master.key of the backed-up appliance")
    restore_parser.add_argument("--force", action="store_true", help="move a non-empty data dir aside first")
    master = sub.add_parser("master-key").add_subparsers(dest="action", required=True)
    rotate_parser = master.add_parser(
        "rotate", parents=[common], help="new master key; re-wrap every data key (appliance may run)"
    )
    rotate_parser.add_argument("--keep-old", action="store_true", help="keep the old key file (for old backups)")
    args = parser.parse_args(argv)

    settings = load_settings(args.data_dir)
    if args.area in ("ca", "backup", "restore"):
        return _files_command(args, settings)
    db = open_database(settings.db_path)
    try:
        if args.area == "master-key":
            done = rotate(db, settings.master_key_path, keep_old=args.keep_old)
            print(
                f"master key rotated: {done.new_key_id} (was {', '.join(done.old_key_ids)}); "
                f"{done.rewrapped} data keys re-wrapped; retired: {', '.join(done.retired) or 'none'}"
            )
            if done.retired:
                print("backups taken before now can only be restored with the retired key", file=sys.stderr)
        elif args.area == "audit":
            result = verify(db, AuditSeal.load_or_create(settings.data_dir))
            if not result.ok:
                where = f" at erasure audit row {result.broken_seq}" if result.broken_seq is not None else ""
                print(f"BROKEN{where}: {result.reason}")
                return 1
            print(f"OK: {result.rows} erasure audit rows, head {result.head}")
        elif args.area == "retention":
            return _retention_due(db, settings, args.tenant)
        elif args.area == "tenant":
            try:
                print(create_tenant(db, args.name))
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
        elif args.action == "create":
            tenant_id = find_tenant(db, args.tenant)
            if tenant_id is None:
                print(f"error: no tenant {args.tenant!r}", file=sys.stderr)
                return 1
            scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
            bad = unknown_scopes(scopes)
            if bad or not scopes:
                print(
                    f"error: unknown scopes {bad}" if bad else "error: give at least one scope",
                    file=sys.stderr,
                )
                return 1
            issued = create_key(db, tenant_id, scopes, args.name)
            print(f"key id: {issued.id}", file=sys.stderr)
            print(issued.token)
        else:
            if not revoke_key(db, args.key_id):
                print(f"error: no live key {args.key_id!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}", file=sys.stderr)
    finally:
        db.conn.close()
    return 0


def _retention_due(db: sqlite_utils.Database, settings: Settings, tenant: str | None) -> int:
    """Print the speakers whose retention ran out, per tenant; the running appliance's job erases them."""
    if tenant is not None:
        tenant_id = find_tenant(db, tenant)
        if tenant_id is None:
            print(f"error: no tenant {tenant!r}", file=sys.stderr)
            return 1
        tenant_ids = [tenant_id]
    else:
        tenant_ids = [row[0] for row in db.execute("SELECT id FROM tenants ORDER BY created_at").fetchall()]
    total = 0
    for tenant_id in tenant_ids:
        days = policies.read(db, tenant_id, settings.consent).retention_days
        for row in due(db, tenant_id, settings.consent):
            total += 1
            print(f"{tenant_id}\t{row['id']}\t{row['display_name']}\tlast active {row['last_active_at']}"
                  f"\t(retention {days} d)")  # fmt: skip
    print(f"{total} speaker(s) due for erasure; the appliance's retention job erases them (nothing changed)",
          file=sys.stderr)  # fmt: skip
    return 0


def _files_command(args: argparse.Namespace, settings: Settings) -> int:
    """ca export, backup and restore: commands on files, not on the open database."""
    if args.area == "ca":
        cert = ensure_ca(TlsFiles(settings.tls_dir))
        print(f"SHA-256 fingerprint {fingerprint(cert)}", file=sys.stderr)
        print(cert.public_bytes(serialization.Encoding.PEM).decode(), end="")
        return 0
    try:
        if args.area == "backup":
            made = backup(settings, args.out, args.with_master_key)
            print(f"backup {made.path}: {made.blobs} encrypted recordings, master key ids {made.master_key_ids}")
            if made.missing_blobs:
                print(f"{made.missing_blobs} recordings were erased while the backup ran (left out)", file=sys.stderr)
            if not made.master_key_included:
                print(
                    f"the master key is NOT in the archive: keep {settings.master_key_path} safe apart from it; "
                    "restore needs it (--master-key)",
                    file=sys.stderr,
                )
        else:
            done = restore(args.archive, settings, args.master_key, args.force)
            print(f"restored into {done.path}: {done.blobs} encrypted recordings; start the appliance now")
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
