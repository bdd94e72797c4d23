# Integration: gen-audit --profile cluster (routine traffic of an EKS-like cluster, no attack)
# is deterministic, replays without a reject, and has the mix of identities it models.
. "$(dirname "$0")/lib.bash"

N=20000
"$GEN_AUDIT" --profile cluster --seed 5 --events $N -o "$T/a.log"
"$GEN_AUDIT" --profile cluster --seed 5 --events $N -o "$T/b.log"
check "same seed and count, same bytes" "" "$(cmp "$T/a.log" "$T/b.log" 2>&1)"
check "one event per line" "$N" "$(wc -l <"$T/a.log")"
"$GEN_AUDIT" --profile cluster --seed 6 --events 100 -o "$T/c.log"
check "another seed, other events" 1 "$(cmp -s "$T/a.log" "$T/c.log" || echo 1)"
"$GEN_AUDIT" --profile cluster --seed 5 --events 500 -o "$T/short.log"
check "a shorter run is a prefix" "" "$(head -n 500 "$T/a.log" | cmp - "$T/short.log" 2>&1)"
"$GEN_AUDIT" --profile nonsense --events 1 >/dev/null 2>&1
check "unknown profile is a usage error" 2 $?
"$GEN_AUDIT" --seed 11 --events 300 -o "$T/d1.log"
"$GEN_AUDIT" --profile default --seed 11 --events 300 -o "$T/d2.log"
check "--profile default is the default" "" "$(cmp "$T/d1.log" "$T/d2.log" 2>&1)"

"$KTRAIL" replay --quiet --alerts none --db "$T/a.db" "$T/a.log" 2>"$T/out"
check "replay exit code" 0 $?
check "every event stored" "$N" "$(sql "$T/a.db" 'SELECT count(*) FROM events')"
check "no rejects" 0 "$(sql "$T/a.db" 'SELECT count(*) FROM rejects')"

# time moves forward at a cluster's pace (about 9 events a second)
span=$(sql "$T/a.db" 'SELECT (max(ts) - min(ts)) / 1000000 FROM v_events')
check "20,000 events span 20 to 60 minutes" 1 "$([ "$span" -ge 1200 ] && [ "$span" -le 3600 ] && echo 1)"
check "stageTimestamps never go back" 0 "$(grep -o '"stageTimestamp":"[^"]*"' "$T/a.log" |
    awk '{ if ($0 < prev) bad++; prev = $0 } END { print bad + 0 }')"

# the identities of the model are all there
for u in system:kube-controller-manager system:kube-scheduler system:apiserver system:kube-proxy \
    system:serviceaccount:kube-system:replicaset-controller \
    system:serviceaccount:kube-system:endpointslice-controller \
    system:serviceaccount:kube-system:coredns system:serviceaccount:kube-system:horizontal-pod-autoscaler \
    eks:certificate-controller eks:node-manager eks:addon-manager eks:cloud-controller-manager \
    eks:pod-identity-mutating-webhook system:bootstrap:abcdef \
    system:serviceaccount:cert-manager:cert-manager system:serviceaccount:external-secrets:external-secrets \
    system:serviceaccount:argocd:argocd-application-controller \
    system:serviceaccount:kube-system:aws-load-balancer-controller \
    system:serviceaccount:kube-system:metrics-server; do
    check "user $u present" 1 "$(sql "$T/a.db" "SELECT count(*) > 0 FROM v_events WHERE user = '$u'")"
done
check "kubelets of 12 nodes (and a replacement)" 1 "$(sql "$T/a.db" "SELECT count(DISTINCT user) BETWEEN 12 AND 14
    FROM v_events WHERE user LIKE 'system:node:%'")"
check "people reading" 1 "$(sql "$T/a.db" "SELECT count(*) > 0 FROM v_events
    WHERE user IN ('kubernetes-admin', 'alice@example.com')")"
check "CI deploying" 1 "$(sql "$T/a.db" "SELECT count(*) > 0 FROM v_events
    WHERE (user LIKE 'arn:aws:sts::%:assumed-role/ci-deploy/%' OR user = 'system:serviceaccount:ci:deployer')
    AND verb = 'patch' AND resource = 'deployments'")"

# the shapes the model promises
check "node leases dominate the kubelets" 1 "$(sql "$T/a.db" "SELECT count(*) > 1000 FROM v_events
    WHERE verb = 'update' AND resource = 'leases' AND namespace = 'kube-node-lease'")"
check "leases are the largest share" 1 "$(sql "$T/a.db" "SELECT sum(resource = 'leases') * 3 > count(*) FROM v_events")"
check "kubelet watches one secret by field selector, no name" 1 "$(sql "$T/a.db" "SELECT count(*) > 0 FROM v_events
    WHERE user LIKE 'system:node:%' AND verb = 'watch' AND resource = 'secrets' AND name IS NULL
    AND namespace IS NOT NULL AND request_uri LIKE '%fieldSelector=metadata.name\%3D%' ESCAPE '\\'")"
check "watches have both stages" "1 1" "$(sql "$T/a.db" "SELECT count(*) > 0 FROM v_events WHERE verb = 'watch'
    AND stage = 'ResponseStarted'") $(sql "$T/a.db" "SELECT count(*) > 0 FROM v_events WHERE verb = 'watch'
    AND stage = 'ResponseComplete'")"
check "no RequestReceived stage" 0 "$(sql "$T/a.db" "SELECT count(*) FROM v_events WHERE stage = 'RequestReceived'")"
# generateName: the URI names no pod; the stored name is the one the apiserver gave (the
# response's metadata.name), since ktrail fills a create's name from its body
check "controllers create pods by generateName" 1 "$(sql "$T/a.db" "SELECT count(*) > 0 FROM v_events
    WHERE verb = 'create' AND resource = 'pods' AND subresource IS NULL
    AND request_uri LIKE '%/pods' AND name IS NOT NULL
    AND user = 'system:serviceaccount:kube-system:replicaset-controller'")"
check "nodes request tokens" 1 "$(sql "$T/a.db" "SELECT count(*) > 0 FROM v_events WHERE verb = 'create'
    AND resource = 'serviceaccounts' AND subresource = 'token' AND user LIKE 'system:node:%'")"
check "a node CSR by the bootstrap token" 1 "$(sql "$T/a.db" "SELECT count(*) > 0 FROM v_events WHERE verb = 'create'
    AND resource = 'certificatesigningrequests' AND user = 'system:bootstrap:abcdef'")"
check "no 403 at all" 0 "$(sql "$T/a.db" "SELECT count(*) FROM v_events WHERE code = 403")"
check "a handful of 404 and 409" 1 "$(sql "$T/a.db" "SELECT count(*) BETWEEN 1 AND 200 FROM v_events WHERE code IN (404, 409)")"
check "codes are 200, 201, 404, 409" "200 201 404 409" "$(sql "$T/a.db" "SELECT DISTINCT code FROM v_events
    WHERE stage = 'ResponseComplete' ORDER BY 1" | tr '\n' ' ' | sed 's/ $//')"
check "secrets and configmaps at Metadata" 0 "$(sql "$T/a.db" "SELECT count(*) FROM v_events
    WHERE resource IN ('secrets', 'configmaps') AND level != 'Metadata'")"
finish
