# Integration: an interrupted replay resumes from its checkpoint; --follow survives rename
# rotation and copytruncate, and SIGTERM commits what was read.
. "$(dirname "$0")/lib.bash"

wait_count() { # wait_count DB N: until events has N rows (20 s at most)
    for _ in $(seq 400); do
        [ "$(sql "$1" 'SELECT count(*) FROM events' 2>/dev/null)" = "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

# Resume: SIGKILL after the first commits, then run again.
N=200000
"$GEN_AUDIT" --seed 5 --events $N -o "$T/big.log"
"$KTRAIL" replay --quiet --db "$T/r.db" "$T/big.log" 2>/dev/null &
pid=$!
for _ in $(seq 2000); do
    c=$(sql "$T/r.db" 'SELECT count(*) FROM events' 2>/dev/null || echo 0)
    [ "${c:-0}" -gt 0 ] && break
    sleep 0.01
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
first=$(sql "$T/r.db" 'SELECT count(*) FROM events')
"$KTRAIL" replay --quiet --db "$T/r.db" "$T/big.log" 2>"$T/out"
check "resume: exit code" 0 $?
check "resume: all events, none twice" $N "$(sql "$T/r.db" 'SELECT count(*) FROM events')"
read_again=$(sed -n 's/^ktrail replay: \([0-9]*\) events read.*/\1/p' "$T/out")
if [ "$first" -lt $N ]; then
    check "resume: second run starts at the checkpoint" "$((N - first))" "$read_again"
else
    echo "note: first run finished before it was killed; resume not exercised"
fi

# Follow a live log through rotation.
"$GEN_AUDIT" --seed 9 --events 500 -o "$T/src.log"
sed -n '1,100p' "$T/src.log" >"$T/audit.log"
"$KTRAIL" replay --quiet --follow --db "$T/f.db" "$T/audit.log" 2>"$T/follow.err" &
pid=$!
wait_count "$T/f.db" 100; check "follow: initial content" 0 $?
sed -n '101,200p' "$T/src.log" >>"$T/audit.log"
wait_count "$T/f.db" 200; check "follow: appended lines" 0 $?
# rename rotation: the writer finishes the old file, then a new one appears
mv "$T/audit.log" "$T/audit-2024-05-01T00-00-00.000.log"
sed -n '201,250p' "$T/src.log" >>"$T/audit-2024-05-01T00-00-00.000.log"
sleep 0.6
sed -n '251,350p' "$T/src.log" >"$T/audit.log"
wait_count "$T/f.db" 350; check "follow: rename rotation, old file finished" 0 $?
# copytruncate: the file is copied away and truncated in place
cp "$T/audit.log" "$T/audit.log.1"
: >"$T/audit.log"
sleep 0.6
sed -n '351,450p' "$T/src.log" >>"$T/audit.log"
wait_count "$T/f.db" 450; check "follow: copytruncate" 0 $?
kill -TERM $pid
wait $pid
check "follow: SIGTERM exits 0" 0 $?
check "follow: nothing twice" 450 "$(sql "$T/f.db" 'SELECT count(*) FROM (SELECT DISTINCT audit_id, stage FROM events)')"
[ "$fail" -eq 0 ] || cat "$T/follow.err" >&2

# copytruncate followed at once by more than was read: the size never falls below what was
# read, only the first bytes tell; all of the new content is read, from its start.
"$GEN_AUDIT" --seed 21 --events 500 -o "$T/ct-src.log"
sed -n '1,200p' "$T/ct-src.log" >"$T/ct.log"
"$KTRAIL" replay --quiet --follow --db "$T/ct.db" "$T/ct.log" 2>"$T/ct.err" &
pid=$!
wait_count "$T/ct.db" 200; check "copytruncate+write: initial content" 0 $?
cp "$T/ct.log" "$T/ct.log.1"
: >"$T/ct.log"
sed -n '201,500p' "$T/ct-src.log" >>"$T/ct.log"
check "copytruncate+write: more written than was read" 1 "$([ "$(wc -c <"$T/ct.log")" -gt "$(wc -c <"$T/ct.log.1")" ] && echo 1)"
wait_count "$T/ct.db" 500; check "copytruncate+write: all 300 new events stored" 0 $?
kill -TERM $pid
wait $pid
check "copytruncate+write: no rejects" 0 "$(sql "$T/ct.db" 'SELECT count(*) FROM rejects')"

# A follow stopped inside a value resumes at the value's start: an oversized value is one
# reject and the Event inside it is never stored; reject lines go on from the checkpoint.
"$GEN_AUDIT" --seed 22 --events 20 -o "$T/rs-src.log"
forged=$(head -n 1 "$T/ct-src.log")
forged_id=$(printf '%s' "$forged" | sed 's/.*"auditID":"\([^"]*\)".*/\1/')
{
    sed -n '1,10p' "$T/rs-src.log"
    printf '{"pad":"%s' "$(head -c 100000 /dev/zero | tr '\0' y)"
} >"$T/rs.log"
"$KTRAIL" replay --quiet --follow --max-event-size 64K --db "$T/rs.db" "$T/rs.log" 2>"$T/rs.err" &
pid=$!
wait_count "$T/rs.db" 10; check "stopped inside a value: first events" 0 $?
sleep 0.5 # let it read into the value
kill -TERM $pid
wait $pid
{
    printf '","inner":%s,"pad2":"z"}\n' "$forged"
    echo 'not json'
    sed -n '11,20p' "$T/rs-src.log"
} >>"$T/rs.log"
"$KTRAIL" replay --quiet --max-event-size 64K --db "$T/rs.db" "$T/rs.log" 2>/dev/null
check "resumed inside a value: the rest stored" 20 "$(sql "$T/rs.db" 'SELECT count(*) FROM events')"
check "resumed inside a value: nothing inside it stored" 0 "$(sql "$T/rs.db" "SELECT count(*) FROM events WHERE audit_id = '$forged_id'")"
check "resumed inside a value: rejects on their own lines" "11 event larger than --max-event-size|12 not JSON: text outside any JSON value" \
    "$(sql "$T/rs.db" "SELECT line || ' ' || reason FROM rejects ORDER BY line" | paste -sd '|')"

finish
