# Integration: `ktrail consume` against a 3-broker mock cluster (tests/tools/kafka_mock.c),
# fed by kcat as an outside producer. One consumer stores exactly N; message shapes and
# malformed messages from kcat; alerts produced to a topic; a broker down and up; three
# consumers in one group, each its own database (shard), store N in total with none twice
# (checked with ATTACH); a consumer killed with SIGKILL and restarted ends with exactly N; and
# clear errors for bad options and unreachable brokers.
. "$(dirname "$0")/lib.bash"
: "${KAFKA_MOCK:?set by ctest}"
command -v kcat >/dev/null || {
    echo "SKIP: kcat is not installed (scripts/deps installs it)"
    exit 77
}

pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    exec 3>&- # the mock cluster ends when its stdin closes
    [ -n "${MOCK:-}" ] && wait "$MOCK" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

# The cluster: a topic per scenario (6 partitions each); commands on fd 3.
kafka_mock audit shapes alerts three killed
check "mock cluster prints its bootstrap address" 1 "$(grep -c '^127.0.0.1:[0-9]*,127.0.0.1:[0-9]*,127.0.0.1:[0-9]*$' "$T/boot")"

# produce FILE [TOPIC]: one message per line, keyed by line number (spread over partitions).
produce() {
    awk '{ print NR "\t" $0 }' "$1" | kcat -P -b "$B" -t "${2:-audit}" -K $'\t' -z none
}
# total DB...: events in all the databases together.
total() {
    local n=0 db
    for db in "$@"; do
        n=$((n + $(sql "$db" 'SELECT count(*) FROM events' 2>/dev/null || echo 0)))
    done
    echo $n
}
# wait_total WANT DB...: poll until the databases hold WANT events (60 s at most).
wait_total() {
    local want=$1
    shift
    for _ in $(seq 600); do
        [ "$(total "$@")" -ge "$want" ] && return 0
        sleep 0.1
    done
    echo "timeout: $(total "$@") of $want events stored in $*" >&2
    return 1
}
# consume LOG ARGS...: start ktrail consume in the background; its pid is in $pid.
consume() {
    local log=$1
    shift
    "$KTRAIL" consume --brokers "$B" --quiet "${FAST[@]}" "$@" 2>"$log" &
    pid=$!
    pids+=("$pid")
}
# assigned LOG...: wait until each consumer logged an assignment of at least one partition.
assigned() {
    local log
    for _ in $(seq 300); do
        local all=1
        for log in "$@"; do
            grep -q 'assigned [1-9]' "$log" 2>/dev/null || all=0
        done
        [ $all -eq 1 ] && return 0
        sleep 0.1
    done
    return 1
}
stop() { # stop PID: SIGTERM, and its exit code
    kill -TERM "$1"
    wait "$1"
}

N=3000
"$GEN_AUDIT" --seed 21 --events $N --format lines -o "$T/a.log"
produce "$T/a.log"

# ---- message shapes from an outside producer, on topic shapes, partition 0 ----
"$GEN_AUDIT" --seed 20 --events 6 --format lines -o "$T/s.log"
esc() { sed 's/\\/\\\\/g; s/"/\\"/g'; } # a line as a JSON string's body
{
    sed -n 1p "$T/s.log"                                                       # offset 0: bare
    printf '{"log":"%s\\n","stream":"stdout"}\n' "$(sed -n 2p "$T/s.log" | esc)" # 1: Fluent Bit
    printf '{"message":"%s","source_type":"file"}\n' "$(sed -n 3p "$T/s.log" | esc)" # 2: Vector
    printf '{"records":[{"category":"kube-audit","properties":{"log":%s}}]}\n' "$(sed -n 4p "$T/s.log")"
    echo 'not json at all'                                                     # 4: reject
    echo '{"log":"I0501 12:00:00 plain text"}'                                 # 5: reject
    printf '[%s,%s]\n' "$(sed -n 5p "$T/s.log")" "$(sed -n 6p "$T/s.log")"   # 6: array
} | kcat -P -b "$B" -t shapes -p 0 -z none

# ---- one consumer: exactly N, both topics, alerts to a topic ----
consume "$T/one.err" --topic audit --topic shapes --group g-one --db "$T/one.db" \
    --cluster prod-eu --alerts-topic alerts --alerts none
one=$pid
wait_total $((N + 6)) "$T/one.db"
stop $one
check "one consumer: exit 0 on SIGTERM" 0 $?
check "one consumer: all events" $((N + 6)) "$(total "$T/one.db")"
check "one consumer: none twice" 0 "$(sql "$T/one.db" 'SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT audit_id, stage FROM events)) FROM events')"
check "one consumer: every audit message stored once" $N "$(sql "$T/one.db" "SELECT count(*) FROM v_events WHERE origin LIKE 'kafka:audit/%'")"
check "one consumer: offsets checkpointed per partition" "6 $N" "$(sql "$T/one.db" "SELECT count(*), sum(next_offset) FROM ckpt_kafka WHERE topic = 'audit'" | tr '|' ' ')"
check "one consumer: summary line" 1 "$(grep -c "ktrail consume: $((N + 7)) messages, $((N + 8)) events read, $((N + 6)) stored, 0 duplicates skipped, 2 rejected" "$T/one.err")"
check "one consumer: cluster tag" $((N + 6)) "$(sql "$T/one.db" "SELECT count(*) FROM v_events WHERE cluster = 'prod-eu'")"
check "shapes: each wrapped event, at its offset" "0 1 2 3 6 6" "$(sql "$T/one.db" "SELECT offset FROM v_events WHERE origin = 'kafka:shapes/0' ORDER BY offset" | tr '\n' ' ' | sed 's/ $//')"
check "shapes: rejects with origin and offset" "kafka:shapes/0|4|not JSON: text outside any JSON value
kafka:shapes/0|5|not JSON: text outside any JSON value" "$(sql "$T/one.db" 'SELECT origin, offset, reason FROM rejects ORDER BY offset')"
alerts=$(sql "$T/one.db" 'SELECT count(*) FROM alerts')
check "alerts: some" 1 "$([ "$alerts" -gt 0 ] && echo 1)"
check "alerts: each produced to the topic" "$alerts" "$(kcat -C -b "$B" -t alerts -o beginning -e -q 2>/dev/null | grep -c '"rule":')"
check "alerts: keyed by cluster" "$alerts" "$(kcat -C -b "$B" -t alerts -o beginning -e -q -f '%k\n' 2>/dev/null | grep -c '^prod-eu$')"
check "alerts: summary" 1 "$(grep -c "$alerts alert(s) sent to alerts, 0 not sent" "$T/one.err")"

# ---- the same consumer again, while a broker goes down and comes back: nothing lost ----
"$GEN_AUDIT" --seed 22 --events $N --format lines -o "$T/b.log"
consume "$T/down.err" --topic audit --group g-one --db "$T/one.db" --alerts none
down=$pid
assigned "$T/down.err"
echo "down 2" >&3
produce "$T/b.log" &
sleep 1.5
echo "up 2" >&3
wait $!
wait_total $((2 * N + 6)) "$T/one.db"
stop $down
check "broker down and up: exit 0" 0 $?
check "broker down and up: every event once" $((2 * N + 6)) "$(sql "$T/one.db" 'SELECT count(*) FROM (SELECT DISTINCT audit_id, stage FROM events)')"
check "broker down and up: nothing read twice" 1 "$(grep -c ' 0 duplicates skipped' "$T/down.err")"

# ---- three consumers in one group, each its own shard: N in total, none in two ----
"$GEN_AUDIT" --seed 23 --events $N --format lines -o "$T/c.log"
for i in 1 2 3; do
    consume "$T/s$i.err" --topic three --group g-three --db "$T/s$i.db" --alerts none
    s[$i]=$pid
done
assigned "$T/s1.err" "$T/s2.err" "$T/s3.err"
check "three consumers: each assigned partitions" 0 $?
produce "$T/c.log" three
wait_total $N "$T/s1.db" "$T/s2.db" "$T/s3.db"
for i in 1 2 3; do
    stop ${s[$i]}
    check "three consumers: consumer $i exit 0" 0 $?
done
check "three consumers: N in total" $N "$(total "$T/s1.db" "$T/s2.db" "$T/s3.db")"
attach="ATTACH '$T/s2.db' AS s2; ATTACH '$T/s3.db' AS s3;"
# through the views: each shard has its own string dictionary, so raw stage ids differ between
# shards (comparing them counted two stages of one request in two shards as one event twice)
all="SELECT audit_id, stage FROM main.v_events UNION ALL SELECT audit_id, stage FROM s2.v_events UNION ALL SELECT audit_id, stage FROM s3.v_events"
check "three consumers: no event in two shards" 0 "$(sql "$T/s1.db" "$attach SELECT count(*) FROM (SELECT 1 FROM ($all) GROUP BY audit_id, stage HAVING count(*) > 1)")"
check "three consumers: every shard has some" 3 "$(for i in 1 2 3; do [ "$(total "$T/s$i.db")" -gt 0 ] && echo x; done | wc -l)"

# ---- SIGKILL mid-stream, restart: exactly N, nothing twice ----
# librdkafka's mock brokers keep about 5 MB per partition and drop the oldest messages past
# that (as retention would): 12,000 events (about 3 MB a partition) stay whole, checked first.
K=12000
"$GEN_AUDIT" --seed 24 --events $K --format lines -o "$T/k.log"
produce "$T/k.log" killed
check "killed: the topic holds every message" $K "$(kcat -C -b "$B" -t killed -o beginning -e -q -f '%o\n' 2>/dev/null | wc -l)"
consume "$T/k1.err" --topic killed --group g-kill --db "$T/k.db" --alerts none
k1=$pid
for _ in $(seq 600); do
    [ "$(total "$T/k.db")" -ge 2000 ] && break
    sleep 0.02
done
kill -KILL $k1
wait $k1 2>/dev/null
killed_at=$(total "$T/k.db")
check "killed mid-stream" 1 "$([ "$killed_at" -ge 2000 ] && [ "$killed_at" -lt $K ] && echo 1)"
# The restart runs with ktrail's own group settings (not FAST): the dead member holds its
# partitions until its session expires, which librdkafka's default made take over 90 s.
t0=$(date +%s%N)
"$KTRAIL" consume --brokers "$B" --quiet --topic killed --group g-kill --db "$T/k.db" --alerts none 2>"$T/k2.err" &
k2=$!
pids+=("$k2")
assigned "$T/k2.err"
waited=$((($(date +%s%N) - t0) / 1000000))
echo "restart after SIGKILL: partitions back after $waited ms"
check "restart after SIGKILL: partitions back within 30 s (session 10 s)" 1 "$([ "$waited" -lt 30000 ] && echo 1)"
wait_total $K "$T/k.db"
stop $k2
check "restart after SIGKILL: exit 0" 0 $?
check "restart after SIGKILL: exactly K" $K "$(total "$T/k.db")"
check "restart after SIGKILL: the rest read once" 1 "$(grep -c "$((K - killed_at)) stored, 0 duplicates skipped" "$T/k2.err")"

# ---- errors ----
"$KTRAIL" consume --brokers "$B" --topic audit --db "$T/x.db" 2>"$T/err"
check "no --group: usage error" 2 $?
check "no --group: says so" 1 "$(grep -c 'consume needs --group G' "$T/err")"
"$KTRAIL" consume --brokers "$B" --topic audit --group g --db "$T/x.db" -X no.such=1 2>"$T/err"
check "bad -X: usage error" 2 $?
check "bad -X: names it" 1 "$(grep -c '^ktrail: -X no.such=1: No such configuration property' "$T/err")"
"$KTRAIL" consume --brokers 127.0.0.1:1 --topic audit --group g --db "$T/x.db" 2>"$T/err"
check "unreachable brokers: runtime error" 1 $?
check "unreachable brokers: one clear line" 1 "$(grep -c '^ktrail: cannot reach the Kafka brokers 127.0.0.1:1' "$T/err")"

finish
