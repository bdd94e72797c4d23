/*
 * batch.h: the unit of memory, durability and acknowledgement.
 *
 * A source fills a batch with raw bytes and the framed JSON values in them (records). The
 * analyzer decodes records into events (slices into the same bytes plus an arena for
 * unescaped strings) and attaches alerts. The store writes the whole batch, with the
 * source's checkpoint, in one transaction; only after COMMIT is the batch acknowledged to
 * its source and recycled. Nothing in a batch is refcounted: it is reset, not freed.
 */
#ifndef KT_INGEST_BATCH_H
#define KT_INGEST_BATCH_H

#include "kt.h"

struct kt_event;    /* analyze/event.h */
struct kt_alert;    /* analyze/alert.h */
struct kt_corr_hit; /* analyze/alert.h */

/* One framed JSON value (or one piece of input that could not be framed). */
struct kt_record {
    size_t pos;         /* the value's bytes start at batch->buf + pos (a reject: its first KB) */
    size_t len;         /* their length */
    uint64_t off;       /* byte offset of the value in its origin (uncompressed for .gz) */
    uint64_t line;      /* 1-based line where it starts, 0 when lines mean nothing */
    uint32_t origin;    /* index into batch->origins */
    uint32_t cluster;   /* 1 + index into batch->clusters: the cluster its envelope names; 0 none */
    int truncated;      /* cut short in transport and salvaged (see ingest/salvage.h) */
    const char *reject; /* static reason when framing already rejected it, else NULL */
};

/* Where a file source stands: written with the batch, read back to resume. */
struct kt_ckpt_file {
    uint64_t fingerprint; /* hash of the file's first bytes: its identity across renames */
    char *path;           /* the path it was read from (heap, owned by the batch) */
    uint64_t offset;      /* resume here: just past the last framed value */
    int mode;             /* framer container state at offset (see ingest/frame.h) */
    uint64_t line;        /* 1-based line of offset (0: unknown, counted from 1 again) */
    uint64_t col;         /* column of offset: bytes between its line's start and it */
    int done;             /* 1 when the file was read to its end and is not followed */
};

/* Where one Kafka partition stands: written with the batch, read back on assignment. */
struct kt_ckpt_kafka {
    char *topic;         /* topic name (heap, owned by the batch) */
    int32_t partition;   /* partition number */
    int64_t next_offset; /* the next message to read: just past the last one in the batch */
};

enum kt_ckpt_kind { KT_CKPT_NONE = 0, KT_CKPT_FILE = 1, KT_CKPT_KAFKA = 2 };

struct kt_batch {
    /* raw input */
    char *buf;  /* bytes the records point into */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */

    struct kt_record *recs; /* framed values, in input order */
    size_t nrecs;           /* records used */
    size_t caprecs;         /* records allocated */

    char **origins;  /* origin names ("/var/log/audit.log", "-"), heap strings */
    size_t norigins; /* names used */
    size_t caporigins;
    char **clusters;  /* cluster names envelopes gave (EKS log group...), heap strings */
    size_t nclusters; /* names used */
    size_t capclusters;

    /* analysis */
    struct kt_arena arena;   /* unescaped strings and lists of decoded events */
    struct kt_event *events; /* one per record, same index (analyze fills) */
    size_t capevents;        /* events allocated */
    struct kt_alert *alerts; /* rule matches (analyze fills); the store appends firings */
    size_t nalerts;
    size_t capalerts;
    struct kt_corr_hit *hits; /* correlation steps events matched, in event order */
    size_t nhits;             /* hits used */
    size_t caphits;           /* hits allocated */

    /* durability */
    int ckpt_kind;                 /* enum kt_ckpt_kind */
    struct kt_ckpt_file ckpt_file; /* valid when ckpt_kind == KT_CKPT_FILE */
    struct kt_str cluster;         /* cluster name the source tags its events with, or NULL */
    void *src_token;               /* the source's ack token: what it must release in ack()
                                      (the webhook's requests); set in next(), the source's */

    /* valid when ckpt_kind == KT_CKPT_KAFKA: kt_batch_ckpt_kafka() maintains them */
    struct kt_ckpt_kafka *ckpt_kafka; /* one per partition read into the batch */
    size_t nckpt_kafka;               /* entries used */
    size_t capckpt_kafka;             /* entries allocated */

    /* acknowledgement: called by the store's writer after COMMIT (status 0) or failure */
    void (*on_done)(struct kt_batch *b, int status, void *ctx);
    void *on_done_ctx;
};

/* Allocate an empty batch; NULL on allocation failure. */
struct kt_batch *kt_batch_create(void);
/* Free a batch and everything it owns. Accepts NULL. */
void kt_batch_destroy(struct kt_batch *b);
/* Empty the batch for reuse, keeping its buffers. Event and alert contents are dropped. */
void kt_batch_reset(struct kt_batch *b);
/* Make room for at least extra more bytes in buf (records hold offsets, so buf may move). */
int kt_batch_reserve(struct kt_batch *b, size_t extra);
/* Append a record; returns it, or NULL on allocation failure. */
struct kt_record *kt_batch_add_record(struct kt_batch *b);
/* Intern an origin name; returns its index, or a negative KT_E* code. */
int kt_batch_origin(struct kt_batch *b, const char *name);
/* Intern a cluster name (len bytes at p); returns its record value (1 + index), or a
 * negative KT_E* code. */
int kt_batch_cluster(struct kt_batch *b, const char *p, size_t len);
/* The cluster name of a record, or KT_STR_NULL when its envelope named none. */
struct kt_str kt_batch_record_cluster(const struct kt_batch *b, const struct kt_record *r);
/* Set the Kafka checkpoint of (topic, partition) to next_offset, adding the entry when new;
 * the batch's checkpoint kind becomes KT_CKPT_KAFKA. topic is copied. 0 or KT_ENOMEM. */
int kt_batch_ckpt_kafka(struct kt_batch *b, const char *topic, int32_t partition,
                        int64_t next_offset);
/* Forget the Kafka checkpoint of (topic, partition), if any (the partition was revoked). */
void kt_batch_ckpt_kafka_drop(struct kt_batch *b, const char *topic, int32_t partition);

#endif
