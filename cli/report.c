/*
 * report.c: `ktrail report`, one self-contained HTML file about a period: no script, no
 * network, no font; charts are inline SVG drawn here. Sections are <details> (keyboard and
 * print friendly), colours follow prefers-color-scheme, and every figure is also text.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "query.h"

enum { BUCKETS = 48, TOP = 15, EXCERPT = 10 };

struct rep {
    FILE *out;
    struct kt_query *q;
    int64_t since, until; /* the period, microseconds */
    int failed;
};

/* ---- HTML text ---- */

static void esc(FILE *o, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", o);
            break;
        case '>':
            fputs("&gt;", o);
            break;
        case '&':
            fputs("&amp;", o);
            break;
        case '"':
            fputs("&quot;", o);
            break;
        default:
            fputc(*s, o);
        }
    }
}

static const char *nz(const char *s)
{
    return s != NULL ? s : "-";
}

/* ---- rows ---- */

struct table {
    size_t ncols, nrows, cap;
    char **cells;
};

static int keep(void *ctx, size_t n, const char *const *names, const char *const *v)
{
    struct table *t = ctx;
    (void)names;
    t->ncols = n;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        char **c = realloc(t->cells, cap * n * sizeof(*c));
        if (c == NULL) {
            return 1;
        }
        t->cells = c;
        t->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        t->cells[t->nrows * n + i] = v[i] != NULL ? strdup(v[i]) : NULL;
    }
    t->nrows++;
    return 0;
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

static const char *at(const struct table *t, size_t r, size_t c)
{
    return r < t->nrows && c < t->ncols ? t->cells[r * t->ncols + c] : NULL;
}

/* Rows of sql with the period bound as ?1 and ?2 (and extra as ?3). */
static void fetch(struct rep *r, struct table *t, const char *sql, int64_t extra)
{
    int64_t ints[3] = {r->since, r->until, extra};
    memset(t, 0, sizeof(*t));
    if (kt_query_rows(r->q, sql, ints, 3, keep, t) != 0) {
        fprintf(stderr, "ktrail report: %s\n", kt_query_error(r->q));
        r->failed = 1;
    }
}

/* A table of rows: headers given, cells escaped. */
static void html_table(FILE *o, const struct table *t, const char *const *heads, size_t n)
{
    fputs("<table><thead><tr>", o);
    for (size_t c = 0; c < n; c++) {
        fprintf(o, "<th scope=\"col\">%s</th>", heads[c]);
    }
    fputs("</tr></thead><tbody>\n", o);
    for (size_t i = 0; i < t->nrows; i++) {
        fputs("<tr>", o);
        for (size_t c = 0; c < n; c++) {
            fputs("<td>", o);
            esc(o, nz(at(t, i, c)));
            fputs("</td>", o);
        }
        fputs("</tr>\n", o);
    }
    fputs("</tbody></table>\n", o);
    if (t->nrows == 0) {
        fputs("<p class=\"none\">None in this period.</p>\n", o);
    }
}

/* ---- charts ---- */

static const char *const prio_name[8] = {"Emergency", "Alert",  "Critical",      "Error",
                                         "Warning",   "Notice", "Informational", "Debug"};
static const char *const prio_class[8] = {"p0", "p0", "p2", "p3", "p4", "p5", "p6", "p7"};

/* Alerts per time bucket and priority, stacked bars. */
static void chart_timeline(struct rep *r)
{
    FILE *o = r->out;
    struct table t;
    int64_t span = r->until - r->since > 0 ? r->until - r->since : 1;
    fetch(r, &t,
          "SELECT (ts - ?1) * 48 / (?2 - ?1) AS bucket, priority, count(*) FROM alerts"
          " WHERE ts >= ?1 AND ts < ?2 GROUP BY 1, 2 ORDER BY 1, 2",
          0);
    long counts[BUCKETS][8] = {{0}}, most = 1;
    for (size_t i = 0; i < t.nrows; i++) {
        long b = atol(nz(at(&t, i, 0))), p = atol(nz(at(&t, i, 1)));
        if (b >= 0 && b < BUCKETS && p >= 0 && p < 8) {
            counts[b][p] += atol(nz(at(&t, i, 2)));
        }
    }
    for (int b = 0; b < BUCKETS; b++) {
        long sum = 0;
        for (int p = 0; p < 8; p++) {
            sum += counts[b][p];
        }
        most = sum > most ? sum : most;
    }
    const int w = 960, h = 220, bw = w / BUCKETS;
    fprintf(o,
            "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" aria-labelledby=\"tl-title\">"
            "<title id=\"tl-title\">Alerts over the period, by priority, in %d intervals of %.1f"
            " minutes; the busiest holds %ld</title>\n",
            w, h + 20, BUCKETS, (double)span / BUCKETS / 60e6, most);
    for (int b = 0; b < BUCKETS; b++) {
        double y = h;
        for (int p = 7; p >= 0; p--) {
            if (counts[b][p] == 0) {
                continue;
            }
            double bh = (double)counts[b][p] * (h - 10) / (double)most;
            y -= bh;
            fprintf(o,
                    "<rect class=\"%s\" x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\">"
                    "<title>%ld %s</title></rect>\n",
                    prio_class[p], b * bw, y, bw - 2, bh, counts[b][p], prio_name[p]);
        }
    }
    fprintf(o, "<line class=\"axis\" x1=\"0\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", h, w, h);
    for (int k = 0; k <= 2; k++) { /* the start, the middle and the end of the period */
        char when[40];
        kt_format_rfc3339(r->since + span / 2 * k, when);
        fprintf(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"%s\">%.16s</text>\n", w / 2 * k, h + 16,
                k == 0   ? "start"
                : k == 1 ? "middle"
                         : "end",
                when);
    }
    fputs("</svg>\n", o);
    table_free(&t);
}

/* Horizontal bars: label (column 0), count (column 1), class by priority (column 2 or -1). */
static void chart_bars(FILE *o, const struct table *t, const char *title, int prio_col)
{
    long most = 1;
    for (size_t i = 0; i < t->nrows; i++) {
        long v = atol(nz(at(t, i, 1)));
        most = v > most ? v : most;
    }
    const int w = 960, rowh = 22, labelw = 420;
    fprintf(o, "<svg class=\"chart\" viewBox=\"0 0 %d %zu\" role=\"img\"><title>", w,
            t->nrows * rowh + 4);
    esc(o, title);
    fputs("</title>\n", o);
    for (size_t i = 0; i < t->nrows; i++) {
        long v = atol(nz(at(t, i, 1)));
        int p = prio_col >= 0 ? atoi(nz(at(t, i, (size_t)prio_col))) : 5;
        double bw = (double)v * (w - labelw - 80) / (double)most;
        fprintf(o, "<text x=\"%d\" y=\"%zu\" class=\"label\">", labelw - 8, i * rowh + 16);
        esc(o, nz(at(t, i, 0)));
        fprintf(o,
                "</text><rect class=\"%s\" x=\"%d\" y=\"%zu\" width=\"%.1f\" height=\"%d\"/>"
                "<text x=\"%.1f\" y=\"%zu\" class=\"value\">%ld</text>\n",
                prio_class[p < 0 || p > 7 ? 5 : p], labelw, i * rowh + 3, bw > 1 ? bw : 1, rowh - 6,
                labelw + bw + 6, i * rowh + 16, v);
    }
    fputs("</svg>\n", o);
}

/* ---- sections ---- */

static void section(FILE *o, const char *id, const char *title)
{
    fprintf(o, "<details open id=\"%s\"><summary><h2>%s</h2></summary>\n", id, title);
}

static void summary(struct rep *r)
{
    FILE *o = r->out;
    struct table t;
    fetch(r, &t,
          "SELECT (SELECT count(*) FROM events WHERE ts >= ?1 AND ts < ?2),"
          " (SELECT count(DISTINCT user) FROM events WHERE ts >= ?1 AND ts < ?2),"
          " (SELECT count(*) FROM alerts WHERE ts >= ?1 AND ts < ?2),"
          " (SELECT count(*) FROM alerts WHERE ts >= ?1 AND ts < ?2 AND priority <= 2),"
          " (SELECT count(*) FROM alerts WHERE ts >= ?1 AND ts < ?2 AND priority IN (3, 4)),"
          " (SELECT count(*) FROM events WHERE ts >= ?1 AND ts < ?2 AND code IN (401, 403))",
          0);
    static const char *const what[] = {"events",          "identities", "alerts",
                                       "critical alerts", "warnings",   "denied requests"};
    fputs("<ul class=\"figures\">", o);
    for (size_t c = 0; c < 6; c++) {
        fprintf(o, "<li><strong id=\"n-%zu\">%s</strong> %s</li>", c, nz(at(&t, 0, c)), what[c]);
    }
    fputs("</ul>\n", o);
    table_free(&t);
}

static void alerts_by_rule(struct rep *r)
{
    struct table t;
    fetch(r, &t,
          "SELECT rule, count(*) AS n, min(priority) FROM alerts WHERE ts >= ?1 AND ts < ?2"
          " GROUP BY rule ORDER BY n DESC, rule LIMIT 15",
          0);
    section(r->out, "rules", "Alerts by rule");
    chart_bars(r->out, &t, "Alerts by rule, the fifteen that fired most", 2);
    table_free(&t);
    fputs("</details>\n", r->out);
}

static void top_actors(struct rep *r)
{
    static const char *const heads[] = {"Identity", "Requests", "Alerts", "Denied"};
    static const char *const iph[] = {"Source IP", "Requests", "Identities", "Denied"};
    struct table t;
    section(r->out, "actors", "Top identities and source IPs");
    fetch(r, &t,
          "SELECT u.s, count(*) AS n, (SELECT count(*) FROM alerts a JOIN events x ON x.id ="
          " a.event_id WHERE x.user = e.user AND a.ts >= ?1 AND a.ts < ?2),"
          " sum(e.code IN (401, 403)) FROM events e LEFT JOIN strings u ON u.id = e.user"
          " WHERE e.ts >= ?1 AND e.ts < ?2 GROUP BY e.user ORDER BY n DESC LIMIT 15",
          0);
    chart_bars(r->out, &t, "Requests by identity, the fifteen busiest", -1);
    html_table(r->out, &t, heads, 4);
    table_free(&t);
    fetch(r, &t,
          "SELECT replace(ip.s, rtrim(ip.s, replace(ip.s, ',', '')), '') AS addr, count(*) AS n,"
          " count(DISTINCT e.user), sum(e.code IN (401, 403)) FROM events e"
          " LEFT JOIN strings ip ON ip.id = e.source_ips WHERE e.ts >= ?1 AND e.ts < ?2"
          " GROUP BY addr ORDER BY n DESC LIMIT 15",
          0);
    html_table(r->out, &t, iph, 4);
    table_free(&t);
    fputs("</details>\n", r->out);
}

static void denied(struct rep *r)
{
    static const char *const heads[] = {"Identity", "Source IP", "Denied", "First", "Last"};
    struct table t;
    section(r->out, "denied", "Denied request bursts");
    fetch(r, &t,
          "SELECT user, replace(source_ips, rtrim(source_ips, replace(source_ips, ',', '')), ''),"
          " count(*) AS n, min(time), max(time) FROM v_events WHERE ts >= ?1 AND ts < ?2 AND"
          " code IN (401, 403) GROUP BY 1, 2 ORDER BY n DESC LIMIT 15",
          0);
    html_table(r->out, &t, heads, 5);
    table_free(&t);
    fputs("</details>\n", r->out);
}

static void changes(struct rep *r)
{
    static const char *const heads[] = {"Time", "Identity", "Verb", "Object", "Code"};
    struct table t;
    section(r->out, "changes", "RBAC and exposure changes");
    fetch(r, &t,
          "SELECT time, user, verb, resource || coalesce('/' || namespace, '') || coalesce('/' ||"
          " name, ''), code FROM v_events WHERE ts >= ?1 AND ts < ?2 AND stage = "
          "'ResponseComplete' AND verb IN ('create', 'update', 'patch', 'delete') AND resource"
          " IN ('roles', 'rolebindings', 'clusterroles', 'clusterrolebindings', 'services',"
          " 'ingresses') ORDER BY ts LIMIT 200",
          0);
    html_table(r->out, &t, heads, 5);
    table_free(&t);
    fputs("</details>\n", r->out);
}

static void new_identities(struct rep *r)
{
    static const char *const heads[] = {"Identity", "First seen", "Requests in the period"};
    struct table t;
    section(r->out, "new", "New identities");
    fetch(r, &t,
          "SELECT u.s, "
          "strftime('%Y-%m-%dT%H:%M:%SZ', min(e.ts) / 1000000, 'unixepoch'),"
          " sum(e.ts >= ?1 AND e.ts < ?2) FROM events e JOIN strings u ON u.id = e.user"
          " GROUP BY e.user HAVING min(e.ts) >= ?1 AND min(e.ts) < ?2 ORDER BY min(e.ts)"
          " LIMIT 100",
          0);
    fputs("<p>Identities whose first request in the database falls in the period.</p>\n", r->out);
    html_table(r->out, &t, heads, 3);
    table_free(&t);
    fputs("</details>\n", r->out);
}

/* Each Critical and Warning alert: its output, its evidence, what else its actor did. */
static void serious(struct rep *r)
{
    FILE *o = r->out;
    struct table a;
    static const char *const eh[] = {"Time", "Verb", "Object", "Code"};
    static const char *const xh[] = {"Time", "Verb", "Object", "Code", "Alerts"};
    section(o, "serious", "Critical and Warning alerts");
    fetch(r, &a,
          "SELECT a.id, a.time, a.priority, a.rule, a.output, a.count, a.event_id, e.user"
          " FROM v_alerts a JOIN events e ON e.id = a.event_id WHERE a.ts >= ?1 AND a.ts < ?2"
          " AND a.priority_num <= 4 ORDER BY a.priority_num, a.ts LIMIT 200",
          0);
    for (size_t i = 0; i < a.nrows; i++) {
        int64_t id = strtoll(nz(at(&a, i, 0)), NULL, 10);
        fprintf(o, "<article class=\"alert %s\" id=\"alert-%lld\"><h3>",
                at(&a, i, 2) != NULL && strcmp(at(&a, i, 2), "Warning") == 0 ? "p4" : "p2",
                (long long)id);
        esc(o, nz(at(&a, i, 2)));
        fputs(": ", o);
        esc(o, nz(at(&a, i, 3)));
        fputs("</h3><p class=\"when\">", o);
        esc(o, nz(at(&a, i, 1)));
        fprintf(o, ", alert %lld, %s match(es)</p><p class=\"output\">", (long long)id,
                nz(at(&a, i, 5)));
        esc(o, nz(at(&a, i, 4)));
        fputs("</p>\n<h4>Evidence</h4>\n", o);
        struct table t;
        fetch(r, &t,
              "SELECT e.time, e.verb, e.resource || coalesce('/' || e.namespace, '') ||"
              " coalesce('/' || e.name, ''), e.code FROM v_events e WHERE e.id = (SELECT"
              " event_id FROM alerts WHERE id = ?3) OR e.id IN (SELECT event_id FROM"
              " alert_events WHERE alert_id = ?3) ORDER BY e.ts LIMIT 50",
              id);
        html_table(o, &t, eh, 4);
        table_free(&t);
        fputs("<h4>What else this actor did (15 minutes either side)</h4>\n", o);
        fetch(r, &t,
              "SELECT "
              "strftime('%Y-%m-%dT%H:%M:%SZ', e.ts / 1000000, 'unixepoch'), v.s,"
              " coalesce(rs.s, '') || coalesce('/' || ns.s, '') || coalesce('/' || nm.s, ''),"
              " e.code, (SELECT group_concat(x.rule, '; ') FROM alerts x WHERE x.event_id ="
              " e.id) FROM events e JOIN alerts a ON a.id = ?3 JOIN events ae ON ae.id ="
              " a.event_id LEFT JOIN strings v ON v.id = e.verb LEFT JOIN strings rs ON rs.id ="
              " e.resource LEFT JOIN strings ns ON ns.id = e.namespace LEFT JOIN strings nm ON"
              " nm.id = e.name WHERE e.user = ae.user AND e.ts BETWEEN a.ts - 900000000 AND"
              " a.ts + 900000000 AND e.id != a.event_id ORDER BY e.ts LIMIT 10",
              id);
        html_table(o, &t, xh, 5);
        table_free(&t);
        fputs("</article>\n", o);
    }
    if (a.nrows == 0) {
        fputs("<p class=\"none\">None in this period.</p>\n", o);
    }
    table_free(&a);
    fputs("</details>\n", o);
}

static const char style[] =
    ":root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--mute:#59636e;--line:#d0d7de;"
    "--p0:#8b0000;--p2:#cf222e;--p3:#bc4c00;--p4:#bf8700;--p5:#0969da;--p6:#57606a;"
    "--p7:#8c959f}"
    "@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--mute:#9198a1;"
    "--line:#30363d;--p0:#ff7b72;--p2:#f85149;--p3:#db6d28;--p4:#d29922;--p5:#58a6ff;"
    "--p6:#8b949e;--p7:#6e7681}}"
    "body{background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,sans-serif;"
    "max-width:1000px;margin:2em auto;padding:0 1em}"
    "a{color:var(--p5)}a:focus,summary:focus{outline:3px solid var(--p5);outline-offset:2px}"
    "h1{font-size:1.6em}h2{display:inline;font-size:1.25em}summary{cursor:pointer;margin:1.2em 0 "
    ".6em}"
    "table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border-bottom:1px solid "
    "var(--line);padding:.25em .5em;text-align:left;vertical-align:top}"
    "svg.chart{width:100%;height:auto}svg text{fill:var(--fg);font-size:13px}"
    "svg .label{text-anchor:end}.axis{stroke:var(--line)}"
    ".p0{fill:var(--p0)}.p2{fill:var(--p2)}.p3{fill:var(--p3)}.p4{fill:var(--p4)}"
    ".p5{fill:var(--p5)}.p6{fill:var(--p6)}.p7{fill:var(--p7)}"
    ".figures{display:flex;flex-wrap:wrap;gap:1.5em;list-style:none;padding:0}"
    ".figures strong{display:block;font-size:1.8em}"
    "article.alert{border-left:4px solid var(--p4);padding:.2em 1em;margin:1em 0}"
    "article.alert.p2{border-left-color:var(--p2)}.when,.none{color:var(--mute)}"
    ".output{font-family:ui-monospace,monospace;overflow-wrap:anywhere}"
    "nav ul{display:flex;flex-wrap:wrap;gap:1em;padding:0;list-style:none}"
    ".legend span{margin-right:1em}.legend i{display:inline-block;width:.9em;height:.9em;"
    "margin-right:.3em;vertical-align:-.1em}"
    "@media print{body{max-width:none;margin:0;font-size:11px}nav{display:none}"
    "details{break-inside:avoid-page}article.alert{break-inside:avoid}a{color:inherit}}";

int cli_cmd_report(int argc, char **argv)
{
    const char *db = NULL, *out = NULL, *since = NULL, *until = NULL;
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},    {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'}, {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            continue;
        case 's':
            since = optarg;
            continue;
        case 'u':
            until = optarg;
            continue;
        case 'o':
            out = optarg;
            continue;
        default:
            break;
        }
        FILE *f = c == 'h' ? stdout : stderr;
        fputs("usage: ktrail report --db FILE [--since T] [--until T] -o report.html\n"
              "one self-contained HTML file (no network, no script): the period's alert\n"
              "timeline by priority, alerts by rule, top identities and source IPs, denied\n"
              "bursts, RBAC and exposure changes, new identities, and each Critical and Warning\n"
              "alert with its evidence and what else its actor did; the whole database when no\n"
              "--since/--until\n",
              f);
        return c == 'h' ? EXIT_OK : EXIT_USAGE;
    }
    if (db == NULL || out == NULL) {
        fputs("ktrail report: needs --db FILE and -o FILE\n", stderr);
        return EXIT_USAGE;
    }
    struct rep r = {0};
    int rc = cli_open_period("ktrail report", db, since, until, 0, &r.since, &r.until, &r.q);
    if (rc != 0) {
        return rc;
    }
    if (since == NULL || until == NULL) { /* the database's own span */
        struct table t;
        int64_t none[3] = {0};
        memset(&t, 0, sizeof(t));
        kt_query_rows(r.q, "SELECT min(ts), max(ts) + 1 FROM events", none, 0, keep, &t);
        r.since = since == NULL ? strtoll(nz(at(&t, 0, 0)), NULL, 10) : r.since;
        r.until = until == NULL ? strtoll(nz(at(&t, 0, 1)), NULL, 10) : r.until;
        table_free(&t);
    }
    r.out = fopen(out, "w");
    if (r.out == NULL) {
        fprintf(stderr, "ktrail report: %s: cannot write it\n", out);
        kt_query_close(r.q);
        return EXIT_RUNTIME;
    }
    char from[40], to[40];
    kt_format_rfc3339(r.since, from);
    kt_format_rfc3339(r.until, to);
    FILE *o = r.out;
    fprintf(o,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            "<title>ktrail report %.19s to %.19s</title><style>%s</style></head><body>\n"
            "<header><h1>ktrail report</h1><p>%.19sZ to %.19sZ, from <code>",
            from, to, style, from, to);
    esc(o, db);
    fputs("</code></p><nav aria-label=\"Sections\"><ul><li><a href=\"#timeline\">Timeline</a></li>"
          "<li><a href=\"#rules\">Rules</a></li><li><a href=\"#actors\">Identities and IPs</a>"
          "</li><li><a href=\"#denied\">Denied</a></li><li><a href=\"#changes\">RBAC and "
          "exposure</a></li><li><a href=\"#new\">New identities</a></li><li><a href=\"#serious\">"
          "Critical and Warning</a></li></ul></nav></header>\n<main>\n",
          o);
    summary(&r);
    section(o, "timeline", "Alert timeline by priority");
    chart_timeline(&r);
    fputs("<p class=\"legend\">", o);
    for (int p = 2; p < 8; p++) {
        fprintf(o,
                "<span><svg width=\"12\" height=\"12\" aria-hidden=\"true\"><rect class=\"%s\" "
                "width=\"12\" height=\"12\"/></svg> %s</span>",
                prio_class[p], prio_name[p]);
    }
    fputs("</p></details>\n", o);
    alerts_by_rule(&r);
    top_actors(&r);
    denied(&r);
    changes(&r);
    new_identities(&r);
    serious(&r);
    fputs("</main><footer><p>Made by ktrail report; every chart's figures are in the tables "
          "and titles beside it.</p></footer></body></html>\n",
          o);
    int bad = ferror(o) != 0;
    bad |= fclose(o) != 0;
    kt_query_close(r.q);
    if (bad || r.failed) {
        fprintf(stderr, "ktrail report: %s: not complete\n", out);
        return EXIT_RUNTIME;
    }
    fprintf(stderr, "ktrail report: %s (%s to %s)\n", out, from, to);
    return EXIT_OK;
}
