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
          "  replay [options] PATH...   store audit events from files, directories, .gz or -\n"
          "  version                    print the version\n"
          "\n"
          "replay options:\n"
          "  --db FILE               SQLite database (default ktrail.db)\n"
          "  --follow                follow the single PATH like tail -F\n"
          "  --keep-raw flagged|all  keep raw JSON of flagged events (default) or of all\n"
          "  --max-event-size BYTES  larger events are rejected (default 16777216)\n"
          "  --no-resume             ignore checkpoints: read every file from its start\n"
          "  --quiet                 no progress line\n"
          "  --verbose               debug logging\n",
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

static int cmd_replay(int argc, char **argv)
{
    const char *db = "ktrail.db";
    struct kt_file_opts fo = {.max_event_size = 16u << 20, .poll_ms = 250};
    struct kt_store_opts so = {0};
    int quiet = 0, no_resume = 0;
    static const struct option longopts[] = {
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
        switch (c) {
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

    if (kt_store_open(db, &so, &store, err, sizeof(err)) != 0) {
        fprintf(stderr, "ktrail: %s\n", err);
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
        return EXIT_USAGE;
    }

    install_signals();
    struct kt_pipeline_opts po = {
        .progress = !quiet && isatty(STDERR_FILENO),
        .depth = 2,
        .stop = &stop_requested,
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
            "ktrail replay: %llu events read, %llu stored, %llu duplicates skipped, %llu rejected"
            " in %.2f s (%.0f events/s)\n",
            (unsigned long long)res.records, (unsigned long long)res.st.events,
            (unsigned long long)res.st.duplicates, (unsigned long long)res.st.rejects, res.seconds,
            rate);
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
