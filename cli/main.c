/*
 * main.c: ktrail's command line. Parses arguments, wires modules, and is the only place that
 * exits. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error, 3 rule error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "pipeline.h"
#include "rules.h"
#include "store.h"

#ifndef KT_VERSION
#define KT_VERSION "dev"
#endif

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_RULES = 3 };

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void usage(FILE *out)
{
    fputs("usage: ktrail <command> [options]\n"
          "\n"
          "commands:\n"
          "  replay [options] PATH...   analyze and store audit events from files,\n"
          "                             directories, .gz or -\n"
          "  rules check FILE...        load rule files and report errors (exit 3)\n"
          "  rules list [--rules FILE]  the rules that would run: priority, name, tags\n"
          "  rules test [--rules FILE] [--coverage] TESTS...\n"
          "                             run rule test cases (event, fires, not_fires);\n"
          "                             --coverage: every enabled rule needs a case that\n"
          "                             fires and one that must not\n"
          "  version                    print the version\n"
          "\n"
          "replay options:\n"
          "  --db FILE               SQLite database (default ktrail.db)\n"
          "  --follow                follow the single PATH like tail -F\n"
          "  --keep-raw flagged|all  keep raw JSON of flagged events (default) or of all\n"
          "  --max-event-size SIZE   larger events are rejected (default 16M; K, M, G suffixes)\n"
          "  --no-resume             ignore checkpoints: read every file from its start\n"
          "  --quiet                 no progress line\n"
          "  --verbose               debug logging\n"
          "\n"
          "rule options (replay, rules list):\n"
          "  --rules FILE            load a rules file after the default pack (repeatable;\n"
          "                          later files append to and override earlier ones)\n"
          "  --no-default-rules      do not load ktrail's own rule pack\n"
          "  --alerts json|text|none print alerts on stdout once stored (default text)\n"
          "  --min-priority P        skip rules below P (emergency ... debug)\n",
          out);
}

/* Parse a byte size with an optional K/M/G suffix; 0 on success. */
static int parse_size(const char *s, size_t *out)
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

/* Rule files to load: the default pack, then --rules files in order. */
struct rule_args {
    const char *files[64]; /* paths, borrowed from argv or static */
    size_t n;              /* count */
    int no_default;        /* --no-default-rules */
    int min_priority;      /* --min-priority */
    int coverage;          /* rules test --coverage */
};

/* The default pack: $KTRAIL_RULES_DIR, the source tree next to the binary, or installed. */
static const char *default_rules(const char *argv0)
{
    static char path[4096];
    const char *env = getenv("KTRAIL_RULES_DIR");
    if (env != NULL) {
        snprintf(path, sizeof(path), "%s/k8s_audit_rules.yaml", env);
        return path;
    }
    char exe[2048];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(path, sizeof(path), "%s/../rules/k8s_audit_rules.yaml", exe);
            if (access(path, R_OK) == 0) {
                return path;
            }
        }
    }
    (void)argv0;
    snprintf(path, sizeof(path), "%s/k8s_audit_rules.yaml", KT_RULES_DIR);
    return path;
}

/* Load rules per args; prints the error and returns NULL on failure. */
static struct kt_ruleset *load_rules(const struct rule_args *ra, const char *argv0)
{
    const char *files[65];
    size_t n = 0;
    if (!ra->no_default) {
        files[n++] = default_rules(argv0);
    }
    for (size_t i = 0; i < ra->n; i++) {
        files[n++] = ra->files[i];
    }
    struct kt_rules_opts ro = {.min_priority = ra->min_priority};
    struct kt_ruleset *rs = NULL;
    char err[1024] = "";
    if (n == 0) {
        return NULL;
    }
    if (kt_ruleset_load(files, n, &ro, &rs, err, sizeof(err)) != 0) {
        fprintf(stderr, "ktrail: rules: %s\n", err);
        return NULL;
    }
    return rs;
}

/* Handle a rule option; 1 if c was one, -1 on a bad value, 0 if not a rule option. */
static int rule_option(int c, const char *arg, struct rule_args *ra)
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
    default:
        return 0;
    }
}

/* --rules and --no-default-rules after `rules list|test`; 0, or -1 on a bad option. */
static int rule_args_parse(int argc, char **argv, struct rule_args *ra)
{
    static const struct option longopts[] = {
        {"rules", required_argument, NULL, 'R'},
        {"no-default-rules", no_argument, NULL, 'N'},
        {"coverage", no_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'C') {
            ra->coverage = 1;
        } else if (rule_option(c, optarg, ra) <= 0) {
            return -1;
        }
    }
    return 0;
}

static int cmd_rules(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    struct rule_args ra = {.min_priority = KT_PRIO_DEBUG};
    if (strcmp(argv[1], "check") == 0) {
        if (argc < 3) {
            fputs("ktrail: rules check needs at least one FILE\n", stderr);
            return EXIT_USAGE;
        }
        ra.no_default = 1;
        for (int i = 2; i < argc; i++) {
            ra.files[ra.n++] = argv[i];
        }
        struct kt_ruleset *rs = load_rules(&ra, argv[0]);
        if (rs == NULL) {
            return EXIT_RULES;
        }
        printf("ok: %zu rules\n", kt_ruleset_count(rs));
        kt_ruleset_destroy(rs);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "list") == 0) {
        if (rule_args_parse(argc, argv, &ra) != 0) {
            return EXIT_USAGE;
        }
        struct kt_ruleset *rs = load_rules(&ra, argv[0]);
        if (rs == NULL) {
            return EXIT_RULES;
        }
        for (size_t i = 0; i < kt_ruleset_count(rs); i++) {
            struct kt_rule_info ri;
            kt_ruleset_info(rs, i, &ri);
            printf("%-13s %-8s %s  [%s]\n", kt_priority_name(ri.priority),
                   ri.enabled ? "enabled" : "disabled", ri.name, ri.tags);
        }
        kt_ruleset_destroy(rs);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "test") == 0) {
        if (rule_args_parse(argc, argv, &ra) != 0) {
            return EXIT_USAGE;
        }
        if (optind >= argc) {
            fputs("ktrail: rules test needs at least one test FILE\n", stderr);
            return EXIT_USAGE;
        }
        struct kt_ruleset *rs = load_rules(&ra, argv[0]);
        if (rs == NULL) {
            return EXIT_RULES;
        }
        int passed = 0, failed = 0, code = EXIT_OK;
        unsigned char *cover = calloc(kt_ruleset_count(rs) + 1, 1);
        for (int i = optind; i < argc; i++) {
            char err[512] = "";
            if (kt_rules_test_file(rs, argv[i], stdout, &passed, &failed, cover, err,
                                   sizeof(err)) != 0) {
                fprintf(stderr, "ktrail: %s\n", err);
                code = EXIT_RUNTIME;
            }
        }
        /* with --coverage, every enabled rule needs a case that fires and one that must not */
        for (size_t i = 0; ra.coverage && cover != NULL && i < kt_ruleset_count(rs); i++) {
            struct kt_rule_info ri;
            kt_ruleset_info(rs, i, &ri);
            if (ri.enabled && cover[i] != 3) {
                printf("FAIL %s: rule \"%s\" has no case that %s\n", ri.source, ri.name,
                       (cover[i] & 1) == 0 ? "fires" : "must not fire");
                failed++;
            }
        }
        free(cover);
        printf("%d passed, %d failed\n", passed, failed);
        kt_ruleset_destroy(rs);
        return failed > 0 ? EXIT_RUNTIME : code;
    }
    fprintf(stderr, "ktrail: unknown rules command '%s' (check, list, test)\n", argv[1]);
    return EXIT_USAGE;
}

static int cmd_replay(int argc, char **argv)
{
    const char *db = "ktrail.db";
    struct kt_file_opts fo = {.max_event_size = 16u << 20, .poll_ms = 250};
    struct kt_store_opts so = {0};
    int quiet = 0, no_resume = 0, alerts = 1, alerts_json = 0;
    struct rule_args ra = {.min_priority = KT_PRIO_DEBUG};
    static const struct option longopts[] = {
        {"rules", required_argument, NULL, 'R'},
        {"no-default-rules", no_argument, NULL, 'N'},
        {"min-priority", required_argument, NULL, 'P'},
        {"alerts", required_argument, NULL, 'A'},
        {"db", required_argument, NULL, 'd'},
        {"follow", no_argument, NULL, 'f'},
        {"keep-raw", required_argument, NULL, 'k'},
        {"max-event-size", required_argument, NULL, 'm'},
        {"no-resume", no_argument, NULL, 'n'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:fqvh", longopts, NULL)) != -1) {
        int r = rule_option(c, optarg, &ra);
        if (r < 0) {
            return EXIT_USAGE;
        }
        if (r > 0) {
            continue;
        }
        switch (c) {
        case 'A':
            alerts = strcmp(optarg, "none") != 0;
            alerts_json = strcmp(optarg, "json") == 0;
            if (alerts && !alerts_json && strcmp(optarg, "text") != 0) {
                fprintf(stderr, "ktrail: --alerts takes json, text or none, not '%s'\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'd':
            db = optarg;
            break;
        case 'f':
            fo.follow = 1;
            break;
        case 'k':
            if (strcmp(optarg, "all") == 0) {
                so.keep_raw_all = 1;
            } else if (strcmp(optarg, "flagged") != 0) {
                fprintf(stderr, "ktrail: --keep-raw takes 'flagged' or 'all', not '%s'\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'm':
            if (parse_size(optarg, &fo.max_event_size) != 0) {
                fprintf(stderr, "ktrail: --max-event-size: '%s' is not a size (e.g. 16M)\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'n':
            no_resume = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'v':
            kt_log_level = KT_LOG_DEBUG;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs("ktrail: replay needs at least one PATH (a file, a directory, a .gz or -)\n", stderr);
        return EXIT_USAGE;
    }

    char err[512] = "";
    struct kt_store *store = NULL;
    struct kt_source *src = NULL;
    int code = EXIT_OK;

    struct kt_ruleset *rules = NULL;
    if (!ra.no_default || ra.n > 0) {
        rules = load_rules(&ra, argv[0]);
        if (rules == NULL) {
            return EXIT_RULES;
        }
    }
    if (kt_store_open(db, &so, &store, err, sizeof(err)) != 0) {
        fprintf(stderr, "ktrail: %s\n", err);
        kt_ruleset_destroy(rules);
        return EXIT_RUNTIME;
    }
    if (!no_resume) {
        fo.lookup = kt_store_ckpt_lookup;
        fo.lookup_ctx = store;
    }
    if (kt_file_source_create((const char *const *)argv + optind, (size_t)(argc - optind), &fo,
                              &src, err, sizeof(err)) != 0) {
        fprintf(stderr, "ktrail: %s\n", err);
        kt_store_close(store);
        kt_ruleset_destroy(rules);
        return EXIT_USAGE;
    }

    install_signals();
    struct kt_pipeline_opts po = {
        .progress = !quiet && isatty(STDERR_FILENO),
        .depth = 2,
        .stop = &stop_requested,
        .rules = rules,
        .alerts = alerts && rules != NULL ? stdout : NULL,
        .alerts_json = alerts_json,
    };
    struct kt_pipeline_result res;
    int rc = kt_pipeline_run(src, store, &po, &res);
    if (rc != 0) {
        if (res.source_error != 0) {
            fprintf(stderr, "ktrail: %s\n", kt_source_error(src));
        } else {
            fprintf(stderr, "ktrail: storing into %s failed: %s\n", db, kt_strerror(rc));
        }
        code = EXIT_RUNTIME;
    }
    unsigned failures = kt_file_source_failures(src);
    unsigned skipped = kt_file_source_skipped(src);
    if (failures > 0) {
        code = EXIT_RUNTIME;
    }

    double rate = res.seconds > 0 ? (double)res.records / res.seconds : 0;
    fprintf(stderr,
            "ktrail replay: %llu events read, %llu stored, %llu duplicates skipped, %llu rejected,"
            " %llu alerts in %.2f s (%.0f events/s)\n",
            (unsigned long long)res.records, (unsigned long long)res.st.events,
            (unsigned long long)res.st.duplicates, (unsigned long long)res.st.rejects,
            (unsigned long long)res.st.alerts, res.seconds, rate);
    if (skipped > 0) {
        fprintf(stderr,
                "ktrail replay: %u file%s skipped, already replayed (--no-resume reads"
                " them again)\n",
                skipped, skipped == 1 ? "" : "s");
    }
    if (res.st.rejects > 0) {
        fprintf(stderr, "ktrail replay: rejected input is in %s: SELECT * FROM v_rejects;\n", db);
    }
    if (failures > 0) {
        fprintf(stderr, "ktrail replay: %u path%s could not be read (see above)\n", failures,
                failures == 1 ? "" : "s");
    }
    kt_source_destroy(src);
    kt_store_close(store);
    kt_ruleset_destroy(rules);
    return code;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "replay") == 0) {
        return cmd_replay(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "rules") == 0) {
        return cmd_rules(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("ktrail %s\n", KT_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    fprintf(stderr, "ktrail: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
