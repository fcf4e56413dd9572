#!/usr/bin/env bash
# Install the ScaiEcho appliance as systemd services: a Python environment in the prefix, the
# `scaiecho` system user, an initialised data dir in /var/lib/scaiecho, and the units
# scaiecho-redis, scaiecho-node@1..N, scaiecho-edge under scaiecho.target.
#
#   sudo packaging/install-appliance.sh                    # install, enable and start
#   packaging/install-appliance.sh --root /tmp/r --python-env .venv --no-start   # staging / CI
#
# --root DIR         install into DIR as if it were / (no systemctl; with --python-env, since a
#                    venv is not relocatable)
# --python-env DIR   use this environment (scaiecho installed in it) instead of creating one
# --prefix DIR       where the environment goes (default /opt/scaiecho)
# --nodes N          node units to enable (default 2)
# --host H --port P  where the edge server listens (default 0.0.0.0:8080: HTTPS with the appliance CA)
# --redis-port P     the appliance's own Redis, on loopback (default 6390)
# --no-start         install and enable only
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
root="" prefix=/opt/scaiecho env_dir="" nodes=2 host=0.0.0.0 port=8080 start=1 redis_port=6390
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root="$(realpath -m "$2")"; shift 2 ;;
        --python-env) env_dir="$(realpath "$2")"; shift 2 ;;
        --prefix) prefix="$2"; shift 2 ;;
        --nodes) nodes="$2"; shift 2 ;;
        --host) host="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --redis-port) redis_port="$2"; shift 2 ;;
        --no-start) start=0; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$nodes" in ''|*[!0-9]*) echo "--nodes needs a number" >&2; exit 2 ;; esac
data=/var/lib/scaiecho
units="$root/etc/systemd/system"

if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
    echo "run as root (or with --root DIR for a staging install)" >&2
    exit 1
fi
if [ -n "$root" ] && [ -z "$env_dir" ]; then
    echo "--root needs --python-env: a virtual environment cannot be moved after it is made" >&2
    exit 2
fi

if [ -z "$root" ]; then
    bash "$repo/packaging/install-system-deps.sh"
fi
if [ -z "$env_dir" ]; then
    echo "creating $prefix (pip install of the appliance: a few minutes)"
    python3 -m venv "$prefix"
    "$prefix/bin/pip" install --quiet --upgrade pip
    "$prefix/bin/pip" install --quiet "$repo[appliance]"
    env_dir="$prefix"
fi
for tool in scaiecho-appliance scaiecho-node scaiecho-admin; do
    [ -x "$env_dir/bin/$tool" ] || { echo "$env_dir/bin/$tool is missing: is scaiecho installed there?" >&2; exit 1; }
done
redis_server="$("$env_dir/bin/python" -c 'from appliance.redis_server import bundled_binary; print(bundled_binary())')"

# the account, from the sysusers fragment (also makes it on the next boot if /etc is reset)
install -D -m 0644 "$repo/packaging/systemd/scaiecho.sysusers" "$root/usr/lib/sysusers.d/scaiecho.conf"
if [ -n "$root" ]; then
    mkdir -p "$root/etc"
    touch "$root/etc/passwd" "$root/etc/group"
    systemd-sysusers --root="$root" "$root/usr/lib/sysusers.d/scaiecho.conf"
else
    systemd-sysusers "$root/usr/lib/sysusers.d/scaiecho.conf"
fi
uid="$(awk -F: '$1 == "scaiecho" { print $3 }' "$root/etc/passwd")"
gid="$(awk -F: '$1 == "scaiecho" { print $3 }' "$root/etc/group")"

# the units, with this install's paths; the sandbox block is inlined into each service
node_units=""
for i in $(seq 1 "$nodes"); do node_units="$node_units scaiecho-node@$i.service"; done
mkdir -p "$units"
for unit in scaiecho.target scaiecho-redis.service scaiecho-node@.service scaiecho-edge.service; do
    sed -e "/@SANDBOX@/{r $repo/packaging/systemd/sandbox.fragment" -e "d}" \
        -e "s|@PREFIX@|$env_dir|g" -e "s|@REDIS_SERVER@|$redis_server|g" -e "s|@REDIS_PORT@|$redis_port|g" \
        -e "s|@HOST@|$host|g" -e "s|@PORT@|$port|g" -e "s|@NODE_UNITS@|${node_units# }|g" \
        "$repo/packaging/systemd/$unit" > "$units/$unit"
    chmod 0644 "$units/$unit"
done
install -D -m 0644 "$repo/docs/operator.md" "$root$env_dir/share/doc/scaiecho/operator.md"

# the data dir: keys, appliance CA, schema and the first API key, owned by the service account
install -d -m 0700 "$root$data"
"$env_dir/bin/scaiecho-appliance" init --data-dir "$root$data"
chown -R "$uid:$gid" "$root$data"

# enabled like `systemctl enable` would, so a staging root boots into it too
mkdir -p "$units/multi-user.target.wants" "$units/scaiecho.target.wants"
ln -sf ../scaiecho.target "$units/multi-user.target.wants/scaiecho.target"
ln -sf ../scaiecho-redis.service "$units/scaiecho.target.wants/scaiecho-redis.service"
ln -sf ../scaiecho-edge.service "$units/scaiecho.target.wants/scaiecho-edge.service"
for i in $(seq 1 "$nodes"); do
    ln -sf ../scaiecho-node@.service "$units/scaiecho.target.wants/scaiecho-node@$i.service"
done

echo "installed: units in $units, data in $root$data"
echo "first API key: $root$data/bootstrap-api-key; CA: $env_dir/bin/scaiecho-admin --data-dir $data ca export"
if [ -z "$root" ] && [ "$start" -eq 1 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl restart scaiecho.target
        echo "started: systemctl status 'scaiecho*'; console https://$(hostname -f):$port/admin"
    else
        echo "systemd is not running here: start it with $env_dir/bin/scaiecho-appliance up --data-dir $data" >&2
    fi
fi
