# Integration: `ktrail report` writes one self-contained HTML file (no script, nothing from
# the network), and a real browser renders it: headless Chromium (Debian's chromium, which
# scripts/deps installs) takes a screenshot, in light and in dark mode, prints it to PDF, and
# the page's text holds the figures the database gives.
. "$(dirname "$0")/lib.bash"
db=$T/s.db
"$KTRAIL" replay --quiet --alerts none --db "$db" "$FIXTURES/sample-audit.log" 2>/dev/null
"$KTRAIL" report --db "$db" -o "$T/report.html" 2>"$T/report.err"
check "report: exit 0" 0 $?
check "report: it says where" 1 "$(grep -c "ktrail report: $T/report.html (" "$T/report.err")"
check "self-contained: no script" 0 "$(grep -ci '<script' "$T/report.html")"
check "self-contained: nothing fetched" 0 "$(grep -Eci '(src|href)="(https?:)?//|@import|url\(' "$T/report.html")"
check "charts are inline SVG" 1 "$([ "$(grep -c '<svg class="chart"' "$T/report.html")" -ge 3 ] && echo 1)"
check "a dark scheme" 1 "$(grep -c 'prefers-color-scheme:dark' "$T/report.html")"
check "a print stylesheet" 1 "$(grep -c '@media print' "$T/report.html")"
serious=$(sql "$db" "SELECT min(count(*), 200) FROM alerts WHERE priority <= 4")
check "every Critical and Warning alert has its article" "$serious" "$(grep -c '<article class="alert' "$T/report.html")"
"$KTRAIL" report --db "$db" --since 2030-01-01 --until 2030-01-02 -o "$T/empty.html" 2>/dev/null
check "an empty period: a report that says so" 1 "$([ "$(grep -c 'None in this period' "$T/empty.html")" -ge 5 ] && echo 1)"
"$KTRAIL" report --db "$T/none.db" -o "$T/x.html" 2>/dev/null
check "no such database: exit 1" 1 $?
"$KTRAIL" report --db "$db" 2>/dev/null
check "no -o: usage error" 2 $?

chrome=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chrome" ]; then
    echo "SKIP: the browser checks: Chromium is not installed and could not be (scripts/deps installs the chromium package)"
    finish
    exit $?
fi
browse() { # browse ARGS...: headless Chromium on the report, quietly
    timeout 120 "$chrome" --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
        --user-data-dir="$T/chrome" --window-size=1200,3000 "$@" "file://$T/report.html" 2>/dev/null
}
browse --screenshot="$T/light.png" >/dev/null
check "browser: a screenshot" 1 "$([ -s "$T/light.png" ] && [ "$(head -c 4 "$T/light.png" | od -An -c | tr -d ' ')" = "211PNG" ] && echo 1)"
browse --force-dark-mode --blink-settings=preferredColorScheme=0 --screenshot="$T/dark.png" >/dev/null
check "browser: dark mode renders differently" 1 "$([ -s "$T/dark.png" ] && ! cmp -s "$T/light.png" "$T/dark.png" && echo 1)"
browse --print-to-pdf="$T/report.pdf" >/dev/null
check "browser: it prints" "%PDF" "$(head -c 4 "$T/report.pdf" 2>/dev/null)"
browse --dump-dom >"$T/dom.html"
check "page: the events" "$(sql "$db" "SELECT count(*) FROM events")" "$(grep -o 'id="n-0">[0-9]*' "$T/dom.html" | cut -d'>' -f2)"
check "page: the alerts" "$(sql "$db" "SELECT count(*) FROM alerts")" "$(grep -o 'id="n-2">[0-9]*' "$T/dom.html" | cut -d'>' -f2)"
check "page: the critical alerts" "$(sql "$db" "SELECT count(*) FROM alerts WHERE priority <= 2")" "$(grep -o 'id="n-3">[0-9]*' "$T/dom.html" | cut -d'>' -f2)"
top=$(sql "$db" "SELECT rule FROM alerts GROUP BY rule ORDER BY count(*) DESC, rule LIMIT 1")
check "page: the rule that fired most, with its count" 1 "$(grep -c ">$top</text><rect [^>]*></rect><text [^>]*>$(sql "$db" "SELECT count(*) FROM alerts WHERE rule = '$top'")<" "$T/dom.html")"
check "page: every section" 7 "$(grep -o '<details open="" id="[a-z]*"' "$T/dom.html" | wc -l)"
echo "screenshots: $T/light.png $T/dark.png (removed with the test directory)"
finish
