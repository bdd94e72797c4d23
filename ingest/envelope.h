/*
 * envelope.h: the one door every input value goes through on its way to the decoder.
 *
 * Audit events rarely arrive bare. Managed clusters deliver them in their cloud's envelope
 * (EKS: CloudWatch Logs DATA_MESSAGEs, gzip'ed and base64'ed by subscriptions, Firehose and
 * Lambda; GKE: Cloud Logging LogEntries, which are not Events at all; AKS: diagnostic
 * records and Event Hubs batches; OpenShift: ClusterLogForwarder records), and log shippers
 * wrap each line in a record of their own (Fluent Bit's "log", Vector's "message",
 * Filebeat's "message" beside a "log" object). Every source (files, the webhook, Firehose
 * and Pub/Sub pushes, Kafka) frames its bytes into JSON values (frame.h) and hands each
 * value here; this layer detects its shape per value (no flag needed), opens it into zero
 * or more events (converting GKE and Log Analytics records into Event JSON, salvaging
 * events cut short by a transport) and gives each to the source's sink with what the
 * envelope said: the cluster, whether the event was truncated. A shape therefore works on
 * every source or on none. The table of shapes is in envelope.c and in the README.
 *
 * A bare Event is recognised by its first key and passed on untouched, so opening costs
 * bare input nothing measurable; only values that are not bare Events are scanned further.
 */
#ifndef KT_INGEST_ENVELOPE_H
#define KT_INGEST_ENVELOPE_H

#include "batch.h"

struct kt_envelope;

/* One record found in a value: an event (or a value for the decoder to judge), or a reject. */
struct kt_opened {
    const char *ptr;       /* its bytes, borrowed for the duration of the sink call */
    size_t len;            /* their length (a reject's first KB at most) */
    uint64_t off;          /* offset of the outermost value in its origin */
    uint64_t line;         /* its line, 0 when lines mean nothing */
    const char *reject;    /* static reason, or NULL */
    struct kt_str cluster; /* the cluster its envelope names, or NULL */
    int truncated;         /* cut short in transport and salvaged (or so marked by GKE) */
};

/* Where opened records go: a batch (kt_env_batch_add), a webhook request... */
struct kt_env_sink {
    int (*add)(void *ctx, const struct kt_opened *r); /* 0, or KT_ENOMEM to stop */
    void *ctx;                                        /* its state */
};

/* What opening found; added to, the caller zeroes it. */
struct kt_env_counts {
    size_t records; /* records given to the sink */
    size_t rejects; /* of which rejects */
    size_t skipped; /* envelope entries that hold no audit event, dropped: other log streams,
                       categories or resource types, CloudWatch CONTROL_MESSAGEs */
};

/* An opener for values up to max_event bytes (0: 16 MiB), decompressed ones included; one
 * value opens into at most 4 x max_event bytes of records (past that, one reject says so and
 * the rest is dropped). NULL on allocation failure. Not thread-safe: one per thread. */
struct kt_envelope *kt_envelope_create(size_t max_event);
void kt_envelope_destroy(struct kt_envelope *e);

/*
 * Open one framed value p[0, n) (borrowed) found at off/line of its origin; stamp is the
 * timestamp prefix of its line (frame.h), or KT_STR_NULL. Every record found goes to sink;
 * counts are added to c. Returns 0, or KT_ENOMEM (the sink may have part of the records).
 */
int kt_envelope_open_value(struct kt_envelope *e, const char *p, size_t n, uint64_t off,
                           uint64_t line, struct kt_str stamp, const struct kt_env_sink *sink,
                           struct kt_env_counts *c);

/*
 * Open a whole message p[0, n) (a Kafka value): gzip'ed bytes are inflated, the text is
 * framed (JSON lines, arrays, EventLists, concatenated objects) and each value opened. An
 * empty message yields one reject. Records carry off and line 0. As kt_envelope_open_value.
 */
int kt_envelope_open_text(struct kt_envelope *e, const char *p, size_t n, uint64_t off,
                          const struct kt_env_sink *sink, struct kt_env_counts *c);

/* The sink of sources that fill batches: records are copied into b with this origin. */
struct kt_env_batch {
    struct kt_batch *b; /* the batch being filled */
    uint32_t origin;    /* origin index of its records */
};
int kt_env_batch_add(void *ctx, const struct kt_opened *r);

/*
 * Inflate the gzip data p[0, n) (members may be concatenated, as Firehose writes S3
 * objects) into out (appended to), at most max bytes. 0; KT_EPARSE with a static reason in
 * *why (corrupt, cut short, larger than max); KT_ENOMEM.
 */
int kt_gunzip(const char *p, size_t n, size_t max, struct kt_buf *out, const char **why);

/* Copy the top-level string member key of the JSON object p[0, n) into out (NUL-terminated,
 * cut to outlen - 1, escapes kept). 0, or KT_ENOENT when there is no such string member. */
int kt_json_top_string(const char *p, size_t n, const char *key, char *out, size_t outlen);

#endif
