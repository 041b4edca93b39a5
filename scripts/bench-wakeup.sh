#!/usr/bin/env bash
# What waking the relay costs the writer, at the SQL level: pgbench runs a conference update
# with its outbox row and change-marker bump (one statement, as api-conference sends it) in
# four variants, alternately, at 1, 8 and 32 clients, on a Postgres cluster of its own with
# wal_level=logical (so that every variant pays the same WAL level):
#   notify    pg_notify inside the writing statement (OUTBOX_NOTIFY=commit)
#   none      no notification at all (OUTBOX_NOTIFY=off: a relay that polls)
#   after     the write, then pg_notify as a statement of its own with asynchronous commit
#             (OUTBOX_NOTIFY=after, without its coalescing: one notification per write, the worst case)
#   logical   no outbox row: pg_logical_emit_message(true, ...) in the writing statement, with
#             pg_recvlogical decoding the slot meanwhile (the logical-decoding transport)
# The relay's own work (claiming and deleting outbox rows) is not in it; task compare -- -commit
# measures the whole path through the services.
#
# Usage: scripts/bench-wakeup.sh [seconds per run, default 8] [rounds, default 2]
# Needs: initdb, pg_ctl, pgbench, pg_recvlogical, psql; run as root (initdb runs as postgres).
set -euo pipefail
secs="${1:-8}"
rounds="${2:-2}"
bin="$(dirname "$(command -v pg_ctl 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/pg_ctl | tail -n1)")"
[ -x "$bin/initdb" ] || bin="$(ls -d /usr/lib/postgresql/*/bin | tail -n1)"
dir="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
chown postgres "$dir"
pg() { runuser -u postgres -- "$@"; }
cleanup() {
  pkill -f "pg_recvlogical.*-p $port" 2>/dev/null || true
  pg "$bin/pg_ctl" -D "$dir/data" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

pg "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
pg "$bin/pg_ctl" -D "$dir/data" -w -l "$dir/log" -o "-p $port -c wal_level=logical -c max_wal_senders=4 -c max_replication_slots=4 -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir" start >/dev/null
q() { psql -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

# The tables the statements touch, as api-conference's migrations make them (only the
# columns and keys these statements need).
q >/dev/null <<'SQL'
CREATE TABLE conferences (id bigint PRIMARY KEY, version bigint NOT NULL DEFAULT 1, updated timestamptz NOT NULL DEFAULT now());
INSERT INTO conferences (id) SELECT generate_series(1, 100);
CREATE TABLE outbox (id bigserial PRIMARY KEY, event_id uuid NOT NULL DEFAULT gen_random_uuid(), conference_id bigint NOT NULL,
  type text NOT NULL, version bigint NOT NULL, payload jsonb, occurred_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE change_marker (slot smallint PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
INSERT INTO change_marker (slot) SELECT generate_series(0, 15);
SELECT 'slot', pg_create_logical_replication_slot('bench', 'test_decoding');
SQL
pg_recvlogical -h 127.0.0.1 -p "$port" -U postgres -d postgres --slot bench --start -f /dev/null &

payload='{"id": 1, "href": "/api/conferences/1/", "name": "Conference number one", "ends": "2027-01-02T00:00:00Z", "starts": "2027-01-01T00:00:00Z", "location": {"city": "Austin", "name": "Hall", "state": "TX"}, "max_attendees": 100}'
write="WITH c AS (UPDATE conferences SET version = version + 1, updated = now() WHERE id = :id RETURNING id, version), o AS (INSERT INTO outbox (conference_id, type, version, payload) SELECT c.id, 'conference.updated', c.version, '$payload'::jsonb FROM c), m AS (UPDATE change_marker SET n = n + 1 WHERE slot = :id % 16)"
printf '\\set id random(1, 100)\n%s SELECT pg_notify($$conference_outbox$$, $$$$) FROM c;\n' "$write" >"$dir/notify.sql"
printf '\\set id random(1, 100)\n%s SELECT 1 FROM c;\n' "$write" >"$dir/none.sql"
printf '\\set id random(1, 100)\n%s SELECT 1 FROM c;\nSELECT set_config($$synchronous_commit$$, $$off$$, true), pg_notify($$conference_outbox$$, $$$$);\n' "$write" >"$dir/after.sql"
printf '\\set id random(1, 100)\nWITH c AS (UPDATE conferences SET version = version + 1, updated = now() WHERE id = :id RETURNING id, version), m AS (UPDATE change_marker SET n = n + 1 WHERE slot = :id %% 16) SELECT pg_logical_emit_message(true, $$conferencego$$, $$%s$$) FROM c;\n' "$payload" >"$dir/logical.sql"

echo "# bench-wakeup: $(date -u +%FT%TZ), $(hostname), $(nproc) cores, load at start: $(cut -d' ' -f1-3 /proc/loadavg), $(q -c 'SHOW server_version')"
echo
declare -A tps lat
for r in $(seq 1 "$rounds"); do
  for c in 1 8 32; do
    for v in notify none after logical; do
      out="$(pgbench -h 127.0.0.1 -p "$port" -U postgres -n -M prepared -c "$c" -j "$(( c < 2 ? 1 : 2 ))" -T "$secs" -f "$dir/$v.sql" postgres 2>&1)"
      t="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | xargs printf '%.0f')"
      l="$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")"
      tps[$c,$v]="${tps[$c,$v]:-} $t"
      lat[$c,$v]="${lat[$c,$v]:-} $l"
      echo "round $r, $c clients, $v: $t tps, $l ms" >&2
    done
  done
done
echo "| clients | variant | tps (each round) | latency ms (each round) | tps ÷ none, same round |"
echo "|---:|---|---|---|---|"
for c in 1 8 32; do
  for v in notify none after logical; do
    ratios="$(paste -d' ' <(tr ' ' '\n' <<<"${tps[$c,$v]}" | sed '/^$/d') <(tr ' ' '\n' <<<"${tps[$c,none]}" | sed '/^$/d') | awk '{printf "%.2f× ", $1/$2}')"
    echo "| $c | $v |${tps[$c,$v]} |${lat[$c,$v]} | $ratios|"
  done
done
echo
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
