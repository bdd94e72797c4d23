# Integration: replay with the default rule pack: alerts stored, linked, printed, never twice;
# rule errors exit 3 with file:line; user rule files append to the pack.
. "$(dirname "$0")/lib.bash"

"$GEN_AUDIT" --seed 42 --events 3000 --risky 10 -o "$T/a.log"
"$KTRAIL" replay --quiet --alerts json --db "$T/r.db" "$T/a.log" >"$T/alerts.json" 2>"$T/out"
check "exit code" 0 $?
stored=$(sql "$T/r.db" 'SELECT count(*) FROM alerts')
check "some alerts" 1 "$([ "$stored" -gt 10 ] && echo 1 || echo 0)"
check "printed alerts = stored alerts" "$stored" "$(wc -l <"$T/alerts.json")"
check "printed alerts are JSON with Falco's keys" "$stored" \
    "$(jq -c 'select(.rule and .priority and .output and .output_fields and .tags and .time)' "$T/alerts.json" | wc -l)"
check "every alert links to its event" 0 "$(sql "$T/r.db" 'SELECT count(*) FROM alerts WHERE event_id IS NULL')"
check "flagged events keep raw JSON" 0 \
    "$(sql "$T/r.db" 'SELECT count(*) FROM alerts a LEFT JOIN raw r ON r.event_id = a.event_id WHERE r.json IS NULL')"
check "privileged pods found" 1 \
    "$(sql "$T/r.db" "SELECT count(*) > 0 FROM v_alerts WHERE rule = 'Privileged container created' AND resource IN ('pods','deployments')")"
check "reverse shell found with decoded command" 1 \
    "$(sql "$T/r.db" "SELECT count(*) > 0 FROM v_alerts WHERE rule = 'Reverse shell in exec' AND output LIKE '%/dev/tcp/%'")"

# a replay never alerts twice: not in the table, not on output
"$KTRAIL" replay --quiet --no-resume --alerts json --db "$T/r.db" "$T/a.log" >"$T/again.json" 2>/dev/null
check "no duplicate alerts" "$stored" "$(sql "$T/r.db" 'SELECT count(*) FROM alerts')"
check "no alert printed again" 0 "$(wc -l <"$T/again.json")"

# --min-priority and --no-default-rules
"$KTRAIL" replay --quiet --alerts none --min-priority critical --db "$T/c.db" "$T/a.log" 2>/dev/null
check "min priority" 0 "$(sql "$T/c.db" "SELECT count(*) FROM alerts WHERE priority > 2")"
"$KTRAIL" replay --quiet --no-default-rules --db "$T/n.db" "$T/a.log" >/dev/null 2>&1
check "no default rules: no alerts" 0 "$(sql "$T/n.db" 'SELECT count(*) FROM alerts')"

# a user's file appends to the pack's allowlists and adds rules
cat >"$T/mine.yaml" <<'YAML'
- list: known_admin_users
  items: [alice@example.com, bob@example.com, zoë@example.com, oidc:carol, "system:serviceaccount:ci:deployer"]
  append: true
- rule: Anything by carol
  desc: test rule
  condition: ka.user.name = "oidc:carol"
  output: carol did %ka.verb
  priority: DEBUG
  tags: [test]
YAML
"$KTRAIL" replay --quiet --alerts none --rules "$T/mine.yaml" --db "$T/m.db" "$T/a.log" 2>/dev/null
check "user rule fires" 1 "$(sql "$T/m.db" "SELECT count(*) > 0 FROM alerts WHERE rule = 'Anything by carol'")"
check "allowlist append silences exec alerts" 0 "$(sql "$T/m.db" "SELECT count(*) FROM alerts WHERE rule = 'Exec or attach into a pod'")"

# rule errors: exit 3, file:line, nothing stored
printf -- '- rule: broken\n  desc: d\n  condition: ka.verb ==== get\n  output: o\n  priority: INFO\n' >"$T/bad.yaml"
"$KTRAIL" replay --quiet --rules "$T/bad.yaml" --db "$T/b.db" "$T/a.log" 2>"$T/err"
check "rule error exit 3" 3 $?
check "rule error names file and line" 1 "$(grep -c "bad.yaml:1: rule broken" "$T/err")"
check "rule error stores nothing" 0 "$([ -e "$T/b.db" ] && sql "$T/b.db" 'SELECT count(*) FROM events' || echo 0)"
"$KTRAIL" rules check "$T/bad.yaml" >/dev/null 2>&1
check "rules check exit 3" 3 $?
check "rules list shows the pack" 1 "$("$KTRAIL" rules list | grep -c 'Binding to cluster-admin')"

# an older Falco rules file with the plugin's deprecated fields loads and answers as Falco does
old="$FIXTURES/rules/falco_deprecated.yaml"
"$KTRAIL" rules check "$old" >/dev/null 2>&1
check "deprecated fields: rules check exit 0" 0 $?
"$KTRAIL" rules test --no-default-rules --rules "$old" "${old%.yaml}.tests.yaml" >"$T/dep.out" 2>&1
check "deprecated fields: cases pass" 0 $?
check "deprecated fields: no case fails" 1 "$(grep -c ' 0 failed' "$T/dep.out")"
sed -n '/has_name answers/{n;n;p;}' "${old%.yaml}.tests.yaml" >"$T/crb.json"
"$KTRAIL" replay --quiet --no-default-rules --rules "$old" --alerts json --db "$T/dep.db" \
    "$T/crb.json" >"$T/dep.json" 2>/dev/null
check "has_name[foo] prints N/A" 1 \
    "$(jq -r 'select(.rule == "K8s Role/Clusterrolebinding Created") | .output_fields["ka.req.binding.subject.has_name[foo]"]' "$T/dep.json" | grep -c '^N/A$')"

# hostile rule files: rules check, replay and serve's loader give one error, exit 3, no crash
printf -- '- count: c\n  desc: d\n  condition: ka.verb = get\n  by: [c: ]\n  window: 1m\n  threshold: 2\n  output: o\n  priority: INFO\n' >"$T/by.yaml"
"$KTRAIL" rules check "$T/by.yaml" >/dev/null 2>"$T/by.check"
check "by: holding a mapping: rules check exit 3" 3 $?
"$KTRAIL" replay --quiet --rules "$T/by.yaml" --db "$T/by.db" "$FIXTURES/sample-audit.log" >/dev/null 2>"$T/by.replay"
check "by: holding a mapping: replay exit 3" 3 $?
check "by: holding a mapping: the same error, with file:line" 1 \
    "$(grep -c "by.yaml:4: item c: by: item 1 is a mapping" "$T/by.replay")"
check "by: holding a mapping: rules check said it too" "$(cat "$T/by.replay")" "$(cat "$T/by.check")"
python3 -c 'print("- rule: r\n  desc: d\n  condition: " + "(" * 30000 + "ka.verb = get" + ")" * 30000 + "\n  output: o\n  priority: INFO")' >"$T/deep.yaml"
"$KTRAIL" rules check "$T/deep.yaml" >/dev/null 2>"$T/deep.err"
check "30000 parentheses: exit 3" 3 $?
check "30000 parentheses: the limit named, with file:line" 1 \
    "$(grep -c "deep.yaml:1: rule r: condition nested deeper than 256" "$T/deep.err")"

# the default pack is compiled in: a binary alone in a directory raises the same alerts
mkdir "$T/solo"
cp "$KTRAIL" "$T/solo/ktrail"
(unset KTRAIL_RULES_DIR; "$T/solo/ktrail" rules check) >"$T/solo.check" 2>&1
check "binary alone: rules check uses the builtin pack" 1 \
    "$(grep -c '^default pack: <builtin>/k8s_audit_rules.yaml$' "$T/solo.check")"
(unset KTRAIL_RULES_DIR; "$T/solo/ktrail" replay --quiet --alerts none --db "$T/solo.db" \
    "$FIXTURES/sample-audit.log") >/dev/null 2>&1
check "binary alone: replay exit 0" 0 $?
KTRAIL_RULES_DIR="$(dirname "$0")/../../rules" "$KTRAIL" replay --quiet --alerts none \
    --db "$T/file.db" "$FIXTURES/sample-audit.log" >/dev/null 2>&1
q='SELECT rule, audit_id FROM v_alerts ORDER BY rule, audit_id'
check "binary alone: some alerts" 1 "$([ "$(sql "$T/file.db" "$q" | wc -l)" -gt 0 ] && echo 1 || echo 0)"
check "binary alone: the same alerts as with the pack's file" "$(sql "$T/file.db" "$q")" "$(sql "$T/solo.db" "$q")"
KTRAIL_RULES_DIR="$T/nowhere" "$T/solo/ktrail" rules check >/dev/null 2>"$T/nowhere.err"
check "KTRAIL_RULES_DIR still wins (missing: an error)" 3 $?

finish
