# Integration: --alerts-http, alerts delivered from the database to HTTP receivers at least
# once and in order. The receiver is tests/tools/http_sink.c on loopback: every alert arrives
# as Falco's JSON alert, in id order; a receiver that is down gets everything when it is back
# (across a restart, and a SIGKILL), one that answers 500 is retried, one that refuses an
# alert (400) has it skipped; priorities, headers, bearer tokens and https with a CA file;
# serve's /metrics per destination.
. "$(dirname "$0")/lib.bash"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${HTTP_SINK:?set by ctest}"
"${GEN_CERTS:-$ROOT/scripts/gen-certs}" "$T/pki" prod-east >/dev/null
P=$T/pki
sinks=()
trap 'for s in "${sinks[@]}"; do kill "$s" 2>/dev/null; done; rm -rf "$T"' EXIT

# sink NAME ARGS...: start a receiver writing bodies to $T/NAME.out; sets $PORT and $SINK.
sink() {
    local name=$1
    shift
    "$HTTP_SINK" --out "$T/$name.out" "$@" </dev/null >"$T/$name.port" 2>"$T/$name.err" &
    SINK=$!
    sinks+=("$SINK")
    PORT=
    for _ in $(seq 100); do
        PORT=$(head -n 1 "$T/$name.port" 2>/dev/null)
        [ -n "$PORT" ] && return 0
        sleep 0.05
    done
    return 1
}
# a port nothing listens on: a receiver that is down
down_port() {
    sink probe
    local p=$PORT
    kill "$SINK"
    wait "$SINK" 2>/dev/null
    echo "$p"
}
replay() { "$KTRAIL" replay --quiet --alerts none "$@"; }
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
ids_sent() { jq -r '.audit_id + " " + .rule' "$1"; }
ids_stored() { sql "$1" "SELECT audit_id || ' ' || rule FROM v_alerts ORDER BY id"; }

sample=$FIXTURES/sample-audit.log
half=$T/half.log
head -n 1000 "$sample" >"$half"
tail -n +1001 "$sample" >"$T/rest.log"

# ---- a receiver that is up: every alert, in order, Falco's shape ----
sink up
replay --db "$T/a.db" --alerts-http "http://127.0.0.1:$PORT/" "$sample" 2>"$T/a.err"
check "up: replay exits 0" 0 $?
stored=$(sql "$T/a.db" "SELECT count(*) FROM alerts")
check "up: the sample raises alerts" 1 "$([ "$stored" -gt 100 ] && echo 1)"
check "up: every stored alert delivered" "$stored" "$(lines "$T/up.out")"
check "up: in id order" "$(ids_stored "$T/a.db" | md5sum)" "$(ids_sent "$T/up.out" | md5sum)"
check "up: Falco's fields on every alert" "$stored" "$(jq -c 'select((.output | type) == "string" and (.priority | type) == "string" and (.rule | type) == "string" and (.time | test("^[0-9-]{10}T[0-9:.]+Z$")) and (.output_fields | type) == "object" and .source == "k8s_audit" and (.tags | type) == "array" and (.hostname | length) > 0)' "$T/up.out" | wc -l)"
check "up: the same output as the database" "$(sql "$T/a.db" "SELECT output FROM v_alerts ORDER BY id" | md5sum)" \
    "$(jq -r .output "$T/up.out" | md5sum)"
check "up: the summary says so" 1 "$(grep -c "alerts to http://127.0.0.1:$PORT/: $stored delivered, 0 refused$" "$T/a.err")"
check "up: the cursor is stored" "$(sql "$T/a.db" "SELECT max(id) FROM alerts")" \
    "$(sql "$T/a.db" "SELECT last_alert FROM deliveries")"
kill "$SINK"

# ---- a receiver that is down, then back: nothing lost across runs, nothing twice ----
dp=$(down_port)
url="http://127.0.0.1:$dp/alerts"
replay --db "$T/d.db" --alerts-http "$url" "$half" 2>"$T/d1.err"
check "down: replay still exits 0" 0 $?
first=$(sql "$T/d.db" "SELECT count(*) FROM alerts")
check "down: the run says what it keeps" 1 "$(grep -c "0 delivered, 0 refused, $first kept for the next run" "$T/d1.err")"
check "down: a warning names the destination" 1 "$(grep -c "deliver.*127.0.0.1:$dp/alerts: .*retrying" "$T/d1.err")"
"$HTTP_SINK" --port "$dp" --out "$T/back.out" </dev/null >/dev/null 2>&1 &
sinks+=($!)
sleep 0.3
replay --db "$T/d.db" --alerts-http "$url" "$T/rest.log" 2>"$T/d2.err"
all=$(sql "$T/d.db" "SELECT count(*) FROM alerts")
check "back: the second run adds alerts" 1 "$([ "$all" -gt "$first" ] && echo 1)"
check "back: every alert of both runs delivered once" "$all" "$(lines "$T/back.out")"
check "back: in order" "$(ids_stored "$T/d.db" | md5sum)" "$(ids_sent "$T/back.out" | md5sum)"

# ---- SIGKILL while the receiver is down, then a restart: at least once, none past the cursor ----
dp=$(down_port)
url="http://127.0.0.1:$dp/"
"$KTRAIL" replay --quiet --alerts none --follow --db "$T/k.db" --alerts-http "$url" "$half" 2>"$T/k1.err" &
k=$!
for _ in $(seq 100); do
    [ "$(sql "$T/k.db" "SELECT count(*) FROM alerts" 2>/dev/null)" -gt 0 ] 2>/dev/null && break
    sleep 0.1
done
sleep 0.5
kill -KILL $k
wait $k 2>/dev/null
killed=$(sql "$T/k.db" "SELECT count(*) FROM alerts")
check "killed: alerts were stored" 1 "$([ "$killed" -gt 0 ] && echo 1)"
"$HTTP_SINK" --port "$dp" --out "$T/kill.out" </dev/null >/dev/null 2>&1 &
sinks+=($!)
sleep 0.3
replay --db "$T/k.db" --alerts-http "$url" "$half" 2>"$T/k2.err"
check "killed: the restart delivers every alert" "$(sql "$T/k.db" "SELECT count(*) FROM alerts")" "$(lines "$T/kill.out")"
check "killed: none twice" 0 "$(ids_sent "$T/kill.out" | sort | uniq -d | wc -l)"

# ---- a receiver answering 500 for a while: retried with backoff, in order, none lost ----
sink flaky --fail 2
replay --db "$T/f.db" --alerts-http "http://127.0.0.1:$PORT/" "$half" 2>"$T/f.err"
n=$(sql "$T/f.db" "SELECT count(*) FROM alerts")
check "500: every alert delivered after the retries" "$n" "$(lines "$T/flaky.out")"
check "500: in order" "$(ids_stored "$T/f.db" | md5sum)" "$(ids_sent "$T/flaky.out" | md5sum)"
check "500: the warning names the status" 1 "$(grep -c 'HTTP 500; retrying' "$T/f.err")"
kill "$SINK"

# ---- a receiver refusing alerts for good (400): skipped and counted, not retried forever ----
sink refuse --status 400
replay --db "$T/r.db" --alerts-http "http://127.0.0.1:$PORT/" "$half" 2>"$T/r.err"
n=$(sql "$T/r.db" "SELECT count(*) FROM alerts")
check "400: every alert refused, the run ends" 1 "$(grep -c "0 delivered, $n refused$" "$T/r.err")"
check "400: the cursor moved past them" "$(sql "$T/r.db" "SELECT max(id) FROM alerts")" \
    "$(sql "$T/r.db" "SELECT last_alert FROM deliveries")"
kill "$SINK"

# ---- per destination: priority, headers, bearer token; two destinations, two cursors ----
sink warn --header X-Team
warn_port=$PORT
sink auth --header Authorization
echo ' s3cret ' >"$T/token"
replay --db "$T/p.db" "$half" \
    --alerts-http "http://127.0.0.1:$warn_port/" --alerts-min-priority warning \
    --alerts-http-header 'X-Team: secops' \
    --alerts-http "http://user:pw@127.0.0.1:$PORT/hook?key=abc" --alerts-http-token-file "$T/token" \
    2>"$T/p.err"
check "priority: only Warning and above" "$(sql "$T/p.db" "SELECT count(*) FROM alerts WHERE priority <= 4")" \
    "$(lines "$T/warn.out")"
check "priority: none below" 0 "$(cut -f2- "$T/warn.out" | jq -r .priority | grep -vc '^\(Emergency\|Alert\|Critical\|Error\|Warning\)$')"
check "header: sent" "$(lines "$T/warn.out")" "$(grep -c $'^secops\t' "$T/warn.out")"
check "bearer: sent" "$(sql "$T/p.db" "SELECT count(*) FROM alerts")" "$(grep -c $'^Bearer s3cret\t' "$T/auth.out")"
check "two destinations, two cursors" 2 "$(sql "$T/p.db" "SELECT count(*) FROM deliveries")"
check "no secret in the cursor's key" 0 "$(sql "$T/p.db" "SELECT count(*) FROM deliveries WHERE dest LIKE '%pw%' OR dest LIKE '%abc%'")"

# ---- https with a CA file ----
sink tls --tls-cert "$P/server.crt" --tls-key "$P/server.key"
replay --db "$T/t.db" --alerts-http "https://127.0.0.1:$PORT/" --alerts-http-ca "$P/ca.crt" "$half" 2>"$T/t.err"
check "https: every alert delivered" "$(sql "$T/t.db" "SELECT count(*) FROM alerts")" "$(lines "$T/tls.out")"
rm -f "$T/t.db"*
replay --db "$T/t.db" --alerts-http "https://127.0.0.1:$PORT/" --alerts-http-ca "$P/rogue-ca.crt" "$half" 2>"$T/t2.err"
check "https: an untrusted certificate is not delivered to" 1 "$(grep -c 'kept for the next run' "$T/t2.err")"
kill "$SINK"

# ---- serve: delivers what it commits, /metrics per destination ----
sink served
"$KTRAIL" serve --listen 127.0.0.1:0 --insecure --alerts none --db "$T/s.db" \
    --metrics-listen 127.0.0.1:0 --alerts-http "http://127.0.0.1:$PORT/" 2>"$T/serve.log" &
sp=$!
for _ in $(seq 100); do
    grep -q 'metrics on' "$T/serve.log" && break
    sleep 0.05
done
URL=$(grep -o 'listening on [^ ]*' "$T/serve.log" | cut -d' ' -f3)
MURL=$(grep -o 'metrics on [^ ]*' "$T/serve.log" | cut -d' ' -f3)
awk 'BEGIN { printf "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[" }
     { printf "%s%s", (NR > 1 ? "," : ""), $0 } END { print "]}" }' "$half" >"$T/half.json"
check "serve: the POST is taken" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$T/half.json" "$URL")"
n=$(sql "$T/s.db" "SELECT count(*) FROM alerts")
for _ in $(seq 100); do
    [ "$(lines "$T/served.out")" -ge "$n" ] && break
    sleep 0.1
done
check "serve: every alert delivered" "$n" "$(lines "$T/served.out")"
for _ in $(seq 20); do # pending is updated by the delivery thread's next round
    curl -s "$MURL" >"$T/metrics"
    grep -q "^ktrail_alerts_http_pending{destination=\"http://127.0.0.1:$PORT/\"} 0$" "$T/metrics" && break
    sleep 0.3
done
check "metrics: delivered" 1 "$(grep -c "^ktrail_alerts_http_delivered_total{destination=\"http://127.0.0.1:$PORT/\"} $n$" "$T/metrics")"
check "metrics: pending" 1 "$(grep -c "^ktrail_alerts_http_pending{destination=\"http://127.0.0.1:$PORT/\"} 0$" "$T/metrics")"
check "metrics: up" 1 "$(grep -c "^ktrail_alerts_http_up{destination=\"http://127.0.0.1:$PORT/\"} 1$" "$T/metrics")"
kill -TERM $sp
wait $sp
check "serve: SIGTERM exits 0" 0 $?

# ---- usage errors ----
"$KTRAIL" replay --db "$T/u.db" --alerts-http-header 'X: y' "$half" 2>"$T/u.err"
check "an option before any URL: usage error" 2 $?
check "it says so" 1 "$(grep -c 'applies to the --alerts-http URL before it' "$T/u.err")"
"$KTRAIL" replay --db "$T/u.db" --alerts-http ftp://example/ "$half" 2>"$T/u.err"
check "not an http URL: exit 1" 1 $?
check "it says so" 1 "$(grep -c 'not an http:// or https:// URL' "$T/u.err")"
"$KTRAIL" replay --db "$T/u.db" --alerts-http http://x/ --alerts-http-token-file "$T/nope" "$half" 2>"$T/u.err"
check "a missing token file: usage error" 2 $?

finish
