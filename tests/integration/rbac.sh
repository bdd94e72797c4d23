# Integration: `ktrail rbac`, least privilege from the audit log. Fixture events whose Roles
# are known (tests/fixtures/rbac): the YAML for a user is exactly alice.yaml (names where few,
# subresources, non-resource URLs, cluster-wide reads in a ClusterRole, denied and
# RequestReceived events left out); a service account gets a ServiceAccount subject; what a
# current Role grants and was never used is listed; the output is YAML libyaml reads back.
. "$(dirname "$0")/lib.bash"
F=$FIXTURES/rbac
"$KTRAIL" replay --quiet --alerts none --db "$T/r.db" "$F/events.log" 2>/dev/null
rbac() { "$KTRAIL" rbac --db "$T/r.db" "$@"; }

rbac --user alice@example.com >"$T/alice.yaml"
check "user: exit 0" 0 $?
check "user: exactly the expected Roles and bindings" "" "$(diff "$F/alice.yaml" "$T/alice.yaml")"
check "user: its own output is YAML that grants nothing unused" 1 \
    "$(rbac --user alice@example.com --compare "$T/alice.yaml" 2>&1 | grep -c '^ktrail rbac: 0 grants in 3 roles of .* never used$')"

rbac --serviceaccount ci/deployer >"$T/sa.yaml"
check "service account: a Role in its namespace" 1 "$(grep -c '^  namespace: ci$' "$T/sa.yaml" | awk '{ print ($1 >= 1) }')"
check "service account: a ServiceAccount subject" 1 "$(grep -A2 -- '- kind: ServiceAccount' "$T/sa.yaml" | grep -c '^  name: deployer$')"
check "service account: list pods, and get on its one configmap" "$(printf '%s\n' \
    '- apiGroups: [""]' '  resources: ["configmaps"]' '  resourceNames: ["settings"]' '  verbs: ["get"]' \
    '- apiGroups: [""]' '  resources: ["pods"]' '  verbs: ["list"]')" \
    "$(sed -n '/^kind: Role$/,/^---$/p' "$T/sa.yaml" | grep -E '^(- |  )(apiGroups|resources|resourceNames|verbs)')"

check "a service account's username gives the same" "" "$(rbac --user system:serviceaccount:ci:deployer | diff "$T/sa.yaml" -)"

rbac --user alice@example.com --compare "$F/current.yaml" >"$T/cmp.out" 2>"$T/cmp.err"
check "compare: exit 0" 0 $?
check "compare: what was granted and never used" "unused: Role shop-dev grants list on secrets
unused: Role shop-dev grants watch on pods
unused: Role shop-dev grants watch on secrets
unused: Role shop-dev grants delete on pods
unused: Role shop-dev grants delete on secrets
unused: ClusterRole ops-reader grants get on /metrics" "$(cat "$T/cmp.out")"
check "compare: the count" 1 "$(grep -c 'ktrail rbac: 6 grants in 2 roles of .*current.yaml never used' "$T/cmp.err")"

rbac --user alice@example.com --since 2025-01-01 2>"$T/e1"
check "nothing in the window: exit 1" 1 $?
check "it says so" 1 "$(grep -c 'no successful request by alice@example.com in the window' "$T/e1")"
rbac 2>/dev/null
check "no identity: usage error" 2 $?
rbac --serviceaccount deployer 2>"$T/e2"
check "a bad --serviceaccount: usage error" 2 $?
printf 'rules: [\n' >"$T/bad.yaml"
rbac --user alice@example.com --compare "$T/bad.yaml" 2>"$T/e3"
check "a broken --compare file: usage error with its line" 2 $?
check "it names the file" 1 "$(grep -c 'bad.yaml:' "$T/e3")"

finish
