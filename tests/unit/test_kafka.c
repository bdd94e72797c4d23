/*
 * test_kafka.c: the Kafka source through the real pipeline and store, on librdkafka's mock
 * cluster (3 brokers on loopback, started by each test; no outside broker).
 *
 * Each test produces its events with a librdkafka producer, runs one or more consumers
 * (kt_kafka_source + kt_pipeline_run + a store on a temporary file) until their databases
 * hold what is expected or a deadline passes, and then asserts on rows: exactly N events,
 * none twice, offsets and rejects where they belong. A consumer "stops" the way SIGTERM stops
 * ktrail consume: the pipeline's stop flag.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <sqlite3.h>

#include "kafka.h"
#include "pipeline.h"
#include "store.h"
#include "store_int.h"

enum { PARTITIONS = 6, DEADLINE_S = 60 };

/* Client settings that make a group settle fast on the mock cluster. */
static const char *const fast_props[] = {
    "session.timeout.ms=6000",
    "heartbeat.interval.ms=500",
    "topic.metadata.refresh.interval.ms=1000",
};
#define NFAST (sizeof(fast_props) / sizeof(fast_props[0]))

struct fx {
    rd_kafka_t *mockrk;          /* the handle that owns the mock cluster */
    rd_kafka_mock_cluster_t *mc; /* 3 brokers on loopback */
    rd_kafka_t *rk;              /* the test's producer, a client of the cluster */
    char brokers[256];           /* bootstrap address */
    char dir[64];                /* temporary directory for the databases */
    size_t batch_records;        /* consumers' batch size (0: the default) */
    const char *cluster;         /* consumers' --cluster, or NULL */
    const char *cluster_header;  /* consumers' --cluster-header, or NULL */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    kt_log_level = KT_LOG_WARN;
    assert_non_null(f);
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    f->mockrk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (f->mockrk == NULL) {
        fail_msg("mock cluster handle: %s", err);
    }
    f->mc = rd_kafka_mock_cluster_new(f->mockrk, 3);
    assert_non_null(f->mc);
    assert_int_equal(rd_kafka_mock_topic_create(f->mc, "audit", PARTITIONS, 3), 0);
    assert_int_equal(rd_kafka_mock_topic_create(f->mc, "shapes", 1, 3), 0);
    assert_int_equal(rd_kafka_mock_topic_create(f->mc, "alerts", 2, 3), 0);
    snprintf(f->brokers, sizeof(f->brokers), "%s", rd_kafka_mock_cluster_bootstraps(f->mc));
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", f->brokers, err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    f->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (f->rk == NULL) {
        fail_msg("producer: %s", err);
    }
    strcpy(f->dir, "/tmp/kt-kafka-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    rd_kafka_flush(f->rk, 5000);
    rd_kafka_destroy(f->rk);
    rd_kafka_mock_cluster_destroy(f->mc);
    rd_kafka_destroy(f->mockrk);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* ---- producing ---- */

static void produce(struct fx *f, const char *topic, int32_t partition, const char *value,
                    size_t len)
{
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(f->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                    RD_KAFKA_V_VALUE((void *)(uintptr_t)value, len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(f->rk, 10);
    }
    assert_int_equal(err, 0);
}

static void flush(struct fx *f)
{
    assert_int_equal(rd_kafka_flush(f->rk, 10000), 0);
}

/* A small valid audit event, unique by i (auditID and stageTimestamp). */
static size_t event(char *buf, size_t cap, const char *id, int i)
{
    return (size_t)snprintf(
        buf, cap,
        "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\","
        "\"auditID\":\"%s-%d\",\"stage\":\"ResponseComplete\","
        "\"requestURI\":\"/api/v1/namespaces/default/pods\",\"verb\":\"list\","
        "\"user\":{\"username\":\"user-%d\",\"groups\":[\"system:authenticated\"]},"
        "\"sourceIPs\":[\"10.0.0.%d\"],\"objectRef\":{\"resource\":\"pods\","
        "\"namespace\":\"default\",\"apiVersion\":\"v1\"},\"responseStatus\":{\"code\":200},"
        "\"requestReceivedTimestamp\":\"2024-05-01T12:00:00.000000Z\","
        "\"stageTimestamp\":\"2024-05-01T12:%02d:%02d.%06dZ\"}",
        id, i, i % 7, i % 250, (i / 60000000) % 60, (i / 1000000) % 60, i % 1000000);
}

/* n events to topic "audit", spread over its partitions in turn. */
static void produce_events(struct fx *f, const char *id, int from, int n)
{
    char buf[1024];
    for (int i = from; i < from + n; i++) {
        produce(f, "audit", i % PARTITIONS, buf, event(buf, sizeof(buf), id, i));
    }
    flush(f);
}

/* ---- consuming ---- */

/* One consumer: a store, a Kafka source, and the pipeline on a thread of its own. */
struct consumer {
    char db[128];                  /* database path */
    struct kt_store *store;        /* its store */
    struct kt_source *src;         /* its source */
    volatile sig_atomic_t stop;    /* the pipeline's stop flag */
    struct kt_pipeline_result res; /* what the run did */
    int rc;                        /* kt_pipeline_run's result */
    pthread_t thread;              /* running the pipeline */
    int running;                   /* the thread was started */
};

static void consumer_open(struct fx *f, struct consumer *c, const char *name, const char *group,
                          const char *topic)
{
    static const char *topics[1];
    char err[512] = "";
    struct kt_kafka_opts o = {.brokers = f->brokers,
                              .topics = topics,
                              .ntopics = 1,
                              .group = group,
                              .props = fast_props,
                              .nprops = NFAST,
                              .linger_ms = 20,
                              .batch_records = f->batch_records,
                              .cluster = f->cluster,
                              .cluster_header = f->cluster_header,
                              .lookup = kt_store_kafka_lookup};

    memset(c, 0, sizeof(*c));
    topics[0] = topic;
    snprintf(c->db, sizeof(c->db), "%s/%s.db", f->dir, name);
    if (kt_store_open(c->db, NULL, &c->store, err, sizeof(err)) != 0) {
        fail_msg("store: %s", err);
    }
    o.lookup_ctx = c->store;
    if (kt_kafka_source_create(&o, &c->src, err, sizeof(err)) != 0) {
        fail_msg("source: %s", err);
    }
}

static void *consumer_main(void *arg)
{
    struct consumer *c = arg;
    struct kt_pipeline_opts po = {.depth = 2, .analyzers = 1, .stop = &c->stop};
    c->rc = kt_pipeline_run(c->src, c->store, &po, &c->res);
    return NULL;
}

static void consumer_start(struct consumer *c)
{
    assert_int_equal(pthread_create(&c->thread, NULL, consumer_main, c), 0);
    c->running = 1;
}

static uint64_t stored(struct consumer *c)
{
    struct kt_store_stats st;
    kt_store_stats(c->store, &st);
    return st.events;
}

/* Wait until cond(ctx) holds, polling every 20 ms; 0 when it did, -1 after DEADLINE_S. */
static int wait_for(int (*cond)(void *), void *ctx)
{
    for (int i = 0; i < DEADLINE_S * 50; i++) {
        if (cond(ctx)) {
            return 0;
        }
        usleep(20000);
    }
    return -1;
}

struct total {
    struct consumer **cs; /* consumers whose stored events are summed */
    int n;                /* how many */
    uint64_t want;        /* at least this many */
};

static int reached(void *arg)
{
    struct total *t = arg;
    uint64_t sum = 0;
    for (int i = 0; i < t->n; i++) {
        sum += stored(t->cs[i]);
    }
    return sum >= t->want;
}

/* The consumer holds at least one partition. */
static int has_partitions(void *arg)
{
    struct kt_kafka_stats ks;
    kt_kafka_source_stats(((struct consumer *)arg)->src, &ks);
    return ks.assigned > 0;
}

static void wait_stored(struct consumer *c, uint64_t want)
{
    struct consumer *cs[1] = {c};
    struct total t = {cs, 1, want};
    if (wait_for(reached, &t) != 0) {
        fail_msg("%s: %llu events stored after %d s, expected %llu", c->db,
                 (unsigned long long)stored(c), DEADLINE_S, (unsigned long long)want);
    }
}

/* Stop the pipeline like SIGTERM, then close (commit, leave the group) and close the store. */
static void consumer_stop(struct consumer *c)
{
    if (c->running) {
        c->stop = 1;
        pthread_join(c->thread, NULL);
        c->running = 0;
        assert_int_equal(c->rc, 0);
    }
    kt_source_destroy(c->src);
    c->src = NULL;
    kt_store_close(c->store);
    c->store = NULL;
}

/* ---- reading results ---- */

/* The first column of the first row of sql, as text (static buffer). */
static const char *query(const char *db, const char *sql)
{
    static char out[4096];
    sqlite3 *h = NULL;
    sqlite3_stmt *q = NULL;
    size_t n = 0;

    out[0] = '\0';
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        kt_raw_register(h) != 0 || sqlite3_prepare_v2(h, sql, -1, &q, NULL) != SQLITE_OK) {
        fail_msg("%s: %s", sql, sqlite3_errmsg(h));
    }
    while (sqlite3_step(q) == SQLITE_ROW && n < sizeof(out)) {
        for (int i = 0; i < sqlite3_column_count(q) && n < sizeof(out); i++) {
            const char *v = (const char *)sqlite3_column_text(q, i);
            n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i > 0 ? "|" : "",
                                  v != NULL ? v : "NULL");
        }
        if (n < sizeof(out)) {
            n += (size_t)snprintf(out + n, sizeof(out) - n, "\n");
        }
    }
    if (n > 0 && out[n - 1] == '\n') {
        out[n - 1] = '\0';
    }
    sqlite3_finalize(q);
    sqlite3_close(h);
    return out;
}

static long long count(const char *db, const char *sql)
{
    return atoll(query(db, sql));
}

/* ---- the tests ---- */

static void test_kafka_one_consumer_stores_exactly_the_events_produced(void **state)
{
    struct fx *f = *state;
    struct consumer c;
    enum { N = 3000 };

    produce_events(f, "one", 0, N);
    consumer_open(f, &c, "one", "g-one", "audit");
    consumer_start(&c);
    wait_stored(&c, N);
    consumer_stop(&c);
    assert_int_equal(count(c.db, "SELECT count(*) FROM events"), N);
    assert_int_equal(count(c.db, "SELECT count(DISTINCT audit_id) FROM events"), N);
    assert_int_equal(count(c.db, "SELECT count(*) FROM rejects"), 0);
    /* each partition's next offset is its message count; origins name topic/partition */
    assert_string_equal(query(c.db, "SELECT group_concat(partition || ':' || next_offset, ' ')"
                                    " FROM (SELECT * FROM ckpt_kafka ORDER BY partition)"),
                        "0:500 1:500 2:500 3:500 4:500 5:500");
    assert_string_equal(query(c.db, "SELECT origin, count(*), min(offset), max(offset) FROM"
                                    " v_events WHERE origin = 'kafka:audit/4'"),
                        "kafka:audit/4|500|0|499");
    assert_string_equal(query(c.db, "SELECT user, verb, resource FROM v_events WHERE audit_id"
                                    " = 'one-9'"),
                        "user-2|list|pods");
}

static void test_kafka_every_message_shape_is_stored_and_malformed_ones_rejected(void **state)
{
    struct fx *f = *state;
    struct consumer c;
    char ev[8][1024], msg[8192];
    /* the same event as a JSON string's body: quotes escaped */
    char esc[2048];

    for (int i = 0; i < 8; i++) {
        event(ev[i], sizeof(ev[i]), "shape", i);
    }
    size_t k = 0;
    for (const char *p = ev[3]; *p != '\0'; p++) {
        if (*p == '"') {
            esc[k++] = '\\';
        }
        esc[k++] = *p;
    }
    esc[k] = '\0';
    /* offset 0: a bare event; 1: with shipper keys; 2: an EventList of two */
    produce(f, "shapes", 0, ev[0], strlen(ev[0]));
    snprintf(msg, sizeof(msg), "{\"@timestamp\":1714564800.5,\"log_type\":\"audit\",%s", ev[1] + 1);
    produce(f, "shapes", 0, msg, strlen(msg));
    snprintf(msg, sizeof(msg),
             "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\","
             "\"metadata\":{},\"items\":[%s,%s]}",
             ev[2], ev[4]);
    produce(f, "shapes", 0, msg, strlen(msg));
    /* 3: Fluent Bit's {"log": "<string>"}; 4: Vector's {"message": ...} holding an object */
    snprintf(msg, sizeof(msg), "{\"log\":\"%s\\n\",\"stream\":\"stdout\",\"time\":\"t\"}", esc);
    produce(f, "shapes", 0, msg, strlen(msg));
    snprintf(msg, sizeof(msg), "{\"message\":%s,\"host\":\"node-1\",\"source_type\":\"file\"}",
             ev[5]);
    produce(f, "shapes", 0, msg, strlen(msg));
    /* 5: an array; 6: an Azure envelope with one audit record and one of another category */
    snprintf(msg, sizeof(msg), "[%s]", ev[6]);
    produce(f, "shapes", 0, msg, strlen(msg));
    snprintf(msg, sizeof(msg),
             "{\"records\":[{\"category\":\"kube-audit\",\"properties\":{\"log\":%s}},"
             "{\"category\":\"kube-apiserver\",\"properties\":{\"log\":\"I0501 started\"}}]}",
             ev[7]);
    produce(f, "shapes", 0, msg, strlen(msg));
    /* 7..10: malformed; 11: an object that is no event; 12: a good one after them */
    produce(f, "shapes", 0, "not json at all", 15);
    produce(f, "shapes", 0, "{\"log\":\"plain text line\"}", 25);
    produce(f, "shapes", 0, "", 0);
    produce(f, "shapes", 0, "{\"auditID\":\"cut", 15);
    produce(f, "shapes", 0, "{\"hello\":\"world\"}", 17);
    event(msg, sizeof(msg), "after", 0);
    produce(f, "shapes", 0, msg, strlen(msg));
    flush(f);

    consumer_open(f, &c, "shapes", "g-shapes", "shapes");
    consumer_start(&c);
    wait_stored(&c, 9);
    for (int i = 0; i < 100 && count(c.db, "SELECT count(*) FROM rejects") < 5; i++) {
        usleep(20000);
    }
    consumer_stop(&c);
    assert_int_equal(count(c.db, "SELECT count(*) FROM events"), 9);
    assert_string_equal(query(c.db, "SELECT group_concat(audit_id, ' ') FROM (SELECT audit_id"
                                    " FROM events ORDER BY offset, audit_id)"),
                        "shape-0 shape-1 shape-2 shape-4 shape-3 shape-5 shape-6 shape-7 after-0");
    assert_string_equal(query(c.db, "SELECT origin, offset, reason FROM rejects ORDER BY offset"),
                        "kafka:shapes/0|7|not JSON: text outside any JSON value\n"
                        "kafka:shapes/0|8|not JSON: text outside any JSON value\n"
                        "kafka:shapes/0|9|empty message\n"
                        "kafka:shapes/0|10|truncated JSON at end of input\n"
                        "kafka:shapes/0|11|not an audit event: no auditID, stage or "
                        "stageTimestamp");
    assert_string_equal(query(c.db, "SELECT text FROM rejects WHERE offset = 8"),
                        "plain text line");
    assert_string_equal(query(c.db, "SELECT next_offset FROM ckpt_kafka"), "13");
}

static void test_kafka_consumer_stopped_mid_stream_resumes_without_loss_or_duplicates(void **state)
{
    struct fx *f = *state;
    struct consumer c;
    enum { N = 6000 };

    produce_events(f, "mid", 0, N);
    consumer_open(f, &c, "mid", "g-mid", "audit");
    consumer_start(&c);
    wait_stored(&c, N / 4);
    consumer_stop(&c);
    long long first = count(c.db, "SELECT count(*) FROM events");
    assert_true(first >= N / 4);
    /* a new group: Kafka knows no offsets for it, so only the database says where to resume
     * (as after a crash between the database commit and Kafka's) */
    consumer_open(f, &c, "mid", "g-mid-2", "audit");
    consumer_start(&c);
    wait_stored(&c, (uint64_t)(N - first));
    consumer_stop(&c);
    assert_int_equal(c.res.st.duplicates, 0); /* nothing read twice */
    assert_int_equal(count(c.db, "SELECT count(*) FROM events"), N);
    assert_int_equal(count(c.db, "SELECT count(DISTINCT audit_id) FROM events"), N);
    /* and a third run of the first group, with more events produced meanwhile */
    produce_events(f, "mid", N, 600);
    consumer_open(f, &c, "mid", "g-mid", "audit");
    consumer_start(&c);
    wait_stored(&c, 600);
    consumer_stop(&c);
    assert_int_equal(c.res.st.duplicates, 0);
    assert_int_equal(count(c.db, "SELECT count(*) FROM events"), N + 600);
}

/* Across two shards: events in both, and distinct events in either. */
static void shards(const char *a, const char *b, int *overlap, int *distinct)
{
    char sql[512];
    sqlite3 *h = NULL;
    sqlite3_stmt *q = NULL;

    assert_int_equal(sqlite3_open(a, &h), SQLITE_OK);
    snprintf(sql, sizeof(sql), "ATTACH '%s' AS b", b);
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h,
                                        "SELECT (SELECT count(*) FROM main.events JOIN b.events"
                                        " USING (audit_id)), (SELECT count(*) FROM (SELECT"
                                        " audit_id FROM main.events UNION SELECT audit_id FROM"
                                        " b.events))",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    *overlap = sqlite3_column_int(q, 0);
    *distinct = sqlite3_column_int(q, 1);
    sqlite3_finalize(q);
    sqlite3_close(h);
}

/* Two shards' databases hold want distinct events between them. */
struct both_shards {
    const char *a, *b;
    int want;
};

static int shards_hold(void *arg)
{
    const struct both_shards *s = arg;
    int overlap = 0, distinct = 0;
    shards(s->a, s->b, &overlap, &distinct);
    return distinct >= s->want;
}

static void test_kafka_partitions_handed_over_between_shards_are_stored_once(void **state)
{
    struct fx *f = *state;
    struct consumer a, b;
    int overlap = -1, distinct = -1;
    enum { N = 9000 };

    /* a stores the first third, then leaves the group (revocation commits its offsets) */
    produce_events(f, "hand", 0, N / 3);
    consumer_open(f, &a, "hand-a", "g-hand", "audit");
    consumer_start(&a);
    wait_stored(&a, N / 3);
    consumer_stop(&a);
    /* b, with an empty database, starts from the group's committed offsets */
    produce_events(f, "hand", N / 3, N / 3);
    consumer_open(f, &b, "hand-b", "g-hand", "audit");
    consumer_start(&b);
    wait_stored(&b, N / 3);
    consumer_stop(&b);
    /* a again: its database is behind the group's offsets, which win */
    produce_events(f, "hand", 2 * (N / 3), N / 3);
    consumer_open(f, &a, "hand-a", "g-hand", "audit");
    consumer_start(&a);
    wait_stored(&a, N / 3);
    consumer_stop(&a);
    assert_int_equal(a.res.st.duplicates, 0);
    assert_int_equal(count(a.db, "SELECT count(*) FROM events"), 2 * (N / 3));
    assert_int_equal(count(b.db, "SELECT count(*) FROM events"), N / 3);
    shards(a.db, b.db, &overlap, &distinct);
    assert_int_equal(overlap, 0);
    assert_int_equal(distinct, N);
}

static void test_kafka_concurrent_shards_lose_nothing_while_partitions_move(void **state)
{
    struct fx *f = *state;
    struct consumer a, b;
    int overlap = -1, distinct = -1;
    enum { N = 12000 };

    produce_events(f, "move", 0, N / 2);
    consumer_open(f, &a, "move-a", "g-move", "audit");
    consumer_start(&a);
    wait_stored(&a, 1000);
    /* b joins mid-stream: a's revocation waits for its batches in flight and drops the
     * revoked partitions' records from the batch it is filling */
    consumer_open(f, &b, "move-b", "g-move", "audit");
    consumer_start(&b);
    /* the second half only once b has its share: on a loaded machine the rebalance can take
     * longer than a needs to read everything, and b would then have nothing to store */
    assert_int_equal(wait_for(has_partitions, &b), 0);
    produce_events(f, "move", N / 2, N / 2);
    struct consumer *both[2] = {&a, &b};
    struct total t = {both, 2, N / 2 + 1000};
    assert_int_equal(wait_for(reached, &t), 0);
    /* a leaves mid-stream: its partitions move to b */
    consumer_stop(&a);
    /* b stores the rest: wait for every event in one shard or the other (counting b's rows
     * is not enough: the mock's rebalance window can give b some of a's again) */
    struct both_shards all = {a.db, b.db, N};
    assert_int_equal(wait_for(shards_hold, &all), 0);
    consumer_stop(&b);
    assert_true(count(a.db, "SELECT count(*) FROM events") > 0);
    assert_true(count(b.db, "SELECT count(*) FROM events") > 0);
    /* within each shard nothing twice (UNIQUE key); across shards nothing lost */
    assert_int_equal(count(a.db, "SELECT count(*) - count(DISTINCT audit_id) FROM events"), 0);
    assert_int_equal(count(b.db, "SELECT count(*) - count(DISTINCT audit_id) FROM events"), 0);
    shards(a.db, b.db, &overlap, &distinct);
    assert_int_equal(distinct, N);
    /* Kafka accepts a member's commit while its group prepares a rebalance, so the revoking
     * member's offsets reach the next owner; librdkafka's mock cluster refuses commits
     * during a rebalance, so here the batches stored in that window can be stored again by
     * the partition's next owner, in its own shard (see README: Kafka) */
    print_message("events stored in both shards: %d of %d (mock cluster rebalance window)\n",
                  overlap, N);
}

static void test_kafka_broker_down_and_up_loses_nothing(void **state)
{
    struct fx *f = *state;
    struct consumer c;
    enum { N = 6000 };

    produce_events(f, "down", 0, N / 2);
    consumer_open(f, &c, "down", "g-down", "audit");
    consumer_start(&c);
    wait_stored(&c, N / 4);
    /* a broker leading two of the partitions (and maybe the group's coordinator) goes away */
    assert_int_equal(rd_kafka_mock_broker_set_down(f->mc, 2), 0);
    usleep(1500000);
    assert_int_equal(rd_kafka_mock_broker_set_up(f->mc, 2), 0);
    produce_events(f, "down", N / 2, N / 2);
    wait_stored(&c, N);
    consumer_stop(&c);
    assert_int_equal(count(c.db, "SELECT count(*) FROM events"), N);
    assert_int_equal(count(c.db, "SELECT count(DISTINCT audit_id) FROM events"), N);
}

static void test_kafka_unreachable_brokers_and_bad_properties_fail_clearly(void **state)
{
    (void)state;
    const char *topics[] = {"audit"};
    const char *bad[] = {"no.such.property=1"};
    const char *nokv[] = {"fetch.wait.max.ms"};
    struct kt_source *src = NULL;
    char err[512] = "";
    struct kt_kafka_opts o = {.brokers = "127.0.0.1:1",
                              .topics = topics,
                              .ntopics = 1,
                              .group = "g",
                              .connect_timeout_ms = 1000};

    assert_int_equal(kt_kafka_source_create(&o, &src, err, sizeof(err)), KT_EIO);
    assert_null(src);
    assert_non_null(strstr(err, "cannot reach the Kafka brokers 127.0.0.1:1"));
    o.props = bad;
    o.nprops = 1;
    assert_int_equal(kt_kafka_source_create(&o, &src, err, sizeof(err)), KT_EINVAL);
    assert_non_null(strstr(err, "-X no.such.property=1: No such configuration property"));
    o.props = nokv;
    assert_int_equal(kt_kafka_source_create(&o, &src, err, sizeof(err)), KT_EINVAL);
    assert_non_null(strstr(err, "expected key=value"));
    o.props = NULL;
    o.nprops = 0;
    o.group = NULL;
    assert_int_equal(kt_kafka_source_create(&o, &src, err, sizeof(err)), KT_EINVAL);
}

static void test_kafka_alerts_producer_delivers_keyed_json(void **state)
{
    struct fx *f = *state;
    struct kt_kafka_producer *p = NULL;
    char err[512] = "";
    uint64_t delivered = 0, failed = 0;

    assert_int_equal(kt_kafka_producer_create(f->brokers, "alerts", fast_props, NFAST, 5000, &p,
                                              err, sizeof(err)),
                     0);
    for (int i = 0; i < 50; i++) {
        char v[64];
        int n = snprintf(v, sizeof(v), "{\"rule\":\"r%d\"}", i);
        assert_int_equal(kt_kafka_produce(p, "prod-eu", 7, v, (size_t)n), 0);
    }
    assert_int_equal(kt_kafka_producer_flush(p, 10000), 0);
    kt_kafka_producer_counts(p, &delivered, &failed);
    assert_int_equal(delivered, 50);
    assert_int_equal(failed, 0);
    kt_kafka_producer_destroy(p);

    /* read them back: one key, so one partition, in order */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", f->brokers, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "g-read", err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(l, "alerts", 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_topic_partition_list_add(l, "alerts", 1)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    int got = 0, in_order = 1, partition = -1;
    for (int i = 0; i < 500 && got < 50; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 20);
        if (m == NULL) {
            continue;
        }
        if (m->err == 0) {
            char want[64];
            snprintf(want, sizeof(want), "{\"rule\":\"r%d\"}", got);
            in_order &= m->len == strlen(want) && memcmp(m->payload, want, m->len) == 0;
            in_order &= m->key_len == 7 && memcmp(m->key, "prod-eu", 7) == 0;
            in_order &= partition < 0 || partition == m->partition;
            partition = m->partition;
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    assert_int_equal(got, 50);
    assert_true(in_order);
}

static int paused_once(void *arg)
{
    struct kt_kafka_stats st;
    kt_kafka_source_stats(((struct consumer *)arg)->src, &st);
    return st.pauses > 0;
}

static void test_kafka_store_behind_pauses_partitions_and_loses_nothing(void **state)
{
    struct fx *f = *state;
    struct consumer c;
    struct kt_kafka_stats st;
    sqlite3 *lock = NULL;
    enum { N = 3000 };

    f->batch_records = 50; /* the pipeline's few batches fill up long before N */
    produce_events(f, "slow", 0, N);
    consumer_open(f, &c, "slow", "g-slow", "audit");
    /* another connection holds the write lock: the writer waits (its busy timeout is 5 s) */
    assert_int_equal(sqlite3_open(c.db, &lock), SQLITE_OK);
    assert_int_equal(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    consumer_start(&c);
    if (wait_for(paused_once, &c) != 0) {
        fail_msg("the source was never paused while the store was locked");
    }
    usleep(300000);
    kt_kafka_source_stats(c.src, &st);
    assert_true(st.messages < N); /* paused: not reading on while nothing can be stored */
    assert_int_equal(stored(&c), 0);
    assert_int_equal(sqlite3_exec(lock, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(lock);
    wait_stored(&c, N);
    kt_kafka_source_stats(c.src, &st);
    consumer_stop(&c);
    assert_true(st.pauses >= 1);
    assert_int_equal(count(c.db, "SELECT count(*) FROM events"), N);
    assert_int_equal(count(c.db, "SELECT count(DISTINCT audit_id) FROM events"), N);
    assert_int_equal(count(c.db, "SELECT sum(next_offset) FROM ckpt_kafka"), N);
}

/* Messages whose "cluster" header names their cluster, or none (then --cluster applies). */
static void test_kafka_cluster_header_names_each_messages_cluster(void **state)
{
    struct fx *f = *state;
    struct consumer c;
    static const char *const names[3] = {"east", "west", NULL};
    char buf[1024];
    enum { N = 600 };

    for (int i = 0; i < N; i++) {
        size_t len = event(buf, sizeof(buf), "hdr", i);
        const char *name = names[(i / 7) % 3]; /* runs of 7: clusters alternate inside batches */
        rd_kafka_headers_t *h = rd_kafka_headers_new(1);
        if (name != NULL) {
            rd_kafka_header_add(h, "cluster", -1, name, -1);
        }
        assert_int_equal(rd_kafka_producev(
                             f->rk, RD_KAFKA_V_TOPIC("audit"), RD_KAFKA_V_PARTITION(i % PARTITIONS),
                             RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
                         0);
    }
    flush(f);
    f->cluster = "fallback";
    f->cluster_header = "cluster";
    consumer_open(f, &c, "hdr", "g-hdr", "audit");
    consumer_start(&c);
    wait_stored(&c, N);
    consumer_stop(&c);
    /* the expected cluster of every event, recomputed from its number */
    assert_int_equal(count(c.db, "SELECT count(*) FROM v_events WHERE cluster = CASE"
                                 " (CAST(substr(audit_id, 5) AS INTEGER) / 7) % 3"
                                 " WHEN 0 THEN 'east' WHEN 1 THEN 'west' ELSE 'fallback' END"),
                     N);
    assert_string_equal(query(c.db, "SELECT group_concat(cluster || ':' || n, ' ') FROM (SELECT"
                                    " cluster, count(*) AS n FROM v_events GROUP BY 1 ORDER BY 1)"),
                        "east:203 fallback:196 west:201");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_kafka_one_consumer_stores_exactly_the_events_produced),
        T(test_kafka_every_message_shape_is_stored_and_malformed_ones_rejected),
        T(test_kafka_consumer_stopped_mid_stream_resumes_without_loss_or_duplicates),
        T(test_kafka_partitions_handed_over_between_shards_are_stored_once),
        T(test_kafka_concurrent_shards_lose_nothing_while_partitions_move),
        T(test_kafka_broker_down_and_up_loses_nothing),
        T(test_kafka_unreachable_brokers_and_bad_properties_fail_clearly),
        T(test_kafka_alerts_producer_delivers_keyed_json),
        T(test_kafka_store_behind_pauses_partitions_and_loses_nothing),
        T(test_kafka_cluster_header_names_each_messages_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
