# Integration: every managed-cluster and shipper delivery shape, on every source, gives the
# events and alerts of the bare Events. tests/fixtures/shapes/make-shapes writes the shapes
# (EKS CloudWatch, GKE Cloud Logging, AKS diagnostic records, OpenShift, Fluent Bit, Vector,
# Filebeat) of the fourteen Events of tests/fixtures/shapes/events.log; this script
#   0. decodes each fixture back with jq alone (so a fixture bug is not taken for ktrail's),
#   1. replays events.log into a reference database and every shape file into its own, and
#      compares rows, alerts, cluster, rejects and truncation with the reference; replays each
#      again (nothing new), and checks --cluster on replay,
#   2. posts the live shapes to `ktrail serve`: Firehose HTTP endpoint delivery (access key,
#      gzip, retried request ids), Pub/Sub push (token in the URL or as a bearer, wrapped and
#      unwrapped bodies), and AKS records and Fluent Bit records on the normal audit path,
#   3. produces shapes to Kafka with kcat and consumes each topic with `ktrail consume`.
# What the cloud loses is compared as lost, not as equal: see "GKE" and "truncation" below.
. "$(dirname "$0")/lib.bash"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SH=$FIXTURES/shapes
EV=$SH/events.log
S=$T/shapes
BIG=5e1f0c2a-7b3d-4c8e-9a61-000000000012   # line 13: the 24 KiB privileged pod create
OAUTH=9a8b7c6d-0000-4000-8000-0a0de0000001 # the oauth-server login, in openshift.json only
OSID=5b1c2d3e-0000-4000-8000-000000000001  # openshift.cluster_id

pids=() # background processes this script started and has not stopped yet
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    exec 3>&- # the mock Kafka cluster ends when its stdin closes
    [ -n "${MOCK:-}" ] && wait "$MOCK" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
forget() { # forget PID: it was stopped
    local p keep=()
    for p in "${pids[@]}"; do
        [ "$p" != "$1" ] && keep+=("$p")
    done
    pids=("${keep[@]}")
}

# same NAME EXPECTED ACTUAL: check on multi-line texts, with a diff when they differ
same() {
    if [ "$2" == "$3" ]; then
        check "$1" same same
    else
        check "$1" "the $(printf '%s\n' "$2" | wc -l) expected rows" "other rows (diff < expected > actual)"
        diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | head -n 16 >&2
    fi
}

"$SH/make-shapes" "$S"
check "make-shapes: exit 0" 0 $?
check "make-shapes: 22 shape files" 22 "$(find "$S" -type f | wc -l)"

# ================================================================ 0. the fixtures, with jq
# Each shape decoded by hand the way the guide describes it must give events.log back:
# verbatim where the envelope carries the Event's text, as the same JSON where it carries the
# Event's members (OpenShift, Fluent Bit merged, Log Analytics), and through the guide's
# LogEntry -> Event table for GKE, on the fields a LogEntry has.
audit_msgs='select(.messageType == "DATA_MESSAGE" and (.logStream | startswith("kube-apiserver-audit-"))) | .logEvents[].message'
unb64gz() { while IFS= read -r d; do printf '%s' "$d" | base64 -d | gzip -dc; echo; done; }
decode() {
    case $1 in
    eks-lines.log) cat "$S/$1" ;;
    eks-export.log) sed 's/^[^ ]* //' "$S/$1" ;;
    eks-export.log.gz) gzip -dc "$S/$1" | sed 's/^[^ ]* //' ;;
    eks-data-message.json | eks-truncated.json) jq -r "$audit_msgs" "$S/$1" ;;
    eks-firehose-s3) gzip -dc "$S/$1" | jq -r "$audit_msgs" ;;
    eks-lambda.json) jq -r '.awslogs.data' "$S/$1" | unb64gz | jq -r "$audit_msgs" ;;
    eks-filter-log-events.json) jq -r '.events[].message' "$S/$1" ;;
    eks-firehose-http.json) jq -r '.records[].data' "$S/$1" | unb64gz | jq -r "$audit_msgs" ;;
    aks-storage.json) jq -r 'select(.category == "kube-audit") | .properties.log' "$S/$1" ;;
    aks-eventhubs.json) jq -r '.records[] | select(.category == "kube-audit") | .properties.log' "$S/$1" ;;
    fluentbit.json) jq -j '.log' "$S/$1" ;;
    vector.json | filebeat.json) jq -r '.message' "$S/$1" ;;
    esac
}
for f in eks-lines.log eks-export.log eks-export.log.gz eks-data-message.json eks-firehose-s3 \
    eks-lambda.json eks-filter-log-events.json eks-firehose-http.json fluentbit.json vector.json \
    filebeat.json; do
    decode "$f" | cmp -s - "$EV"
    check "fixture $f: carries events.log verbatim" 0 $?
done
for f in eks-truncated.json aks-storage.json aks-eventhubs.json; do
    check "fixture $f: all but line 13 verbatim" "$(sed 13d "$EV")" "$(decode "$f" | sed 13d)"
done
check "fixture eks-truncated.json: line 13 cut at 16000 bytes + [Truncated...]" \
    "$(head -c 16000 <(sed -n 13p "$EV"))[Truncated...]" "$(decode eks-truncated.json | sed -n 13p)"
check "fixture aks-storage.json: line 13 cut at 16384 bytes" \
    "$(head -c 16384 <(sed -n 13p "$EV"))" "$(decode aks-storage.json | sed -n 13p)"
check "fixture: the first 16000 bytes of line 13 hold the privileged container" 1 \
    "$(head -c 16000 <(sed -n 13p "$EV") | grep -c '"securityContext":{"privileged":true}')"
check "fixture aks-eventhubs.json: other categories mixed in" "guard kube-apiserver kube-audit-admin" \
    "$(jq -r '.records[].category | select(. != "kube-audit")' "$S/aks-eventhubs.json" | sort | tr '\n' ' ' | sed 's/ $//')"
evjson=$(jq -cS . "$EV")
check "fixture openshift.json: the Events, audit level in k8s_audit_level" "$evjson" \
    "$(jq -cS 'select(.auditID != "'$OAUTH'") | .level = .k8s_audit_level
        | del(.k8s_audit_level, .["@timestamp"], .hostname, .log_type, .log_source, .openshift)' "$S/openshift.json")"
check "fixture openshift.json: level info everywhere" info "$(jq -r .level "$S/openshift.json" | sort -u)"
check "fixture fluentbit-merged.json: the Events" "$evjson" \
    "$(jq -cS 'del(.["@timestamp"], .kubernetes)' "$S/fluentbit-merged.json")"
check "fixture filebeat.json: log.offset is the line's byte offset" \
    "$(awk '{ print o + 0; o += length($0) + 1 }' "$EV")" "$(jq -r .log.offset "$S/filebeat.json")"
la_to_event='.[] | def j: if . == "" then null else fromjson end;
  {kind: "Event", apiVersion: "audit.k8s.io/v1", level: .Level, auditID: .AuditId, stage: .Stage,
   requestURI: .RequestUri, verb: .Verb, user: (.User | j), impersonatedUser: (.ImpersonatedUser | j),
   sourceIPs: (.SourceIps | j), userAgent: .UserAgent, objectRef: (.ObjectRef | j),
   responseStatus: (.ResponseStatus | j),
   requestObject: (if .RequestObject == "skipped-too-big-size-object" then null else .RequestObject | j end),
   responseObject: (.ResponseObject | j), requestReceivedTimestamp: .RequestReceivedTime,
   stageTimestamp: .StageReceivedTime, annotations: (.Annotations | j)}
  | with_entries(select(.value != null))'
check "fixture aks-loganalytics.json: the Events but line 13's requestObject" \
    "$(jq -cS 'if .auditID == "'$BIG'" then del(.requestObject) else . end' "$EV")" \
    "$(jq -cS "$la_to_event" "$S/aks-loganalytics.json")"
# what a LogEntry keeps of an Event, and the guide's LogEntry -> Event table onto the same
gke_view='{auditID, stage, verb, user: .user.username, resource: .objectRef.resource,
  subresource: (.objectRef.subresource // ""), namespace: (.objectRef.namespace // ""),
  name: (.objectRef.name // ""), apiGroup: (.objectRef.apiGroup // ""), apiVersion: .objectRef.apiVersion,
  code: (.responseStatus.code | if . < 300 then null else . end), annotations,
  ip: (.sourceIPs | last), userAgent, stageTimestamp,
  requestObject: (.requestObject // null), responseObject: (.responseObject // null)}'
gke_to_view='select(.resource.type == "k8s_cluster" and .protoPayload.serviceName == "k8s.io")
| .protoPayload as $p | ($p.resourceName | split("/")) as $r
| ($r[2:] | if .[0] == "namespaces" and length > 2 then {ns: .[1], rest: .[2:]} else {ns: "", rest: .} end) as $x
| {auditID: .operation.id,
   stage: (if .operation.first and (.operation.last | not) then "ResponseStarted" else "ResponseComplete" end),
   verb: ($p.methodName | split(".") | last), user: $p.authenticationInfo.principalEmail,
   resource: $x.rest[0], subresource: ($x.rest[2] // ""), namespace: $x.ns, name: ($x.rest[1] // ""),
   apiGroup: (if $r[0] == "core" then "" else $r[0] end), apiVersion: $r[1],
   code: (if $p.response.kind == "Status" then $p.response.code
          else {"3": 400, "4": 504, "5": 404, "6": 409, "7": 403, "8": 429, "10": 409, "13": 500,
                "14": 503, "16": 401}[($p.status.code // 0) | tostring] end),
   annotations: .labels, ip: $p.requestMetadata.callerIp,
   userAgent: $p.requestMetadata.callerSuppliedUserAgent, stageTimestamp: .timestamp,
   requestObject: ($p.request | if . then del(.["@type"]) else null end),
   responseObject: ($p.response | if . then del(.["@type"]) else null end)}'
gview=$(jq -cS "$gke_view" "$EV")
check "fixture gke-sink.json: the Events through the guide's table" "$gview" "$(jq -cS "$gke_to_view" "$S/gke-sink.json")"
check "fixture gke-read.json: the same entries" "$gview" "$(jq -cS ".[] | $gke_to_view" "$S/gke-read.json")"
check "fixture gke-pubsub-push.json: the same entries" "$gview" \
    "$(jq -r '.message.data | @base64d' "$S/gke-pubsub-push.json" | jq -cS "$gke_to_view")"
check "fixture gke-pubsub-pull.json: the same entries" "$gview" \
    "$(jq -r '.[].message.data | @base64d' "$S/gke-pubsub-pull.json" | jq -cS "$gke_to_view")"
check "fixture gke-sink.json: one entry of another resource type" gce_instance \
    "$(jq -r 'select(.resource.type != "k8s_cluster") | .resource.type' "$S/gke-sink.json")"
check "fixture gke-truncated.json: line 13 labelled truncated, request a stub" \
    "$BIG true [\"@type\"]" \
    "$(jq -r 'select(.labels["audit.k8s.io/truncated"] == "true") | "\(.operation.id) true \(.protoPayload.request | keys | tojson)"' "$S/gke-truncated.json")"

# ================================================================ 1. replay
# Row and alert queries. Through the views (each database has its own string dictionary).
# NULL and '' print alike, as coalesce(x, '') would.
ROWS="SELECT audit_id, stage, level, time, verb, user, groups, imp_user, source_ips, user_agent,
  resource, subresource, namespace, name, api_group, api_version, code, decision, authz_reason,
  request_uri FROM v_events"
ALERTS="SELECT e.audit_id, e.stage, a.rule FROM alerts a JOIN v_events e ON e.id = a.event_id"
# GKE: a LogEntry has no groups, uid, extra, impersonatedUser, query string (so no exec
# command and a rebuilt requestURI), requestReceivedTimestamp, or sourceIPs but the last; its
# status is a google.rpc.Code, so a success reads back as 201 for create and 200 otherwise
# (the exec's 101 and 200, the watch's 200 and a create's 201 included). GROWS is the rows
# query on what GKE keeps, written so that it gives the same text on the reference and on a
# GKE database (the last-IP and code expressions are idempotent).
GROWS="SELECT audit_id, stage, level, time, verb, user,
  substr(source_ips, length(rtrim(source_ips, replace(source_ips, ',', ''))) + 1), user_agent,
  resource, subresource, namespace, name, api_group, api_version,
  CASE WHEN code < 300 THEN CASE verb WHEN 'create' THEN 201 ELSE 200 END ELSE code END,
  decision, authz_reason FROM v_events"
# Rules whose conditions read what a LogEntry lost (the exec command from the requestURI's
# query, user.extra, impersonatedUser): their alerts are not expected from GKE. In this
# fixture that is one alert, "Exec reads credentials or the metadata endpoint" on r03; every
# other alert of the reference (pod specs from request, bindings, service type, user names,
# decisions from labels, stages from operation.first/last, correlations) must come from GKE too.
LOST="'Exec reads credentials or the metadata endpoint', 'Reverse shell in exec',
  'Secret read with pod credentials', 'Impersonation of a privileged identity'"
rows() { sql "$1" "$ROWS WHERE audit_id NOT IN (${2:-''}) ORDER BY 1, 2"; }
grows() { sql "$1" "$GROWS WHERE audit_id NOT IN (${2:-''}) ORDER BY 1, 2"; }
alerts() { sql "$1" "$ALERTS WHERE e.audit_id NOT IN (${2:-''}) AND a.rule NOT IN (${3:-''}) ORDER BY 1, 2, 3"; }
# GKE's alerts but the exec's second one, at the end of the request (see compare)
galerts() { sql "$1" "$ALERTS WHERE e.audit_id NOT IN (${2:-''}) AND NOT (a.rule = 'Exec or attach into a pod' AND e.stage = 'ResponseComplete') ORDER BY 1, 2, 3"; }
count() { sql "$1" "SELECT count(*) FROM $2"; }
clusters() { sql "$1" "SELECT DISTINCT coalesce(cluster, 'NULL') FROM v_events ORDER BY 1" | tr '\n' ' ' | sed 's/ $//'; }
bigrow() { # the brief's columns of the large event
    sql "$1" "SELECT audit_id, stage, verb, user, resource, subresource, namespace, name, code
        FROM v_events WHERE audit_id = '$BIG'"
}
big13_head=$(head -c 64 <(sed -n 13p "$EV"))

"$KTRAIL" replay --quiet --db "$T/ref.db" --alerts none "$EV" 2>"$T/ref.err"
check "reference: exit 0" 0 $?
check "reference: 14 events" 14 "$(count "$T/ref.db" events)"
check "reference: no rejects" 0 "$(count "$T/ref.db" rejects)"
check "reference: no cluster" NULL "$(clusters "$T/ref.db")"
check "reference: nothing truncated" 0 "$(sql "$T/ref.db" 'SELECT count(*) FROM v_events WHERE truncated = 1')"
check "reference: the 18 alerts of events.log's header" 18 "$(count "$T/ref.db" alerts)"
REF_ROWS=$(rows "$T/ref.db")
REF_ALERTS=$(alerts "$T/ref.db")
REF_ROWS_NB=$(rows "$T/ref.db" "'$BIG'")       # without the large event
REF_ALERTS_NB=$(alerts "$T/ref.db" "'$BIG'")
REF_GROWS=$(grows "$T/ref.db")
REF_GROWS_NB=$(grows "$T/ref.db" "'$BIG'")
REF_GALERTS=$(alerts "$T/ref.db" "''" "$LOST")
REF_GALERTS_NB=$(alerts "$T/ref.db" "'$BIG'" "$LOST")
check "reference: GKE expects all alerts but the one on the exec command" 17 \
    "$(printf '%s\n' "$REF_GALERTS" | wc -l)"
REF_BIG=$(bigrow "$T/ref.db")

# compare NAME DB CLASS CLUSTER: a database made from one shape against the reference.
# CLASS says what the shape carries:
#   full    every Event whole
#   cut     line 13's text cut in transport (CloudWatch [Truncated...], Azure's 16 KiB): the
#           rest compared whole; line 13 salvaged: stored with its leading fields, truncated =
#           1, its privileged-pod alert still given (the container is in the first 16 KiB),
#           and the cut text kept as the one reject (its text starts with the Event's bytes)
#   nobody  line 13 arrives whole but without its request body (Log Analytics'
#           "skipped-too-big-size-object"): stored, truncated = 1, no reject, and no
#           privileged-pod alert (a rule reading a body must not fire when the body is absent)
#   gke     GKE's fields and alerts only (GROWS, LOST)
#   gke-nobody  as gke, line 13 as nobody (label audit.k8s.io/truncated, request dropped)
# CLUSTER: the cluster every event must have, NULL for none.
compare() {
    local n=$1 db=$2 class=$3 cl=$4 excl="'$OAUTH'"
    case $class in
    full)
        same "$n: rows" "$REF_ROWS" "$(rows "$db" "$excl")"
        same "$n: alerts" "$REF_ALERTS" "$(alerts "$db" "$excl")"
        ;;
    cut | nobody)
        same "$n: rows but the large event" "$REF_ROWS_NB" "$(rows "$db" "$excl, '$BIG'")"
        same "$n: alerts but the large event's" "$REF_ALERTS_NB" "$(alerts "$db" "$excl, '$BIG'")"
        check "$n: large event stored with its leading fields" "$REF_BIG" "$(bigrow "$db")"
        ;;
    gke | gke-nobody)
        if [ "$class" == gke ]; then
            same "$n: rows (GKE's fields)" "$REF_GROWS" "$(grows "$db")"
            same "$n: alerts (but rules on lost fields)" "$REF_GALERTS" "$(galerts "$db")"
            # the end of a long-running request is another entry, with its own timestamp:
            # GKE has no requestReceivedTimestamp to tie it to its start, so an exec alerts
            # at its start and again at its end
            check "$n: the exec alerts at its start and at its end" "ResponseComplete ResponseStarted" \
                "$(sql "$db" "SELECT group_concat(stage, ' ') FROM (SELECT e.stage FROM alerts a JOIN v_events e ON e.id = a.event_id WHERE a.rule = 'Exec or attach into a pod' ORDER BY 1)")"
        else
            same "$n: rows (GKE's fields) but the large event" "$REF_GROWS_NB" "$(grows "$db" "'$BIG'")"
            same "$n: alerts (but rules on lost fields) but the large event's" "$REF_GALERTS_NB" \
                "$(galerts "$db" "'$BIG'")"
            check "$n: large event stored" "$(sql "$T/ref.db" "$GROWS WHERE audit_id = '$BIG'")" \
                "$(sql "$db" "$GROWS WHERE audit_id = '$BIG'")"
        fi
        ;;
    esac
    local trunc=0 rej=0
    case $class in
    cut) trunc=1 rej=1 ;;
    nobody | gke-nobody) trunc=1 ;;
    esac
    check "$n: events stored (skipped records are not)" 14 "$(sql "$db" "SELECT count(*) FROM v_events WHERE audit_id != '$OAUTH'")"
    check "$n: rejects" $rej "$(count "$db" rejects)"
    check "$n: truncated events" "$([ $trunc == 1 ] && echo "$BIG")" \
        "$(sql "$db" 'SELECT audit_id FROM v_events WHERE truncated = 1')"
    if [ "$class" == cut ]; then
        check "$n: the reject keeps the cut Event's text" "$big13_head" \
            "$(sql "$db" 'SELECT substr(text, 1, 64) FROM rejects')"
    fi
    if [ $trunc == 1 ]; then
        check "$n: large event's privileged-pod alert" "$([ "$class" == cut ] && echo 1 || echo 0)" \
            "$(sql "$db" "SELECT count(*) FROM v_alerts WHERE audit_id = '$BIG' AND rule = 'Privileged container created'")"
    fi
    check "$n: cluster" "$cl" "$(clusters "$db")"
}

# shape file, the cluster its envelope names (NULL: none), class (see compare)
SHAPES="eks-lines.log NULL full
eks-export.log NULL full
eks-export.log.gz NULL full
eks-data-message.json shapes-eks full
eks-firehose-s3 shapes-eks full
eks-lambda.json shapes-eks full
eks-filter-log-events.json NULL full
eks-firehose-http.json shapes-eks full
eks-truncated.json shapes-eks cut
gke-sink.json shapes-gke gke
gke-read.json shapes-gke gke
gke-pubsub-push.json shapes-gke gke
gke-pubsub-pull.json shapes-gke gke
gke-truncated.json shapes-gke gke-nobody
aks-storage.json shapes-aks cut
aks-eventhubs.json shapes-aks cut
aks-loganalytics.json shapes-aks nobody
openshift.json $OSID full
fluentbit.json NULL full
fluentbit-merged.json NULL full
vector.json NULL full
filebeat.json NULL full"

while read -r f cl class; do
    db=$T/r-$f.db
    "$KTRAIL" replay --quiet --db "$db" --alerts none "$S/$f" 2>"$T/r-$f.err"
    check "replay $f: exit 0" 0 $?
    compare "replay $f" "$db" "$class" "$cl"
    # again, from the start: nothing new (the UNIQUE keys of events, alerts and rejects)
    before="$(count "$db" events) $(count "$db" alerts) $(count "$db" rejects)"
    "$KTRAIL" replay --quiet --no-resume --db "$db" --alerts none "$S/$f" 2>>"$T/r-$f.err"
    check "replay $f twice: exit 0" 0 $?
    check "replay $f twice: nothing new" "$before" \
        "$(count "$db" events) $(count "$db" alerts) $(count "$db" rejects)"
done <<<"$SHAPES"

# OpenShift: the oauth-server login Event (no objectRef) is stored, its annotations kept
"$KTRAIL" replay --quiet --keep-raw all --db "$T/os-raw.db" --alerts none "$S/openshift.json" 2>"$T/os-raw.err"
check "openshift oauth login: stored" "Metadata|get|system:anonymous||401|$OSID" \
    "$(sql "$T/os-raw.db" "SELECT level, verb, user, resource, code, cluster FROM v_events WHERE audit_id = '$OAUTH'")"
check "openshift oauth login: its annotations readable" "deny|mallory" \
    "$(sql "$T/os-raw.db" "SELECT json_extract(raw, '$.annotations.\"authentication.openshift.io/decision\"'),
        json_extract(raw, '$.annotations.\"authentication.openshift.io/username\"') FROM v_events WHERE audit_id = '$OAUTH'")"

# --cluster on replay: names the cluster of a shape without one, and wins over the envelope's
"$KTRAIL" replay --quiet --cluster given-name --db "$T/c1.db" --alerts none "$S/eks-lines.log" 2>"$T/c1.err"
check "replay --cluster: exit 0" 0 $?
check "replay --cluster on eks-lines.log: the given name" given-name "$(clusters "$T/c1.db")"
"$KTRAIL" replay --quiet --cluster given-name --db "$T/c2.db" --alerts none "$S/eks-data-message.json" 2>"$T/c2.err"
check "replay --cluster on eks-data-message.json: wins over the log group's" given-name "$(clusters "$T/c2.db")"

# ---- replay --follow: envelopes appended to a live file (AKS storage records, as a shipper
# tailing the hourly blob would write them, and CloudWatch DATA_MESSAGEs) ----
: >"$T/live.json"
"$KTRAIL" replay --quiet --follow --alerts none --db "$T/follow.db" "$T/live.json" 2>"$T/follow.err" &
fpid=$!
pids+=("$fpid")
head -n 5 "$S/aks-storage.json" >>"$T/live.json"
sleep 0.6
tail -n +6 "$S/aks-storage.json" >>"$T/live.json"
for _ in $(seq 200); do
    [ "$(sql "$T/follow.db" 'SELECT count(*) FROM events' 2>/dev/null)" == 14 ] && break
    sleep 0.05
done
kill -TERM "$fpid"
wait "$fpid"
check "replay --follow: exit 0 on SIGTERM" 0 $?
forget "$fpid"
compare "replay --follow aks-storage.json" "$T/follow.db" cut shapes-aks

# ================================================================ 2. serve
"${GEN_CERTS:-$ROOT/scripts/gen-certs}" "$T/pki" kube-apiserver >/dev/null
P=$T/pki
printf 'fh-key-1\nfh-key-2 fh-cluster\n' >"$T/fh-keys"   # Firehose access keys [CLUSTER]
printf 'ps-token-1\n' >"$T/ps-tokens"                   # Pub/Sub push tokens [CLUSTER]
printf 'audit-token\n' >"$T/tokens"                     # bearer tokens of the audit path
printf 'kube-apiserver cn-cluster\n' >"$T/cnmap"

# serve_up NAME: ktrail serve with every source on, database $T/NAME.db; sets $pid, $URL, $BASE
serve_up() {
    local log=$T/$1.log
    "$KTRAIL" serve --listen 127.0.0.1:0 --alerts none --db "$T/$1.db" \
        --tls-cert "$P/server.crt" --tls-key "$P/server.key" --client-ca "$P/ca.crt" \
        --token-file "$T/tokens" --cluster-map "$T/cnmap" \
        --firehose-path /firehose --firehose-key-file "$T/fh-keys" \
        --pubsub-path /pubsub --pubsub-token-file "$T/ps-tokens" 2>"$log" &
    pid=$!
    pids+=("$pid")
    URL=
    for _ in $(seq 200); do
        URL=$(grep -o 'listening on [^ ]*' "$log" 2>/dev/null | cut -d' ' -f3)
        if [ -n "$URL" ]; then
            BASE=${URL%/k8s-audit}
            check "serve $1: starts" 0 0
            return 0
        fi
        kill -0 $pid 2>/dev/null || break
        sleep 0.05
    done
    check "serve $1: starts (with --firehose-path and --pubsub-path)" 0 1
    echo "serve $1 did not start: $(head -c 300 "$log")" >&2
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    forget "$pid"
    return 1
}
serve_down() {
    kill -TERM "$pid"
    wait "$pid"
    check "serve $1: exit 0 on SIGTERM" 0 $?
    forget "$pid"
}
# curl_post URL ARGS...: POST over TLS, the status code on stdout, the answer in $T/body
curl_post() {
    local url=$1
    shift
    curl -s -o "$T/body" -w '%{http_code}' --cacert "$P/ca.crt" "$@" "$url"
}
FH_BODY=$S/eks-firehose-http.json
FH_RID=$(jq -r .requestId "$FH_BODY")
# fh_post KEY|- ARGS...: the Firehose HTTP endpoint delivery of the saved body (its requestId
# in the header as Firehose sends it); KEY - sends no access key
fh_post() {
    local key=$1 h=()
    shift
    [ "$key" != - ] && h=(-H "X-Amz-Firehose-Access-Key: $key")
    curl_post "$BASE/firehose" -H 'Content-Type: application/json' \
        -H 'X-Amz-Firehose-Protocol-Version: 1.0' -H "X-Amz-Firehose-Request-Id: $FH_RID" \
        -H 'X-Amz-Firehose-Source-Arn: arn:aws:firehose:eu-west-1:123456789012:deliverystream/shapes-eks-audit' \
        "${h[@]}" "$@"
}

# ---- Firehose HTTP endpoint: keys, answers, retries ----
if serve_up fh; then
    check "firehose, wrong access key: 401" 401 "$(fh_post wrong-key --data-binary @"$FH_BODY")"
    check "firehose 401: JSON with the requestId and an errorMessage" "$FH_RID true" \
        "$(jq -r '"\(.requestId) \(has("errorMessage"))"' "$T/body" 2>/dev/null)"
    check "firehose, no access key: 401" 401 "$(fh_post - --data-binary @"$FH_BODY")"
    check "firehose, refused: nothing stored" 0 "$(count "$T/fh.db" events)"
    check "firehose, good key: 200" 200 "$(fh_post fh-key-1 --data-binary @"$FH_BODY")"
    check "firehose 200: the body's requestId and a timestamp in ms" "$FH_RID number" \
        "$(jq -r '"\(.requestId) \(.timestamp | type)"' "$T/body" 2>/dev/null)"
    check "firehose, the same request again: 200" 200 "$(fh_post fh-key-1 --data-binary @"$FH_BODY")"
    check "firehose, without the request id header: 200" 200 \
        "$(curl_post "$BASE/firehose" -H 'Content-Type: application/json' \
            -H 'X-Amz-Firehose-Access-Key: fh-key-1' --data-binary @"$FH_BODY")"
    check "firehose: the body's requestId echoed" "$FH_RID" "$(jq -r .requestId "$T/body" 2>/dev/null)"
    check "firehose, not JSON: 400 with an errorMessage" "400 true" \
        "$(fh_post fh-key-1 --data-binary 'not json') $(jq -r 'has("errorMessage")' "$T/body" 2>/dev/null)"
    check "firehose, corrupt gzip: 400" 400 \
        "$(fh_post fh-key-1 -H 'Content-Encoding: gzip' --data-binary 'not gzip at all')"
    serve_down fh
    compare "serve firehose" "$T/fh.db" full shapes-eks
fi

# ---- Firehose, gzip'ed body, a key whose line names a cluster: that cluster wins ----
gzip -nc "$FH_BODY" >"$T/fh-body.json.gz"
if serve_up fhgz; then
    check "firehose, Content-Encoding gzip: 200" 200 \
        "$(fh_post fh-key-2 -H 'Content-Encoding: gzip' --data-binary @"$T/fh-body.json.gz")"
    check "firehose gzip 200: the body's requestId" "$FH_RID" "$(jq -r .requestId "$T/body" 2>/dev/null)"
    serve_down fhgz
    compare "serve firehose gzip" "$T/fhgz.db" full fh-cluster
fi

# ---- Pub/Sub push: token in the URL or as a bearer, wrapped and unwrapped bodies ----
if serve_up ps; then
    push1=$(head -n 1 "$S/gke-pubsub-push.json")
    check "pubsub, wrong token: 401" 401 \
        "$(curl_post "$BASE/pubsub?token=nope" -H 'Content-Type: application/json' --data-binary "$push1")"
    check "pubsub, wrong bearer: 401" 401 \
        "$(curl_post "$BASE/pubsub" -H 'Authorization: Bearer nope' -H 'Content-Type: application/json' --data-binary "$push1")"
    check "pubsub, no token: 401" 401 \
        "$(curl_post "$BASE/pubsub" -H 'Content-Type: application/json' --data-binary "$push1")"
    check "pubsub, refused: nothing stored" 0 "$(count "$T/ps.db" events)"
    : >"$T/ps-codes"
    i=0
    while IFS= read -r body; do
        i=$((i + 1))
        if [ $i == 3 ]; then # payload unwrapping: the LogEntry itself
            body=$(printf '%s' "$body" | jq -r .message.data | base64 -d)
        fi
        if [ $((i % 2)) == 0 ]; then
            auth=(-H 'Authorization: Bearer ps-token-1')
            url=$BASE/pubsub
        else
            auth=()
            url="$BASE/pubsub?token=ps-token-1"
        fi
        echo "$i $(curl_post "$url" "${auth[@]}" -H 'Content-Type: application/json' --data-binary "$body")" >>"$T/ps-codes"
    done <"$S/gke-pubsub-push.json"
    # line 6 is the gce_instance entry: acknowledged (2xx, or Pub/Sub redelivers it forever), not stored
    check "pubsub: every push acknowledged with 200 (the gce_instance one with 2xx)" 15 \
        "$(grep -c -E '^([0-9]+ 200|6 2[0-9][0-9])$' "$T/ps-codes")"
    serve_down ps
    compare "serve pubsub" "$T/ps.db" gke shapes-gke
fi

# ---- the audit path: AKS Event Hubs batches (bearer token without a cluster) ----
if serve_up au; then
    : >"$T/au-codes"
    while IFS= read -r body; do
        curl_post "$URL" -H 'Authorization: Bearer audit-token' -H 'Content-Type: application/json' \
            --data-binary "$body" >>"$T/au-codes"
        echo >>"$T/au-codes"
    done <"$S/aks-eventhubs.json"
    check "audit path, AKS records: every batch 200" "$(wc -l <"$S/aks-eventhubs.json")" "$(grep -c '^200$' "$T/au-codes")"
    serve_down au
    compare "serve audit path, AKS records" "$T/au.db" cut shapes-aks
fi

# ---- the audit path: Fluent Bit records, one a body, mTLS (the CN map names the cluster) ----
if serve_up fb; then
    : >"$T/fb-codes"
    while IFS= read -r body; do
        curl_post "$URL" --cert "$P/client.crt" --key "$P/client.key" \
            -H 'Content-Type: application/json' --data-binary "$body" >>"$T/fb-codes"
        echo >>"$T/fb-codes"
    done <"$S/fluentbit.json"
    check "audit path, Fluent Bit records: every body 200" 14 "$(grep -c '^200$' "$T/fb-codes")"
    serve_down fb
    compare "serve audit path, Fluent Bit" "$T/fb.db" full cn-cluster
fi

# ---- Pub/Sub push with OIDC: a Google-style RS256 token, checked against a JWKS file ----
# The key pair and JWKS are made here with openssl; tokens are signed as Google signs them.
b64url() { basenc --base64url -w0 | tr -d '='; }
openssl genrsa -out "$T/oidc.key" 2048 2>/dev/null
oidc_n=$(openssl rsa -in "$T/oidc.key" -noout -modulus 2>/dev/null | cut -d= -f2 | basenc --base16 -d | b64url)
printf '{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":"k-1","n":"%s","e":"AQAB"}]}\n' \
    "$oidc_n" >"$T/jwks.json"
AUD=https://ktrail.test/pubsub
# jwt AUD EXP_OFFSET_S [KID [EMAIL]]: a signed token
jwt() {
    local now h p
    now=$(date +%s)
    h=$(printf '{"alg":"RS256","kid":"%s","typ":"JWT"}' "${3:-k-1}" | b64url)
    p=$(printf '{"aud":"%s","azp":"1","email":"%s","email_verified":true,"exp":%d,"iat":%d,"iss":"https://accounts.google.com","sub":"1"}' \
        "$1" "${4:-push@shapes-proj.iam.gserviceaccount.com}" $((now + $2)) $((now - 10)) | b64url)
    printf '%s.%s.%s' "$h" "$p" "$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -sign "$T/oidc.key" -binary | b64url)"
}
"$KTRAIL" serve --listen 127.0.0.1:0 --alerts none --db "$T/oidc.db" \
    --tls-cert "$P/server.crt" --tls-key "$P/server.key" \
    --pubsub-path /pubsub --pubsub-jwks "$T/jwks.json" --pubsub-audience "$AUD" \
    --pubsub-email push@shapes-proj.iam.gserviceaccount.com 2>"$T/oidc.log" &
pid=$!
pids+=("$pid")
BASE=
for _ in $(seq 200); do
    BASE=$(grep -o 'Pub/Sub push endpoint on [^ ]*' "$T/oidc.log" 2>/dev/null | cut -d' ' -f5)
    [ -n "$BASE" ] && break
    sleep 0.05
done
check "serve with --pubsub-jwks: starts, audit path off without its credentials" "1 1" \
    "$([ -n "$BASE" ] && echo 1) $(grep -c 'audit webhook path is off' "$T/oidc.log")"
if [ -n "$BASE" ]; then
    push1=$(head -n 1 "$S/gke-pubsub-push.json")
    opost() { curl_post "$BASE" -H 'Content-Type: application/json' --data-binary "$push1" "$@"; }
    check "oidc: good token: 200" 200 "$(opost -H "Authorization: Bearer $(jwt "$AUD" 3600)")"
    check "oidc: the push is stored" 1 "$(count "$T/oidc.db" events)"
    check "oidc: expired token: 401" 401 "$(opost -H "Authorization: Bearer $(jwt "$AUD" -600)")"
    grep -q 'expired' "$T/body"
    check "oidc: the 401 says the token expired" 0 $?
    check "oidc: another audience: 401" 401 \
        "$(opost -H "Authorization: Bearer $(jwt https://elsewhere.test/ 3600)")"
    check "oidc: unknown key id: 401" 401 "$(opost -H "Authorization: Bearer $(jwt "$AUD" 3600 k-9)")"
    check "oidc: a token of another account (Google signs anyone's): 401" 401 \
        "$(opost -H "Authorization: Bearer $(jwt "$AUD" 3600 k-1 mallory@evil-proj.iam.gserviceaccount.com)")"
    # another token's claims (a longer life) under this token's signature
    tok=$(jwt "$AUD" 3600)
    forged="$(cut -d. -f1 <<<"$tok").$(jwt "$AUD" 86400 | cut -d. -f2).$(cut -d. -f3 <<<"$tok")"
    check "oidc: claims changed under a signature: 401" 401 "$(opost -H "Authorization: Bearer $forged")"
    check "oidc: no token: 401" 401 "$(opost)"
    check "oidc: the audit path is not served: 404" 404 \
        "$(curl_post "${BASE%/pubsub}/k8s-audit" -H 'Content-Type: application/json' --data-binary '{}')"
    check "oidc: refused pushes store nothing" 1 "$(count "$T/oidc.db" events)"
fi
kill -TERM "$pid"
wait "$pid"
check "serve with --pubsub-jwks: exit 0 on SIGTERM" 0 $?
forget "$pid"

# ================================================================ 3. Kafka
if ! command -v kcat >/dev/null; then
    echo "SKIP: Kafka part: kcat is not installed (scripts/deps installs it)"
elif [ -z "${KAFKA_MOCK:-}" ] || [ ! -x "$KAFKA_MOCK" ]; then
    echo "SKIP: Kafka part: KAFKA_MOCK (tests/tools/kafka_mock.c) is not built"
else
    # topic, the file whose lines are its messages (eks: one gzip'ed DATA_MESSAGE a message,
    # as Kinesis and Firehose records carry them), class, cluster
    TOPICS="k-fluentbit fluentbit.json full NULL
k-vector vector.json full NULL
k-filebeat filebeat.json full NULL
k-aks aks-eventhubs.json cut shapes-aks
k-gke gke-sink.json gke shapes-gke
k-eks eks-data-message.json full shapes-eks"
    kafka_mock $(cut -d' ' -f1 <<<"$TOPICS")
    check "kafka: mock cluster up" 1 "$(grep -c '^127.0.0.1:[0-9]*' "$T/boot")"
    # everything on partition 0, in file order (the correlations are sequences)
    while read -r t f _ _; do
        if [ "$t" == k-eks ]; then
            n=0
            while IFS= read -r m; do
                n=$((n + 1))
                printf '%s' "$m" | gzip -nc >"$T/dm-$n.gz"
            done <"$S/$f"
            kcat -P -b "$B" -t "$t" -p 0 -z none "$T"/dm-[0-9].gz
        else
            kcat -P -b "$B" -t "$t" -p 0 -z none <"$S/$f"
        fi
    done <<<"$TOPICS"
    declare -A kpid msgs
    while read -r t f _ _; do
        msgs[$t]=$(wc -l <"$S/$f")
        "$KTRAIL" consume --brokers "$B" --quiet "${FAST[@]}" --topic "$t" --group "g-$t" \
            --db "$T/$t.db" --alerts none 2>"$T/$t.err" &
        kpid[$t]=$!
        pids+=("$!")
    done <<<"$TOPICS"
    # until each consumer has checkpointed past its topic's last message (45 s at most)
    for _ in $(seq 450); do
        left=0
        for t in "${!kpid[@]}"; do
            [ -s "$T/$t.db" ] && [ "$(sql "$T/$t.db" "SELECT coalesce(sum(next_offset), 0) FROM ckpt_kafka WHERE topic = '$t'" 2>/dev/null)" == "${msgs[$t]}" ] || left=1
        done
        [ $left == 0 ] && break
        sleep 0.1
    done
    check "kafka: every topic consumed to its end" 0 $left
    while read -r t f class cl; do
        kill -TERM "${kpid[$t]}"
        wait "${kpid[$t]}"
        check "consume $t: exit 0 on SIGTERM" 0 $?
        forget "${kpid[$t]}"
        compare "consume $t ($f)" "$T/$t.db" "$class" "$cl"
        if [ "$t" == k-eks ]; then
            check "consume k-eks: its summary counts the skipped stream and control message" 1 \
                "$(grep -c '^ktrail consume: 2 envelope entries without audit events skipped' "$T/$t.err")"
        fi
    done <<<"$TOPICS"
    # AKS live comes through Event Hubs' Kafka endpoint: SASL PLAIN over TLS, user
    # $ConnectionString. The mock cluster speaks neither, so what is checked here is that
    # consume takes the settings as Event Hubs documents them (librdkafka validates them), and
    # says in one line what is wrong when the endpoint does not answer TLS.
    timeout 60 "$KTRAIL" consume --brokers "$B" --topic k-aks --group g-sasl --db "$T/sasl.db" \
        -X security.protocol=SASL_SSL -X sasl.mechanism=PLAIN -X 'sasl.username=$ConnectionString' \
        -X 'sasl.password=Endpoint=sb://shapes.servicebus.windows.net/;SharedAccessKeyName=ktrail;SharedAccessKey=x' \
        2>"$T/sasl.err"
    check "kafka: Event Hubs settings (SASL_SSL, PLAIN) accepted; a plaintext endpoint: exit 1" 1 $?
    # (librdkafka's "SSL handshake failed" warning is not always logged before the 10 s
    # deadline, on a loaded machine: the final line is what ktrail promises)
    "$KTRAIL" consume --brokers "$B" --topic k-aks --group g-sasl2 --db "$T/sasl2.db" \
        -X security.protocol=SASL_SSL -X sasl.mechanism=NOPE 2>"$T/sasl2.err"
    check "kafka: a SASL setting librdkafka refuses is a usage error" 2 $?
    check "kafka: one final line says why" 1 "$(grep -c '^ktrail: cannot reach the Kafka brokers' "$T/sasl.err")"
fi

finish
