# Integration: stateful detection end to end. A crafted story (tests/fixtures/corr: secret
# enumeration, a forbidden burst, RBAC change then deployment, exec into a privileged pod, a
# service account token replayed with curl after a day, secret read then rolebinding) is
# replayed with the default pack: each correlation alerts once, alert_events links every
# contributing event, a replay never alerts again, the story split in two runs (a restart in
# the middle of every window, and first_seen learning in one run and firing in the next)
# gives the same alerts as one run, and correlation rule errors exit 3.
. "$(dirname "$0")/lib.bash"

S1="$FIXTURES/corr/story-1.log"
S2="$FIXTURES/corr/story-2.log"
cat "$S1" "$S2" >"$T/whole.log"

corr_rules="'Secret enumeration','Forbidden request burst','RBAC change then workload change',\
'Exec into a privileged pod','Credentials used from a new client','Secret read then rolebinding created'"
# every correlation alert: rule, the audit ID of the event it is on, and its events' audit IDs
story() {
    sql "$1" "SELECT a.rule, a.audit_id, group_concat(e.audit_id, ' ')
              FROM v_alerts a JOIN alert_events ae ON ae.alert_id = a.id
              JOIN v_events e ON e.id = ae.event_id
              WHERE a.rule IN ($corr_rules) GROUP BY a.id ORDER BY a.rule, a.ts"
}

"$KTRAIL" replay --quiet --alerts json --db "$T/w.db" "$T/whole.log" >"$T/alerts.json" 2>"$T/out"
check "exit code" 0 $?
check "six correlation alerts" 6 "$(sql "$T/w.db" "SELECT count(*) FROM alerts WHERE rule IN ($corr_rules)")"
for r in 'Secret enumeration|5' 'Forbidden request burst|10' 'RBAC change then workload change|2' \
    'Exec into a privileged pod|2' 'Credentials used from a new client|1' \
    'Secret read then rolebinding created|2'; do
    check "alert_events of ${r%|*}" "$r" "$(sql "$T/w.db" "SELECT a.rule, count(*) FROM alerts a
        JOIN alert_events ae ON ae.alert_id = a.id WHERE a.rule = '${r%|*}' GROUP BY a.id")"
done
check "the enumeration's story in one join: the five secrets, in order" "s0 s1 s2 s3 s4" \
    "$(sql "$T/w.db" "SELECT group_concat(name, ' ') FROM (SELECT e.name FROM alerts a
        JOIN alert_events ae ON ae.alert_id = a.id JOIN v_events e ON e.id = ae.event_id
        WHERE a.rule = 'Secret enumeration' ORDER BY e.ts)")"
check "the alert is on the event that completed it" "s4" \
    "$(sql "$T/w.db" "SELECT name FROM v_alerts WHERE rule = 'Secret enumeration'")"
check "output names the group and the count" 1 \
    "$(sql "$T/w.db" "SELECT count(*) FROM alerts WHERE rule = 'Forbidden request burst'
        AND output LIKE '%bob@example.com|203.0.113.7 denied=10 %'")"
check "output fields carry group and count" 'bob@example.com|203.0.113.7,10' \
    "$(sql "$T/w.db" "SELECT json_extract(fields, '\$.\"corr.group\"') || ',' ||
        json_extract(fields, '\$.\"corr.count\"') FROM alerts WHERE rule = 'Forbidden request burst'")"
check "the story is not empty" 6 "$(story "$T/w.db" | wc -l)"
check "the sequence joins the pod created with the pod exec'd into" 1 \
    "$(sql "$T/w.db" "SELECT count(*) FROM alerts WHERE rule = 'Exec into a privileged pod'
        AND output LIKE 'Exec into a privileged pod (pod=web|debug-7f by user=alice@example.com%'")"
check "printed alerts include the correlations" 6 \
    "$(jq -r '.rule' "$T/alerts.json" | grep -cE '^(Secret enumeration|Forbidden request burst|RBAC change then workload change|Exec into a privileged pod|Credentials used from a new client|Secret read then rolebinding created)$')"
check "the alert's event keeps its raw JSON" 0 \
    "$(sql "$T/w.db" "SELECT count(*) FROM alerts a LEFT JOIN raw r ON r.event_id = a.event_id
        WHERE a.rule IN ($corr_rules) AND r.json IS NULL")"
check "summary reports the correlation state" 1 "$(grep -c 'correlations: .* groups held' "$T/out")"
# a day later, alice's two groups can never count again: dropped, from the table too
check "stale groups expire" 1 "$(grep -c 'correlations: .*, 2 groups expired' "$T/out")"
check "expired groups leave corr_state" 0 \
    "$(sql "$T/w.db" "SELECT count(*) FROM corr_state WHERE group_key = 'alice@example.com'")"
check "first_seen remembers every key with its first sighting" 1 \
    "$(sql "$T/w.db" "SELECT count(*) FROM first_seen WHERE rule = 'Credentials used from a new client'
        AND replace(key, char(31), '|') = 'system:serviceaccount:web:app|curl/8.5.0|10.1.2.3'
        AND first_ts = last_ts")"
whole=$(story "$T/w.db")

# replaying the same input never alerts again
before=$(sql "$T/w.db" "SELECT count(*) FROM alerts"),$(sql "$T/w.db" "SELECT count(*) FROM alert_events")
"$KTRAIL" replay --quiet --no-resume --alerts none --db "$T/w.db" "$T/whole.log" 2>/dev/null
check "replay twice: no new alerts or links" "$before" \
    "$(sql "$T/w.db" "SELECT count(*) FROM alerts"),$(sql "$T/w.db" "SELECT count(*) FROM alert_events")"
check "replay twice: the story is the same" "$whole" "$(story "$T/w.db")"

# the story in two runs: the second continues the windows the first left open
"$KTRAIL" replay --quiet --alerts none --db "$T/h.db" "$S1" 2>/dev/null
check "first half: no correlation fires yet" 0 \
    "$(sql "$T/h.db" "SELECT count(*) FROM alerts WHERE rule IN ($corr_rules)")"
check "first half: open windows are checkpointed" 1 \
    "$(sql "$T/h.db" "SELECT count(*) FROM corr_state WHERE rule = 'Secret enumeration'
        AND group_key = 'alice@example.com'")"
check "first half: an ordered sequence's later step alone leaves no group" 0 \
    "$(sql "$T/h.db" "SELECT count(*) FROM corr_state WHERE rule = 'RBAC change then workload change'
        AND group_key LIKE 'system:%'")"
"$KTRAIL" replay --quiet --alerts none --db "$T/h.db" "$S2" 2>/dev/null
check "two runs give the same alerts and links as one" "$whole" "$(story "$T/h.db")"

# state is bounded: a cap of two groups with five users evicts three, counted, and the table
# holds only what memory holds
cat >"$T/cap.yaml" <<'YAML'
- count: Capped reads
  desc: test
  condition: ka.verb = get
  by: [ka.user.name]
  window: 1h
  threshold: 100
  max_groups: 2
  lateness: 10s
  output: reads by %group
  priority: DEBUG
YAML
mk() { # mk USER SECOND ID: a get by USER at 00:00:SECOND
    printf '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"cap-%s","stage":"ResponseComplete","verb":"get","user":{"username":"%s"},"objectRef":{"resource":"pods","namespace":"web","name":"p"},"responseStatus":{"code":200},"stageTimestamp":"2024-05-01T00:00:%02d.000000Z"}\n' "$3" "$1" "$2"
}
{
    mk u1 1 1; mk u2 2 2; mk u3 3 3; mk u4 4 4; mk u5 50 5
    mk u5 5 6 # 45 s behind u5's clock, lateness is 10 s: dropped as late
} >"$T/cap.log"
"$KTRAIL" replay --quiet --no-default-rules --rules "$T/cap.yaml" --alerts none --db "$T/c.db" \
    "$T/cap.log" 2>"$T/cap.out"
check "eviction: exit code" 0 $?
check "eviction and lateness counted" 1 "$(grep -c 'correlations: 2 groups held (.*), 3 evicted, 1 late' "$T/cap.out")"
check "eviction: the table holds the two groups memory holds" "u4 u5" \
    "$(sql "$T/c.db" "SELECT group_concat(group_key, ' ') FROM (SELECT group_key FROM corr_state ORDER BY 1)")"

# correlation errors: file:line: item, exit 3, nothing stored
printf -- '- count: Broken\n  desc: d\n  rule: No such rule\n  by: [ka.user.name]\n  window: 60s\n  threshold: 3\n  output: o\n  priority: INFO\n' >"$T/bad1.yaml"
"$KTRAIL" replay --quiet --rules "$T/bad1.yaml" --db "$T/b.db" "$S1" 2>"$T/err"
check "unknown rule referenced: exit 3" 3 $?
check "unknown rule referenced: file:line" 1 "$(grep -c 'bad1.yaml:1: count Broken: unknown rule referenced: No such rule' "$T/err")"
check "rule error stores nothing" 0 "$([ -e "$T/b.db" ] && sql "$T/b.db" 'SELECT count(*) FROM events' || echo 0)"
printf -- '- sequence: Broken\n  desc: d\n  window: soon\n  steps: [{condition: ka.verb = get, by: [ka.user.name]}, {condition: ka.verb = list, by: [ka.user.name]}]\n  output: o\n  priority: INFO\n' >"$T/bad2.yaml"
"$KTRAIL" rules check "$T/bad2.yaml" >/dev/null 2>"$T/err"
check "bad window: exit 3" 3 $?
check "bad window: file:line: item" 1 "$(grep -c 'bad2.yaml:3: item Broken: window: not a duration' "$T/err")"
printf -- '- count: Broken\n  desc: d\n  condition: ka.verb = get\n  window: 60s\n  threshold: 3\n  output: o\n  priority: INFO\n' >"$T/bad3.yaml"
"$KTRAIL" rules check "$T/bad3.yaml" >/dev/null 2>"$T/err"
check "missing by: exit 3" 3 $?
check "missing by: says so" 1 "$(grep -c 'bad3.yaml:1: item Broken: by: needs a list of fields' "$T/err")"
# the test runner: a case of several events, and --coverage asks correlations for both cases
cat >"$T/mine.yaml" <<'YAML'
- count: Three gets
  desc: test
  condition: ka.verb = get
  by: [ka.user.name]
  window: 60s
  threshold: 3
  output: gets by %group
  priority: DEBUG
  tags: [test]
YAML
{
    echo '- name: three gets by alice'
    echo '  events:'
    head -4 "$S1" | tail -3 | sed 's/^/    - |\n      /'
    echo '  fires: [Three gets]'
} >"$T/mine.tests.yaml"
"$KTRAIL" rules test --no-default-rules --rules "$T/mine.yaml" "$T/mine.tests.yaml" >"$T/rt.out"
check "rules test: a sequence of events fires a correlation" "1 passed, 0 failed" "$(tail -1 "$T/rt.out")"
"$KTRAIL" rules test --coverage --no-default-rules --rules "$T/mine.yaml" "$T/mine.tests.yaml" >"$T/rt.out"
check "rules test --coverage: a correlation needs a case that must not fire" 1 \
    "$(grep -c 'rule "Three gets" has no case that must not fire' "$T/rt.out")"
sed -i 's/fires: \[Three gets\]/not_fires: [Three gets]/' "$T/mine.tests.yaml"
"$KTRAIL" rules test --no-default-rules --rules "$T/mine.yaml" "$T/mine.tests.yaml" >"$T/rt.out"
check "rules test: a firing correlation fails not_fires" 1 "$(grep -c 'rule "Three gets" fired' "$T/rt.out")"
check "rules list shows the correlations with their kind" 1 \
    "$("$KTRAIL" rules list | grep -c 'Secret enumeration  \[.*\]  (distinct)')"

finish
