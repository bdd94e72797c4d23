# Integration: failures are never passed over, and start-up is honest (issue 12).
# - A batch that cannot be stored stops its source at the last stored position: a database
#   capped by --max-db-size fails a large batch, the small batch after it must not commit
#   with its checkpoint past the failed records; once space is back, a second run stores
#   every event exactly once. For replay, replay --follow, serve (the webhook answers 5xx
#   and serve stops) and consume (offsets not committed).
# - replay, serve and consume refuse (exit 1, one line naming the file) a database they
#   cannot write: a read-only file, a read-only directory (no room for the -wal file).
# - ktrail check: a sound database passes, a copy with bytes flipped inside its pages fails.
. "$(dirname "$0")/lib.bash"

N=3000 # about 4.8 MB of events: a batch of about 2,600 (4 MiB) and a small one after it
"$GEN_AUDIT" --seed 12 --events $N --format lines -o "$T/a.log"
# count DB: events stored, and distinct (ts, auditID, stage) keys among them
count() { sql "$1" "SELECT count(*) || '|' || count(DISTINCT ts || audit_id || stage) FROM events"; }

# The cap: what 1,000 of these events take. The small last batch fits under it, the large
# first one does not.
head -n 1000 "$T/a.log" >"$T/k.log"
"$KTRAIL" replay --quiet --no-default-rules --db "$T/k.db" "$T/k.log" 2>/dev/null
CAP=$(stat -c %s "$T/k.db")
LIMIT=(--max-db-size "$CAP" --retry-writes 0)

# ---- replay ----
"$KTRAIL" replay --quiet --no-default-rules --db "$T/r.db" "${LIMIT[@]}" "$T/a.log" 2>"$T/r.err"
check "replay into a full database fails" 1 $?
grep -q "storing into $T/r.db failed: .*size limit of $CAP bytes.*resume there" "$T/r.err"
check "replay says what is full and that the position is kept" 0 $?
check "no checkpoint past the failed batch" 0 "$(sql "$T/r.db" 'SELECT count(*) FROM ckpt_file')"
"$KTRAIL" replay --quiet --no-default-rules --db "$T/r.db" "$T/a.log" 2>"$T/r2.err"
check "the rerun with space succeeds" 0 $?
check "every event stored, once" "$N|$N" "$(count "$T/r.db")"
grep -q 'already replayed' "$T/r2.err"
check "the rerun did not skip the file" 1 $?

# ---- replay --follow: stops instead of following past the failure ----
timeout 60 "$KTRAIL" replay --quiet --no-default-rules --follow --db "$T/f.db" "${LIMIT[@]}" \
    "$T/a.log" 2>"$T/f.err"
check "follow stops with an error when a batch cannot be stored" 1 $?
check "follow kept no checkpoint past it" 0 "$(sql "$T/f.db" 'SELECT count(*) FROM ckpt_file')"
"$KTRAIL" replay --quiet --no-default-rules --db "$T/f.db" "$T/a.log" 2>/dev/null
check "follow's file, rerun with space: every event once" "$N|$N" "$(count "$T/f.db")"

# ---- serve: the webhook answers 5xx (the apiserver retries) and serve stops ----
awk 'BEGIN { printf "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[" }
     { printf "%s%s", (NR > 1 ? "," : ""), $0 }
     END { print "]}" }' "$T/a.log" >"$T/a.json"
post() { curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary @"$T/a.json" "$URL"; }
start_serve "$T/s.err" --insecure --no-default-rules --db "$T/s.db" "${LIMIT[@]}"
code=$(post)
check "the webhook answers 5xx for a request it could not store" 5 "${code:0:1}"
timeout 30 tail --pid=$pid -f /dev/null
wait $pid
check "serve stops (exit 1) once a batch cannot be stored" 1 $?
grep -q "storing into $T/s.db failed" "$T/s.err"
check "serve says why it stopped" 0 $?
start_serve "$T/s2.err" --insecure --no-default-rules --db "$T/s.db"
check "the retried request is stored" 200 "$(post)"
kill -TERM $pid
wait $pid
check "serve with space: every event once" "$N|$N" "$(count "$T/s.db")"

# ---- consume: no offsets committed past the failed batch ----
if command -v kcat >/dev/null; then
    cleanup() {
        [ -n "${cpid:-}" ] && kill -KILL "$cpid" 2>/dev/null
        exec 3>&-
        [ -n "${MOCK:-}" ] && wait "$MOCK" 2>/dev/null
        rm -rf "$T"
    }
    trap cleanup EXIT
    kafka_mock audit
    kcat -P -b "$B" -t audit -z none <"$T/a.log"
    consume=("$KTRAIL" consume --brokers "$B" --topic audit --group g --quiet
        --no-default-rules --alerts none "${FAST[@]}")
    timeout 60 "${consume[@]}" --db "$T/c.db" "${LIMIT[@]}" 2>"$T/c.err"
    check "consume stops (exit 1) once a batch cannot be stored" 1 $?
    # one event a message, offsets from 0: the stored offsets must not pass the stored events
    check "consume kept no offset past the failed batch" "$(sql "$T/c.db" \
        'SELECT count(*) FROM events')" "$(sql "$T/c.db" \
        'SELECT coalesce(sum(next_offset), 0) FROM ckpt_kafka')"
    "${consume[@]}" --db "$T/c.db" 2>"$T/c2.err" &
    cpid=$!
    for _ in $(seq 600); do
        [ "$(sql "$T/c.db" 'SELECT count(*) FROM events')" -ge $N ] && break
        sleep 0.1
    done
    sleep 0.5 # a redelivery past N would show as more rows
    kill -TERM $cpid
    wait $cpid
    cpid=
    check "consume with space: every event once" "$N|$N" "$(count "$T/c.db")"
else
    echo "SKIP (consume part): kcat is not installed"
fi

# ---- start-up honesty: a database that cannot be written is refused at start ----
# As root, permissions do not bind: the refusals run as nobody (setpriv) when root.
as_user() {
    if [ "$(id -u)" -ne 0 ]; then
        "$@"
    elif command -v setpriv >/dev/null; then
        setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
    else
        return 99
    fi
}
chmod 755 "$T"
mkdir "$T/ro-file" "$T/ro-dir"
head -n 5 "$T/a.log" >"$T/small.log"
chmod 644 "$T/small.log"
for d in ro-file ro-dir; do
    "$KTRAIL" replay --quiet --no-default-rules --db "$T/$d/x.db" "$T/small.log" 2>/dev/null
done
chmod 777 "$T/ro-file" # the directory is writable, the file is not
chmod 444 "$T/ro-file/x.db"
chmod 666 "$T/ro-dir/x.db" # the file is writable, its directory (for x.db-wal) is not
if [ "$(id -u)" -ne 0 ]; then chmod 555 "$T/ro-dir"; else chmod 755 "$T/ro-dir"; fi
for d in ro-file ro-dir; do
    db=$T/$d/x.db
    as_user "$KTRAIL" replay --quiet --no-default-rules --db "$db" "$T/small.log" 2>"$T/$d.replay"
    rc=$?
    if [ $rc -eq 99 ]; then
        echo "SKIP (read-only part): running as root without setpriv"
        break
    fi
    check "$d: replay refuses to start" 1 $rc
    check "$d: one line naming the file and why" 1 \
        "$(grep -c "^ktrail: $db: .*\(read-only\|cannot write\)" "$T/$d.replay")"
    check "$d: and nothing else" 1 "$(wc -l <"$T/$d.replay")"
    as_user timeout 20 "$KTRAIL" serve --listen 127.0.0.1:0 --insecure --no-default-rules \
        --db "$db" 2>"$T/$d.serve"
    check "$d: serve refuses to start" 1 $?
    grep -q "^ktrail: $db: .*\(read-only\|cannot write\)" "$T/$d.serve"
    check "$d: serve names the file and why" 0 $?
    as_user timeout 20 "$KTRAIL" consume --brokers 127.0.0.1:1 --topic t --group g \
        --no-default-rules --db "$db" 2>"$T/$d.consume"
    check "$d: consume refuses to start" 1 $?
    grep -q "^ktrail: $db: .*\(read-only\|cannot write\)" "$T/$d.consume"
    check "$d: consume names the file and why" 0 $?
done

# ---- ktrail check ----
"$KTRAIL" check --db "$T/r.db" >"$T/check.out"
check "check: a sound database passes" 0 $?
grep -q "sound" "$T/check.out"
check "check says sound" 0 $?
cp "$T/r.db" "$T/flipped.db"
pages=$(($(stat -c %s "$T/flipped.db") / 4096))
for ((p = 40; p < pages; p += 7)); do # inside b-tree page headers, past the schema's pages
    printf '\xff' | dd of="$T/flipped.db" bs=1 seek=$((p * 4096 + 3)) conv=notrunc 2>/dev/null
done
"$KTRAIL" check --db "$T/flipped.db" >"$T/flipped.out"
check "check: a copy with flipped bytes fails" 1 $?
grep -q "damaged" "$T/flipped.out"
check "check says damaged" 0 $?
printf 'not a database\n%.0s' $(seq 300) >"$T/text.db"
"$KTRAIL" check --db "$T/text.db" >"$T/text.out"
check "check: a file that is no database fails" 1 $?
"$KTRAIL" check >/dev/null 2>&1
check "check without --db is a usage error" 2 $?

finish
