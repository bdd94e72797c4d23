# Integration: ktrail replay on every input shape, dedupe, resume, rejects and errors.
. "$(dirname "$0")/lib.bash"

N=3000
"$GEN_AUDIT" --seed 11 --events $N --format lines -o "$T/a.log"
lines=$(wc -l <"$T/a.log")
check "generator wrote one event per line" "$N" "$lines"

# JSON lines
"$KTRAIL" replay --quiet --db "$T/lines.db" "$T/a.log" 2>"$T/out"
check "exit code, clean replay" 0 $?
check "every event stored" "$N" "$(sql "$T/lines.db" 'SELECT count(*) FROM events')"
check "summary names counts" 1 "$(grep -c "$N events read, $N stored, 0 duplicates skipped, 0 rejected," "$T/out")"
check "audit ids unique per stage" 0 "$(sql "$T/lines.db" 'SELECT count(*) FROM (SELECT audit_id, stage FROM events GROUP BY 1,2 HAVING count(*) > 1)')"

# The same events in every other shape give identical rows.
digest() { sql "$1" "SELECT audit_id, stage, time, level, verb, user, groups, imp_user, source_ips,
    user_agent, resource, subresource, namespace, name, api_group, code, decision, request_uri
    FROM v_events ORDER BY audit_id, stage" | md5sum | cut -c1-32; }
want=$(digest "$T/lines.db")
for fmt in pretty eventlist array; do
    "$GEN_AUDIT" --seed 11 --events $N --format $fmt -o "$T/a.$fmt"
    "$KTRAIL" replay --quiet --db "$T/$fmt.db" "$T/a.$fmt" 2>/dev/null
    check "$fmt: exit code" 0 $?
    check "$fmt: same rows as JSON lines" "$want" "$(digest "$T/$fmt.db")"
done

# gzip (kube-apiserver --audit-log-compress) and stdin
gzip -c "$T/a.log" >"$T/a.log.gz"
"$KTRAIL" replay --quiet --db "$T/gz.db" "$T/a.log.gz" 2>/dev/null
check "gz: same rows" "$want" "$(digest "$T/gz.db")"
"$KTRAIL" replay --quiet --db "$T/stdin.db" - <"$T/a.log" 2>/dev/null
check "stdin: same rows" "$want" "$(digest "$T/stdin.db")"

# Re-running stores nothing twice: checkpoints skip the file, --no-resume meets the UNIQUE key.
"$KTRAIL" replay --quiet --db "$T/lines.db" "$T/a.log" 2>"$T/out"
check "rerun: skipped" 1 "$(grep -c '1 file skipped, already replayed' "$T/out")"
"$KTRAIL" replay --quiet --no-resume --db "$T/lines.db" "$T/a.log" 2>"$T/out"
check "no-resume: all duplicates" 1 "$(grep -c "0 stored, $N duplicates skipped" "$T/out")"
check "rerun: count unchanged" "$N" "$(sql "$T/lines.db" 'SELECT count(*) FROM events')"

# A directory of rotated files, replayed oldest first (the active file last).
mkdir "$T/dir"
split -n l/3 -d "$T/a.log" "$T/part"
mv "$T/part02" "$T/dir/audit.log"
mv "$T/part00" "$T/dir/audit-2024-05-01T00-10-00.000.log"
gzip -c "$T/part01" >"$T/dir/audit-2024-05-01T00-20-00.000.log.gz" && rm "$T/part01"
touch -d '2020-01-01' "$T/dir/audit.log" # mtime must not win over the name's timestamp
"$KTRAIL" replay --quiet --db "$T/dir.db" "$T/dir" 2>/dev/null
check "dir: exit code" 0 $?
check "dir: same rows" "$want" "$(digest "$T/dir.db")"
check "dir: read in time order (offsets by origin order follow ids)" \
    "audit-2024-05-01T00-10-00.000.log audit-2024-05-01T00-20-00.000.log.gz audit.log" \
    "$(sql "$T/dir.db" "SELECT replace(o, '$T/dir/', '') FROM (SELECT origin AS o, min(id) AS m FROM v_events GROUP BY origin ORDER BY m)" | tr '\n' ' ' | sed 's/ $//')"

# Bad input: clear reasons, positions, and everything around it stored.
{
    head -n 10 "$T/a.log"
    echo 'this is not json'
    head -n 11 "$T/a.log" | tail -n 1 | cut -c1-200
    echo '{"hello":"world"}'
    sed -n '12,20p' "$T/a.log" | sed 's/"stageTimestamp":"[^"]*"/"stageTimestamp":"yesterday"/' | head -n 1
    sed -n '13,20p' "$T/a.log"
} >"$T/bad.log"
"$KTRAIL" replay --quiet --db "$T/bad.db" "$T/bad.log" 2>"$T/out"
check "bad input is not fatal" 0 $?
check "good events around bad ones stored" 18 "$(sql "$T/bad.db" 'SELECT count(*) FROM events')"
check "four rejects" 4 "$(sql "$T/bad.db" 'SELECT count(*) FROM rejects')"
check "reject lines" "11 12 13 14" "$(sql "$T/bad.db" 'SELECT line FROM rejects ORDER BY line' | tr '\n' ' ' | sed 's/ $//')"
check "reject offset is the byte offset" "$(head -n 10 "$T/a.log" | wc -c)" "$(sql "$T/bad.db" 'SELECT offset FROM rejects WHERE line = 11')"
check "reject keeps text" "this is not json" "$(sql "$T/bad.db" 'SELECT text FROM rejects WHERE line = 11')"
check "not-an-event reason" 1 "$(sql "$T/bad.db" "SELECT count(*) FROM rejects WHERE line = 13 AND reason LIKE '%audit%event%'")"
check "timestamp reason" 1 "$(sql "$T/bad.db" "SELECT count(*) FROM rejects WHERE line = 14 AND reason LIKE '%stageTimestamp%'")"

# Oversized events are rejected, the rest stored.
"$KTRAIL" replay --quiet --max-event-size 4K --db "$T/big.db" "$T/a.log" 2>/dev/null
big=$(awk 'length($0) > 4096' "$T/a.log" | wc -l)
check "oversized: rejected count" "$big" "$(sql "$T/big.db" "SELECT count(*) FROM rejects WHERE reason LIKE '%max-event-size%'")"
check "oversized: others stored" "$((N - big))" "$(sql "$T/big.db" 'SELECT count(*) FROM events')"

# One broken value loses nothing after it: a pretty Event cut mid-way among pretty Events,
# and a JSON line cut short after another value on its line.
"$GEN_AUDIT" --seed 12 --events 50 --format pretty -o "$T/p.json"
awk '/^\{/ { n++ } n == 2 && ++cut > 6 { next } { print }' "$T/p.json" >"$T/cut-pretty.json"
"$KTRAIL" replay --quiet --db "$T/cutp.db" "$T/cut-pretty.json" 2>/dev/null
check "cut pretty Event: the 48 after it stored" 49 "$(sql "$T/cutp.db" 'SELECT count(*) FROM events')"
check "cut pretty Event: one reject, where it began" \
    "$(awk '/^\{/ { n++ } n == 2 { print NR; exit }' "$T/p.json")" \
    "$(sql "$T/cutp.db" 'SELECT group_concat(line) FROM rejects')"
{
    printf '%s %s\n' "$(head -n 1 "$T/a.log")" "$(sed -n 2p "$T/a.log" | sed 's/"verb".*//')"
    sed -n '3,50p' "$T/a.log"
} >"$T/cut-line.log"
"$KTRAIL" replay --quiet --db "$T/cutl.db" "$T/cut-line.log" 2>/dev/null
check "value cut on another's line: the 48 after it stored" 49 "$(sql "$T/cutl.db" 'SELECT count(*) FROM events')"
check "value cut on another's line: one reject, line 1" "1|1" "$(sql "$T/cutl.db" 'SELECT count(*), line FROM rejects')"

# --max-event-size is exact, and an oversized value across a 1 MiB read boundary is one
# reject: the Event inside it is never stored.
ev='{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"AID","stage":"ResponseComplete","verb":"get","user":{"username":"alice"},"sourceIPs":["10.0.0.3"],"userAgent":"PAD","requestReceivedTimestamp":"2024-05-01T10:00:01.000000Z","stageTimestamp":"2024-05-01T10:00:01.100000Z"}'
sized() { # sized AUDITID BYTES: the Event above, padded to exactly BYTES
    local e=${ev/AID/$1}
    local pad=$(($2 - ${#e} + 3))
    printf '%s\n' "${e/PAD/$(head -c "$pad" /dev/zero | tr '\0' x)}"
}
{ sized fits 2048; sized over 2049; } >"$T/sized.log"
check "sized events are the sizes meant" "2049 2050" "$(awk '{ printf "%d ", length($0) + 1 }' "$T/sized.log" | sed 's/ $//')"
"$KTRAIL" replay --quiet --max-event-size 2048 --db "$T/sized.db" "$T/sized.log" 2>/dev/null
check "max-event-size 2048: 2048 bytes stored" "fits" "$(sql "$T/sized.db" 'SELECT group_concat(audit_id) FROM events')"
check "max-event-size 2048: 2049 bytes rejected" 1 "$(sql "$T/sized.db" "SELECT count(*) FROM rejects WHERE reason LIKE '%max-event-size%'")"
awk 'total < 1000000 { total += length($0) + 1; print }' "$T/a.log" >"$T/straddle.log"
before=$(wc -l <"$T/straddle.log")
{
    printf '{"pad":"%s","inner":' "$(head -c 100000 /dev/zero | tr '\0' y)"
    sized forged 600 | tr -d '\n'
    printf ',"pad2":"%s"}\n' "$(head -c 100000 /dev/zero | tr '\0' z)"
    sed -n "$((before + 1)),\$p" "$T/a.log"
} >>"$T/straddle.log"
"$KTRAIL" replay --quiet --max-event-size 64K --db "$T/straddle.db" "$T/straddle.log" 2>/dev/null
check "oversized across a read boundary: one reject" 1 "$(sql "$T/straddle.db" "SELECT count(*) FROM rejects WHERE reason LIKE '%max-event-size%' AND line = $((before + 1))")"
check "oversized across a read boundary: nothing inside it stored" 0 "$(sql "$T/straddle.db" "SELECT count(*) FROM events WHERE audit_id = 'forged'")"
check "oversized across a read boundary: all around it stored" \
    "$(awk 'length($0) <= 65536' "$T/a.log" | wc -l)" "$(sql "$T/straddle.db" 'SELECT count(*) FROM events')"

# Missing files and corrupt gzip: a one-line error, exit 1, what was readable is stored.
"$KTRAIL" replay --quiet --db "$T/miss.db" "$T/nope.log" "$T/a.log" 2>"$T/out"
check "missing file: exit 1" 1 $?
check "missing file: error names it" 1 "$(grep -c "nope.log" "$T/out")"
check "missing file: other file stored" "$N" "$(sql "$T/miss.db" 'SELECT count(*) FROM events')"
head -c 200000 "$T/a.log.gz" >"$T/cut.log.gz"
printf 'garbage' >>"$T/cut.log.gz"
"$KTRAIL" replay --quiet --db "$T/cut.db" "$T/cut.log.gz" 2>"$T/out"
check "corrupt gz: exit 1" 1 $?
check "corrupt gz: one error line" 1 "$(grep -c "cut.log.gz" "$T/out")"
stored=$(sql "$T/cut.db" 'SELECT count(*) FROM events')
check "corrupt gz: events before the damage stored" 1 "$([ "$stored" -gt 100 ] && [ "$stored" -lt $N ] && echo 1 || echo 0)"

# Usage errors
"$KTRAIL" replay --db "$T/x.db" 2>/dev/null
check "no path: exit 2" 2 $?
"$KTRAIL" replay --keep-raw sometimes --db "$T/x.db" "$T/a.log" 2>/dev/null
check "bad option value: exit 2" 2 $?

# --keep-raw all keeps the JSON of every event, verbatim.
"$KTRAIL" replay --quiet --keep-raw all --db "$T/raw.db" "$T/a.log" 2>/dev/null
check "keep-raw all" "$N" "$(sql "$T/raw.db" 'SELECT count(*) FROM raw')"
check "raw is the line" "$(head -n 1 "$T/a.log")" "$(sql "$T/raw.db" 'SELECT raw FROM v_events ORDER BY id LIMIT 1')"
check "raw is compressed in blocks" 0 "$(sql "$T/raw.db" "SELECT count(*) FROM raw WHERE json <> '' OR block IS NULL")"

# A pod created with generateName is stored under the name the apiserver gave it.
cat >"$T/gen.log" <<'JSON'
{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"gen-1","stage":"ResponseComplete","verb":"create","user":{"username":"system:serviceaccount:kube-system:replicaset-controller"},"sourceIPs":["10.0.0.2"],"objectRef":{"resource":"pods","namespace":"web","apiVersion":"v1"},"responseStatus":{"code":201},"requestObject":{"kind":"Pod","metadata":{"generateName":"web-7d4b9c-"}},"responseObject":{"kind":"Pod","metadata":{"name":"web-7d4b9c-x2x9z","generateName":"web-7d4b9c-"}},"requestReceivedTimestamp":"2024-05-01T10:00:00.000000Z","stageTimestamp":"2024-05-01T10:00:00.100000Z"}
{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"gen-2","stage":"ResponseComplete","verb":"create","user":{"username":"alice"},"sourceIPs":["10.0.0.3"],"objectRef":{"resource":"pods","namespace":"web","apiVersion":"v1"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2024-05-01T10:00:01.000000Z","stageTimestamp":"2024-05-01T10:00:01.100000Z"}
JSON
"$KTRAIL" replay --quiet --db "$T/gen.db" "$T/gen.log" 2>/dev/null
check "created pod: assigned name stored" "web-7d4b9c-x2x9z" \
    "$(sql "$T/gen.db" "SELECT name FROM v_events WHERE audit_id = 'gen-1'")"
check "created pod without a body: no name" 1 \
    "$(sql "$T/gen.db" "SELECT name IS NULL OR name = '' FROM v_events WHERE audit_id = 'gen-2'")"

finish
