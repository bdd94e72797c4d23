# Integration: `ktrail serve`, the audit webhook sink, over TLS on loopback with a generated
# CA. curl is the apiserver: mTLS and bearer authentication, every refusal the issue names,
# mixed good and bad items, concurrent clients, the GET endpoints, and SIGTERM under load
# (every event of a 2xx answer is stored; nothing stored that was not sent).
. "$(dirname "$0")/lib.bash"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

"${GEN_CERTS:-$ROOT/scripts/gen-certs}" "$T/pki" prod-east >/dev/null
P=$T/pki
printf 's3cret-token prod-west\nother-token\n' >"$T/tokens"
printf 'prod-east cluster-east\n' >"$T/cnmap"

# eventlists DIR PREFIX N PER: N generated events as EventList bodies of PER events each,
# DIR/PREFIX-0001.json ...; the auditIDs of each body in DIR/PREFIX-0001.ids
eventlists() {
    "$GEN_AUDIT" --seed "$RANDOM" --events "$3" -o "$1/$2.log"
    split -l "$4" -d -a 4 "$1/$2.log" "$1/$2-"
    for f in "$1/$2"-[0-9][0-9][0-9][0-9]; do
        awk 'BEGIN { printf "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{},\"items\":[" }
             { printf "%s%s", (NR > 1 ? "," : ""), $0 }
             END { print "]}" }' "$f" >"$f.json"
        grep -o '"auditID":"[^"]*"' "$f" | cut -d'"' -f4 >"$f.ids"
        rm -f "$f"
    done
}


# post ARGS...: curl a POST of application/json to $URL, print the status code.
post() {
    curl -s -o "$T/body" -w '%{http_code}' --cacert "$P/ca.crt" \
        -H 'Content-Type: application/json' "$@" "$URL"
}
mtls=(--cert "$P/client.crt" --key "$P/client.key")
count() { sql "$T/w.db" "SELECT count(*) FROM events"; }

# ---- refuses to start open or in plain text unless told to ----
"$KTRAIL" serve --listen 127.0.0.1:0 --db "$T/x.db" 2>"$T/err1"
check "plain HTTP without --insecure: usage error" 2 $?
grep -q 'refusing plain HTTP' "$T/err1"
check "plain HTTP refusal says why" 0 $?
"$KTRAIL" serve --listen 127.0.0.1:0 --db "$T/x.db" --tls-cert "$P/server.crt" \
    --tls-key "$P/server.key" 2>"$T/err2"
check "TLS without authentication: usage error" 2 $?
grep -q 'open audit sink' "$T/err2"
check "open sink refusal says why" 0 $?

start_serve "$T/serve.log" --db "$T/w.db" --tls-cert "$P/server.crt" --tls-key "$P/server.key" \
    --client-ca "$P/ca.crt" --token-file "$T/tokens" --cluster-map "$T/cnmap" --max-body 6M
check "serve starts" 0 $?

# ---- authentication ----
mkdir -p "$T/ev"
eventlists "$T/ev" a 40 10 # a-0000 .. a-0003, 10 events each
check "mTLS, good certificate: 200" 200 "$(post "${mtls[@]}" --data-binary @"$T/ev/a-0000.json")"
check "mTLS: the 10 events stored" 10 "$(count)"
check "mTLS: cluster from the CN map" cluster-east \
    "$(sql "$T/w.db" "SELECT DISTINCT cluster FROM v_events")"
check "certificate from another CA: 401" 401 \
    "$(post --cert "$P/rogue.crt" --key "$P/rogue.key" --data-binary @"$T/ev/a-0001.json")"
grep -q 'not signed by the trusted CA' "$T/body"
check "401 body names the problem" 0 $?
check "no credentials: 401" 401 "$(post --data-binary @"$T/ev/a-0001.json")"
check "bad bearer token: 401" 401 \
    "$(post -H 'Authorization: Bearer nope' --data-binary @"$T/ev/a-0001.json")"
check "refused requests store nothing" 10 "$(count)"
check "good bearer token: 200" 200 \
    "$(post -H 'Authorization: Bearer s3cret-token' --data-binary @"$T/ev/a-0001.json")"
check "bearer: cluster from the token file" 10 \
    "$(sql "$T/w.db" "SELECT count(*) FROM v_events WHERE cluster = 'prod-west'")"
check "retry of a stored batch: 200" 200 "$(post "${mtls[@]}" --data-binary @"$T/ev/a-0000.json")"
check "retry stores no duplicates" 20 "$(count)"

# ---- bad requests ----
head -c 7000000 /dev/zero | tr '\0' ' ' >"$T/huge.json"
check "body over --max-body: 413" 413 "$(post "${mtls[@]}" --data-binary @"$T/huge.json")"
check "not JSON: 400" 400 "$(post "${mtls[@]}" --data-binary 'hello')"
grep -q '"error":"not JSON' "$T/body"
check "400 body is JSON naming the problem" 0 $?
check "truncated JSON: 400" 400 \
    "$(post "${mtls[@]}" --data-binary '{"kind":"EventList","items":[{"auditID":"a"')"
check "JSON without audit events: 400" 400 \
    "$(post "${mtls[@]}" --data-binary '{"kind":"PodList","items":[{"a":1}]}')"
check "wrong content type: 400" 400 \
    "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" "${mtls[@]}" \
        -H 'Content-Type: text/plain' --data-binary @"$T/ev/a-0002.json" "$URL")"
check "GET on the audit path: 405" 405 \
    "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" "${mtls[@]}" "$URL")"
check "unknown path: 404" 404 \
    "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" "${mtls[@]}" \
        -H 'Content-Type: application/json' --data-binary @"$T/ev/a-0002.json" "${URL}x")"
check "bad requests store nothing" 20 "$(count)"
check "no rejects from refused bodies" 0 "$(sql "$T/w.db" 'SELECT count(*) FROM rejects')"

# a valid batch with malformed items: the good ones stored, the bad ones in rejects, 2xx
good=$(sed -n 1p "$T/ev/a.log" | sed 's/"auditID":"[^"]*"/"auditID":"mixed-1"/')
body="{\"kind\":\"EventList\",\"items\":[$good,{\"auditID\":\"x\",\"bad\": },{\"auditID\":\"y\"}]}"
check "mixed good and bad items: 200" 200 "$(post "${mtls[@]}" --data-binary "$body")"
check "mixed: the good item stored" 1 \
    "$(sql "$T/w.db" "SELECT count(*) FROM v_events WHERE audit_id = 'mixed-1'")"
check "mixed: the bad items in rejects" 2 \
    "$(sql "$T/w.db" "SELECT count(*) FROM rejects WHERE origin LIKE 'webhook:%'")"

# ---- alerts from webhook events ----
head -n 1000 "$FIXTURES/sample-audit.log" >"$T/sample.json" # good JSON lines: a valid body
check "the sample log as JSON lines: 200" 200 "$(post "${mtls[@]}" --data-binary @"$T/sample.json")"
alerts=$(sql "$T/w.db" "SELECT count(*) FROM v_alerts WHERE cluster = 'cluster-east'")
[ "$alerts" -gt 0 ]
check "alerts stored for webhook events, with their cluster" 0 $?

# ---- concurrent clients ----
eventlists "$T/ev" c 4000 400 # 10 bodies of 400
before=$(count)
for f in "$T"/ev/c-*.json; do
    curl -s -o /dev/null -w '%{http_code}\n' --cacert "$P/ca.crt" "${mtls[@]}" \
        -H 'Content-Type: application/json' --data-binary @"$f" "$URL" >>"$T/codes" &
done
wait_curls() { while [ "$(jobs -rp | grep -vc "^$pid\$")" -gt 0 ]; do sleep 0.05; done; }
wait_curls
check "10 concurrent clients: all 200" 10 "$(grep -c '^200$' "$T/codes")"
check "10 concurrent clients: 4000 events stored" $((before + 4000)) "$(count)"

# ---- GET endpoints ----
base=${URL%/k8s-audit}
check "/healthz" ok "$(curl -s --cacert "$P/ca.crt" "$base/healthz")"
check "/readyz" ok "$(curl -s --cacert "$P/ca.crt" "$base/readyz")"
curl -s --cacert "$P/ca.crt" "$base/metrics" >"$T/metrics"
check "/metrics counts 401s" 3 "$(sed -n 's/^ktrail_webhook_requests_total{code="401"} //p' "$T/metrics")"
check "/metrics counts 413s" 1 "$(sed -n 's/^ktrail_webhook_requests_total{code="413"} //p' "$T/metrics")"
check "/metrics counts stored events" "$(count)" \
    "$(sed -n 's/^ktrail_events_stored_total //p' "$T/metrics")"
grep -q '^ktrail_webhook_commit_seconds_bucket{le="+Inf"}' "$T/metrics"
check "/metrics has the commit latency histogram" 0 $?
grep -q '^ktrail_alerts_total{rule="' "$T/metrics"
check "/metrics has alerts by rule" 0 $?

# ---- SIGTERM under load ----
eventlists "$T/ev" s 24000 400 # 60 bodies
before=$(count)
bodies=("$T"/ev/s-*.json)
for k in 0 1 2 3; do
    (
        for ((i = k; i < ${#bodies[@]}; i += 4)); do
            f=${bodies[$i]}
            code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" "${mtls[@]}" \
                -H 'Content-Type: application/json' --data-binary @"$f" "$URL")
            echo "$code ${f%.json}.ids" >>"$T/load.$k"
        done
    ) &
done
sleep 0.5
kill -TERM $pid
wait $pid
check "SIGTERM during load: exit 0" 0 $?
wait_curls
cat "$T"/load.* >"$T/load"
ok=$(grep -c '^200 ' "$T/load")
echo "note: SIGTERM after 0.5 s: $ok of ${#bodies[@]} bodies acknowledged, the rest refused"
[ "$ok" -gt 0 ]
check "SIGTERM: some requests were acknowledged before it" 0 $?
# every event of a 2xx answer is in the database
: >"$T/acked.ids"
grep '^200 ' "$T/load" | while read -r _ ids; do cat "$ids" >>"$T/acked.ids"; done
sql "$T/w.db" "SELECT audit_id FROM v_events" | sort >"$T/stored.ids"
check "SIGTERM: every acknowledged event is stored" 0 \
    "$(sort "$T/acked.ids" | comm -23 - "$T/stored.ids" | wc -l)"
# and nothing stored that was not sent
cat "$T"/ev/*.ids | sort >"$T/sent.ids"
echo mixed-1 >>"$T/sent.ids"
grep -o '"auditID":"[^"]*"' "$FIXTURES/sample-audit.log" | cut -d'"' -f4 >>"$T/sent.ids"
sort -o "$T/sent.ids" "$T/sent.ids"
check "SIGTERM: nothing stored that was not sent" 0 \
    "$(comm -13 "$T/sent.ids" "$T/stored.ids" | wc -l)"
# a request refused during shutdown was answered non-2xx (or could not connect: 000)
check "SIGTERM: every request answered 200, 503 or refused" 0 \
    "$(grep -vc -E '^(200|503|000) ' "$T/load")"

# ---- --insecure: plain HTTP, said loudly ----
start_serve "$T/insecure.log" --db "$T/i.db" --insecure
check "--insecure starts" 0 $?
grep -q 'INSECURE' "$T/insecure.log"
check "--insecure is logged" 0 $?
check "--insecure: plain POST stored" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @"$T/ev/a-0003.json" "$URL")"
kill -TERM $pid
wait $pid
check "--insecure: 10 events" 10 "$(sql "$T/i.db" 'SELECT count(*) FROM events')"

# ---- backpressure: a full queue answers 503 + Retry-After at once, stores nothing of it ----
start_serve "$T/bp.log" --db "$T/bp.db" --insecure --queue 1K
check "tiny --queue starts" 0 $?
eventlists "$T/ev" q 12000 400 # 30 bodies
for f in "$T"/ev/q-*.json; do
    curl -s -D "$f.hdr" -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
        --data-binary @"$f" "$URL" >"$f.code" &
done
wait_curls
busy=$(cat "$T"/ev/q-*.code | grep -c '^503$')
okq=$(cat "$T"/ev/q-*.code | grep -c '^200$')
echo "note: backpressure: $okq of 30 bodies stored, $busy refused with 503"
[ "$busy" -gt 0 ]
check "full queue: some requests refused with 503" 0 $?
check "full queue: every request answered 200 or 503" 30 $((okq + busy))
check "503 carries Retry-After" "$busy" "$(grep -il '^retry-after: 5' "$T"/ev/q-*.hdr | wc -l)"
kill -TERM $pid
wait $pid
check "full queue: exactly the accepted bodies stored" $((okq * 400)) \
    "$(sql "$T/bp.db" 'SELECT count(*) FROM events')"

# ---- idle connections cannot lock the apiserver out ----
"$KTRAIL" serve --listen 127.0.0.1:0 --db "$T/x.db" --insecure --auth-timeout 0 2>"$T/err3"
check "--auth-timeout 0: usage error" 2 $?
# 200 connections that never authenticate (100 silent TCP ones, 100 stopped inside a TLS
# record's header) beside an apiserver: it is answered at once, and they are all closed
# after --auth-timeout (or sooner, the oldest evicted to make room for newer ones).
start_serve "$T/idle.log" --db "$T/idle.db" --tls-cert "$P/server.crt" --tls-key "$P/server.key" \
    --client-ca "$P/ca.crt" --token-file "$T/tokens" --auth-timeout 2
check "serve with --auth-timeout starts" 0 $?
hostport=${URL#https://}
hostport=${hostport%%/*}
idle=()
for _ in $(seq 100); do
    exec {fd}<>"/dev/tcp/${hostport%:*}/${hostport##*:}" && idle+=("$fd")
done
for _ in $(seq 100); do
    # a TLS handshake record announcing 512 bytes, of which one is sent
    exec {fd}<>"/dev/tcp/${hostport%:*}/${hostport##*:}" && idle+=("$fd") &&
        printf '\x16\x03\x01\x02\x00\x01' >&"$fd"
done
check "200 idle connections opened" 200 "${#idle[@]}"
check "beside 200 idle connections, the apiserver is answered" 200 \
    "$(post --max-time 10 "${mtls[@]}" --data-binary @"$T/ev/a-0000.json")"
check "beside 200 idle connections, a bearer token is answered" 200 \
    "$(post --max-time 10 -H 'Authorization: Bearer s3cret-token' \
        --data-binary @"$T/ev/a-0001.json")"
evicted=$(curl -s --cacert "$P/ca.crt" "${URL%/k8s-audit}/metrics" |
    sed -n 's/^ktrail_webhook_connections_evicted_total //p')
echo "note: $evicted idle connections evicted to make room for newer ones"
[ "${evicted:-0}" -gt 0 ]
check "the oldest idle connections were closed for newer ones" 0 $?
# still_open FD...: how many of these connections the server has not closed (a closed one
# reads end of file, status 1, at once; an open idle one times out, status > 128)
still_open() {
    local n=0 fd
    for fd in "$@"; do
        read -r -t 0.01 -u "$fd" _
        [ $? -gt 128 ] && n=$((n + 1))
    done
    echo "$n"
}
open=$(still_open "${idle[@]}")
for _ in $(seq 50); do
    [ "$open" -eq 0 ] && break
    sleep 0.2
    open=$(still_open "${idle[@]}")
done
check "idle connections closed after --auth-timeout" 0 "$open"
for fd in "${idle[@]}"; do exec {fd}>&-; done
kill -TERM $pid
wait $pid
check "idle connections: serve exits 0" 0 $?
check "--auth-timeout: the apiserver's events stored" 20 "$(sql "$T/idle.db" 'SELECT count(*) FROM events')"

# an authenticated keep-alive connection keeps the long idle timeout: a second request after
# longer than --auth-timeout on the same connection is answered
start_serve "$T/ka.log" --db "$T/ka.db" --insecure --auth-timeout 1
hostport=${URL#http://}
hostport=${hostport%%/*}
exec {ka}<>"/dev/tcp/${hostport%:*}/${hostport##*:}"
# http_post FD FILE: POST FILE on the open connection FD, print the answer's status code
http_post() {
    printf 'POST /k8s-audit HTTP/1.1\r\nHost: ktrail\r\nContent-Type: application/json\r\n'`
          `'Content-Length: %d\r\n\r\n' "$(stat -c %s "$2")" >&"$1"
    cat "$2" >&"$1"
    local line
    while read -r -t 10 -u "$1" line; do
        case $line in HTTP/1.1\ *)
            echo "$line" | cut -d' ' -f2
            return
            ;;
        esac
    done
    echo none
}
check "keep-alive: first request" 200 "$(http_post "$ka" "$T/ev/a-0002.json")"
sleep 2
check "keep-alive: a request after --auth-timeout on an authenticated connection" 200 \
    "$(http_post "$ka" "$T/ev/a-0003.json")"
exec {ka}>&-
kill -TERM $pid
wait $pid
check "keep-alive: serve exits 0" 0 $?

# ---- bodies being uploaded count against --queue ----
# 64 concurrent uploads of 2 MB (each sent at 4 MB/s, so that they overlap) against --queue
# 8M: what is admitted is held from its first byte to its answer; the rest is answered 503 +
# Retry-After at once (48 with a Content-Length, and curl waits for "100 Continue") or when
# the budget runs out (16 chunked, the rest of their bodies dropped). The peak RSS stays
# under --queue + 64 MiB (without the bound, the 64 bodies were held: 128 MiB).
# (not `ldd | grep -q`: grep quits at the first match, ldd gets SIGPIPE, and pipefail takes
# the pipeline for a miss: a sanitized build was once checked as a plain one)
if [[ "$(ldd "$KTRAIL")" == *libasan* ]]; then
    echo "note: sanitized build: the RSS bound is not checked (ASan's quarantine holds freed memory)"
    asan=1
else
    asan=0
fi
eventlists "$T/ev" m 70400 1100 # 64 bodies of about 2 MB
start_serve "$T/mem.log" --db "$T/mem.db" --insecure --queue 8M
k=0
for f in "$T"/ev/m-*.json; do
    chunked=()
    [ $((k++ % 4)) -eq 0 ] && chunked=(-H 'Transfer-Encoding: chunked')
    curl -s -D "$f.hdr" -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
        "${chunked[@]}" --limit-rate 4M --data-binary @"$f" "$URL" >"$f.code" &
done
wait_curls
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
kill -TERM $pid
wait $pid
check "uploads: serve exits 0" 0 $?
okm=$(cat "$T"/ev/m-*.code | grep -c '^200$')
busym=$(cat "$T"/ev/m-*.code | grep -c '^503$')
echo "note: 64 uploads of 2 MB, --queue 8M: $okm stored, $busym refused; peak RSS $((hwm / 1024)) MiB"
check "uploads: every one answered 200 or 503" 64 $((okm + busym))
[ "$okm" -gt 0 ] && [ "$busym" -gt 0 ]
check "uploads: some stored, some refused" 0 $?
check "uploads: each 503 carries Retry-After" "$busym" \
    "$(grep -il '^retry-after: 5' "$T"/ev/m-*.hdr | wc -l)"
[ "$asan" -eq 1 ] || [ "$hwm" -lt $(((8 + 64) * 1024)) ]
check "uploads: peak RSS under --queue + 64 MiB" 0 $?
: >"$T/macked.ids"
for f in "$T"/ev/m-*.json; do
    [ "$(cat "$f.code")" = 200 ] && cat "${f%.json}.ids" >>"$T/macked.ids"
done
sql "$T/mem.db" "SELECT audit_id FROM v_events" | sort >"$T/mstored.ids"
check "uploads: every acknowledged event is stored" 0 \
    "$(sort "$T/macked.ids" | comm -23 - "$T/mstored.ids" | wc -l)"
check "uploads: only acknowledged events are stored" "$(wc -l <"$T/macked.ids")" \
    "$(wc -l <"$T/mstored.ids")"

finish
