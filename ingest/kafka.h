/*
 * kafka.h: the Kafka source (a consumer in a consumer group) and the alerts producer.
 *
 * The source subscribes to topics as a member of a consumer group, so that several ktrail
 * processes in one group share the partitions. Each message is opened by the envelope layer
 * (envelope.h: bare events, EventLists, arrays, shippers' records, cloud envelopes, gzip)
 * into records of the batch,
 * with origin "kafka:<topic>/<partition>" and the message offset as their offset, and the
 * batch carries the next offset of every partition it read (KT_CKPT_KAFKA), which the store
 * writes in the same transaction as the events.
 *
 * Exactly once into the store: the database, not Kafka, says where a partition resumes. On
 * assignment the source seeks each partition to the larger of the offset its database stored
 * and the group's committed offset (committed only after some database stored everything
 * before it; see kafka.c for why the larger one is right when partitions move between
 * processes with their own databases), or to the earliest message when neither exists. After
 * a batch commits, ack() also commits its offsets to Kafka, asynchronously, for lag
 * monitoring and for the next owner of a partition. On revocation the source waits until the
 * batches already handed to the pipeline are committed, commits their offsets synchronously,
 * and drops the revoked partitions' records from the batch being filled. If a batch cannot be
 * stored, next() fails: nothing after it is acknowledged, and a restart resumes from the
 * database.
 *
 * Backpressure: when the store falls behind, pause() pauses every assigned partition and
 * keeps serving the group (rebalances, max.poll.interval.ms) without reading; resume()
 * resumes them. A batch holds one cluster: with cluster_header, a message whose header
 * names another cluster than the batch's starts the next batch.
 *
 * librdkafka's types stay in kafka.c.
 */
#ifndef KT_INGEST_KAFKA_H
#define KT_INGEST_KAFKA_H

#include "source.h"

/*
 * Offset lookup, supplied by whoever owns durability (the store), so that ingest never
 * depends on it: 0 and *next_offset set, KT_ENOENT when nothing is stored for the partition,
 * another KT_E* code on failure. Called from the source's thread while the writer writes.
 */
typedef int (*kt_kafka_lookup_fn)(void *ctx, const char *topic, int32_t partition,
                                  int64_t *next_offset);

struct kt_kafka_opts {
    const char *brokers;        /* bootstrap.servers: "host:port,host:port" */
    const char *const *topics;  /* topics to subscribe to */
    size_t ntopics;             /* how many (at least one) */
    const char *group;          /* group.id */
    const char *const *props;   /* librdkafka properties "key=value" (-X), applied last */
    size_t nprops;              /* how many */
    const char *cluster;        /* cluster name tagged on every event, or NULL (borrowed) */
    const char *cluster_header; /* message header naming the cluster (over cluster), or NULL */
    size_t max_event_size;      /* larger values are rejected; default 16 MiB */
    size_t batch_records;       /* records per batch at most; default 4096 */
    size_t batch_bytes;         /* bytes per batch, soft limit; default 4 MiB */
    int linger_ms;              /* how long a batch with records waits for more; default 50 */
    int connect_timeout_ms;     /* create() fails when no broker answers in time; default 10 s */
    kt_kafka_lookup_fn lookup;  /* the database's offsets; NULL trusts Kafka's committed ones */
    void *lookup_ctx;           /* passed to lookup */
};

/*
 * Create the consumer, check that a broker answers, and subscribe. Strings in o are borrowed
 * for the call, except cluster (for the source's life). Returns 0, KT_EINVAL (a bad option
 * or -X property: errstr says which), KT_EIO (no broker answered within the timeout) or
 * KT_ENOMEM.
 */
int kt_kafka_source_create(const struct kt_kafka_opts *o, struct kt_source **out, char *errstr,
                           size_t errlen);

struct kt_kafka_stats {
    uint64_t messages;   /* messages read into batches */
    uint64_t records;    /* records they yielded (events and rejects) */
    uint64_t rejects;    /* records rejected while unwrapping */
    uint64_t skipped;    /* envelope records of other log categories */
    uint64_t dropped;    /* records of revoked partitions dropped from the batch being filled */
    uint64_t rebalances; /* assignments and revocations handled */
    uint64_t pauses;     /* times the partitions were paused because the store was behind */
    uint32_t assigned;   /* partitions assigned now */
};
/* Counters of a source made by kt_kafka_source_create(). Thread-safe. */
void kt_kafka_source_stats(struct kt_source *src, struct kt_kafka_stats *out);

/*
 * The alerts producer: an idempotent producer to one topic, for the store's writer thread.
 * Messages are copied; delivery is asynchronous and retried by librdkafka.
 */
struct kt_kafka_producer;

/* 0, KT_EINVAL (bad property), KT_EIO (no broker answered within timeout_ms) or KT_ENOMEM. */
int kt_kafka_producer_create(const char *brokers, const char *topic, const char *const *props,
                             size_t nprops, int timeout_ms, struct kt_kafka_producer **out,
                             char *errstr, size_t errlen);
/* Queue one message (key may be NULL). 0, or KT_EFULL when the queue stayed full for a
 * second (the message is dropped and counted), or KT_EIO after a fatal producer error. */
int kt_kafka_produce(struct kt_kafka_producer *p, const char *key, size_t keylen, const char *value,
                     size_t len);
/* Wait up to timeout_ms for queued messages; returns how many are still undelivered. */
int kt_kafka_producer_flush(struct kt_kafka_producer *p, int timeout_ms);
/* Messages delivered and messages lost (dropped or failed after retries) so far. */
void kt_kafka_producer_counts(struct kt_kafka_producer *p, uint64_t *delivered, uint64_t *failed);
/* Flush (10 s at most) and free; accepts NULL. */
void kt_kafka_producer_destroy(struct kt_kafka_producer *p);

#endif
