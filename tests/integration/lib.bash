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
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
