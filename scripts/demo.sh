#!/usr/bin/env bash
# A guided tour of Conference GO against a running `go tool task dev`: create a conference,
# watch its copy arrive in api-attendee, see the event on the stream, update, register, delete.
# Needs curl; uses redis-cli when it is there.
set -euo pipefail

C=${CONFERENCE_URL:-http://localhost:8000}
A=${ATTENDEE_URL:-http://localhost:8001}
S=${SYNCER_URL:-http://localhost:8002}
STREAM=${SYNC_STREAM:-conference.changes}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; eval "$@"; echo; }
json_id() { grep -o '"id":[0-9]*' | head -n1 | cut -d: -f2; }
now_ms() { date +%s%3N; }

# wait_for URL PATTERN: poll until the body matches, for at most 15 s.
wait_for() {
  local deadline=$(( $(now_ms) + 15000 ))
  until curl -fs "$1" 2>/dev/null | grep -q "$2"; do
    if [ "$(now_ms)" -gt "$deadline" ]; then echo "timed out waiting for $2 at $1" >&2; return 1; fi
    sleep 0.05
  done
}

for svc in "$C" "$A" "$S"; do
  curl -fs "$svc/healthz" >/dev/null || { echo "nothing answers at $svc/healthz: start the system with 'go tool task dev' first" >&2; exit 1; }
done
mode=$(curl -fs "$S/metrics" | grep -q '^relay_' && echo push || echo pull)
bold "The syncer runs in $mode mode."

bold "1. Create a location and a conference in api-conference"
loc=$(curl -fs -X POST "$C/api/locations/" -H 'Content-Type: application/json' \
  -d '{"name": "Demo Hall", "city": "Austin", "room_count": 3, "state": "TX"}')
echo "$loc"; loc_id=$(echo "$loc" | json_id)
conf=$(curl -fs -X POST "$C/api/conferences/" -H 'Content-Type: application/json' \
  -d "{\"name\": \"Demo Conf\", \"starts\": \"2027-06-01\", \"ends\": \"2027-06-03\", \"max_presentations\": 5, \"max_attendees\": 2, \"location\": $loc_id}")
echo "$conf"; id=$(echo "$conf" | json_id)
t0=$(now_ms)

bold "2. Its copy arrives in api-attendee's ConferenceVO table"
wait_for "$A/api/conferences/$id/" '"version":1'
echo "arrived after about $(( $(now_ms) - t0 )) ms"
run curl -s "$A/api/conferences/$id/"

if [ "$mode" = push ] && command -v redis-cli >/dev/null; then
  bold "3. The event that carried it, on the Redis stream"
  run redis-cli -u "$REDIS_URL" XREVRANGE "$STREAM" + - COUNT 1
  run redis-cli -u "$REDIS_URL" XINFO GROUPS "$STREAM"
else
  bold "3. In pull mode there is no stream: the syncer polled GET $C/api/conferences/ (ETag, 304 when idle)"
  run "curl -s $S/metrics | grep ^poller_"
fi

bold "4. Update it: version 2 travels the same way"
run curl -s -X PUT "$C/api/conferences/$id/" -H "'Content-Type: application/json'" -d "'{\"name\": \"Demo Conf (renamed)\"}'"
wait_for "$A/api/conferences/$id/" '"version":2'
run curl -s "$A/api/conferences/$id/"

bold "5. Register attendees: the copy answers whether the conference exists and is full (max 2)"
for who in ada grace linus; do
  printf '%s: ' "$who"
  curl -s -o /dev/null -w '%{http_code}\n' -X POST "$A/api/conferences/$id/attendees/" -H 'Content-Type: application/json' \
    -d "{\"email\": \"$who@example.com\", \"name\": \"$who\"}"
done
echo "(201, 201, then 409: full)"

bold "6. Delete it: the copy becomes a tombstone, attendees keep their conference"
run curl -s -X DELETE "$C/api/conferences/$id/"
deadline=$(( $(now_ms) + 15000 ))
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$A/api/conferences/$id/")" = 404 ]; do
  [ "$(now_ms)" -gt "$deadline" ] && { echo "the delete did not arrive" >&2; exit 1; }
  sleep 0.05
done
run curl -s "$A/api/conferences/$id/"
run "curl -s $A/api/conferences/$id/attendees/ | head -c 300; echo"

bold "7. Switch modes"
cat <<TXT
Stop 'task dev' with Ctrl-C and start it again with the other mode:

  SYNC_MODE=$( [ "$mode" = push ] && echo pull || echo push ) go tool task dev

then run this demo again. 'go tool task inspect' shows the stream and its consumer group.
TXT
