/*
 * cli.h: what the commands (replay, serve, consume, rules) share: exit codes, the stop flag
 * set by SIGINT/SIGTERM, size arguments, and the rule and alert options.
 */
#ifndef KT_CLI_CLI_H
#define KT_CLI_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "deliver.h"
#include "retain.h"
#include "rules.h"
#include "store.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_RULES = 3 };

/* Set by SIGINT and SIGTERM once cli_install_signals() ran; SIGPIPE is ignored. */
extern volatile sig_atomic_t cli_stop_requested;
void cli_install_signals(void);

/* Parse a byte size with an optional K/M/G suffix (binary); 0, or -1 when s is not one. */
int cli_parse_size(const char *s, size_t *out);
/* A duration on the command line: kt_parse_duration's ("30d", "12h", "90m", "1.5s") with its
 * unit, which is required: "--retain 90" or "--since 2024" taken as seconds would quietly mean
 * something else. 0, or -1. */
int cli_parse_span(const char *s, int64_t *out);
/* Parse --keep-raw's value: *all = 1 for "all", 0 for "flagged"; -1 (printed) for others. */
int cli_parse_keep_raw(const char *arg, int *all);

/* Rule files to load: the default pack, then --rules files in order. */
struct rule_args {
    const char *files[64]; /* paths, borrowed from argv or static */
    size_t n;              /* count */
    int no_default;        /* --no-default-rules */
    int min_priority;      /* --min-priority */
    int coverage;          /* rules test --coverage */
    int alerts;            /* --alerts: print alerts at all */
    int alerts_json;       /* --alerts json */
};
#define RULE_ARGS_INIT                                                                             \
    {                                                                                              \
        .min_priority = KT_PRIO_DEBUG, .alerts = 1                                                 \
    }

/* The rule options' getopt_long values: --rules 'R', --no-default-rules 'N',
 * --min-priority 'P', --alerts 'A'. */
/* Handle a rule option; 1 if c was one, -1 on a bad value (printed), 0 if not one. */
int cli_rule_option(int c, const char *arg, struct rule_args *ra);

/* The ruleset ra names, or NULL with *failed = 0 when it names none, or NULL with *failed = 1
 * after printing the error. */
struct kt_ruleset *cli_load_rules(const struct rule_args *ra, int *failed);
/* The default pack's file, or KT_RULES_BUILTIN when the copy in the binary is used. */
const char *cli_default_rules_name(void);

/* --alerts-http destinations (cli/alerts_http.c); the options after a URL apply to it. */
enum { CLI_MAX_HTTP = 8, CLI_MAX_HTTP_HEADERS = 16 };
enum {
    CLI_OPT_HTTP = 0x300, /* getopt_long values, clear of every short option */
    CLI_OPT_HTTP_HEADER,
    CLI_OPT_HTTP_TOKEN_FILE,
    CLI_OPT_HTTP_CA,
    CLI_OPT_HTTP_MIN_PRIORITY,
};
#define CLI_ALERTS_HTTP_OPTIONS                                                                    \
    {"alerts-http", required_argument, NULL, CLI_OPT_HTTP},                                        \
        {"alerts-http-header", required_argument, NULL, CLI_OPT_HTTP_HEADER},                      \
        {"alerts-http-token-file", required_argument, NULL, CLI_OPT_HTTP_TOKEN_FILE},              \
        {"alerts-http-ca", required_argument, NULL, CLI_OPT_HTTP_CA},                              \
    {                                                                                              \
        "alerts-min-priority", required_argument, NULL, CLI_OPT_HTTP_MIN_PRIORITY                  \
    }
struct alerts_http_args {
    struct kt_deliver_dest dests[CLI_MAX_HTTP];
    size_t n;
    const char *headers[CLI_MAX_HTTP][CLI_MAX_HTTP_HEADERS];
    char tokens[CLI_MAX_HTTP][4096];
};
/* Handle an --alerts-http option; 1 if c was one, -1 on a bad value (printed), 0 if not. */
int cli_alerts_http_option(int c, const char *arg, struct alerts_http_args *ha);
/* Start delivering to ha's destinations from db (opened by the store already): the handle,
 * NULL when there are none, or NULL with *failed = 1 after printing why. */
struct kt_deliver *cli_alerts_http_start(const struct alerts_http_args *ha, const char *db,
                                         int *failed);
/* At the end of a run: wait for the receivers (CLI_ALERTS_HTTP_DRAIN_MS at most), print
 * what each took, stop. Accepts NULL. */
void cli_alerts_http_finish(struct kt_deliver *d, const char *cmd);
/* What a run waits at its end for the receivers to take what is stored (the rest is sent by
 * the next run). */
enum { CLI_ALERTS_HTTP_DRAIN_MS = 10000 };
extern const char cli_alerts_http_usage[];

/* --retain and --retain-alerts (cli/retention.c). */
enum { CLI_OPT_RETAIN = 0x310, CLI_OPT_RETAIN_ALERTS, CLI_OPT_RETAIN_EVERY };
#define CLI_RETAIN_OPTIONS                                                                         \
    {"retain", required_argument, NULL, CLI_OPT_RETAIN},                                           \
        {"retain-every", required_argument, NULL, CLI_OPT_RETAIN_EVERY},                           \
    {                                                                                              \
        "retain-alerts", required_argument, NULL, CLI_OPT_RETAIN_ALERTS                            \
    }
struct retain_args {
    int64_t events_us; /* --retain, 0 when not given */
    int64_t alerts_us; /* --retain-alerts, 0 when not given */
    int64_t every_us;  /* --retain-every: between passes, 0 for the default */
};
/* Handle a retention option; 1 if c was one, -1 on a bad value (printed), 0 if not. */
int cli_retain_option(int c, const char *arg, struct retain_args *ra);
/* The options make sense together: 0, or -1 (printed). */
int cli_retain_check(const struct retain_args *ra);
/* Start background retention on db when asked: the handle, NULL when not asked, or NULL with
 * *failed = 1 (printed). Stop it with kt_retain_stop(). */
struct kt_retain *cli_retain_start(const struct retain_args *ra, const char *db, int *failed);
extern const char cli_retain_usage[];

/* Commands in their own files: argv[0] is the command name. Return an exit code. */
/* The summary line of envelope entries without audit events that src skipped, if any. */
struct kt_source;
void cli_print_skipped(const char *cmd, const struct kt_source *src);

int cli_cmd_serve(int argc, char **argv);
int cli_cmd_consume(int argc, char **argv);
int cli_cmd_prune(int argc, char **argv);
int cli_cmd_alerts(int argc, char **argv);
int cli_cmd_timeline(int argc, char **argv);
int cli_cmd_rbac(int argc, char **argv);
int cli_cmd_report(int argc, char **argv);
/* A time for --since/--until: RFC 3339, a date (midnight UTC), now, today, yesterday, or a
 * duration ago ("-2h", "2h", "90m"); local: days start at local midnight. 0, or -1 (printed,
 * naming opt). */
int cli_parse_time(const char *opt, const char *s, int local, int64_t *out);
struct kt_query;
/* For the analyst's commands: --since and --until (NULL when not given) into *t0 and *t1 as
 * cli_parse_time() takes them, then the database opened read-only into *q. 0, or the exit code
 * (printed, after who: "ktrail report"). */
int cli_open_period(const char *who, const char *db, const char *since, const char *until,
                    int local, int64_t *t0, int64_t *t1, struct kt_query **q);

/* The rule options' usage lines. */
extern const char cli_rule_usage[];

/* The storage options every command that stores takes, for its getopt_long table. */
#define CLI_STORE_LONGOPTS                                                                         \
    {"max-db-size", required_argument, NULL, 2001},                                                \
    {                                                                                              \
        "retry-writes", required_argument, NULL, 2002                                              \
    }
/* Handle a storage option into so; 1 if c was one, -1 on a bad value (printed), 0 if not. */
int cli_store_option(int c, const char *arg, struct kt_store_opts *so);
/* Every option the sinks (replay, serve, consume) share: rules and alerts, --alerts-http,
 * retention, the store's. 1 if c was one, -1 on a bad value (printed), 0 if not. */
int cli_sink_option(int c, const char *arg, struct rule_args *ra, struct alerts_http_args *ha,
                    struct retain_args *rt, struct kt_store_opts *so);
/* Their usage lines. */
extern const char cli_store_usage[];

/* The one line saying why storing into db stopped (the store's own reason, else rc's), and
 * that the position is kept. */
void cli_print_write_error(const char *db, struct kt_store *store, int rc);

#endif
