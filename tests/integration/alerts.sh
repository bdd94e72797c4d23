# Integration: one alert per request whatever stages the audit policy logs, and bursts told
# once (suppression). Rules that do not pin a stage match every stage of an exec; the alert
# comes from the first stage logged, later stages are linked to it as evidence, across
# batches, restarts and replays.
. "$(dirname "$0")/lib.bash"
F=$FIXTURES/alerts

cat >"$T/any-stage.yaml" <<'YAML'
- rule: Exec any stage
  desc: an exec, whatever stage it is logged at
  condition: ka.target.resource = pods and ka.target.subresource = exec
  output: exec into %ka.target.name by %ka.user.name
  priority: NOTICE
YAML
rules=(--no-default-rules --rules "$T/any-stage.yaml")
alerts_of() { sql "$1" "SELECT audit_id || ' ' || stage || ' ' || count FROM v_alerts ORDER BY id"; }
links_of() { sql "$1" "SELECT a.audit_id || ' ' || group_concat(e.stage, ',') FROM v_alerts a JOIN alert_events ae ON ae.alert_id = a.id JOIN v_events e ON e.id = ae.event_id GROUP BY a.id ORDER BY a.id"; }

# ex-1: ResponseStarted then ResponseComplete; ex-2: ResponseComplete only (a policy
# omitting ResponseStarted)
"$KTRAIL" replay --db "$T/a.db" --alerts text "${rules[@]}" "$F/exec-stages.log" >"$T/a.out" 2>/dev/null
check "exec in two stages: one alert, on the first stage, counting both" \
    "ex-1 ResponseStarted 2
ex-2 ResponseComplete 1" "$(alerts_of "$T/a.db")"
check "exec in two stages: both stages linked as its evidence" "ex-1 ResponseStarted,ResponseComplete" \
    "$(links_of "$T/a.db")"
check "printed once per request" 2 "$(grep -c 'Exec any stage' "$T/a.out")"
"$KTRAIL" replay --no-resume --db "$T/a.db" --alerts text "${rules[@]}" "$F/exec-stages.log" >"$T/a2.out" 2>/dev/null
check "replayed: nothing new, nothing printed" "ex-1 ResponseStarted 2
ex-2 ResponseComplete 1 0" "$(alerts_of "$T/a.db") $(grep -c 'Exec any stage' "$T/a2.out")"

# the stages in two runs (a restart between them), the complete stage first (reordered)
sed -n 2p "$F/exec-stages.log" >"$T/second.log"
sed -n 1p "$F/exec-stages.log" >"$T/first.log"
"$KTRAIL" replay --db "$T/b.db" "${rules[@]}" --alerts none "$T/second.log" 2>/dev/null
"$KTRAIL" replay --db "$T/b.db" "${rules[@]}" --alerts none "$T/first.log" 2>/dev/null
check "across a restart, out of order: one alert (the first stage seen), counting both" \
    "ex-1 ResponseComplete 2" "$(alerts_of "$T/b.db")"

# the Audit-ID header is client-settable: the same auditID on another pod is another request
sed 's/"name":"p"/"name":"other"/; s/pods\/p\//pods\/other\//' "$T/first.log" |
    sed 's/10:00:00.100000Z/10:10:00.100000Z/' >"$T/reused.log"
"$KTRAIL" replay --db "$T/b.db" "${rules[@]}" --alerts none "$T/reused.log" 2>/dev/null
check "a reused auditID on another object alerts on its own" 2 "$(sql "$T/b.db" 'SELECT count(*) FROM alerts')"

# the default pack's exec rule, the same way
"$KTRAIL" replay --db "$T/p.db" --alerts none "$F/exec-stages.log" 2>/dev/null
check "the pack: one 'Exec or attach into a pod' per exec, counting its stages" "ex-1 ResponseStarted 2
ex-2 ResponseComplete 1" "$(sql "$T/p.db" "SELECT audit_id || ' ' || stage || ' ' || count FROM v_alerts WHERE rule = 'Exec or attach into a pod' ORDER BY id")"

# ---- bursts told once ----
# 25 secrets read by one person in 100 s: the pack's distinct correlation fires at every 5th,
# and its firings within its window are merged into the first alert, with every read linked
B=$F/secret-burst.log
"$KTRAIL" replay --db "$T/s.db" --alerts text "$B" >"$T/s.out" 2>/dev/null
enum="SELECT count, (SELECT count(*) FROM alert_events ae WHERE ae.alert_id = a.id) FROM alerts a WHERE rule = 'Secret enumeration'"
check "a 25-read burst: one enumeration alert, 5 firings, 25 linked reads" "5|25" "$(sql "$T/s.db" "$enum")"
check "printed once" 1 "$(grep -c 'Secret enumeration' "$T/s.out")"
check "last_time is the burst's last read" "2026-11-30T10:01:40.000100Z" \
    "$(sql "$T/s.db" "SELECT last_time FROM v_alerts WHERE rule = 'Secret enumeration'")"
# the burst in two runs (a restart in the middle): still one alert
head -n 12 "$B" >"$T/b1.log"
tail -n +13 "$B" >"$T/b2.log"
"$KTRAIL" replay --db "$T/s2.db" --alerts none "$T/b1.log" 2>/dev/null
"$KTRAIL" replay --db "$T/s2.db" --alerts none "$T/b2.log" 2>/dev/null
check "a burst across a restart: still one alert with every read" "5|25" "$(sql "$T/s2.db" "$enum")"
# suppress: false gives the old behaviour, an alert per firing
cat >"$T/nosup.yaml" <<'YAML'
- distinct: Secret enumeration
  suppress: false
YAML
"$KTRAIL" replay --db "$T/s3.db" --alerts none --rules "$T/nosup.yaml" "$B" 2>/dev/null
check "suppress: false on the correlation: five alerts" 5 \
    "$(sql "$T/s3.db" "SELECT count(*) FROM alerts WHERE rule = 'Secret enumeration'")"
# a rule that suppresses by user: one alert per user and window, counting every read
cat >"$T/sup.yaml" <<'YAML'
- rule: Secret read (suppressed)
  desc: secrets read, told once per user every 10 minutes
  condition: ka.target.resource = secrets and ka.verb = get
  output: secret %ka.target.name read by %ka.user.name
  priority: NOTICE
  suppress: {by: [ka.user.name], for: 10m}
YAML
"$KTRAIL" replay --db "$T/s4.db" --alerts text --no-default-rules --rules "$T/sup.yaml" "$B" >"$T/s4.out" 2>/dev/null
check "a suppressing rule: one alert counting 25 reads, printed once" "1|25|25 1" \
    "$(sql "$T/s4.db" "SELECT count(*), sum(count), (SELECT count(*) FROM alert_events) FROM alerts") $(grep -c 'Secret read' "$T/s4.out")"
# after the window, the same group alerts again
sed 's/2026-11-30T10:/2026-11-30T11:/g' "$B" | head -n 3 >"$T/later.log"
"$KTRAIL" replay --db "$T/s4.db" --alerts none --no-default-rules --rules "$T/sup.yaml" "$T/later.log" 2>/dev/null
check "past the window: a new alert for the group" 2 "$(sql "$T/s4.db" 'SELECT count(*) FROM alerts')"
# bad suppress: a rule error naming file and line
printf -- '- rule: X\n  desc: x\n  condition: ka.verb = get\n  output: x\n  priority: NOTICE\n  suppress: {by: [ka.nope], for: 10m}\n' >"$T/bad1.yaml"
"$KTRAIL" rules check "$T/bad1.yaml" 2>"$T/bad1.err"
check "suppress by an unknown field: exit 3" 3 $?
grep -q 'unknown field in suppress: by: ka.nope' "$T/bad1.err"
check "... and says which" 0 $?
printf -- '- rule: X\n  desc: x\n  condition: ka.verb = get\n  output: x\n  priority: NOTICE\n  suppress: {by: [ka.user.name]}\n' >"$T/bad2.yaml"
"$KTRAIL" rules check "$T/bad2.yaml" 2>"$T/bad2.err"
check "suppress without for: exit 3" 3 $?
grep -q 'bad2.yaml:6: .*suppress: needs for:' "$T/bad2.err"
check "... with file and line" 0 $?

# ---- the database gives every alert's output, fields and tags as they were printed ----
# (a rule's alert is kept compact: its field values and the rule's format; v_alerts puts them
# back together with SQLite's JSON functions; a correlation's alert keeps its text)
"$KTRAIL" replay --db "$T/pack.db" --alerts json "$FIXTURES/sample-audit.log" >"$T/pack.json" 2>/dev/null
check "compact: most alerts are stored compact" 1 \
    "$(sql "$T/pack.db" "SELECT sum(fmt IS NOT NULL) * 2 > count(*) AND sum(output IS NOT NULL) = sum(fmt IS NULL) FROM alerts")"
check "compact: v_alerts.output is the printed output" "$(jq -r .output "$T/pack.json" | md5sum)" \
    "$(sql "$T/pack.db" "SELECT output FROM v_alerts ORDER BY id" | md5sum)"
check "compact: v_alerts.fields is the printed output_fields" "$(jq -c .output_fields "$T/pack.json" | md5sum)" \
    "$(sql "$T/pack.db" "SELECT fields FROM v_alerts ORDER BY id" | md5sum)"
check "compact: v_alerts.tags are the printed tags" "$(jq -r '.tags | join(",")' "$T/pack.json" | md5sum)" \
    "$(sql "$T/pack.db" "SELECT tags FROM v_alerts ORDER BY id" | md5sum)"
check "compact: one format per rule" "$(sql "$T/pack.db" "SELECT count(DISTINCT rule) FROM alerts WHERE fmt IS NOT NULL")" \
    "$(sql "$T/pack.db" "SELECT count(DISTINCT fmt) FROM alerts WHERE fmt IS NOT NULL")"

finish
