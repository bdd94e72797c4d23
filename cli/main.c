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

#include <sqlite3.h>

#include "cli.h"
#include "file.h"
#include "pipeline.h"
#include "rules.h"
#include "store.h"

#ifndef KT_VERSION
#define KT_VERSION "dev"
#endif

static void usage(FILE *out)
{
    fputs("usage: ktrail <command> [options]\n"
          "\n"
          "commands:\n"
          "  replay [options] PATH...   analyze and store audit events from files,\n"
          "                             directories, .gz or -\n"
          "  serve --listen ADDR:PORT [options]\n"
          "                             receive kube-apiserver's audit webhook over HTTPS\n"
          "                             (ktrail serve --help for its options)\n"
          "  consume --brokers HOST:PORT --topic T --group G [options]\n"
          "                             consume audit events from Kafka as a member of a\n"
          "                             consumer group (ktrail consume --help for its options)\n"
          "  rules check [FILE...]      load rule files (default: the default pack, saying\n"
          "                             which) and report errors (exit 3)\n"
          "  rules list [--rules FILE]  the rules that would run: priority, name, tags\n"
          "  rules test [--rules FILE] [--coverage] TESTS...\n"
          "                             run rule test cases (event, fires, not_fires);\n"
          "                             --coverage: every enabled rule needs a case that\n"
          "                             fires and one that must not\n"
          "  alerts --db F [--since T] [--min-priority P] [--rule R] [--open]\n"
          "                             the alerts, with their evidence counts\n"
          "  timeline --db F (--user U | --ip A | --object RES/[NS/]NAME | --alert ID)\n"
          "                             what an identity did, or was done to an object,\n"
          "                             in time order and sessions (--help for more)\n"
          "  report --db F [--since T] [--until T] -o report.html\n"
          "                             one self-contained HTML report of the period\n"
          "  rbac --db F (--user U | --serviceaccount NS/NAME) [--compare ROLE.yaml]\n"
          "                             least privilege: the Roles granting what it used\n"
          "  prune --db F (--before TIME | --older-than DURATION)\n"
          "                             delete what is older (ktrail prune --help)\n"
          "  check --db FILE            check a database: SQLite's integrity check and the\n"
          "                             schema; exit 0 when sound, 1 when not\n"
          "  version                    print the version\n"
          "\n"
          "replay options:\n"
          "  --db FILE               SQLite database (default ktrail.db)\n"
          "  --cluster NAME          the cluster of every event (else the one its envelope\n"
          "                          names: EKS log group, GKE cluster_name, AKS resourceId...)\n"
          "  --follow                follow the single PATH like tail -F\n"
          "  --keep-raw flagged|all  keep raw JSON of flagged events (default) or of all\n"
          "  --max-event-size SIZE   larger events are rejected (default 16M; K, M, G suffixes)\n"
          "  --no-resume             ignore checkpoints: read every file from its start\n"
          "  --quiet                 no progress line\n"
          "  --verbose               debug logging\n"
          "\n"
          "storage options (replay, serve, consume):\n",
          out);
    fputs(cli_store_usage, out);
    fputs("\n"
          "rule options (replay, serve, consume; --rules and --no-default-rules for rules\n"
          "list and test):\n",
          out);
    fputs(cli_rule_usage, out);
    fputs(cli_alerts_http_usage, out);
    fputs("retention (serve, consume, replay --follow):\n", out);
    fputs(cli_retain_usage, out);
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
        } else if (cli_rule_option(c, optarg, ra) <= 0) {
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
    struct rule_args ra = RULE_ARGS_INIT;
    if (strcmp(argv[1], "check") == 0) {
        /* the files given, else the default pack (saying which) */
        if (argc - 2 > (int)(sizeof(ra.files) / sizeof(ra.files[0]))) {
            fputs("ktrail: rules check: too many files\n", stderr);
            return EXIT_USAGE;
        }
        ra.no_default = argc > 2;
        for (int i = 2; i < argc; i++) {
            ra.files[ra.n++] = argv[i];
        }
        if (!ra.no_default) {
            printf("default pack: %s\n", cli_default_rules_name());
        }
        int failed_load = 0;
        struct kt_ruleset *rs = cli_load_rules(&ra, &failed_load);
        if (rs == NULL) {
            return EXIT_RULES;
        }
        size_t nc = kt_ruleset_ncorr(rs);
        printf("ok: %zu rules", kt_ruleset_count(rs) - nc);
        if (nc > 0) {
            printf(", %zu correlations", nc);
        }
        printf("\n");
        kt_ruleset_destroy(rs);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "list") == 0) {
        if (rule_args_parse(argc, argv, &ra) != 0) {
            return EXIT_USAGE;
        }
        int failed_load = 0;
        struct kt_ruleset *rs = cli_load_rules(&ra, &failed_load);
        if (rs == NULL) {
            return EXIT_RULES;
        }
        if (!ra.no_default) { /* on stderr: stdout is the table */
            fprintf(stderr, "ktrail: default pack: %s\n", cli_default_rules_name());
        }
        for (size_t i = 0; i < kt_ruleset_count(rs); i++) {
            struct kt_rule_info ri;
            kt_ruleset_info(rs, i, &ri);
            printf("%-13s %-8s %s  [%s]", kt_priority_name(ri.priority),
                   ri.enabled ? "enabled" : "disabled", ri.name, ri.tags);
            if (strcmp(ri.kind, "rule") != 0) {
                printf("  (%s)", ri.kind);
            }
            printf("\n");
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
        int failed_load = 0;
        struct kt_ruleset *rs = cli_load_rules(&ra, &failed_load);
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
    int quiet = 0, no_resume = 0;
    struct rule_args ra = RULE_ARGS_INIT;
    static struct alerts_http_args ha;
    struct retain_args rt = {0};
    static const struct option longopts[] = {
        {"rules", required_argument, NULL, 'R'},
        {"no-default-rules", no_argument, NULL, 'N'},
        {"min-priority", required_argument, NULL, 'P'},
        {"alerts", required_argument, NULL, 'A'},
        CLI_ALERTS_HTTP_OPTIONS,
        CLI_RETAIN_OPTIONS,
        {"db", required_argument, NULL, 'd'},
        {"cluster", required_argument, NULL, 'C'},
        {"follow", no_argument, NULL, 'f'},
        {"keep-raw", required_argument, NULL, 'k'},
        CLI_STORE_LONGOPTS,
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
        int r = cli_sink_option(c, optarg, &ra, &ha, &rt, &so);
        if (r < 0) {
            return EXIT_USAGE;
        }
        if (r > 0) {
            continue;
        }
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'C':
            fo.cluster = optarg;
            break;
        case 'f':
            fo.follow = 1;
            break;
        case 'k':
            if (cli_parse_keep_raw(optarg, &so.keep_raw_all) != 0) {
                return EXIT_USAGE;
            }
            break;
        case 'm':
            if (cli_parse_size(optarg, &fo.max_event_size) != 0) {
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
    if (cli_retain_check(&rt) != 0) {
        return EXIT_USAGE;
    }
    if (rt.events_us > 0 && !fo.follow) {
        fputs("ktrail: --retain is for --follow (a one-shot replay: ktrail prune)\n", stderr);
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        fputs("ktrail: replay needs at least one PATH (a file, a directory, a .gz or -)\n", stderr);
        return EXIT_USAGE;
    }

    char err[512] = "";
    struct kt_store *store = NULL;
    struct kt_source *src = NULL;
    int code = EXIT_OK;

    int rules_failed = 0;
    struct kt_ruleset *rules = cli_load_rules(&ra, &rules_failed);
    if (rules_failed) {
        return EXIT_RULES;
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

    int http_failed = 0;
    struct kt_deliver *http = cli_alerts_http_start(&ha, db, &http_failed);
    if (http_failed) {
        kt_source_destroy(src);
        kt_store_close(store);
        kt_ruleset_destroy(rules);
        return EXIT_RUNTIME;
    }
    struct kt_retain *retain = cli_retain_start(&rt, db, &http_failed);
    if (http_failed) {
        kt_deliver_stop(http, 0);
        kt_source_destroy(src);
        kt_store_close(store);
        kt_ruleset_destroy(rules);
        return EXIT_RUNTIME;
    }
    cli_install_signals();
    struct kt_pipeline_opts po = {
        .progress = !quiet && isatty(STDERR_FILENO),
        /* a replay is the one source the writer is always behind: 8 batches waiting make
         * transactions of up to 32,768 events, so the pages an index inserts at random (an
         * object's name) are written to the WAL once for many events; 1,000,000 events with
         * the default pack: 11% faster than at 2 (median of 4 alternating rounds), for 50 MB
         * more of batches (peak RSS 135 MB against 85) */
        .depth = 8,
        .stop = &cli_stop_requested,
        .rules = rules,
        .alerts = ra.alerts && rules != NULL ? stdout : NULL,
        .alerts_json = ra.alerts_json,
    };
    struct kt_pipeline_result res;
    int rc = kt_pipeline_run(src, store, &po, &res);
    kt_retain_stop(retain);
    if (rc != 0) {
        if (res.source_error != 0) {
            fprintf(stderr, "ktrail: %s\n", kt_source_error(src));
        } else {
            cli_print_write_error(db, store, rc);
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
    if (rules != NULL && kt_ruleset_ncorr(rules) > 0) {
        struct kt_store_stats ss;
        kt_store_stats(store, &ss);
        fprintf(stderr,
                "ktrail replay: correlations: %llu groups held (%.1f MB), %llu evicted, %llu late"
                " events dropped, %llu groups expired\n",
                (unsigned long long)ss.corr_groups, (double)ss.corr_bytes / 1e6,
                (unsigned long long)ss.corr_evicted, (unsigned long long)ss.corr_late,
                (unsigned long long)ss.corr_expired);
    }
    cli_print_skipped("replay", src);
    cli_alerts_http_finish(http, "replay");
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

/* kt_store_check's report: each problem on stdout; ctx points to the database path. */
static void print_problem(void *ctx, const char *line)
{
    const char *db = *(const char **)ctx;
    printf("%s: %s\n", db, line);
}

static int cmd_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        if (c == 'd') {
            db = optarg;
        } else {
            fputs("usage: ktrail check --db FILE\n", c == 'h' ? stdout : stderr);
            return c == 'h' ? EXIT_OK : EXIT_USAGE;
        }
    }
    if (db == NULL || optind < argc) {
        fputs("ktrail: check needs --db FILE and nothing else\n", stderr);
        return EXIT_USAGE;
    }
    char err[512] = "";
    int rc = kt_store_check(db, print_problem, &db, err, sizeof(err));
    if (rc == KT_EIO) {
        printf("%s: damaged or not a ktrail database: %s\n", db, err);
        return EXIT_RUNTIME;
    }
    if (rc != 0) {
        printf("%s: damaged: the problems above were found; copy the events you need out of it"
               " (sqlite3 .recover) or replay into a new database\n",
               db);
        return EXIT_RUNTIME;
    }
    printf("%s: sound (integrity check ok, schema as this ktrail expects)\n", db);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    /* Before SQLite starts: no global allocation statistics, which ktrail never reads and
     * which cost a process-wide mutex on every allocation SQLite makes (5% of the writer
     * thread's instructions in a replay). */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "replay") == 0) {
        return cmd_replay(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "alerts") == 0) {
        return cli_cmd_alerts(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "report") == 0) {
        return cli_cmd_report(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "rbac") == 0) {
        return cli_cmd_rbac(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "timeline") == 0) {
        return cli_cmd_timeline(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "prune") == 0) {
        return cli_cmd_prune(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "serve") == 0) {
        return cli_cmd_serve(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "consume") == 0) {
        return cli_cmd_consume(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "rules") == 0) {
        return cmd_rules(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "check") == 0) {
        return cmd_check(argc - 1, argv + 1);
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
