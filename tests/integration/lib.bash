# Shared helpers for integration tests: sourced, not run. Each test script runs the real
# ktrail binary ($KTRAIL) on generated input ($GEN_AUDIT) and asserts on database rows.
set -uo pipefail
: "${KTRAIL:?set by ctest}" "${GEN_AUDIT:?set by ctest}" "${FIXTURES:?set by ctest}"
T=$(mktemp -d /tmp/ktrail-it.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0

check() { # check NAME EXPECTED ACTUAL
    if [ "$2" == "$3" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $1: expected [$2], got [$3]" >&2
    fi
}
sql() { sqlite3 -batch -noheader "$1" "$2"; }
# kafka_mock TOPIC...: start librdkafka's mock cluster (tests/tools/kafka_mock.c, 3 brokers)
# with these topics, its commands on fd 3 (it stops when fd 3 closes); sets $MOCK (its pid)
# and $B (its bootstrap servers). Fails when it printed no address.
kafka_mock() {
    mkfifo "$T/ctl"
    "$KAFKA_MOCK" "$@" <"$T/ctl" >"$T/boot" 2>"$T/mock.err" &
    MOCK=$!
    exec 3>"$T/ctl"
    for _ in $(seq 100); do
        [ -s "$T/boot" ] && break
        sleep 0.05
    done
    B=$(head -n 1 "$T/boot")
    [ -n "$B" ]
}
# Consumer group settings that let the mock cluster's groups settle fast.
FAST=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)

# start_serve LOG ARGS...: `ktrail serve --listen 127.0.0.1:0 --alerts none ARGS` in the
# background, stderr to LOG; sets $pid and $URL (the audit URL it logged). Fails when it
# exited or logged no URL.
start_serve() {
    local log=$1
    shift
    "$KTRAIL" serve --listen 127.0.0.1:0 --alerts none "$@" 2>"$log" &
    pid=$!
    URL=
    for _ in $(seq 200); do
        URL=$(grep -o 'listening on [^ ]*' "$log" 2>/dev/null | cut -d' ' -f3)
        [ -n "$URL" ] && return 0
        kill -0 $pid 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
