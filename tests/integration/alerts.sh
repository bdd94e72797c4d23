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
links_of() { sql "$1" "SELECT a.audit_id || ' ' || group_concat(e.stage, ',') FROM alerts a JOIN alert_events ae ON ae.alert_id = a.id JOIN v_events e ON e.id = ae.event_id GROUP BY a.id ORDER BY a.id"; }

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

finish
