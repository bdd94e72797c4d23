# Integration: `ktrail alerts` and `ktrail timeline` answer an incident's questions with the
# rows SQL gives on the same database: filters, formats (table, JSON lines, CSV), times
# (RFC 3339, relative, --tz), sessions, and clear errors.
. "$(dirname "$0")/lib.bash"

db=$T/s.db
"$KTRAIL" replay --quiet --alerts none --db "$db" "$FIXTURES/sample-audit.log" 2>/dev/null
q() { sql "$db" "$1"; }
alerts() { "$KTRAIL" alerts --db "$db" "$@"; }
timeline() { "$KTRAIL" timeline --db "$db" "$@"; }

# ---- alerts ----
check "alerts: every alert, one JSON line each" "$(q "SELECT count(*) FROM alerts")" "$(alerts --json | wc -l)"
check "alerts: in time order" "$(q "SELECT id FROM alerts ORDER BY ts, id" | md5sum)" "$(alerts --json | jq -r .id | md5sum)"
check "alerts: --min-priority warning" "$(q "SELECT count(*) FROM alerts WHERE priority <= 4")" \
    "$(alerts --json --min-priority warning | wc -l)"
check "alerts: --rule" "$(q "SELECT count(*) FROM alerts WHERE rule = 'Exec or attach into a pod'")" \
    "$(alerts --json --rule 'Exec or attach into a pod' | jq -r .rule | grep -c '^Exec or attach into a pod$')"
check "alerts: output as v_alerts has it" "$(q "SELECT output FROM v_alerts ORDER BY ts, id" | md5sum)" \
    "$(alerts --json | jq -r .output | md5sum)"
check "alerts: evidence counts" "$(q "SELECT count(*) FROM alert_events")" "$(alerts --json | jq -s 'map(.evidence) | add')"
check "alerts: merged counts" "$(q "SELECT sum(count) FROM alerts")" "$(alerts --json | jq -s 'map(.count) | add')"
check "alerts: --since/--until" "$(q "SELECT count(*) FROM alerts WHERE ts >= 1714521605000000 AND ts < 1714521610000000")" \
    "$(alerts --json --since 2024-05-01T00:00:05Z --until 2024-05-01T00:00:10Z | wc -l)"
check "alerts: a relative time (the sample is from 2024)" 0 "$(alerts --json --since -2h | wc -l)"
check "alerts: CSV, a header and a row each" "$(($(q "SELECT count(*) FROM alerts") + 1))" "$(alerts --csv | wc -l)"
check "alerts: CSV header" "id,time,priority,rule,count,evidence,user,source_ip,verb,object,code,output" "$(alerts --csv | head -n 1)"
alerts --limit 3 >"$T/table" 2>"$T/table.err"
check "alerts: a table with a header" "ID TIME PRIORITY RULE" "$(head -n 1 "$T/table" | awk '{ print $1, $2, $3, $4 }')"
check "alerts: the table says how many" 1 "$(grep -c 'ktrail alerts: 3 alerts' "$T/table.err")"
check "alerts: --tz prints local time" 1 "$(alerts --json --limit 1 --tz Europe/Paris | jq -r .time | grep -c '+0200$')"

# ---- timeline ----
n=$(q "SELECT count(*) FROM v_events WHERE user = 'bob@example.com'")
timeline --user bob@example.com --json >"$T/bob.json"
check "timeline --user: every request of the user" "$n" "$(wc -l <"$T/bob.json")"
check "timeline --user: only theirs" 0 "$(jq -r .user "$T/bob.json" | grep -vc '^bob@example.com$')"
check "timeline --user: in time order" "$(q "SELECT e.id FROM v_events e WHERE user = 'bob@example.com' ORDER BY ts, id" | md5sum)" \
    "$(jq -r .id "$T/bob.json" | md5sum)"
check "timeline --user: sessions start at 1 and only go up" 1 \
    "$(jq -s '.[0].session == 1 and ([.[].session] == ([.[].session] | sort))' "$T/bob.json" | grep -c true)"
check "timeline --user: a new session when the client changes" 1 \
    "$(jq -s '[range(1; length) as $i | select(.[$i].session == .[$i-1].session and .[$i].user_agent != .[$i-1].user_agent)] | length == 0' "$T/bob.json" | grep -c true)"
check "timeline --user: the alerts each request raised" "$(q "SELECT count(*) FROM alerts a JOIN v_events e ON e.id = a.event_id WHERE e.user = 'bob@example.com'")" \
    "$(jq -r '.alerts // empty' "$T/bob.json" | tr ';' '\n' | grep -c .)"
check "timeline --object: the history of one object" \
    "$(q "SELECT count(*) FROM v_events WHERE resource = 'secrets' AND namespace = 'default' AND name = 'db-credentials'")" \
    "$(timeline --object secrets/default/db-credentials --json | wc -l)"
check "timeline --ip: every request from the address" \
    "$(q "SELECT count(*) FROM v_events WHERE ',' || source_ips || ',' LIKE '%,203.0.113.7,%'")" \
    "$(timeline --ip 203.0.113.7 --json | wc -l)"
aid=$(q "SELECT id FROM alerts WHERE rule = 'Exec or attach into a pod' LIMIT 1")
ats=$(q "SELECT ts FROM alerts WHERE id = $aid")
auser=$(q "SELECT e.user FROM alerts a JOIN v_events e ON e.id = a.event_id WHERE a.id = $aid")
timeline --alert "$aid" --window 1m --json >"$T/around.json"
check "timeline --alert: the actor's requests around it" \
    "$(q "SELECT count(*) FROM v_events WHERE user = '$auser' AND ts BETWEEN $ats - 60000000 AND $ats + 60000000")" \
    "$(wc -l <"$T/around.json")"
check "timeline --alert: the alert's own request among them" 1 \
    "$(jq -r .id "$T/around.json" | grep -cx "$(q "SELECT event_id FROM alerts WHERE id = $aid")")"
timeline --user bob@example.com --limit 5 >"$T/tl" 2>"$T/tl.err"
check "timeline: a table with sessions" 1 "$(grep -c '^-- session 1: bob@example.com from ' "$T/tl")"

# ---- errors ----
timeline --db "$db" 2>"$T/e1"
check "timeline without a filter: usage error" 2 $?
check "it says what is needed" 1 "$(grep -c 'needs one of --user, --ip, --object, --alert or --around' "$T/e1")"
timeline --alert 999999 2>"$T/e2"
check "an unknown alert: usage error" 2 $?
check "it says so" 1 "$(grep -c 'no alert 999999' "$T/e2")"
timeline --object secrets 2>"$T/e3"
check "a bad --object: usage error" 2 $?
alerts --since soon 2>"$T/e4"
check "a bad time: usage error" 2 $?
check "it lists the forms" 1 "$(grep -c "'soon' is not a time (RFC 3339, 2024-05-01, now" "$T/e4")"
# a number without a unit is not taken for seconds ago ("--since 2024" meant the year)
alerts --since 2024 2>"$T/e6"
check "--since 2024: usage error" 2 $?
check "it says so" 1 "$(grep -c "'2024' is not a time" "$T/e6")"
timeline --user bob@example.com --since 2h --window 15 2>/dev/null
check "--window 15: usage error" 2 $?
"$KTRAIL" alerts --db "$T/none.db" 2>"$T/e5"
check "no such database: exit 1" 1 $?
check "no database made" 0 "$(ls "$T"/none.db* 2>/dev/null | wc -l)"

finish
