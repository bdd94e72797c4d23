/*
 * kafka.c: the Kafka source and the alerts producer (see kafka.h), on librdkafka's
 * high-level consumer.
 *
 * Threads. next(), stop(), destroy() and librdkafka's callbacks (rebalance, errors, commit
 * results: the main queue is forwarded to the consumer queue) run on the pipeline's thread,
 * inside rd_kafka_consumer_poll(). ack() runs on the store's writer thread; it touches only
 * librdkafka's thread-safe calls and the counters under mu. So the partition table and the
 * batch being filled (cur) belong to the pipeline thread alone.
 *
 * Where a partition resumes. Each database stores, with its events, the next offset of every
 * partition it read. Several processes with their own databases share the partitions of a
 * group, and a partition moves between them at each rebalance, so a database's offset for a
 * partition can be stale: another process may have stored messages after it since. Kafka's
 * committed offset is only ever moved after a database committed everything before it (ack()
 * commits after the store's COMMIT; revocation commits synchronously once the batches in
 * flight are committed), so it never runs ahead of what some database holds. Seeking to the
 * larger of the two therefore skips nothing that is not stored somewhere, and repeats nothing
 * this database stored. A process that dies (SIGKILL, power) between its database commit and
 * the asynchronous Kafka commit, or whose commit at revocation the brokers refuse (librdkafka's
 * mock cluster does during a rebalance), leaves a gap: the next owner of its partitions, a
 * different process, repeats those few batches into its own database (each database is still
 * free of duplicates, and a restart of the same process resumes exactly from its database).
 *
 * Backpressure. While the writer is behind, the pipeline calls pause() instead of next():
 * the assignment is paused, and pause() keeps polling (without taking messages) so that
 * rebalances are served and max.poll.interval.ms never expires; resume() resumes fetching.
 * librdkafka's prefetch queue is bounded (queued.max.messages.kbytes, 128 MiB by default
 * here: measured on a 119-partition topic, 16 MiB held one consumer to about 40,000 events/s
 * and 128 MiB let it reach 120,000), so memory stays bounded.
 */
#include "kafka.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "envelope.h"

#define MOD "ingest:kafka"

enum {
    LIMIT_SLOTS = 8,              /* distinct error codes remembered by the rate limiter */
    LIMIT_US = 30 * 1000000,      /* an error code is logged once per 30 s */
    REVOKE_WAIT_MS = 60 * 1000,   /* revocation waits this long for batches in flight */
    COMMITTED_TIMEOUT_MS = 10000, /* fetching the group's committed offsets on assignment */
};

/* Logs each error code at most once per LIMIT_US, with the count of what it held back. */
struct limiter {
    int code[LIMIT_SLOTS];      /* error codes seen */
    int64_t last[LIMIT_SLOTS];  /* when each was last logged, 0 for a free slot */
    unsigned held[LIMIT_SLOTS]; /* occurrences not logged since */
};

/* Whether to log error code now; *held receives how many were not logged before it. */
static int limiter_pass(struct limiter *l, int code, unsigned *held)
{
    int64_t now = kt_now_mono_us();
    int slot = 0;
    for (int i = 0; i < LIMIT_SLOTS; i++) {
        if (l->last[i] != 0 && l->code[i] == code) {
            if (now - l->last[i] < LIMIT_US) {
                l->held[i]++;
                return 0;
            }
            slot = i;
            goto log;
        }
        if (l->last[i] < l->last[slot]) {
            slot = i; /* free or oldest */
        }
    }
    l->code[slot] = code;
    l->held[slot] = 0;
log:
    *held = l->held[slot];
    l->held[slot] = 0;
    l->last[slot] = now;
    return 1;
}

/* librdkafka's own log lines: its errors reach us through error_cb and message errors, so
 * they are logged there, once; the rest is debug, but configuration warnings matter. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (strcmp(fac, "CONFWARN") == 0) {
        /* the alerts producer gets the consumer's -X properties too: not worth a warning */
        if (rd_kafka_type(rk) == RD_KAFKA_CONSUMER) {
            kt_warn(MOD, "%s", buf);
        }
    } else if (level <= 2) {
        kt_error(MOD, "%s: %s", fac, buf);
    } else {
        kt_debug(MOD, "%s: %s", fac, buf);
    }
}

/* Apply "key=value" properties to conf. 0, or KT_EINVAL with errstr naming the property. */
static int apply_props(rd_kafka_conf_t *conf, const char *const *props, size_t n, char *errstr,
                       size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(props[i], '=');
        char key[256], err[256] = "";
        if (eq == NULL || eq == props[i] || (size_t)(eq - props[i]) >= sizeof(key)) {
            snprintf(errstr, errlen, "-X %s: expected key=value (a librdkafka property)", props[i]);
            return KT_EINVAL;
        }
        memcpy(key, props[i], (size_t)(eq - props[i]));
        key[eq - props[i]] = '\0';
        if (rd_kafka_conf_set(conf, key, eq + 1, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            snprintf(errstr, errlen, "-X %s: %s", props[i], err);
            return KT_EINVAL;
        }
    }
    return 0;
}

/* Set a property we know to be valid; 0 or KT_EINVAL. */
static int set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
               size_t errlen)
{
    char err[256] = "";
    if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errlen, "%s=%s: %s", key, value, err);
        return KT_EINVAL;
    }
    return 0;
}

/* Wait until a broker answers a metadata request. 0, or KT_EIO with errstr set. */
static int check_brokers(rd_kafka_t *rk, const char *brokers, int timeout_ms, char *errstr,
                         size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errlen, "cannot reach the Kafka brokers %s within %d s: %s", brokers,
                 timeout_ms / 1000, rd_kafka_err2str(err));
        return KT_EIO;
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}

/* ---- the source ---- */

/* A partition assigned to this consumer. */
struct part {
    char *topic;       /* topic name (heap) */
    int32_t partition; /* partition number */
    char *origin;      /* "kafka:<topic>/<partition>": the records' origin (heap) */
    int origin_idx;    /* its index in the batch being filled, -1 when not interned yet */
};

struct kafka_src {
    struct kt_source base;     /* must be first */
    rd_kafka_t *rk;            /* the consumer */
    struct kt_envelope *env;   /* message shapes */
    const char *cluster;       /* cluster tag for every batch, or NULL (borrowed) */
    size_t cluster_len;        /* its length */
    char *cluster_header;      /* header naming a message's cluster, or NULL (heap) */
    size_t batch_records;      /* records per batch at most */
    size_t batch_bytes;        /* bytes per batch, soft limit */
    int linger_ms;             /* how long a batch with records waits for more */
    kt_kafka_lookup_fn lookup; /* the database's offsets, or NULL */
    void *lookup_ctx;          /* passed to lookup */

    /* the pipeline thread's */
    struct part *parts;       /* the assignment */
    size_t nparts;            /* partitions in it */
    size_t capparts;          /* allocated */
    size_t last;              /* index of the last partition a message came from */
    struct kt_batch *cur;     /* the batch next() is filling, else NULL */
    rd_kafka_message_t *held; /* read but not taken: it starts the next batch */
    int paused;               /* the assignment is paused (the store is behind) */
    int stopping;             /* stop() was called */
    char fatal[512];          /* a fatal librdkafka error, "" if none */
    struct limiter lim;       /* error logging */

    /* shared with ack() on the writer thread */
    pthread_mutex_t mu;       /* guards what follows */
    pthread_cond_t cv;        /* inflight went down */
    unsigned inflight;        /* batches returned by next() and not acknowledged yet */
    int failed;               /* a batch could not be stored (its status), 0 if none */
    struct kt_kafka_stats st; /* counters */
};

static struct part *find_part(struct kafka_src *s, const char *topic, int32_t partition)
{
    if (s->last < s->nparts && s->parts[s->last].partition == partition &&
        strcmp(s->parts[s->last].topic, topic) == 0) {
        return &s->parts[s->last];
    }
    for (size_t i = 0; i < s->nparts; i++) {
        if (s->parts[i].partition == partition && strcmp(s->parts[i].topic, topic) == 0) {
            s->last = i;
            return &s->parts[i];
        }
    }
    return NULL;
}

static int add_part(struct kafka_src *s, const char *topic, int32_t partition)
{
    if (find_part(s, topic, partition) != NULL) {
        return 0;
    }
    if (s->nparts == s->capparts) {
        size_t cap = s->capparts ? s->capparts * 2 : 16;
        struct part *p = realloc(s->parts, cap * sizeof(*p));
        if (p == NULL) {
            return KT_ENOMEM;
        }
        s->parts = p;
        s->capparts = cap;
    }
    struct part *p = &s->parts[s->nparts];
    size_t olen = strlen(topic) + 32;
    p->topic = strdup(topic);
    p->origin = malloc(olen);
    if (p->topic == NULL || p->origin == NULL) {
        free(p->topic);
        free(p->origin);
        return KT_ENOMEM;
    }
    snprintf(p->origin, olen, "kafka:%s/%d", topic, (int)partition);
    p->partition = partition;
    p->origin_idx = -1;
    s->nparts++;
    return 0;
}

static void remove_part(struct kafka_src *s, const char *topic, int32_t partition)
{
    struct part *p = find_part(s, topic, partition);
    if (p == NULL) {
        return;
    }
    free(p->topic);
    free(p->origin);
    *p = s->parts[--s->nparts];
    s->last = 0;
}

static void clear_parts(struct kafka_src *s)
{
    while (s->nparts > 0) {
        s->nparts--;
        free(s->parts[s->nparts].topic);
        free(s->parts[s->nparts].origin);
    }
    s->last = 0;
}

/* Forget which origin index each partition has in the batch (a new batch, or the table
 * changed): kt_batch_origin() finds them again by name. */
static void forget_origins(struct kafka_src *s)
{
    for (size_t i = 0; i < s->nparts; i++) {
        s->parts[i].origin_idx = -1;
    }
}

/* Wait until every batch handed to the pipeline is acknowledged, or REVOKE_WAIT_MS. */
static void wait_inflight(struct kafka_src *s)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += REVOKE_WAIT_MS / 1000;
    pthread_mutex_lock(&s->mu);
    while (s->inflight > 0) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) != 0) {
            kt_warn(MOD,
                    "revocation: %u batch(es) still not stored after %d s; letting the "
                    "partitions go (their next owner may store them again)",
                    s->inflight, REVOKE_WAIT_MS / 1000);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* Drop the records and checkpoints of the revoked partitions from the batch being filled:
 * they are not ours to store any more, and their next owner reads them from the committed
 * offset. */
static void drop_revoked(struct kafka_src *s, const rd_kafka_topic_partition_list_t *revoked)
{
    struct kt_batch *b = s->cur;
    size_t kept = 0;
    uint64_t dropped = 0;

    if (s->held != NULL) {
        for (int k = 0; k < revoked->cnt; k++) {
            if (revoked->elems[k].partition == s->held->partition &&
                strcmp(revoked->elems[k].topic, rd_kafka_topic_name(s->held->rkt)) == 0) {
                rd_kafka_message_destroy(s->held);
                s->held = NULL;
                break;
            }
        }
    }
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < b->nrecs; i++) {
        const char *name = b->origins[b->recs[i].origin];
        int gone = 0;
        for (int k = 0; k < revoked->cnt && !gone; k++) {
            const rd_kafka_topic_partition_t *rp = &revoked->elems[k];
            struct part *p = find_part(s, rp->topic, rp->partition);
            gone = p != NULL && strcmp(p->origin, name) == 0;
        }
        if (gone) {
            dropped++;
        } else {
            b->recs[kept++] = b->recs[i];
        }
    }
    b->nrecs = kept;
    for (int k = 0; k < revoked->cnt; k++) {
        kt_batch_ckpt_kafka_drop(b, revoked->elems[k].topic, revoked->elems[k].partition);
    }
    if (dropped > 0) {
        kt_debug(MOD, "revocation: %llu record(s) of revoked partitions dropped from the batch",
                 (unsigned long long)dropped);
        pthread_mutex_lock(&s->mu);
        s->st.dropped += dropped;
        pthread_mutex_unlock(&s->mu);
    }
}

/* Seek each assigned partition to max(database offset, committed offset), then assign. */
static void on_assign(struct kafka_src *s, rd_kafka_topic_partition_list_t *parts, int coop)
{
    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t cerr = rd_kafka_committed(s->rk, committed, COMMITTED_TIMEOUT_MS);
    char line[1024];
    size_t n = 0;

    if (cerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        kt_warn(MOD, "cannot fetch the group's committed offsets: %s; resuming from the database",
                rd_kafka_err2str(cerr));
    }
    line[0] = '\0';
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        const rd_kafka_topic_partition_t *c = &committed->elems[i];
        int64_t db = -1, kafka = -1;
        const char *from = "earliest";
        if (s->lookup != NULL) {
            int rc = s->lookup(s->lookup_ctx, p->topic, p->partition, &db);
            if (rc != 0) {
                if (rc != KT_ENOENT) {
                    kt_error(MOD, "%s/%d: cannot read the stored offset (%s)", p->topic,
                             (int)p->partition, kt_strerror(rc));
                }
                db = -1;
            }
        }
        if (cerr == RD_KAFKA_RESP_ERR_NO_ERROR && c->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
            c->offset >= 0) {
            kafka = c->offset;
        }
        if (db >= 0 || kafka >= 0) {
            p->offset = db >= kafka ? db : kafka;
            from = db >= kafka ? "database" : "committed";
        } else {
            p->offset = RD_KAFKA_OFFSET_INVALID; /* committed, else auto.offset.reset */
        }
        if (add_part(s, p->topic, p->partition) != 0) {
            kt_error(MOD, "out of memory");
        }
        if (n < sizeof(line) && p->offset >= 0) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s/%d@%lld (%s)", n ? ", " : "",
                                  p->topic, (int)p->partition, (long long)p->offset, from);
        } else if (n < sizeof(line)) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s/%d@%s", n ? ", " : "", p->topic,
                                  (int)p->partition, from);
        }
    }
    rd_kafka_topic_partition_list_destroy(committed);
    forget_origins(s);
    kt_info(MOD, "assigned %d partition(s): %s", parts->cnt, parts->cnt > 0 ? line : "-");
    if (coop) {
        rd_kafka_error_t *e = rd_kafka_incremental_assign(s->rk, parts);
        if (e != NULL) {
            kt_error(MOD, "assign: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_resp_err_t e = rd_kafka_assign(s->rk, parts);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            kt_error(MOD, "assign: %s", rd_kafka_err2str(e));
        }
    }
    if (s->paused) {
        rd_kafka_pause_partitions(s->rk, parts); /* the store is still behind */
    }
}

/* Let revoked partitions go once what was read of them is stored and committed. */
static void on_revoke(struct kafka_src *s, rd_kafka_topic_partition_list_t *parts, int coop)
{
    wait_inflight(s);
    drop_revoked(s, parts);
    if (!rd_kafka_assignment_lost(s->rk)) {
        /* the offsets ack() stored: the next owner starts right after what we stored */
        rd_kafka_resp_err_t e = rd_kafka_commit(s->rk, NULL, 0);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            kt_warn(MOD, "revocation: committing offsets: %s", rd_kafka_err2str(e));
        }
    }
    for (int i = 0; i < parts->cnt; i++) {
        remove_part(s, parts->elems[i].topic, parts->elems[i].partition);
    }
    forget_origins(s);
    kt_info(MOD, "revoked %d partition(s)%s", parts->cnt,
            rd_kafka_assignment_lost(s->rk) ? " (assignment lost)" : "");
    if (coop) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(s->rk, parts);
        if (e != NULL) {
            kt_error(MOD, "unassign: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_assign(s->rk, NULL);
        clear_parts(s);
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kafka_src *s = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;

    pthread_mutex_lock(&s->mu);
    s->st.rebalances++;
    pthread_mutex_unlock(&s->mu);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(s, parts, coop);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        on_revoke(s, parts, coop);
    } else {
        kt_error(MOD, "rebalance failed: %s", rd_kafka_err2str(err));
        wait_inflight(s);
        drop_revoked(s, parts);
        rd_kafka_assign(rk, NULL);
        clear_parts(s);
    }
    pthread_mutex_lock(&s->mu);
    s->st.assigned = (uint32_t)s->nparts;
    pthread_mutex_unlock(&s->mu);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_src *s = opaque;
    unsigned held = 0;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char msg[256] = "";
        rd_kafka_fatal_error(rk, msg, sizeof(msg));
        snprintf(s->fatal, sizeof(s->fatal), "Kafka: fatal error: %s", msg);
        return;
    }
    if (limiter_pass(&s->lim, err, &held)) {
        if (held > 0) {
            kt_warn(MOD, "%s (%u more like it not shown)", reason, held);
        } else {
            kt_warn(MOD, "%s", reason);
        }
    }
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    (void)offsets;
    (void)opaque;
    /* Kafka's offsets are for monitoring and for the next owner; the database is the truth */
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        kt_debug(MOD, "offset commit: %s", rd_kafka_err2str(err));
    }
}

/* A message that carries an error instead of data. Returns KT_EIO when it is fatal. */
static int message_error(struct kafka_src *s, const rd_kafka_message_t *m)
{
    unsigned held = 0;

    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        return 0;
    }
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        char msg[256] = "";
        rd_kafka_fatal_error(s->rk, msg, sizeof(msg));
        snprintf(s->fatal, sizeof(s->fatal), "Kafka: fatal error: %s", msg);
        return KT_EIO;
    }
    if (limiter_pass(&s->lim, m->err, &held)) {
        if (m->rkt != NULL) {
            kt_error(MOD, "topic %s: %s", rd_kafka_topic_name(m->rkt), rd_kafka_message_errstr(m));
        } else {
            kt_error(MOD, "%s", rd_kafka_message_errstr(m));
        }
    }
    return 0;
}

enum { HOLD = 1 }; /* take_message(): the message belongs in the next batch */

/* The cluster of message m: its cluster header's value, else the source's tag. */
static struct kt_str message_cluster(const struct kafka_src *s, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t n = 0;

    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, s->cluster_header, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        v != NULL && n > 0) {
        return (struct kt_str){v, n};
    }
    return s->cluster != NULL ? (struct kt_str){s->cluster, s->cluster_len} : KT_STR_NULL;
}

/* Give b the cluster of m when b is still empty; HOLD when b already holds another
 * cluster's records (a batch has one cluster), 0, or KT_ENOMEM. */
static int batch_cluster(const struct kafka_src *s, struct kt_batch *b, const rd_kafka_message_t *m)
{
    struct kt_str c = message_cluster(s, m);

    if (c.len == b->cluster.len && (c.len == 0 || memcmp(c.ptr, b->cluster.ptr, c.len) == 0)) {
        return 0;
    }
    if (b->nrecs > 0) {
        return HOLD;
    }
    if (c.len == 0) {
        b->cluster = KT_STR_NULL;
        return 0;
    }
    /* the header lives in the message: the batch keeps its own copy */
    char *copy = kt_arena_dup(&b->arena, c.ptr, c.len);
    if (copy == NULL) {
        return KT_ENOMEM;
    }
    b->cluster = (struct kt_str){copy, c.len};
    return 0;
}

/* Unwrap message m into b and move its partition's checkpoint past it; HOLD when m must
 * start the next batch instead. */
static int take_message(struct kafka_src *s, struct kt_batch *b, const rd_kafka_message_t *m,
                        struct kt_kafka_stats *d)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    struct part *p = find_part(s, topic, m->partition);
    struct kt_env_counts c = {0, 0, 0};
    int rc;

    if (p == NULL) {
        d->dropped++; /* a partition no longer ours: its next owner reads it */
        return 0;
    }
    if (s->cluster_header != NULL) {
        rc = batch_cluster(s, b, m);
        if (rc != 0) {
            return rc;
        }
    }
    if (p->origin_idx < 0) {
        p->origin_idx = kt_batch_origin(b, p->origin);
        if (p->origin_idx < 0) {
            return KT_ENOMEM;
        }
    }
    struct kt_env_batch eb = {b, (uint32_t)p->origin_idx};
    struct kt_env_sink sink = {kt_env_batch_add, &eb};
    rc = kt_envelope_open_text(s->env, m->payload, m->len, (uint64_t)m->offset, &sink, &c);
    if (rc == 0) {
        rc = kt_batch_ckpt_kafka(b, topic, m->partition, m->offset + 1);
    }
    d->messages++;
    d->records += c.records;
    d->rejects += c.rejects;
    d->skipped += c.skipped;
    s->base.skipped += c.skipped; /* what every source counts (loop thread only) */
    s->base.bytes_done += m->len;
    return rc;
}

static int fill(struct kafka_src *s, struct kt_batch *b, int timeout_ms, struct kt_kafka_stats *d)
{
    int64_t now = kt_now_mono_us();
    int64_t deadline = now + (int64_t)timeout_ms * 1000;
    int64_t linger = 0; /* when the batch must go, once it has something */

    for (;;) {
        int has = b->nrecs > 0 || b->nckpt_kafka > 0;
        if (s->fatal[0] != '\0') {
            snprintf(s->base.error, sizeof(s->base.error), "%s", s->fatal);
            return KT_EIO;
        }
        if (has && linger == 0) {
            linger = now + (int64_t)s->linger_ms * 1000;
        }
        int64_t until = has ? linger : deadline;
        if (now >= until) {
            return has ? 0 : KT_EAGAIN;
        }
        int64_t wait_ms = (until - now + 999) / 1000;
        rd_kafka_message_t *m = s->held;
        s->held = NULL;
        if (m == NULL) {
            m = rd_kafka_consumer_poll(s->rk, wait_ms > 100 ? 100 : (int)wait_ms);
        }
        now = kt_now_mono_us();
        if (m == NULL) {
            continue;
        }
        int rc =
            m->err != RD_KAFKA_RESP_ERR_NO_ERROR ? message_error(s, m) : take_message(s, b, m, d);
        if (rc == HOLD) {
            s->held = m;
            return 0;
        }
        rd_kafka_message_destroy(m);
        if (rc != 0) {
            if (s->base.error[0] == '\0') {
                snprintf(s->base.error, sizeof(s->base.error), "%s",
                         s->fatal[0] != '\0' ? s->fatal : kt_strerror(rc));
            }
            return rc;
        }
        if (b->nrecs >= s->batch_records || b->len >= s->batch_bytes) {
            return 0;
        }
    }
}

static int kafka_next(struct kt_source *base, struct kt_batch *b, int timeout_ms)
{
    struct kafka_src *s = (struct kafka_src *)base;
    struct kt_kafka_stats d = {0};
    int failed, rc;

    pthread_mutex_lock(&s->mu);
    failed = s->failed;
    pthread_mutex_unlock(&s->mu);
    if (failed != 0) {
        /* nothing after a failed batch may be acknowledged: stop, a restart resumes */
        snprintf(s->base.error, sizeof(s->base.error),
                 "a batch could not be stored (%s): stopping; a restart resumes from the "
                 "offsets in the database",
                 kt_strerror(failed));
        return KT_EIO;
    }
    if (s->stopping) {
        return KT_EOF;
    }
    if (s->cluster != NULL) {
        b->cluster = (struct kt_str){s->cluster, s->cluster_len};
    }
    s->cur = b;
    forget_origins(s);
    rc = fill(s, b, timeout_ms, &d);
    s->cur = NULL;
    pthread_mutex_lock(&s->mu);
    s->inflight += rc == 0;
    s->st.messages += d.messages;
    s->st.records += d.records;
    s->st.rejects += d.rejects;
    s->st.skipped += d.skipped;
    s->st.dropped += d.dropped;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Writer thread, after the batch's transaction. */
static void kafka_ack(struct kt_source *base, struct kt_batch *b, int status)
{
    struct kafka_src *s = (struct kafka_src *)base;

    if (status == 0 && b->ckpt_kind == KT_CKPT_KAFKA && b->nckpt_kafka > 0) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)b->nckpt_kafka);
        for (size_t i = 0; i < b->nckpt_kafka; i++) {
            const struct kt_ckpt_kafka *c = &b->ckpt_kafka[i];
            rd_kafka_topic_partition_list_add(l, c->topic, c->partition)->offset = c->next_offset;
        }
        /* stored for the synchronous commit at revocation and close; committed now for lag
         * monitoring and so that the next owner of a partition starts near here */
        rd_kafka_offsets_store(s->rk, l);
        rd_kafka_commit(s->rk, l, 1);
        rd_kafka_topic_partition_list_destroy(l);
    }
    pthread_mutex_lock(&s->mu);
    if (status != 0 && s->failed == 0) {
        s->failed = status;
    }
    if (s->inflight > 0) {
        s->inflight--;
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Pause (on != 0) or resume every assigned partition. */
static void pause_assignment(struct kafka_src *s, int on)
{
    rd_kafka_topic_partition_list_t *l = NULL;

    if (rd_kafka_assignment(s->rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    rd_kafka_resp_err_t e =
        on ? rd_kafka_pause_partitions(s->rk, l) : rd_kafka_resume_partitions(s->rk, l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        kt_warn(MOD, "%s partitions: %s", on ? "pausing" : "resuming", rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* The store is behind: stop fetching, but keep serving the group. Called again every
 * 100 ms while the pipeline waits. */
static void kafka_pause(struct kt_source *base)
{
    struct kafka_src *s = (struct kafka_src *)base;

    if (!s->paused) {
        pause_assignment(s, 1);
        s->paused = 1;
        pthread_mutex_lock(&s->mu);
        s->st.pauses++;
        pthread_mutex_unlock(&s->mu);
        kt_debug(MOD, "the store is behind: partitions paused");
    }
    /* rebalance callbacks and max.poll.interval.ms need polls; a message fetched before the
     * pause is kept for the next batch, a second one is fetched again after resume */
    rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, 0);
    if (m == NULL) {
        return;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        message_error(s, m);
    } else if (s->held == NULL) {
        s->held = m;
        return;
    } else {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
            m->offset;
        rd_kafka_error_t *e = rd_kafka_seek_partitions(s->rk, l, 0);
        if (e != NULL) {
            kt_error(MOD, "seek while paused: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        rd_kafka_topic_partition_list_destroy(l);
    }
    rd_kafka_message_destroy(m);
}

static void kafka_resume(struct kt_source *base)
{
    struct kafka_src *s = (struct kafka_src *)base;

    if (s->paused) {
        pause_assignment(s, 0);
        s->paused = 0;
        kt_debug(MOD, "the store caught up: partitions resumed");
    }
}

static void kafka_stop(struct kt_source *base)
{
    ((struct kafka_src *)base)->stopping = 1;
}

static void kafka_destroy(struct kt_source *base)
{
    struct kafka_src *s = (struct kafka_src *)base;

    if (s->rk != NULL) {
        /* the pipeline has ended: whatever it did not acknowledge will never be */
        pthread_mutex_lock(&s->mu);
        s->inflight = 0;
        pthread_mutex_unlock(&s->mu);
        s->cur = NULL;
        if (s->held != NULL) {
            rd_kafka_message_destroy(s->held);
            s->held = NULL;
        }
        /* revokes (committing the stored offsets) and leaves the group */
        rd_kafka_resp_err_t e = rd_kafka_consumer_close(s->rk);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            kt_warn(MOD, "closing the consumer: %s", rd_kafka_err2str(e));
        }
        rd_kafka_destroy(s->rk);
    }
    clear_parts(s);
    free(s->parts);
    free(s->cluster_header);
    kt_envelope_destroy(s->env);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static const struct kt_source_ops kafka_ops = {
    .name = "kafka",
    .next = kafka_next,
    .ack = kafka_ack,
    .pause = kafka_pause,
    .resume = kafka_resume,
    .stop = kafka_stop,
    .destroy = kafka_destroy,
};

int kt_kafka_source_create(const struct kt_kafka_opts *o, struct kt_source **out, char *errstr,
                           size_t errlen)
{
    struct kafka_src *s = NULL;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *topics = NULL;
    char err[512] = "";
    int rc = KT_EINVAL;

    *out = NULL;
    if (o->brokers == NULL || o->brokers[0] == '\0' || o->ntopics == 0 || o->group == NULL ||
        o->group[0] == '\0') {
        snprintf(errstr, errlen, "Kafka needs brokers, at least one topic and a group");
        return KT_EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return KT_ENOMEM;
    }
    s->base.ops = &kafka_ops;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->cluster = o->cluster;
    s->cluster_len = o->cluster != NULL ? strlen(o->cluster) : 0;
    s->batch_records = o->batch_records ? o->batch_records : 4096;
    s->batch_bytes = o->batch_bytes ? o->batch_bytes : 4u << 20;
    s->linger_ms = o->linger_ms > 0 ? o->linger_ms : 50;
    s->lookup = o->lookup;
    s->lookup_ctx = o->lookup_ctx;
    s->env = kt_envelope_create(o->max_event_size);
    if (o->cluster_header != NULL && o->cluster_header[0] != '\0') {
        s->cluster_header = strdup(o->cluster_header);
    }
    if (s->env == NULL ||
        (o->cluster_header != NULL && o->cluster_header[0] != '\0' && s->cluster_header == NULL)) {
        snprintf(errstr, errlen, "out of memory");
        rc = KT_ENOMEM;
        goto fail;
    }

    conf = rd_kafka_conf_new();
    if (set(conf, "bootstrap.servers", o->brokers, errstr, errlen) != 0 ||
        set(conf, "group.id", o->group, errstr, errlen) != 0 ||
        set(conf, "client.id", "ktrail", errstr, errlen) != 0 ||
        set(conf, "enable.auto.commit", "false", errstr, errlen) != 0 ||
        set(conf, "enable.auto.offset.store", "false", errstr, errlen) != 0 ||
        set(conf, "auto.offset.reset", "earliest", errstr, errlen) != 0 ||
        set(conf, "queued.max.messages.kbytes", "131072", errstr, errlen) != 0 ||
        /* A member killed without leaving holds its partitions until its session expires:
         * librdkafka's 45 s default kept a restarted consumer waiting about twice that
         * (the mock cluster has no static membership to skip it). Kafka's classic 10 s
         * brings a restart back in about 20 s; -X still wins. */
        set(conf, "session.timeout.ms", "10000", errstr, errlen) != 0 ||
        set(conf, "heartbeat.interval.ms", "1000", errstr, errlen) != 0 ||
        apply_props(conf, o->props, o->nprops, errstr, errlen) != 0) {
        goto fail;
    }
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (s->rk == NULL) {
        snprintf(errstr, errlen, "cannot create the Kafka consumer: %s", err);
        goto fail; /* conf is still ours */
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(s->rk);
    rc = check_brokers(s->rk, o->brokers, o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000,
                       errstr, errlen);
    if (rc != 0) {
        goto fail;
    }
    topics = rd_kafka_topic_partition_list_new((int)o->ntopics);
    for (size_t i = 0; i < o->ntopics; i++) {
        rd_kafka_topic_partition_list_add(topics, o->topics[i], RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t e = rd_kafka_subscribe(s->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errlen, "cannot subscribe: %s", rd_kafka_err2str(e));
        rc = KT_EINVAL;
        goto fail;
    }
    *out = &s->base;
    return 0;
fail:
    if (conf != NULL) {
        rd_kafka_conf_destroy(conf);
    }
    if (s->rk != NULL) {
        rd_kafka_destroy(s->rk); /* never subscribed: nothing to close */
        s->rk = NULL;
    }
    kafka_destroy(&s->base);
    return rc;
}

void kt_kafka_source_stats(struct kt_source *src, struct kt_kafka_stats *out)
{
    struct kafka_src *s = (struct kafka_src *)src;
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

/* ---- the alerts producer ---- */

struct kt_kafka_producer {
    rd_kafka_t *rk;        /* the producer */
    char *topic;           /* where alerts go (heap) */
    uint64_t delivered;    /* delivery reports without error (atomic) */
    uint64_t failed;       /* dropped or failed after retries (atomic) */
    struct limiter lim;    /* error logging (writer thread) */
    pthread_mutex_t limmu; /* lim is also used from flush/destroy on another thread */
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kt_kafka_producer *p = opaque;
    unsigned held = 0;
    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        __atomic_add_fetch(&p->delivered, 1, __ATOMIC_RELAXED);
        return;
    }
    __atomic_add_fetch(&p->failed, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&p->limmu);
    if (limiter_pass(&p->lim, m->err, &held)) {
        kt_error(MOD, "alert not delivered to %s: %s", p->topic, rd_kafka_err2str(m->err));
    }
    pthread_mutex_unlock(&p->limmu);
}

static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kt_kafka_producer *p = opaque;
    unsigned held = 0;
    (void)rk;
    pthread_mutex_lock(&p->limmu);
    if (limiter_pass(&p->lim, err, &held)) {
        kt_warn(MOD, "alerts producer: %s", reason);
    }
    pthread_mutex_unlock(&p->limmu);
}

int kt_kafka_producer_create(const char *brokers, const char *topic, const char *const *props,
                             size_t nprops, int timeout_ms, struct kt_kafka_producer **out,
                             char *errstr, size_t errlen)
{
    struct kt_kafka_producer *p = calloc(1, sizeof(*p));
    rd_kafka_conf_t *conf = NULL;
    char err[512] = "";
    int rc = KT_EINVAL;

    *out = NULL;
    if (p == NULL || (p->topic = strdup(topic)) == NULL) {
        free(p);
        snprintf(errstr, errlen, "out of memory");
        return KT_ENOMEM;
    }
    pthread_mutex_init(&p->limmu, NULL);
    conf = rd_kafka_conf_new();
    if (set(conf, "bootstrap.servers", brokers, errstr, errlen) != 0 ||
        set(conf, "client.id", "ktrail-alerts", errstr, errlen) != 0 ||
        set(conf, "enable.idempotence", "true", errstr, errlen) != 0 ||
        apply_props(conf, props, nprops, errstr, errlen) != 0) {
        goto fail;
    }
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, producer_error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (p->rk == NULL) {
        snprintf(errstr, errlen, "cannot create the alerts producer: %s", err);
        goto fail;
    }
    conf = NULL;
    rc = check_brokers(p->rk, brokers, timeout_ms > 0 ? timeout_ms : 10000, errstr, errlen);
    if (rc != 0) {
        goto fail;
    }
    *out = p;
    return 0;
fail:
    if (conf != NULL) {
        rd_kafka_conf_destroy(conf);
    }
    if (p->rk != NULL) {
        rd_kafka_destroy(p->rk);
    }
    pthread_mutex_destroy(&p->limmu);
    free(p->topic);
    free(p);
    return rc;
}

int kt_kafka_produce(struct kt_kafka_producer *p, const char *key, size_t keylen, const char *value,
                     size_t len)
{
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    char msg[256] = "";
    size_t klen = key != NULL ? keylen : 0;

    for (int tries = 0; tries < 10; tries++) {
        err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_KEY(key, klen),
                                RD_KAFKA_V_VALUE((void *)(uintptr_t)value, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            break;
        }
        rd_kafka_poll(p->rk, 100); /* deliver something to make room */
    }
    rd_kafka_poll(p->rk, 0); /* delivery reports */
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return 0;
    }
    __atomic_add_fetch(&p->failed, 1, __ATOMIC_RELAXED);
    if (rd_kafka_fatal_error(p->rk, msg, sizeof(msg)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        kt_error(MOD, "alerts producer: fatal error: %s", msg);
        return KT_EIO;
    }
    unsigned held = 0;
    pthread_mutex_lock(&p->limmu);
    if (limiter_pass(&p->lim, err, &held)) {
        kt_error(MOD, "alert not queued for %s: %s", p->topic, rd_kafka_err2str(err));
    }
    pthread_mutex_unlock(&p->limmu);
    return err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? KT_EFULL : KT_EIO;
}

int kt_kafka_producer_flush(struct kt_kafka_producer *p, int timeout_ms)
{
    rd_kafka_flush(p->rk, timeout_ms);
    return rd_kafka_outq_len(p->rk);
}

void kt_kafka_producer_counts(struct kt_kafka_producer *p, uint64_t *delivered, uint64_t *failed)
{
    *delivered = __atomic_load_n(&p->delivered, __ATOMIC_RELAXED);
    *failed = __atomic_load_n(&p->failed, __ATOMIC_RELAXED);
}

void kt_kafka_producer_destroy(struct kt_kafka_producer *p)
{
    if (p == NULL) {
        return;
    }
    int left = kt_kafka_producer_flush(p, 10000);
    if (left > 0) {
        kt_warn(MOD, "%d alert(s) not delivered to %s before exit", left, p->topic);
    }
    rd_kafka_destroy(p->rk);
    pthread_mutex_destroy(&p->limmu);
    free(p->topic);
    free(p);
}
