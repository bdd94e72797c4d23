/*
 * consume.c: `ktrail consume`, the Kafka consumer. Wires the Kafka source (ingest/kafka.h) to
 * the pipeline with the store's offset lookup, and, with --alerts-topic, forwards every
 * committed alert to Kafka from the pipeline's committed() hook.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "event.h"
#include "kafka.h"
#include "pipeline.h"
#include "store.h"

enum { MAX_LIST = 64 }; /* --topic and -X occurrences */

/* The committed() hook's state: where alerts go. */
struct forward {
    struct kt_kafka_producer *producer; /* the alerts topic's producer */
    uint64_t lost;                      /* alerts that could not be queued */
};

/*
 * Writer thread, after a batch's transaction: produce its alerts (as `--alerts json` prints
 * them, one message each, keyed by cluster so that one cluster's alerts stay in order).
 */
static void forward_alerts(const struct kt_batch *b, int status, void *ctx)
{
    struct forward *f = ctx;
    char *text = NULL;
    size_t len = 0;

    if (status != 0 || b->nalerts == 0) {
        return;
    }
    FILE *mem = open_memstream(&text, &len);
    if (mem == NULL) {
        f->lost += b->nalerts;
        return;
    }
    /* one JSON object a line (JSON strings cannot hold a raw newline): line n is the n-th
     * stored alert; a duplicate event's alerts went out when it was first stored */
    for (size_t i = 0; i < b->nalerts; i++) {
        if (b->alerts[i].stored) {
            kt_alert_print(mem, b, &b->alerts[i], 1);
        }
    }
    fclose(mem);
    size_t a = 0;
    for (char *p = text, *nl; p < text + len && (nl = memchr(p, '\n', len - (size_t)(p - text)));
         p = nl + 1, a++) {
        while (a < b->nalerts && !b->alerts[a].stored) {
            a++;
        }
        struct kt_str key = b->cluster;
        if (key.ptr == NULL && a < b->nalerts) {
            key = b->events[b->alerts[a].event].f[KT_F_CLUSTER_ANNOT];
        }
        if (kt_kafka_produce(f->producer, key.ptr, key.len, p, (size_t)(nl - p)) != 0) {
            f->lost++;
        }
    }
    free(text);
}

static void consume_usage(FILE *out)
{
    fputs("usage: ktrail consume --brokers HOST:PORT[,...] --topic T [--topic T2] --group G\n"
          "                      [options]\n"
          "\n"
          "Consume audit events from Kafka as a member of consumer group G, analyze them and\n"
          "store them; run until SIGTERM or SIGINT (the batch in hand is stored, offsets are\n"
          "committed and the consumer leaves the group). Each message may be an Event (extra\n"
          "keys allowed), an EventList, a JSON array, a {\"log\": ...} or {\"message\": ...}\n"
          "record of Fluent Bit or Vector, or an Azure {\"records\": [...]} envelope.\n"
          "\n"
          "options:\n"
          "  --brokers LIST          bootstrap servers, HOST:PORT[,HOST:PORT...]\n"
          "  --topic T               topic to consume (repeatable; ^regex subscribes by\n"
          "                          pattern)\n"
          "  --group G               consumer group: processes in one group share partitions\n"
          "  --db FILE               SQLite database, this consumer's shard (default ktrail.db)\n"
          "  -X KEY=VALUE            librdkafka property (repeatable): security.protocol,\n"
          "                          sasl.*, ssl.*, session.timeout.ms, ...\n"
          "  --cluster NAME          tag every event with this cluster name\n"
          "  --cluster-header H      the cluster is the value of message header H, when\n"
          "                          present (else --cluster, else the event's cluster_name\n"
          "                          annotation)\n"
          "  --alerts-topic T        also produce each stored alert as JSON to topic T\n"
          "                          (idempotent producer, key = cluster)\n"
          "  --keep-raw flagged|all  keep raw JSON of flagged events (default) or of all\n"
          "  --max-event-size SIZE   larger events are rejected (default 16M)\n"
          "  --quiet                 no progress line\n"
          "  --verbose               debug logging (librdkafka's too)\n",
          out);
    fputs(cli_store_usage, out);
    fputs(cli_rule_usage, out);
    fputs(cli_alerts_http_usage, out);
    fputs(cli_retain_usage, out);
}

int cli_cmd_consume(int argc, char **argv)
{
    const char *db = "ktrail.db";
    const char *topics[MAX_LIST], *props[MAX_LIST];
    const char *alerts_topic = NULL;
    struct kt_kafka_opts ko = {.topics = topics, .props = props, .max_event_size = 16u << 20};
    struct kt_store_opts so = {0};
    struct rule_args ra = RULE_ARGS_INIT;
    static struct alerts_http_args ha;
    struct retain_args rt = {0};
    struct kt_retain *retain = NULL;
    int quiet = 0;
    static const struct option longopts[] = {
        {"rules", required_argument, NULL, 'R'},
        {"no-default-rules", no_argument, NULL, 'N'},
        {"min-priority", required_argument, NULL, 'P'},
        {"alerts", required_argument, NULL, 'A'},
        CLI_ALERTS_HTTP_OPTIONS,
        CLI_RETAIN_OPTIONS,
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"group", required_argument, NULL, 'g'},
        {"db", required_argument, NULL, 'd'},
        {"cluster", required_argument, NULL, 'C'},
        {"cluster-header", required_argument, NULL, 'H'},
        {"alerts-topic", required_argument, NULL, 'T'},
        {"keep-raw", required_argument, NULL, 'K'},
        CLI_STORE_LONGOPTS,
        {"max-event-size", required_argument, NULL, 'm'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "X:qvh", longopts, NULL)) != -1) {
        int r = cli_sink_option(c, optarg, &ra, &ha, &rt, &so);
        if (r < 0) {
            return EXIT_USAGE;
        }
        if (r > 0) {
            continue;
        }
        switch (c) {
        case 'b':
            ko.brokers = optarg;
            break;
        case 't':
        case 'X': {
            size_t *n = c == 't' ? &ko.ntopics : &ko.nprops;
            const char **list = c == 't' ? topics : props;
            if (*n == MAX_LIST) {
                fprintf(stderr, "ktrail: too many %s options (at most %d)\n",
                        c == 't' ? "--topic" : "-X", MAX_LIST);
                return EXIT_USAGE;
            }
            if (c == 'X' && strchr(optarg, '=') == NULL) {
                fprintf(stderr, "ktrail: -X takes KEY=VALUE (a librdkafka property), not '%s'\n",
                        optarg);
                return EXIT_USAGE;
            }
            list[(*n)++] = optarg;
            break;
        }
        case 'g':
            ko.group = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'C':
            ko.cluster = optarg;
            break;
        case 'H':
            ko.cluster_header = optarg;
            break;
        case 'T':
            alerts_topic = optarg;
            break;
        case 'K':
            if (cli_parse_keep_raw(optarg, &so.keep_raw_all) != 0) {
                return EXIT_USAGE;
            }
            break;
        case 'm':
            if (cli_parse_size(optarg, &ko.max_event_size) != 0) {
                fprintf(stderr, "ktrail: --max-event-size: '%s' is not a size (e.g. 16M)\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'q':
            quiet = 1;
            break;
        case 'v':
            kt_log_level = KT_LOG_DEBUG;
            break;
        case 'h':
            consume_usage(stdout);
            return EXIT_OK;
        default:
            consume_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ktrail: consume takes no arguments ('%s'); see ktrail consume --help\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    if (ko.brokers == NULL || ko.ntopics == 0 || ko.group == NULL) {
        fprintf(stderr, "ktrail: consume needs %s (see ktrail consume --help)\n",
                ko.brokers == NULL ? "--brokers HOST:PORT"
                : ko.ntopics == 0  ? "--topic T"
                                   : "--group G");
        return EXIT_USAGE;
    }

    if (cli_retain_check(&rt) != 0) {
        return EXIT_USAGE;
    }
    int failed = 0;
    struct kt_ruleset *rules = cli_load_rules(&ra, &failed);
    if (failed) {
        return EXIT_RULES;
    }
    char err[512] = "";
    struct kt_store *store = NULL;
    struct kt_source *src = NULL;
    struct forward fw = {0};
    struct kt_deliver *http = NULL;
    int code = EXIT_OK;
    if (kt_store_open(db, &so, &store, err, sizeof(err)) != 0) {
        fprintf(stderr, "ktrail: %s\n", err);
        kt_ruleset_destroy(rules);
        return EXIT_RUNTIME;
    }
    ko.lookup = kt_store_kafka_lookup;
    ko.lookup_ctx = store;
    int rc = kt_kafka_source_create(&ko, &src, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "ktrail: %s\n", err);
        code = rc == KT_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
        goto out;
    }
    if (alerts_topic != NULL) {
        rc = kt_kafka_producer_create(ko.brokers, alerts_topic, props, ko.nprops, 10000,
                                      &fw.producer, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "ktrail: --alerts-topic: %s\n", err);
            code = rc == KT_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
            goto out;
        }
    }
    http = cli_alerts_http_start(&ha, db, &failed);
    retain = failed ? NULL : cli_retain_start(&rt, db, &failed);
    if (failed) {
        code = EXIT_RUNTIME;
        goto out;
    }
    kt_info("consume", "group %s, %zu topic(s) from %s into %s, %zu rules%s%s", ko.group,
            ko.ntopics, ko.brokers, db, rules != NULL ? kt_ruleset_count(rules) : 0,
            alerts_topic != NULL ? ", alerts to " : "", alerts_topic != NULL ? alerts_topic : "");

    cli_install_signals();
    struct kt_pipeline_opts po = {
        .progress = !quiet && isatty(STDERR_FILENO),
        .depth = 2,
        .stop = &cli_stop_requested,
        .rules = rules,
        .alerts = ra.alerts && rules != NULL ? stdout : NULL,
        .alerts_json = ra.alerts_json,
        .committed = fw.producer != NULL ? forward_alerts : NULL,
        .committed_ctx = &fw,
    };
    struct kt_pipeline_result res;
    rc = kt_pipeline_run(src, store, &po, &res);
    kt_retain_stop(retain);
    retain = NULL;
    if (rc != 0) {
        if (res.source_error != 0) {
            fprintf(stderr, "ktrail: %s\n", kt_source_error(src));
        } else {
            cli_print_write_error(db, store, rc);
        }
        code = EXIT_RUNTIME;
    }
    struct kt_kafka_stats ks;
    kt_kafka_source_stats(src, &ks);
    double rate = res.seconds > 0 ? (double)res.records / res.seconds : 0;
    fprintf(stderr,
            "ktrail consume: %llu messages, %llu events read, %llu stored, %llu duplicates "
            "skipped, %llu rejected, %llu alerts in %.2f s (%.0f events/s)\n",
            (unsigned long long)ks.messages, (unsigned long long)res.records,
            (unsigned long long)res.st.events, (unsigned long long)res.st.duplicates,
            (unsigned long long)res.st.rejects, (unsigned long long)res.st.alerts, res.seconds,
            rate);
    cli_print_skipped("consume", src);
    /* close the consumer first: the group rebalances while the producer flushes */
    kt_source_destroy(src);
    src = NULL;
    if (fw.producer != NULL) {
        uint64_t delivered = 0, failed_dr = 0;
        int left = kt_kafka_producer_flush(fw.producer, 10000);
        kt_kafka_producer_counts(fw.producer, &delivered, &failed_dr);
        fprintf(stderr,
                "ktrail consume: %llu alert(s) sent to %s, %llu not sent (they are stored)\n",
                (unsigned long long)delivered, alerts_topic,
                (unsigned long long)(failed_dr + (uint64_t)left + fw.lost));
    }
    cli_alerts_http_finish(http, "consume");
    http = NULL;
out:
    kt_retain_stop(retain);
    kt_deliver_stop(http, 0);
    kt_source_destroy(src);
    kt_kafka_producer_destroy(fw.producer);
    kt_store_close(store);
    kt_ruleset_destroy(rules);
    return code;
}
