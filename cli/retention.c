/*
 * retention.c: --retain and --retain-alerts for the long-running sinks (serve, consume,
 * replay --follow), and the one-shot `ktrail prune`.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "retain.h"

int cli_retain_option(int c, const char *arg, struct retain_args *ra)
{
    int64_t *to = c == CLI_OPT_RETAIN          ? &ra->events_us
                  : c == CLI_OPT_RETAIN_ALERTS ? &ra->alerts_us
                  : c == CLI_OPT_RETAIN_EVERY  ? &ra->every_us
                                               : NULL;
    if (to == NULL) {
        return 0;
    }
    if (cli_parse_span(arg, to) != 0 || *to < (c == CLI_OPT_RETAIN_EVERY ? 1000000 : 1)) {
        fprintf(stderr,
                "ktrail: --%s: '%s' is not a duration with its unit (e.g. 30d, 12h, 2w%s)\n",
                c == CLI_OPT_RETAIN          ? "retain"
                : c == CLI_OPT_RETAIN_ALERTS ? "retain-alerts"
                                             : "retain-every",
                arg, c == CLI_OPT_RETAIN_EVERY ? "; at least 1s" : "");
        return -1;
    }
    return 1;
}

int cli_retain_check(const struct retain_args *ra)
{
    if ((ra->alerts_us > 0 || ra->every_us > 0) && ra->events_us == 0) {
        fputs("ktrail: --retain-alerts and --retain-every need --retain\n", stderr);
        return -1;
    }
    if (ra->alerts_us > 0 && ra->alerts_us < ra->events_us) {
        fputs("ktrail: --retain-alerts must be at least --retain (an alert keeps the events it "
              "links to)\n",
              stderr);
        return -1;
    }
    return 0;
}

struct kt_retain *cli_retain_start(const struct retain_args *ra, const char *db, int *failed)
{
    struct kt_retain *r = NULL;
    *failed = 0;
    if (ra->events_us == 0) {
        return NULL;
    }
    struct kt_retain_opts o = {.events_us = ra->events_us,
                               .alerts_us = ra->alerts_us,
                               .interval_s = (int)(ra->every_us / 1000000)};
    if (kt_retain_start(db, &o, &r) != 0) {
        fputs("ktrail: cannot start retention\n", stderr);
        *failed = 1;
    }
    return r;
}

/* A time: RFC 3339, or a duration ago. 0, or -1 (printed). */
static int parse_horizon(const char *opt, const char *arg, int ago, int64_t *out)
{
    int64_t v;
    if (ago ? cli_parse_span(arg, &v) == 0 : kt_parse_rfc3339(arg, strlen(arg), &v) == 0) {
        *out = ago ? kt_now_wall_us() - v : v;
        return 0;
    }
    fprintf(stderr, "ktrail prune: --%s: '%s' is not %s\n", opt, arg,
            ago ? "a duration with its unit (e.g. 30d, 12h)"
                : "an RFC 3339 time (e.g. 2026-01-01T00:00:00Z)");
    return -1;
}

static void prune_usage(FILE *out)
{
    fputs("usage: ktrail prune --db FILE (--before TIME | --older-than DURATION)\n"
          "                    [--alerts-before TIME | --alerts-older-than DURATION]\n"
          "delete events (with their raw JSON), rejects, first_seen keys and correlation\n"
          "state older than the horizon (event time), and alerts older than theirs (default:\n"
          "the same), keeping the events that retained alerts link to; in small transactions\n"
          "that a running sink on the same database barely notices.\n",
          out);
}

int cli_cmd_prune(int argc, char **argv)
{
    const char *db = NULL;
    int64_t events_before = 0, alerts_before = 0;
    int have_events = 0, have_alerts = 0;
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"before", required_argument, NULL, 'b'},
        {"older-than", required_argument, NULL, 'o'},
        {"alerts-before", required_argument, NULL, 'B'},
        {"alerts-older-than", required_argument, NULL, 'O'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        const struct option *o = NULL;
        for (o = longopts; o->name != NULL && o->val != c; o++) {
        }
        int alerts = c == 'B' || c == 'O', ago = c == 'o' || c == 'O';
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'b':
        case 'o':
        case 'B':
        case 'O':
            if ((alerts ? have_alerts : have_events) ||
                parse_horizon(o->name, optarg, ago, alerts ? &alerts_before : &events_before)) {
                if (alerts ? have_alerts : have_events) {
                    fprintf(stderr, "ktrail prune: one %s horizon only\n",
                            alerts ? "alerts" : "events");
                }
                return EXIT_USAGE;
            }
            *(alerts ? &have_alerts : &have_events) = 1;
            break;
        case 'h':
            prune_usage(stdout);
            return EXIT_OK;
        default:
            prune_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (db == NULL || !have_events || optind < argc) {
        prune_usage(stderr);
        return EXIT_USAGE;
    }
    if (!have_alerts) {
        alerts_before = events_before;
    } else if (alerts_before > events_before) {
        fputs("ktrail prune: the alerts horizon must not be later than the events one (an "
              "alert keeps the events it links to)\n",
              stderr);
        return EXIT_USAGE;
    }
    FILE *f = fopen(db, "rb");
    if (f == NULL) {
        fprintf(stderr, "ktrail prune: %s: no such database\n", db);
        return EXIT_RUNTIME;
    }
    fclose(f);
    cli_install_signals();
    struct kt_prune_stats st = {0};
    char err[512] = "", when[32], awhen[32];
    int64_t t0 = kt_now_mono_us();
    int rc = kt_prune(db, events_before, alerts_before, 1000, 0,
                      (const volatile int *)&cli_stop_requested, &st, err, sizeof(err));
    kt_format_rfc3339(events_before, when);
    kt_format_rfc3339(alerts_before, awhen);
    fprintf(stderr,
            "ktrail prune: %llu events, %llu alerts, %llu rejects, %llu first_seen keys and %llu "
            "correlation groups deleted (events before %s, alerts before %s); %llu older events "
            "kept as alerts' evidence; %.1f s\n",
            (unsigned long long)st.events, (unsigned long long)st.alerts,
            (unsigned long long)st.rejects, (unsigned long long)st.first_seen,
            (unsigned long long)st.corr_state, when, awhen, (unsigned long long)st.kept,
            (double)(kt_now_mono_us() - t0) / 1e6);
    if (rc != 0) {
        fprintf(stderr, "ktrail prune: %s\n", err);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

const char cli_retain_usage[] =
    "  --retain DURATION       delete events (raw JSON, rejects, first_seen keys,\n"
    "                          correlation state) older than DURATION (30d, 12h, 2w),\n"
    "                          at start and every 10 minutes\n"
    "  --retain-alerts DURATION  keep alerts (and the events they link to) this long\n"
    "                          (at least --retain; default the same)\n"
    "  --retain-every DURATION time between retention passes (default 10m)\n";
