/*
 * investigate.c: `ktrail alerts` and `ktrail timeline`, an incident's questions without SQL.
 * The answers come from store/query.c; this file parses times and prints rows as an aligned
 * table, JSON lines or CSV, times in UTC or --tz.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "query.h"

enum { FMT_TABLE, FMT_JSON, FMT_CSV };
enum { SESSION_GAP_US = 300 * 1000000LL }; /* a pause longer than this starts a session */

/* Rows kept for printing: every value copied. */
struct rows {
    size_t ncols;
    char **names;
    char **cells; /* nrows * ncols, NULL for SQL NULL */
    size_t nrows, cap;
};

static int keep_row(void *ctx, size_t n, const char *const *names, const char *const *values)
{
    struct rows *r = ctx;
    if (r->names == NULL) {
        r->ncols = n;
        r->names = calloc(n, sizeof(*r->names));
        for (size_t i = 0; r->names != NULL && i < n; i++) {
            r->names[i] = strdup(names[i]);
        }
    }
    if (r->nrows == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        char **c = realloc(r->cells, cap * r->ncols * sizeof(*c));
        if (c == NULL) {
            return 1;
        }
        r->cells = c;
        r->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        r->cells[r->nrows * r->ncols + i] = values[i] != NULL ? strdup(values[i]) : NULL;
    }
    r->nrows++;
    return 0;
}

static void rows_free(struct rows *r)
{
    for (size_t i = 0; i < r->nrows * r->ncols; i++) {
        free(r->cells[i]);
    }
    for (size_t i = 0; r->names != NULL && i < r->ncols; i++) {
        free(r->names[i]);
    }
    free(r->cells);
    free(r->names);
}

static const char *cell(const struct rows *r, size_t row, const char *name)
{
    for (size_t i = 0; i < r->ncols; i++) {
        if (strcmp(r->names[i], name) == 0) {
            return r->cells[row * r->ncols + i];
        }
    }
    return NULL;
}

/* ---- times ---- */

/* Microseconds as "2024-05-01 12:00:01" in UTC (tz NULL) or in tz, into out (40 bytes). */
static void format_time(int64_t us, const char *tz, char *out, size_t cap)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    if (tz == NULL) {
        gmtime_r(&t, &tm);
        strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    } else {
        localtime_r(&t, &tm);
        strftime(out, cap, "%Y-%m-%dT%H:%M:%S%z", &tm);
    }
}

/* Midnight at the start of the day us falls in, UTC or local (--tz). */
static int64_t day_start(int64_t us, int local)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    if (local) {
        localtime_r(&t, &tm);
    } else {
        gmtime_r(&t, &tm);
    }
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    time_t d = local ? mktime(&tm) : timegm(&tm);
    return (int64_t)d * 1000000;
}

int cli_parse_time(const char *opt, const char *s, int local, int64_t *out)
{
    int64_t now = kt_now_wall_us(), d;
    char buf[40];
    if (strcmp(s, "now") == 0) {
        *out = now;
    } else if (strcmp(s, "today") == 0) {
        *out = day_start(now, local);
    } else if (strcmp(s, "yesterday") == 0) {
        *out = day_start(day_start(now, local) - 1, local);
    } else if (cli_parse_span(s[0] == '-' ? s + 1 : s, &d) == 0) {
        *out = now - d;
    } else if (kt_parse_rfc3339(s, strlen(s), out) == 0) {
        return 0;
    } else if (strlen(s) == 10 && snprintf(buf, sizeof(buf), "%sT00:00:00Z", s) > 0 &&
               kt_parse_rfc3339(buf, strlen(buf), out) == 0) {
        return 0;
    } else {
        fprintf(stderr,
                "ktrail: %s: '%s' is not a time (RFC 3339, 2024-05-01, now, today, yesterday, "
                "-2h, -30m, -7d)\n",
                opt, s);
        return -1;
    }
    return 0;
}

/* ---- printing ---- */

static void csv_field(const char *v)
{
    if (v == NULL) {
        return;
    }
    if (strpbrk(v, ",\"\n\r") == NULL) {
        fputs(v, stdout);
        return;
    }
    putchar('"');
    for (; *v != '\0'; v++) {
        if (*v == '"') {
            putchar('"');
        }
        putchar(*v);
    }
    putchar('"');
}

static void json_field(const char *name, const char *v, int numeric, int first)
{
    struct kt_buf b = {0};
    if (!first) {
        putchar(',');
    }
    kt_buf_json_str(&b, name, strlen(name));
    fwrite(b.p, 1, b.len, stdout);
    putchar(':');
    if (v == NULL) {
        fputs("null", stdout);
    } else if (numeric) {
        fputs(v, stdout);
    } else {
        b.len = 0;
        kt_buf_json_str(&b, v, strlen(v));
        fwrite(b.p, 1, b.len, stdout);
    }
    kt_buf_free(&b);
}

struct column {
    const char *name;  /* in the rows */
    const char *title; /* in the table */
    int numeric;       /* JSON number */
    size_t max;        /* widest in a table (longer values are cut with '~'), 0: no limit */
};

/* Print rows: the columns given, plus "time" made from ts in --tz, and session numbers when
 * sessions (timeline). */
static void print_rows(const struct rows *r, const struct column *cols, size_t ncols, int fmt,
                       const char *tz, const int *session)
{
    size_t width[16] = {0};
    char when[40];
    for (size_t c = 0; c < ncols; c++) {
        width[c] = strlen(cols[c].title);
    }
    for (size_t i = 0; fmt == FMT_TABLE && i < r->nrows; i++) {
        const char *ts = cell(r, i, "ts");
        format_time(ts != NULL ? strtoll(ts, NULL, 10) : 0, tz, when, sizeof(when));
        for (size_t c = 0; c < ncols; c++) {
            const char *v = strcmp(cols[c].name, "time") == 0 ? when : cell(r, i, cols[c].name);
            size_t n = v != NULL ? strlen(v) : 1;
            if (cols[c].max > 0 && n > cols[c].max) {
                n = cols[c].max;
            }
            width[c] = n > width[c] ? n : width[c];
        }
    }
    if (fmt == FMT_CSV) {
        for (size_t c = 0; c < ncols; c++) {
            printf("%s%s", c ? "," : "", cols[c].name);
        }
        printf("%s\n", session != NULL ? ",session" : "");
    } else if (fmt == FMT_TABLE) {
        for (size_t c = 0; c < ncols; c++) {
            printf("%s%-*s", c ? "  " : "", c + 1 < ncols ? (int)width[c] : 0, cols[c].title);
        }
        putchar('\n');
    }
    for (size_t i = 0; i < r->nrows; i++) {
        const char *ts = cell(r, i, "ts");
        format_time(ts != NULL ? strtoll(ts, NULL, 10) : 0, tz, when, sizeof(when));
        if (fmt == FMT_TABLE && session != NULL && (i == 0 || session[i] != session[i - 1])) {
            const char *ua = cell(r, i, "user_agent");
            printf("-- session %d: %s from %s, %s\n", session[i],
                   cell(r, i, "user") ? cell(r, i, "user") : "-",
                   cell(r, i, "source_ip") ? cell(r, i, "source_ip") : "-", ua ? ua : "-");
        }
        if (fmt == FMT_JSON) {
            putchar('{');
        }
        for (size_t c = 0; c < ncols; c++) {
            const char *v = strcmp(cols[c].name, "time") == 0 ? when : cell(r, i, cols[c].name);
            if (fmt == FMT_JSON) {
                json_field(cols[c].name, v, cols[c].numeric, c == 0);
            } else if (fmt == FMT_CSV) {
                if (c > 0) {
                    putchar(',');
                }
                csv_field(v);
            } else {
                const char *t = v != NULL ? v : "-";
                size_t n = strlen(t);
                int cut = cols[c].max > 0 && n > cols[c].max;
                if (c > 0) {
                    fputs("  ", stdout);
                }
                if (cut) {
                    printf("%.*s~", (int)cols[c].max - 1, t);
                } else {
                    printf("%s", t);
                }
                if (c + 1 < ncols) {
                    printf("%*s", (int)(width[c] - (cut ? cols[c].max : n)), "");
                }
            }
        }
        if (fmt == FMT_JSON) {
            if (session != NULL) {
                printf(",\"session\":%d", session[i]);
            }
            puts("}");
        } else if (fmt == FMT_CSV) {
            if (session != NULL) {
                printf(",%d", session[i]);
            }
            putchar('\n');
        } else {
            putchar('\n');
        }
    }
}

/* Sessions: the same identity, source IP and user agent, with pauses under SESSION_GAP_US. */
static int *sessions(const struct rows *r)
{
    int *s = calloc(r->nrows + 1, sizeof(*s));
    int n = 0;
    for (size_t i = 0; s != NULL && i < r->nrows; i++) {
        int same = i > 0;
        static const char *const keys[] = {"user", "source_ip", "user_agent"};
        for (size_t k = 0; same && k < 3; k++) {
            const char *a = cell(r, i, keys[k]), *b = cell(r, i - 1, keys[k]);
            same = (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
        }
        if (same && strtoll(cell(r, i, "ts"), NULL, 10) - strtoll(cell(r, i - 1, "ts"), NULL, 10) >
                        SESSION_GAP_US) {
            same = 0;
        }
        s[i] = same ? n : ++n;
    }
    return s;
}

/* ---- the commands ---- */

struct common {
    const char *db;
    int fmt;
    const char *tz;
    int64_t since, until;
    size_t limit;
};

/* Options every investigation command takes; 1 if c was one, -1 on a bad value, 0 if not. */
static int common_option(int c, const char *arg, struct common *o, const char **since,
                         const char **until)
{
    switch (c) {
    case 'd':
        o->db = arg;
        return 1;
    case 'j':
        o->fmt = FMT_JSON;
        return 1;
    case 'c':
        o->fmt = FMT_CSV;
        return 1;
    case 'z':
        o->tz = arg;
        return 1;
    case 's':
        *since = arg;
        return 1;
    case 'u':
        *until = arg;
        return 1;
    case 'n':
        o->limit = (size_t)strtoull(arg, NULL, 10);
        return 1;
    default:
        return 0;
    }
}

int cli_open_period(const char *who, const char *db, const char *since, const char *until,
                    int local, int64_t *t0, int64_t *t1, struct kt_query **q)
{
    char err[512];
    if ((since != NULL && cli_parse_time("--since", since, local, t0) != 0) ||
        (until != NULL && cli_parse_time("--until", until, local, t1) != 0)) {
        return EXIT_USAGE;
    }
    if (access(db, R_OK) != 0) {
        fprintf(stderr, "%s: %s: no such database\n", who, db);
        return EXIT_RUNTIME;
    }
    if (kt_query_open(db, q, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", who, err);
        return EXIT_RUNTIME;
    }
    return 0;
}

/* After the options: the times (in --tz when given), the database. 0, or an exit code. */
static int common_finish(struct common *o, const char *since, const char *until,
                         struct kt_query **q)
{
    if (o->tz != NULL) {
        setenv("TZ", o->tz, 1);
        tzset();
    }
    if (o->db == NULL) {
        fputs("ktrail: --db FILE is needed\n", stderr);
        return EXIT_USAGE;
    }
    return cli_open_period("ktrail", o->db, since, until, o->tz != NULL, &o->since, &o->until, q);
}

#define COMMON_OPTIONS                                                                             \
    {"db", required_argument, NULL, 'd'}, {"json", no_argument, NULL, 'j'},                        \
        {"csv", no_argument, NULL, 'c'}, {"tz", required_argument, NULL, 'z'},                     \
        {"since", required_argument, NULL, 's'}, {"until", required_argument, NULL, 'u'},          \
        {"limit", required_argument, NULL, 'n'},                                                   \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

static const char common_usage[] =
    "  --db FILE               the database (read-only; a running sink is not disturbed)\n"
    "  --since T, --until T    RFC 3339, 2024-05-01, now, today, yesterday, -2h, -30m, -7d\n"
    "  --json | --csv          JSON lines or CSV instead of a table\n"
    "  --tz ZONE               print times in ZONE (Europe/Paris...) instead of UTC\n"
    "  --limit N               at most N rows (default 10000)\n";

int cli_cmd_alerts(int argc, char **argv)
{
    struct common o = {.limit = 10000};
    struct kt_alert_filter f = {.min_priority = KT_PRIO_DEBUG};
    const char *since = NULL, *until = NULL;
    static const struct option longopts[] = {
        COMMON_OPTIONS,
        {"min-priority", required_argument, NULL, 'P'},
        {"rule", required_argument, NULL, 'r'},
        {"open", no_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        if (common_option(c, optarg, &o, &since, &until) > 0) {
            continue;
        }
        if (c == 'P' && (f.min_priority = kt_priority_parse(optarg)) >= 0) {
            continue;
        }
        if (c == 'r') {
            f.rule = optarg;
            continue;
        }
        if (c == 'o') {
            f.open = 1;
            continue;
        }
        FILE *out = c == 'h' ? stdout : stderr;
        fputs("usage: ktrail alerts --db FILE [--since T] [--until T] [--min-priority P]\n"
              "                     [--rule NAME] [--open] [--json|--csv] [--tz ZONE]\n"
              "the alerts in time order, with the matches merged into each (count) and the\n"
              "events linked as its evidence; --open: their suppression window still open\n",
              out);
        fputs(common_usage, out);
        return c == 'h' ? EXIT_OK : EXIT_USAGE;
    }
    struct kt_query *q = NULL;
    int code = common_finish(&o, since, until, &q);
    if (code != 0) {
        return code;
    }
    f.since = o.since;
    f.until = o.until;
    f.limit = o.limit;
    struct rows r = {0};
    if (kt_query_alerts(q, &f, keep_row, &r) != 0) {
        fprintf(stderr, "ktrail: %s\n", kt_query_error(q));
        code = EXIT_RUNTIME;
    } else {
        static const struct column cols[] = {
            {"id", "ID", 1, 0},
            {"time", "TIME", 0, 0},
            {"priority", "PRIORITY", 0, 0},
            {"rule", "RULE", 0, 40},
            {"count", "COUNT", 1, 0},
            {"evidence", "EVIDENCE", 1, 0},
            {"user", "USER", 0, 40},
            {"source_ip", "SOURCE", 0, 0},
            {"verb", "VERB", 0, 0},
            {"object", "OBJECT", 0, 48},
            {"code", "CODE", 1, 0},
            {"output", "OUTPUT", 0, 0},
        };
        print_rows(&r, cols, sizeof(cols) / sizeof(cols[0]), o.fmt, o.tz, NULL);
        fflush(stdout); /* the count after the rows */
        if (o.fmt == FMT_TABLE) {
            fprintf(stderr, "ktrail alerts: %zu alert%s\n", r.nrows, r.nrows == 1 ? "" : "s");
        }
    }
    rows_free(&r);
    kt_query_close(q);
    return code;
}

/* RESOURCE/NAME or RESOURCE/NAMESPACE/NAME into f. 0, or -1 (printed). */
static int parse_object(char *s, struct kt_timeline_filter *f)
{
    char *a = strchr(s, '/'), *b = a != NULL ? strchr(a + 1, '/') : NULL;
    if (a == NULL || a == s || a[1] == '\0' ||
        (b != NULL && (b[1] == '\0' || strchr(b + 1, '/')))) {
        fprintf(stderr,
                "ktrail: --object takes RESOURCE/NAME or RESOURCE/NAMESPACE/NAME (pods/"
                "prod/web-0, clusterrolebindings/admin), not '%s'\n",
                s);
        return -1;
    }
    *a = '\0';
    f->resource = s;
    if (b != NULL) {
        *b = '\0';
        f->namespace = a + 1;
        f->name = b + 1;
    } else {
        f->name = a + 1;
    }
    return 0;
}

int cli_cmd_timeline(int argc, char **argv)
{
    struct common o = {.limit = 10000};
    struct kt_timeline_filter f = {.by = -1, .window = 15 * 60 * 1000000LL};
    const char *since = NULL, *until = NULL;
    int64_t around = 0;
    static const struct option longopts[] = {
        COMMON_OPTIONS,
        {"user", required_argument, NULL, 'U'},
        {"ip", required_argument, NULL, 'I'},
        {"object", required_argument, NULL, 'O'},
        {"alert", required_argument, NULL, 'A'},
        {"around", required_argument, NULL, 'R'},
        {"window", required_argument, NULL, 'W'},
        {NULL, 0, NULL, 0},
    };
    int c, bad = 0, nby = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        if (common_option(c, optarg, &o, &since, &until) > 0) {
            continue;
        }
        switch (c) {
        case 'U':
            f.by = KT_TL_USER, f.user = optarg, nby++;
            continue;
        case 'I':
            f.by = KT_TL_IP, f.ip = optarg, nby++;
            continue;
        case 'O':
            f.by = KT_TL_OBJECT, nby++;
            bad |= parse_object(optarg, &f) != 0;
            continue;
        case 'A':
            f.by = KT_TL_ALERT, f.id = strtoll(optarg, NULL, 10), nby++;
            continue;
        case 'R':
            around = strtoll(optarg, NULL, 10);
            continue;
        case 'W':
            if (cli_parse_span(optarg, &f.window) != 0) {
                fprintf(stderr, "ktrail: --window: '%s' is not a duration (15m, 1h)\n", optarg);
                return EXIT_USAGE;
            }
            continue;
        default:
            break;
        }
        FILE *out = c == 'h' ? stdout : stderr;
        fputs("usage: ktrail timeline --db FILE (--user U | --ip A | --object RESOURCE/[NS/]NAME\n"
              "                       | --alert ID | --around EVENT-ID) [--window 15m]\n"
              "                       [--since T] [--until T] [--json|--csv] [--tz ZONE]\n"
              "the requests in time order, one a line (time, identity, verb, object, code,\n"
              "the alerts it raised), in sessions (same identity, source IP and user agent,\n"
              "pauses under 5 minutes); --alert ID and --around ID: what that actor did in the\n"
              "window either side\n",
              out);
        fputs(common_usage, out);
        return c == 'h' ? EXIT_OK : EXIT_USAGE;
    }
    if (bad) {
        return EXIT_USAGE;
    }
    if (around != 0 && nby == 0) {
        f.by = KT_TL_AROUND, f.id = around, nby++;
    }
    if (nby != 1) {
        fputs("ktrail: timeline needs one of --user, --ip, --object, --alert or --around\n",
              stderr);
        return EXIT_USAGE;
    }
    struct kt_query *q = NULL;
    int code = common_finish(&o, since, until, &q);
    if (code != 0) {
        return code;
    }
    f.since = o.since;
    f.until = o.until;
    f.limit = o.limit;
    struct rows r = {0};
    int rc = kt_query_timeline(q, &f, keep_row, &r);
    if (rc != 0) {
        fprintf(stderr, "ktrail: %s\n", kt_query_error(q));
        code = rc == KT_ENOENT ? EXIT_USAGE : EXIT_RUNTIME;
    } else {
        static const struct column cols[] = {
            {"id", "ID", 1, 0},      {"time", "TIME", 0, 0},
            {"user", "USER", 0, 40}, {"source_ip", "SOURCE", 0, 0},
            {"verb", "VERB", 0, 0},  {"object", "OBJECT", 0, 60},
            {"code", "CODE", 1, 0},  {"alerts", "ALERTS", 0, 0},
        };
        int *s = sessions(&r);
        print_rows(&r, cols, sizeof(cols) / sizeof(cols[0]), o.fmt, o.tz, s);
        fflush(stdout); /* the count after the rows */
        if (o.fmt == FMT_TABLE) {
            fprintf(stderr, "ktrail timeline: %zu request%s in %d session%s\n", r.nrows,
                    r.nrows == 1 ? "" : "s", r.nrows > 0 && s != NULL ? s[r.nrows - 1] : 0,
                    r.nrows > 0 && s != NULL && s[r.nrows - 1] == 1 ? "" : "s");
        }
        free(s);
    }
    rows_free(&r);
    kt_query_close(q);
    return code;
}
