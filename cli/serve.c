/*
 * serve.c: `ktrail serve`, the audit webhook sink. Wires the webhook source (ingest/webhook.h)
 * to the pipeline, and renders /readyz and /metrics from the source's, the store's and the
 * alerts' counters.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pipeline.h"
#include "store.h"
#include "webhook.h"

/* Counters the pipeline's committed() hook keeps for /metrics and /readyz. */
struct serve_state {
    struct kt_source *src;          /* the webhook source (set once created) */
    struct kt_store *store;         /* borrowed */
    const struct kt_ruleset *rules; /* or NULL */
    pthread_mutex_t mu;             /* guards what follows */
    uint64_t *alerts;               /* alerts committed, per rule index */
    size_t nrules;                  /* rules in the set */
    uint64_t batches_failed;        /* batches whose transaction failed */
    int last_status;                /* of the last transaction */
    struct kt_deliver *http;        /* --alerts-http delivery, or NULL */
};

static void on_committed(const struct kt_batch *b, int status, void *ctx)
{
    struct serve_state *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->last_status = status;
    if (status != 0) {
        s->batches_failed++;
    }
    for (size_t i = 0; status == 0 && i < b->nalerts; i++) {
        if (!b->alerts[i].stored) {
            continue; /* a retried request's: counted the first time */
        }
        /* rule names are owned by the rule set: find the index by pointer */
        for (size_t r = 0; r < s->nrules; r++) {
            struct kt_rule_info ri;
            kt_ruleset_info(s->rules, r, &ri);
            if (ri.name == b->alerts[i].rule) {
                s->alerts[r]++;
                break;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* A growing text buffer for the metrics page. */
struct text {
    char *p;
    size_t len, cap;
    int failed;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->p != NULL ? t->p + t->len : NULL, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 8192;
        while (cap - t->len <= (size_t)n) {
            cap *= 2;
        }
        char *np = realloc(t->p, cap);
        if (np == NULL) {
            t->failed = 1;
            return;
        }
        t->p = np;
        t->cap = cap;
    }
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void text_label(struct text *t, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"') {
            text_add(t, "\\%c", *v);
        } else if (*v == '\n') {
            text_add(t, "\\n");
        } else {
            text_add(t, "%c", *v);
        }
    }
}

/* Per --alerts-http destination: delivered, refused, failed attempts, pending, up. */
static void render_http_metrics(struct kt_deliver *d, struct text *t)
{
    static const char *const names[] = {"delivered_total", "refused_total", "failures_total",
                                        "pending", "up"};
    static const char *const help[] = {"Alerts the receiver took (2xx).",
                                       "Alerts the receiver refused for good, skipped.",
                                       "Delivery attempts that failed and are retried.",
                                       "Alerts stored after the delivery cursor, to be sent.",
                                       "1 when the last delivery attempt succeeded."};
    if (kt_deliver_count(d) == 0) {
        return;
    }
    for (size_t m = 0; m < sizeof(names) / sizeof(names[0]); m++) {
        text_add(t, "# HELP ktrail_alerts_http_%s %s\n# TYPE ktrail_alerts_http_%s %s\n", names[m],
                 help[m], names[m], m < 3 ? "counter" : "gauge");
        for (size_t i = 0; i < kt_deliver_count(d); i++) {
            struct kt_deliver_stats st;
            kt_deliver_stats(d, i, &st);
            uint64_t v[] = {st.delivered, st.rejected, st.failures, st.pending, (uint64_t)st.up};
            text_add(t, "ktrail_alerts_http_%s{destination=\"%s\"} %llu\n", names[m],
                     kt_deliver_name(d, i), (unsigned long long)v[m]);
        }
    }
}

static void render_metrics(struct serve_state *s, struct text *t)
{
    struct kt_webhook_stats ws;
    struct kt_store_stats ss;
    kt_webhook_stats(s->src, &ws);
    kt_store_stats(s->store, &ss);

    text_add(t, "# HELP ktrail_webhook_requests_total Audit POSTs answered, by HTTP status.\n"
                "# TYPE ktrail_webhook_requests_total counter\n");
    for (size_t i = 0; i < KT_WH_NCODES; i++) {
        if (kt_webhook_codes[i] != 0) {
            text_add(t, "ktrail_webhook_requests_total{code=\"%d\"} %llu\n", kt_webhook_codes[i],
                     (unsigned long long)ws.requests[i]);
        } else {
            text_add(t, "ktrail_webhook_requests_total{code=\"other\"} %llu\n",
                     (unsigned long long)ws.requests[i]);
        }
    }
    text_add(
        t,
        "# HELP ktrail_events_received_total Events (framed values) in accepted requests.\n"
        "# TYPE ktrail_events_received_total counter\n"
        "ktrail_events_received_total %llu\n"
        "# HELP ktrail_events_stored_total Events inserted into the database.\n"
        "# TYPE ktrail_events_stored_total counter\n"
        "ktrail_events_stored_total %llu\n"
        "# HELP ktrail_events_duplicate_total Events already stored (retries).\n"
        "# TYPE ktrail_events_duplicate_total counter\n"
        "ktrail_events_duplicate_total %llu\n"
        "# HELP ktrail_events_rejected_total Input kept in rejects instead of events.\n"
        "# TYPE ktrail_events_rejected_total counter\n"
        "ktrail_events_rejected_total %llu\n"
        "# HELP ktrail_envelope_skipped_total Envelope entries without audit events, dropped.\n"
        "# TYPE ktrail_envelope_skipped_total counter\n"
        "ktrail_envelope_skipped_total %llu\n"
        "# HELP ktrail_batches_failed_total Batches whose transaction failed.\n"
        "# TYPE ktrail_batches_failed_total counter\n"
        "ktrail_batches_failed_total %llu\n",
        (unsigned long long)ws.events, (unsigned long long)ss.events,
        (unsigned long long)ss.duplicates, (unsigned long long)ss.rejects,
        (unsigned long long)__atomic_load_n(&s->src->skipped, __ATOMIC_RELAXED),
        (unsigned long long)s->batches_failed);
    text_add(t,
             "# HELP ktrail_corr_groups Correlation groups held in memory.\n"
             "# TYPE ktrail_corr_groups gauge\n"
             "ktrail_corr_groups %llu\n"
             "# HELP ktrail_corr_state_bytes Memory the correlation state holds, about.\n"
             "# TYPE ktrail_corr_state_bytes gauge\n"
             "ktrail_corr_state_bytes %llu\n"
             "# HELP ktrail_corr_evicted_total Correlation groups evicted by max_groups.\n"
             "# TYPE ktrail_corr_evicted_total counter\n"
             "ktrail_corr_evicted_total %llu\n"
             "# HELP ktrail_corr_late_total Events later than their correlation's lateness.\n"
             "# TYPE ktrail_corr_late_total counter\n"
             "ktrail_corr_late_total %llu\n"
             "# HELP ktrail_corr_expired_total Correlation groups dropped, their window passed.\n"
             "# TYPE ktrail_corr_expired_total counter\n"
             "ktrail_corr_expired_total %llu\n",
             (unsigned long long)ss.corr_groups, (unsigned long long)ss.corr_bytes,
             (unsigned long long)ss.corr_evicted, (unsigned long long)ss.corr_late,
             (unsigned long long)ss.corr_expired);
    render_http_metrics(s->http, t);
    text_add(
        t,
        "# HELP ktrail_wal_bytes The database's write-ahead log, as of the last commit.\n"
        "# TYPE ktrail_wal_bytes gauge\n"
        "ktrail_wal_bytes %llu\n"
        "# HELP ktrail_wal_blocked 1 while storing waits for a reader to let the WAL restart.\n"
        "# TYPE ktrail_wal_blocked gauge\n"
        "ktrail_wal_blocked %llu\n"
        "# HELP ktrail_wal_blocked_seconds_total Time storing waited for readers so.\n"
        "# TYPE ktrail_wal_blocked_seconds_total counter\n"
        "ktrail_wal_blocked_seconds_total %.3f\n"
        "# HELP ktrail_write_failures_total Transactions that failed (each retry counts).\n"
        "# TYPE ktrail_write_failures_total counter\n"
        "ktrail_write_failures_total %llu\n",
        (unsigned long long)ss.wal_bytes, (unsigned long long)ss.wal_blocked,
        (double)ss.wal_blocked_us / 1e6, (unsigned long long)ss.write_failures);
    text_add(t, "# HELP ktrail_alerts_total Alerts committed, by rule and priority.\n"
                "# TYPE ktrail_alerts_total counter\n");
    pthread_mutex_lock(&s->mu);
    for (size_t r = 0; r < s->nrules; r++) {
        struct kt_rule_info ri;
        kt_ruleset_info(s->rules, r, &ri);
        if (!ri.enabled) {
            continue;
        }
        text_add(t, "ktrail_alerts_total{rule=\"");
        text_label(t, ri.name);
        text_add(t, "\",priority=\"%s\"} %llu\n", kt_priority_name(ri.priority),
                 (unsigned long long)s->alerts[r]);
    }
    pthread_mutex_unlock(&s->mu);
    text_add(t, "# HELP ktrail_webhook_commit_seconds From a request's body received to its "
                "events committed.\n"
                "# TYPE ktrail_webhook_commit_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < KT_WH_NBUCKETS; i++) {
        cum += ws.latency[i];
        text_add(t, "ktrail_webhook_commit_seconds_bucket{le=\"%g\"} %llu\n", kt_webhook_buckets[i],
                 (unsigned long long)cum);
    }
    cum += ws.latency[KT_WH_NBUCKETS];
    text_add(t,
             "ktrail_webhook_commit_seconds_bucket{le=\"+Inf\"} %llu\n"
             "ktrail_webhook_commit_seconds_sum %.6f\n"
             "ktrail_webhook_commit_seconds_count %llu\n"
             "# HELP ktrail_webhook_queue_bytes Request bodies waiting for the pipeline.\n"
             "# TYPE ktrail_webhook_queue_bytes gauge\n"
             "ktrail_webhook_queue_bytes %llu\n"
             "# HELP ktrail_webhook_held_bytes Bytes requests hold, counted against --queue.\n"
             "# TYPE ktrail_webhook_held_bytes gauge\n"
             "ktrail_webhook_held_bytes %llu\n"
             "# HELP ktrail_webhook_connections_evicted_total Unauthenticated connections closed "
             "for room.\n"
             "# TYPE ktrail_webhook_connections_evicted_total counter\n"
             "ktrail_webhook_connections_evicted_total %llu\n"
             "# HELP ktrail_webhook_queue_requests Requests waiting for their commit.\n"
             "# TYPE ktrail_webhook_queue_requests gauge\n"
             "ktrail_webhook_queue_requests %llu\n",
             (unsigned long long)cum, ws.latency_sum, (unsigned long long)ws.latency_count,
             (unsigned long long)ws.queued_bytes, (unsigned long long)ws.held_bytes,
             (unsigned long long)ws.conns_evicted, (unsigned long long)ws.queued_requests);
}

static int serve_status(void *ctx, const char *path, char **body, size_t *len, const char **ctype)
{
    struct serve_state *s = ctx;
    struct text t = {0};
    int code = 200;
    if (strcmp(path, "/readyz") == 0) {
        pthread_mutex_lock(&s->mu);
        int status = s->last_status;
        pthread_mutex_unlock(&s->mu);
        if (status != 0) {
            code = 503;
            text_add(&t, "not ready: the last write failed: %s\n", kt_strerror(status));
        } else {
            text_add(&t, "ok\n");
        }
        *ctype = "text/plain";
    } else {
        render_metrics(s, &t);
        *ctype = "text/plain; version=0.0.4";
    }
    if (t.failed) {
        free(t.p);
        *body = NULL;
        *len = 0;
        return 500;
    }
    *body = t.p;
    *len = t.len;
    return code;
}

static void serve_usage(FILE *out)
{
    fputs("usage: ktrail serve --listen ADDR:PORT [options]\n"
          "\n"
          "Receive kube-apiserver's audit webhook: POST of an EventList, an Event or a JSON\n"
          "array on the audit path; answered 200 once the events are stored.\n"
          "\n"
          "  --listen ADDR:PORT      where to listen ([ADDR]:PORT for IPv6, :PORT for all)\n"
          "  --path PATH             audit path (default /k8s-audit)\n"
          "  --db FILE               SQLite database (default ktrail.db)\n"
          "  --tls-cert FILE         server certificate chain (PEM)\n"
          "  --tls-key FILE          its private key (PEM)\n"
          "  --client-ca FILE        require client certificates signed by this CA\n"
          "  --token-file FILE       require 'Authorization: Bearer T', T from the file's\n"
          "                          lines 'TOKEN [CLUSTER]'\n"
          "  --cluster NAME          cluster name of events (unless the token or the\n"
          "                          certificate names one)\n"
          "  --cluster-map FILE      client certificate CN to cluster: lines 'CN CLUSTER'\n"
          "                          (without an entry, the CN is the cluster)\n"
          "  --firehose-path PATH    also serve an Amazon Data Firehose HTTP endpoint there\n"
          "                          (EKS audit from CloudWatch Logs, live)\n"
          "  --firehose-key-file FILE  its access keys: lines 'KEY [CLUSTER]'\n"
          "  --pubsub-path PATH      also take Pub/Sub pushes there (GKE audit from a log\n"
          "                          sink, live; wrapped or unwrapped)\n"
          "  --pubsub-token-file FILE  push tokens (?token=T in the push URL, or a bearer\n"
          "                          token): lines 'TOKEN [CLUSTER]'\n"
          "  --pubsub-jwks FILE      verify the push's Google-signed OIDC token with these\n"
          "                          keys (Google's JWKS), for...\n"
          "  --pubsub-audience AUD   ...this audience, and...\n"
          "  --pubsub-email EMAIL    ...this push service account (email_verified)\n"
          "  --insecure              allow plain HTTP and no authentication (the log says so)\n"
          "  --max-body SIZE         larger request bodies get 413 (default 32M)\n"
          "  --max-event-size SIZE   larger events are rejected (default 16M)\n"
          "  --queue SIZE            request bodies held (from their first byte until they\n"
          "                          are stored), at most; past it requests get 503 +\n"
          "                          Retry-After (default 256M)\n"
          "  --max-connections N     authenticated connections at once (default 128)\n"
          "  --auth-timeout S        close a connection idle S seconds before a request on\n"
          "                          it authenticates (default 10; after that 120); past 64\n"
          "                          such connections, the oldest is closed\n"
          "  --metrics-listen ADDR:PORT  serve /metrics, /healthz, /readyz there (plain\n"
          "                          HTTP) instead of on --listen\n"
          "  --keep-raw flagged|all  keep raw JSON of flagged events (default) or of all\n"
          "  --fsync                 fsync every commit before answering 200 (survives power\n"
          "                          loss; the default survives a crash of ktrail)\n"
          "  --verbose               debug logging\n",
          out);
    fputs(cli_store_usage, out);
    fputs(cli_rule_usage, out);
    fputs(cli_alerts_http_usage, out);
    fputs(cli_retain_usage, out);
}

int cli_cmd_serve(int argc, char **argv)
{
    const char *db = "ktrail.db";
    struct kt_webhook_opts wo = {0};
    struct kt_store_opts so = {0};
    struct rule_args ra = RULE_ARGS_INIT;
    static struct alerts_http_args ha;
    struct retain_args rt = {0};
    struct kt_retain *retain = NULL;
    unsigned long conns = 0;
    char *end = NULL;
    static const struct option longopts[] = {
        {"rules", required_argument, NULL, 'R'},
        {"no-default-rules", no_argument, NULL, 'N'},
        {"min-priority", required_argument, NULL, 'P'},
        {"alerts", required_argument, NULL, 'A'},
        CLI_ALERTS_HTTP_OPTIONS,
        CLI_RETAIN_OPTIONS,
        {"listen", required_argument, NULL, 'l'},
        {"path", required_argument, NULL, 'p'},
        {"db", required_argument, NULL, 'd'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"client-ca", required_argument, NULL, 'a'},
        {"token-file", required_argument, NULL, 't'},
        {"cluster", required_argument, NULL, 'C'},
        {"cluster-map", required_argument, NULL, 'M'},
        {"insecure", no_argument, NULL, 'I'},
        {"firehose-path", required_argument, NULL, 1001},
        {"firehose-key-file", required_argument, NULL, 1002},
        {"pubsub-path", required_argument, NULL, 1003},
        {"pubsub-token-file", required_argument, NULL, 1004},
        {"pubsub-jwks", required_argument, NULL, 1005},
        {"pubsub-audience", required_argument, NULL, 1006},
        {"pubsub-email", required_argument, NULL, 1007},
        {"max-body", required_argument, NULL, 'b'},
        {"max-event-size", required_argument, NULL, 'm'},
        {"queue", required_argument, NULL, 'q'},
        {"max-connections", required_argument, NULL, 'n'},
        {"auth-timeout", required_argument, NULL, 'T'},
        {"metrics-listen", required_argument, NULL, 'x'},
        {"keep-raw", required_argument, NULL, 'K'},
        CLI_STORE_LONGOPTS,
        {"fsync", no_argument, NULL, 'F'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
        int r = cli_sink_option(c, optarg, &ra, &ha, &rt, &so);
        if (r < 0) {
            return EXIT_USAGE;
        }
        if (r > 0) {
            continue;
        }
        size_t *size = NULL;
        const char *what = NULL;
        switch (c) {
        case 'l':
            wo.listen = optarg;
            break;
        case 'p':
            if (optarg[0] != '/') {
                fprintf(stderr, "ktrail: --path must start with '/', not '%s'\n", optarg);
                return EXIT_USAGE;
            }
            wo.path = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'c':
            wo.tls_cert = optarg;
            break;
        case 'k':
            wo.tls_key = optarg;
            break;
        case 'a':
            wo.client_ca = optarg;
            break;
        case 't':
            wo.token_file = optarg;
            break;
        case 'C':
            wo.cluster = optarg;
            break;
        case 'M':
            wo.cn_map_file = optarg;
            break;
        case 'I':
            wo.insecure = 1;
            break;
        case 1001:
        case 1003:
            if (optarg[0] != '/') {
                fprintf(stderr, "ktrail: --%s must start with '/', not '%s'\n",
                        c == 1001 ? "firehose-path" : "pubsub-path", optarg);
                return EXIT_USAGE;
            }
            *(c == 1001 ? &wo.firehose_path : &wo.pubsub_path) = optarg;
            break;
        case 1002:
            wo.firehose_key_file = optarg;
            break;
        case 1004:
            wo.pubsub_token_file = optarg;
            break;
        case 1005:
            wo.pubsub_jwks = optarg;
            break;
        case 1006:
            wo.pubsub_audience = optarg;
            break;
        case 1007:
            wo.pubsub_email = optarg;
            break;
        case 'b':
            size = &wo.max_body;
            what = "--max-body";
            break;
        case 'm':
            size = &wo.max_event_size;
            what = "--max-event-size";
            break;
        case 'q':
            size = &wo.queue_bytes;
            what = "--queue";
            break;
        case 'n':
            conns = strtoul(optarg, NULL, 10);
            if (conns == 0 || conns > 10000) {
                fprintf(stderr, "ktrail: --max-connections takes 1 to 10000, not '%s'\n", optarg);
                return EXIT_USAGE;
            }
            wo.max_connections = (unsigned)conns;
            break;
        case 'T':
            conns = strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || conns == 0 || conns > 3600) {
                fprintf(stderr, "ktrail: --auth-timeout takes 1 to 3600 seconds, not '%s'\n",
                        optarg);
                return EXIT_USAGE;
            }
            wo.auth_timeout = (unsigned)conns;
            break;
        case 'x':
            wo.metrics_listen = optarg;
            break;
        case 'K':
            if (cli_parse_keep_raw(optarg, &so.keep_raw_all) != 0) {
                return EXIT_USAGE;
            }
            break;
        case 'F':
            so.sync_full = 1;
            break;
        case 'v':
            kt_log_level = KT_LOG_DEBUG;
            break;
        case 'h':
            serve_usage(stdout);
            return EXIT_OK;
        default:
            serve_usage(stderr);
            return EXIT_USAGE;
        }
        if (size != NULL && cli_parse_size(optarg, size) != 0) {
            fprintf(stderr, "ktrail: %s: '%s' is not a size (e.g. 32M)\n", what, optarg);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ktrail: serve takes no arguments ('%s'); see ktrail serve --help\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    if (wo.listen == NULL) {
        fputs("ktrail: serve needs --listen ADDR:PORT (e.g. --listen 0.0.0.0:8443)\n", stderr);
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
    if (kt_store_open(db, &so, &store, err, sizeof(err)) != 0) {
        fprintf(stderr, "ktrail: %s\n", err);
        kt_ruleset_destroy(rules);
        return EXIT_RUNTIME;
    }
    struct serve_state st = {.store = store, .rules = rules};
    pthread_mutex_init(&st.mu, NULL);
    st.nrules = rules != NULL ? kt_ruleset_count(rules) : 0;
    st.alerts = calloc(st.nrules + 1, sizeof(*st.alerts));
    wo.status = serve_status;
    wo.status_ctx = &st;
    struct kt_source *src = NULL;
    int code = EXIT_OK;
    if (st.alerts == NULL) {
        fputs("ktrail: out of memory\n", stderr);
        code = EXIT_RUNTIME;
        goto out;
    }
    st.http = cli_alerts_http_start(&ha, db, &failed); /* before /metrics can be asked */
    retain = failed ? NULL : cli_retain_start(&rt, db, &failed);
    if (failed) {
        code = EXIT_RUNTIME;
        goto out;
    }
    if (kt_webhook_source_create(&wo, &src, err, sizeof(err)) != 0) {
        fprintf(stderr, "ktrail: %s\n", err);
        code = EXIT_USAGE;
        goto out;
    }
    st.src = src;
    if (wo.insecure && (wo.tls_cert == NULL || (wo.client_ca == NULL && wo.token_file == NULL))) {
        kt_warn("serve", "INSECURE: %s%s: anyone who can reach %s can read or forge audit events",
                wo.tls_cert == NULL ? "plain HTTP" : "TLS",
                wo.client_ca == NULL && wo.token_file == NULL ? " without authentication" : "",
                kt_webhook_url(src));
    }
    kt_info("serve", "listening on %s (%s%s%s), database %s, %zu rules", kt_webhook_url(src),
            wo.client_ca != NULL ? "client certificates" : "",
            wo.client_ca != NULL && wo.token_file != NULL ? " or " : "",
            wo.token_file != NULL  ? "bearer tokens"
            : wo.client_ca == NULL ? "no authentication"
                                   : "",
            db, st.nrules);
    if (kt_webhook_metrics_url(src) != NULL) {
        kt_info("serve", "metrics on %s/metrics", kt_webhook_metrics_url(src));
    }
    {
        /* the base of the audit URL: scheme://host:port */
        const char *url = kt_webhook_url(src), *slash = strstr(url, "://");
        slash = slash != NULL ? strchr(slash + 3, '/') : NULL;
        int base = slash != NULL ? (int)(slash - url) : (int)strlen(url);
        if (wo.firehose_path != NULL) {
            kt_info("serve", "Firehose HTTP endpoint on %.*s%s (%s)", base, url, wo.firehose_path,
                    wo.firehose_key_file != NULL ? "access keys" : "no authentication");
        }
        if (wo.pubsub_path != NULL) {
            kt_info("serve", "Pub/Sub push endpoint on %.*s%s (%s%s%s)", base, url, wo.pubsub_path,
                    wo.pubsub_token_file != NULL ? "push tokens" : "",
                    wo.pubsub_token_file != NULL && wo.pubsub_jwks != NULL ? " or " : "",
                    wo.pubsub_jwks != NULL ? "OIDC tokens" : "");
        }
        if (!wo.insecure && wo.client_ca == NULL && wo.token_file == NULL) {
            kt_info("serve", "the audit webhook path is off: no --client-ca or --token-file");
        }
    }

    cli_install_signals();
    struct kt_pipeline_opts po = {
        .depth = 2,
        .stop = &cli_stop_requested,
        .rules = rules,
        .alerts = ra.alerts && rules != NULL ? stdout : NULL,
        .alerts_json = ra.alerts_json,
        .committed = on_committed,
        .committed_ctx = &st,
    };
    struct kt_pipeline_result res;
    int rc = kt_pipeline_run(src, store, &po, &res);
    if (rc != 0) {
        if (res.source_error != 0) {
            fprintf(stderr, "ktrail: %s\n", kt_source_error(src));
        } else {
            cli_print_write_error(db, store, rc);
        }
        code = EXIT_RUNTIME;
    }
    struct kt_webhook_stats ws;
    kt_webhook_stats(src, &ws);
    uint64_t answered = 0;
    for (size_t i = 0; i < KT_WH_NCODES; i++) {
        answered += ws.requests[i];
    }
    fprintf(stderr,
            "ktrail serve: %llu requests (%llu accepted), %llu events received, %llu stored, "
            "%llu duplicates skipped, %llu rejected, %llu alerts in %.1f s\n",
            (unsigned long long)answered, (unsigned long long)ws.requests[KT_WH_200],
            (unsigned long long)ws.events, (unsigned long long)res.st.events,
            (unsigned long long)res.st.duplicates, (unsigned long long)res.st.rejects,
            (unsigned long long)res.st.alerts, res.seconds);
    cli_print_skipped("serve", src);
out:
    kt_retain_stop(retain);
    kt_source_destroy(src);
    cli_alerts_http_finish(st.http, "serve");
    kt_store_close(store);
    free(st.alerts);
    pthread_mutex_destroy(&st.mu);
    kt_ruleset_destroy(rules);
    return code;
}
