/*
 * cli.h: what the commands (replay, serve, consume, rules) share: exit codes, the stop flag
 * set by SIGINT/SIGTERM, size arguments, and the rule and alert options.
 */
#ifndef KT_CLI_CLI_H
#define KT_CLI_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "rules.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_RULES = 3 };

/* Set by SIGINT and SIGTERM once cli_install_signals() ran; SIGPIPE is ignored. */
extern volatile sig_atomic_t cli_stop_requested;
void cli_install_signals(void);

/* Parse a byte size with an optional K/M/G suffix (binary); 0, or -1 when s is not one. */
int cli_parse_size(const char *s, size_t *out);
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

/* Commands in their own files: argv[0] is the command name. Return an exit code. */
/* The summary line of envelope entries without audit events that src skipped, if any. */
struct kt_source;
void cli_print_skipped(const char *cmd, const struct kt_source *src);

int cli_cmd_serve(int argc, char **argv);
int cli_cmd_consume(int argc, char **argv);

/* The rule options' usage lines. */
extern const char cli_rule_usage[];

#endif
