/*
 * common.c: see cli.h.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "source.h"

volatile sig_atomic_t cli_stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    cli_stop_requested = 1;
}

void cli_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Parse a byte size with an optional K/M/G suffix; 0 on success. */
int cli_parse_size(const char *s, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s) {
        return -1;
    }
    unsigned long long mul = 1;
    if (*end == 'K' || *end == 'k') {
        mul = 1024ULL;
        end++;
    } else if (*end == 'M' || *end == 'm') {
        mul = 1024ULL * 1024;
        end++;
    } else if (*end == 'G' || *end == 'g') {
        mul = 1024ULL * 1024 * 1024;
        end++;
    }
    if (*end == 'i' || *end == 'B') {
        end++;
    }
    if (*end != '\0' || v == 0) {
        return -1;
    }
    *out = (size_t)(v * mul);
    return 0;
}

int cli_parse_span(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || !((s[n - 1] >= 'a' && s[n - 1] <= 'z') || (s[n - 1] >= 'A' && s[n - 1] <= 'Z'))) {
        return -1;
    }
    return kt_parse_duration(s, out) == 0 ? 0 : -1;
}

int cli_parse_keep_raw(const char *arg, int *all)
{
    if (strcmp(arg, "all") == 0 || strcmp(arg, "flagged") == 0) {
        *all = arg[0] == 'a';
        return 0;
    }
    fprintf(stderr, "ktrail: --keep-raw takes 'flagged' or 'all', not '%s'\n", arg);
    return -1;
}

/*
 * The default pack: $KTRAIL_RULES_DIR's (when set, even if missing: asked for), the source
 * tree's next to the binary, the installed one, or else the copy compiled into the binary, so
 * a binary built elsewhere or copied to another host still has its rules. A file on disk
 * wins, so the pack can be edited without a rebuild.
 */
static struct kt_rules_src default_rules(void)
{
    static char path[4096];
    const char *env = getenv("KTRAIL_RULES_DIR");
    if (env != NULL) {
        snprintf(path, sizeof(path), "%s/k8s_audit_rules.yaml", env);
        return (struct kt_rules_src){path, NULL, 0};
    }
    char exe[2048];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash = n > 0 ? memrchr(exe, '/', (size_t)n) : NULL;
    if (slash != NULL) {
        *slash = '\0';
        snprintf(path, sizeof(path), "%s/../rules/k8s_audit_rules.yaml", exe);
        if (access(path, R_OK) == 0) {
            return (struct kt_rules_src){path, NULL, 0};
        }
    }
    snprintf(path, sizeof(path), "%s/k8s_audit_rules.yaml", KT_RULES_DIR);
    if (access(path, R_OK) == 0) {
        return (struct kt_rules_src){path, NULL, 0};
    }
    return *kt_rules_builtin();
}

const char *cli_default_rules_name(void)
{
    return default_rules().name;
}

struct kt_ruleset *cli_load_rules(const struct rule_args *ra, int *failed)
{
    struct kt_rules_src srcs[65];
    size_t n = 0;
    if (!ra->no_default) {
        srcs[n++] = default_rules();
    }
    for (size_t i = 0; i < ra->n; i++) {
        srcs[n++] = (struct kt_rules_src){ra->files[i], NULL, 0};
    }
    struct kt_rules_opts ro = {.min_priority = ra->min_priority};
    struct kt_ruleset *rs = NULL;
    char err[1024] = "";
    *failed = 0;
    if (n == 0) {
        return NULL;
    }
    if (kt_ruleset_load_srcs(srcs, n, &ro, &rs, err, sizeof(err)) != 0) {
        fprintf(stderr, "ktrail: rules: %s\n", err);
        *failed = 1;
        return NULL;
    }
    return rs;
}

/* Handle a rule option; 1 if c was one, -1 on a bad value, 0 if not a rule option. */
int cli_rule_option(int c, const char *arg, struct rule_args *ra)
{
    switch (c) {
    case 'R':
        if (ra->n == sizeof(ra->files) / sizeof(ra->files[0])) {
            fputs("ktrail: too many --rules files\n", stderr);
            return -1;
        }
        ra->files[ra->n++] = arg;
        return 1;
    case 'N':
        ra->no_default = 1;
        return 1;
    case 'P':
        ra->min_priority = kt_priority_parse(arg);
        if (ra->min_priority < 0) {
            fprintf(stderr,
                    "ktrail: --min-priority: '%s' is not a priority (emergency, alert, "
                    "critical, error, warning, notice, info, debug)\n",
                    arg);
            return -1;
        }
        return 1;
    case 'A':
        ra->alerts = strcmp(arg, "none") != 0;
        ra->alerts_json = strcmp(arg, "json") == 0;
        if (ra->alerts && !ra->alerts_json && strcmp(arg, "text") != 0) {
            fprintf(stderr, "ktrail: --alerts takes json, text or none, not '%s'\n", arg);
            return -1;
        }
        return 1;
    default:
        return 0;
    }
}

const char cli_rule_usage[] =
    "  --rules FILE            load a rules file after the default pack (repeatable;\n"
    "                          later files append to and override earlier ones)\n"
    "  --no-default-rules      do not load ktrail's own rule pack\n"
    "  --alerts json|text|none print alerts on stdout once stored (default text)\n"
    "  --min-priority P        skip rules below P (emergency ... debug)\n";

int cli_store_option(int c, const char *arg, struct kt_store_opts *so)
{
    size_t size = 0;
    char *end = NULL;
    long secs;

    switch (c) {
    case 2001:
        if (cli_parse_size(arg, &size) != 0) {
            fprintf(stderr, "ktrail: --max-db-size: '%s' is not a size (e.g. 50G)\n", arg);
            return -1;
        }
        so->max_db_bytes = size;
        return 1;
    case 2002:
        errno = 0;
        secs = strtol(arg, &end, 10);
        if (errno != 0 || end == arg || *end != '\0' || secs < 0 || secs > 86400) {
            fprintf(stderr, "ktrail: --retry-writes: '%s' is not a number of seconds (0-86400)\n",
                    arg);
            return -1;
        }
        so->retry_ms = secs > 0 ? (int)secs * 1000 : -1;
        return 1;
    default:
        return 0;
    }
}

const char cli_store_usage[] =
    "  --max-db-size SIZE      never grow the database past SIZE (K, M, G); a write that\n"
    "                          needs more fails as on a full disk\n"
    "  --retry-writes SECS     retry a write that failed for a passing cause (full disk,\n"
    "                          locked database, I/O error) for SECS, holding input back,\n"
    "                          then stop with the position kept (default 60; 0: stop)\n";

void cli_print_write_error(const char *db, struct kt_store *store, int rc)
{
    char why[256] = "";

    kt_store_last_error(store, why, sizeof(why));
    fprintf(stderr,
            "ktrail: storing into %s failed: %s; nothing after the last stored batch is"
            " acknowledged or checkpointed: run again once fixed to resume there\n",
            db, why[0] != '\0' ? why : kt_strerror(rc));
}

void cli_print_skipped(const char *cmd, const struct kt_source *src)
{
    uint64_t n = __atomic_load_n(&src->skipped, __ATOMIC_RELAXED);
    if (n > 0) {
        fprintf(stderr,
                "ktrail %s: %llu envelope entr%s without audit events skipped (other log streams"
                " or categories, control messages)\n",
                cmd, (unsigned long long)n, n == 1 ? "y" : "ies");
    }
}

int cli_sink_option(int c, const char *arg, struct rule_args *ra, struct alerts_http_args *ha,
                    struct retain_args *rt, struct kt_store_opts *so)
{
    int r = cli_rule_option(c, arg, ra);
    r = r != 0 ? r : cli_alerts_http_option(c, arg, ha);
    r = r != 0 ? r : cli_retain_option(c, arg, rt);
    return r != 0 ? r : cli_store_option(c, arg, so);
}
