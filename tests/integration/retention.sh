# Integration: retention. `ktrail prune` deletes what is older than its horizons (events with
# their raw JSON, alerts with their links, rejects, first_seen keys, correlation state) and
# nothing newer; alerts kept longer keep the events they link to; a database pruned every
# "day" stops growing; `serve --retain` prunes by itself while it takes events.
. "$(dirname "$0")/lib.bash"

n() { sql "$1" "$2"; }
us() { date -u -d "$1" +%s000000; }
replay() { "$KTRAIL" replay --quiet --alerts none "$@" 2>>"$T/replay.err"; }

"$GEN_AUDIT" --seed 7 --events 20000 --start 2026-11-01T00:00:00Z -o "$T/a.log"
printf '{"kind":"Event","broken\nnot json at all\n' >>"$T/a.log"
replay --db "$T/a.db" "$T/a.log"
cp "$T/a.db" "$T/b.db"
H=2026-11-01T00:05:00Z
h=$(us $H)
events_old=$(n "$T/a.db" "SELECT count(*) FROM events WHERE ts < $h")
events_new=$(n "$T/a.db" "SELECT count(*) FROM events WHERE ts >= $h")
alerts_new=$(n "$T/a.db" "SELECT count(*) FROM alerts WHERE ts >= $h")
check "the log spans the horizon" 1 "$([ "$events_old" -gt 1000 ] && [ "$events_new" -gt 1000 ] && echo 1)"
check "the log has alerts linked to older events" 1 "$([ "$(n "$T/a.db" "SELECT count(*) FROM alert_events")" -gt 0 ] && echo 1)"
# evidence older than the horizon that a newer alert links to
rejects=$(n "$T/a.db" "SELECT count(*) FROM rejects")
check "the log has rejects" 1 "$([ "$rejects" -gt 0 ] && echo 1)"
evidence=$(n "$T/a.db" "SELECT count(DISTINCT e.id) FROM events e JOIN alert_events ae ON ae.event_id = e.id JOIN alerts a ON a.id = ae.alert_id WHERE e.ts < $h AND a.ts >= $h")

# ---- prune --before: older rows go, newer stay, nothing orphaned ----
"$KTRAIL" prune --db "$T/a.db" --before $H 2>"$T/p.err"
check "prune: exit 0" 0 $?
check "prune: every newer event stays" "$events_new" "$(n "$T/a.db" "SELECT count(*) FROM events WHERE ts >= $h")"
check "prune: older events gone but the evidence of newer alerts" "$evidence" "$(n "$T/a.db" "SELECT count(*) FROM events WHERE ts < $h")"
check "prune: every newer alert stays" "$alerts_new" "$(n "$T/a.db" "SELECT count(*) FROM alerts")"
check "prune: no raw JSON without its event" 0 "$(n "$T/a.db" "SELECT count(*) FROM raw WHERE event_id NOT IN (SELECT id FROM events)")"
check "prune: no block of raw JSON without its events" 0 "$(n "$T/a.db" "SELECT count(*) FROM raw_blocks WHERE id NOT IN (SELECT block FROM raw WHERE block IS NOT NULL)")"
check "prune: the raw JSON of what stays reads" "$(n "$T/b.db" "SELECT md5 FROM (SELECT group_concat(raw, '') AS md5 FROM (SELECT raw FROM v_events WHERE ts >= $h ORDER BY id))" | md5sum)" \
    "$(n "$T/a.db" "SELECT group_concat(raw, '') FROM (SELECT raw FROM v_events WHERE ts >= $h ORDER BY id)" | md5sum)"
check "prune: no alert link to a missing alert" 0 "$(n "$T/a.db" "SELECT count(*) FROM alert_events WHERE alert_id NOT IN (SELECT id FROM alerts)")"
check "prune: no alert link to a missing event" 0 "$(n "$T/a.db" "SELECT count(*) FROM alert_events WHERE event_id NOT IN (SELECT id FROM events)")"
check "prune: no alert without its event" 0 "$(n "$T/a.db" "SELECT count(*) FROM alerts WHERE event_id NOT IN (SELECT id FROM events)")"
check "prune: no suppression group of a missing alert" 0 "$(n "$T/a.db" "SELECT count(*) FROM alert_groups WHERE alert_id NOT IN (SELECT id FROM alerts)")"
check "prune: no first_seen key last seen before" 0 "$(n "$T/a.db" "SELECT count(*) FROM first_seen WHERE last_ts < $h")"
check "prune: no correlation group idle since before" 0 "$(n "$T/a.db" "SELECT count(*) FROM corr_state WHERE last_ts < $h")"
check "prune: rejects are stored today, after the horizon: kept" "$rejects" "$(n "$T/a.db" "SELECT count(*) FROM rejects")"
check "prune: the summary counts what went" 1 "$(grep -c "ktrail prune: $((events_old - evidence)) events, .* deleted (events before 2026-11-01T00:05:00.000000Z" "$T/p.err")"
check "prune: v_events still reads" "$((events_new + evidence))" "$(n "$T/a.db" "SELECT count(*) FROM v_events")"
check "prune: the database is sound" ok "$(n "$T/a.db" "PRAGMA integrity_check")"
"$KTRAIL" prune --db "$T/a.db" --before $H 2>"$T/p2.err"
check "prune again: nothing more" 1 "$(grep -c "ktrail prune: 0 events, 0 alerts, 0 rejects" "$T/p2.err")"

# ---- alerts kept longer than events, with the events they name ----
A=2026-11-01T00:02:00Z
a=$(us $A)
kept_by_alerts=$(n "$T/b.db" "SELECT count(*) FROM events e WHERE e.ts < $h AND (EXISTS (SELECT 1 FROM alerts x WHERE x.event_id = e.id AND x.ts >= $a) OR EXISTS (SELECT 1 FROM alert_events ae JOIN alerts x ON x.id = ae.alert_id WHERE ae.event_id = e.id AND x.ts >= $a))")
alerts_kept=$(n "$T/b.db" "SELECT count(*) FROM alerts WHERE ts >= $a")
"$KTRAIL" prune --db "$T/b.db" --before $H --alerts-before $A 2>"$T/pb.err"
check "alerts longer: exit 0" 0 $?
check "alerts longer: alerts after their horizon stay" "$alerts_kept" "$(n "$T/b.db" "SELECT count(*) FROM alerts")"
check "alerts longer: with their events" "$kept_by_alerts" "$(n "$T/b.db" "SELECT count(*) FROM events WHERE ts < $h")"
check "alerts longer: every alert has its event" 0 "$(n "$T/b.db" "SELECT count(*) FROM alerts WHERE event_id NOT IN (SELECT id FROM events)")"
check "alerts longer: every link has its event" 0 "$(n "$T/b.db" "SELECT count(*) FROM alert_events WHERE event_id NOT IN (SELECT id FROM events)")"

# ---- usage ----
"$KTRAIL" prune --db "$T/b.db" 2>/dev/null
check "prune without a horizon: usage error" 2 $?
"$KTRAIL" prune --db "$T/b.db" --older-than soon 2>"$T/u.err"
check "a bad duration: usage error" 2 $?
check "it says so" 1 "$(grep -c "'soon' is not a duration" "$T/u.err")"
# a number without its unit is refused, not taken for seconds (that would delete nearly all)
before=$(n "$T/b.db" "SELECT count(*) FROM events")
"$KTRAIL" prune --db "$T/b.db" --older-than 90 2>"$T/u.err"
check "prune --older-than 90: usage error" 2 $?
check "it asks for the unit" 1 "$(grep -c -- "--older-than: '90' is not a duration with its unit" "$T/u.err")"
check "nothing deleted" "$before" "$(n "$T/b.db" "SELECT count(*) FROM events")"
"$KTRAIL" prune --db "$T/b.db" --older-than 3650d --alerts-older-than 3650 2>/dev/null
check "prune --alerts-older-than 3650: usage error" 2 $?
"$KTRAIL" serve --listen 127.0.0.1:0 --insecure --db "$T/u.db" --retain 30 2>/dev/null
check "serve --retain 30: usage error" 2 $?
check "serve --retain 30: no database made" 0 "$(ls "$T"/u.db* 2>/dev/null | wc -l)"
"$KTRAIL" prune --db "$T/b.db" --before $A --alerts-before $H 2>/dev/null
check "alerts horizon later than events': usage error" 2 $?
"$KTRAIL" prune --db "$T/none.db" --before $H 2>/dev/null
check "no such database: exit 1" 1 $?
check "no database made" 0 "$(ls "$T"/none.db* 2>/dev/null | wc -l)"
"$KTRAIL" replay --db "$T/x.db" --retain 1d "$T/a.log" 2>/dev/null
check "replay --retain without --follow: usage error" 2 $?

# ---- a day's events in, the day before yesterday's out: the file stops growing ----
sizes=()
for day in 1 2 3 4 5 6; do
    "$GEN_AUDIT" --seed $day --events 6000 --start "2026-11-0${day}T00:00:00Z" -o "$T/d.log"
    replay --db "$T/s.db" "$T/d.log"
    if [ $day -gt 2 ]; then
        "$KTRAIL" prune --db "$T/s.db" --before "2026-11-0$((day - 1))T00:00:00Z" 2>/dev/null
    fi
    sqlite3 "$T/s.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
    sizes+=("$(stat -c %s "$T/s.db")")
done
echo "steady state: database sizes ${sizes[*]}"
check "steady state: two days held" 12000 "$(n "$T/s.db" "SELECT count(*) FROM events WHERE ts >= $(us 2026-11-05T00:00:00Z)")"
check "steady state: the file stops growing (day 6 within 10% of day 4)" 1 \
    "$([ "${sizes[5]}" -le $((sizes[3] + sizes[3] / 10)) ] && echo 1)"
check "steady state: freed pages reused" 1 "$([ "$(n "$T/s.db" "PRAGMA freelist_count")" -lt "$(n "$T/s.db" "PRAGMA page_count")" ] && echo 1)"

# ---- serve --retain: prunes by itself while it takes events ----
"$GEN_AUDIT" --seed 11 --events 2000 --start 2020-01-01T00:00:00Z -o "$T/old.log"
"$GEN_AUDIT" --seed 12 --events 2000 --start "$(date -u +%Y-%m-%dT%H:%M:%SZ)" -o "$T/new.log"
"$KTRAIL" serve --listen 127.0.0.1:0 --insecure --alerts none --db "$T/w.db" --retain 30d \
    --retain-every 1s 2>"$T/serve.log" &
sp=$!
URL=
for _ in $(seq 100); do
    URL=$(grep -o 'listening on [^ ]*' "$T/serve.log" 2>/dev/null | cut -d' ' -f3)
    [ -n "$URL" ] && break
    sleep 0.05
done
for f in old new; do
    awk 'BEGIN { printf "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[" }
         { printf "%s%s", (NR > 1 ? "," : ""), $0 } END { print "]}" }' "$T/$f.log" >"$T/$f.json"
    check "serve --retain: the $f events are taken" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$T/$f.json" "$URL")"
done
for _ in $(seq 50); do
    [ "$(n "$T/w.db" "SELECT count(*) FROM events")" -eq 2000 ] && break
    sleep 0.1
done
check "serve --retain: the 2020 events are deleted, today's stay" "2000|0" \
    "$(n "$T/w.db" "SELECT count(*), coalesce(sum(ts < $(us 2021-01-01T00:00:00Z)), 0) FROM events")"
# the pass logs once it ends, a moment after its last commit
for _ in $(seq 50); do
    grep -q 'retain.*deleted [1-9]' "$T/serve.log" && break
    sleep 0.1
done
check "serve --retain: it says what it deleted (a pass or two)" 2000 \
    "$(grep -o 'retain.*deleted [0-9]* events' "$T/serve.log" | awk '{ n += $(NF - 1) } END { print n + 0 }')"
kill -TERM $sp
wait $sp
check "serve --retain: SIGTERM exits 0" 0 $?

finish
