/*
 * webhook.h: the webhook source, kube-apiserver's audit webhook backend over HTTPS.
 *
 * An HTTP server (libmicrohttpd, GnuTLS) takes POSTs of an EventList, an Event or a JSON
 * array on one path. Each request's body is framed in its connection's thread (a body whose
 * JSON structure is broken, or that holds no audit event, is answered 400 and nothing of it
 * is stored), then queued; next() moves queued requests' records into batches, splitting a
 * large request over several. The connection's thread waits and answers 200 only once every
 * batch holding its records is committed (ack with status 0), else 503: the apiserver
 * retries, and the store ignores the duplicates a retry brings.
 *
 * Authentication, checked before a body is read: a client certificate signed by client_ca,
 * or "Authorization: Bearer" with a token from token_file (constant-time compare); either
 * one configured passes. Plain HTTP or no authentication only with insecure set. Each request
 * gets a cluster name: the token's, the client certificate CN's (mapped by cn_map_file, else
 * the CN itself), or the listener's default.
 *
 * Connections: until a request on it authenticates, a connection is pending, closed after
 * auth_timeout idle, and the oldest of more than 64 pending is shut down to make room for a
 * newer one; authenticated ones (at most max_connections) idle up to 120 s. So connections
 * that never authenticate cannot crowd out the apiserver's.
 *
 * Backpressure: the bytes requests hold, from their first body byte to their answer, are
 * bounded (queue_bytes; held from Content-Length when given, else as the body grows); past
 * that, and while the store fails, requests are answered 503 with Retry-After before their
 * body is kept. GET /healthz, /readyz and /metrics are answered here (on the listener, or
 * only on metrics_listen when that is set); /readyz and /metrics bodies come from the status
 * callback.
 */
#ifndef KT_INGEST_WEBHOOK_H
#define KT_INGEST_WEBHOOK_H

#include "source.h"

/*
 * Body of GET path ("/readyz" or "/metrics"): return the HTTP status, with *body a malloc'd
 * text (freed by the caller) of *len bytes and *ctype its content type. Called from
 * connection threads, concurrently.
 */
typedef int (*kt_webhook_status_fn)(void *ctx, const char *path, char **body, size_t *len,
                                    const char **ctype);

struct kt_webhook_opts {
    const char *listen;            /* "ADDR:PORT", "[ADDR]:PORT" or ":PORT"; port 0 picks one */
    const char *path;              /* audit path; default "/k8s-audit" */
    const char *tls_cert;          /* server certificate chain, PEM file; NULL: plain HTTP */
    const char *tls_key;           /* its private key, PEM file */
    const char *client_ca;         /* require client certificates signed by this CA (PEM) */
    const char *token_file;        /* require a bearer token: lines "TOKEN [CLUSTER]" */
    const char *cn_map_file;       /* client certificate CN to cluster: lines "CN CLUSTER" */
    const char *cluster;           /* cluster of requests that name none; NULL: none */
    int insecure;                  /* allow plain HTTP and no authentication */
    size_t max_body;               /* larger bodies get 413; default 32 MiB */
    size_t max_event_size;         /* larger events become rejects; default 16 MiB */
    size_t queue_bytes;            /* bytes requests hold, at most; default 256 MiB */
    unsigned max_connections;      /* authenticated connections at once; default 128 */
    unsigned auth_timeout;         /* seconds a connection may idle before it authenticates;
                                      default 10 (after: 120) */
    size_t batch_records;          /* records per batch at most; default 1024 */
    size_t batch_bytes;            /* bytes per batch, soft limit; default 4 MiB */
    const char *metrics_listen;    /* serve GET endpoints there (plain HTTP) instead; or NULL */
    const char *firehose_path;     /* serve an Amazon Data Firehose HTTP endpoint here, or NULL */
    const char *firehose_key_file; /* its access keys: lines "KEY [CLUSTER]" */
    const char *pubsub_path;       /* serve Pub/Sub pushes here, or NULL */
    const char *pubsub_token_file; /* push tokens (?token= or bearer): lines "TOKEN [CLUSTER]" */
    const char *pubsub_jwks;       /* Google's JWKS, to verify push OIDC tokens; or NULL */
    const char *pubsub_audience;   /* the audience those tokens must carry */
    const char *pubsub_email;      /* and the push service account they must name (verified) */
    kt_webhook_status_fn status;   /* /readyz and /metrics bodies; NULL: 200 "ok" and 404 */
    void *status_ctx;              /* passed to status */
};

/* HTTP status codes counted per request, in this order (other codes count as the last). */
enum {
    KT_WH_200,
    KT_WH_400,
    KT_WH_401,
    KT_WH_404,
    KT_WH_405,
    KT_WH_413,
    KT_WH_500,
    KT_WH_503,
    KT_WH_OTHER,
    KT_WH_NCODES
};
extern const int kt_webhook_codes[KT_WH_NCODES];

/* Upper bounds, in seconds, of the commit latency histogram (cumulative, then +Inf). */
enum { KT_WH_NBUCKETS = 12 };
extern const double kt_webhook_buckets[KT_WH_NBUCKETS];

struct kt_webhook_stats {
    uint64_t requests[KT_WH_NCODES];      /* answered POSTs on the audit path, by status */
    uint64_t events;                      /* records received in accepted requests */
    uint64_t latency[KT_WH_NBUCKETS + 1]; /* body received -> committed: per bucket, +Inf */
    double latency_sum;                   /* seconds, over latency_count */
    uint64_t latency_count;               /* requests measured */
    uint64_t queued_bytes;                /* body bytes waiting for the pipeline, now */
    uint64_t queued_requests;             /* requests waiting or in flight, now */
    uint64_t held_bytes;                  /* held by requests, from first byte to answer, now */
    uint64_t conns_evicted;               /* unauthenticated connections shut down for room */
};

/*
 * Start listening (and serving) per o, borrowed for the call. Returns 0, or KT_EINVAL (bad
 * options, unreadable key or certificate, address in use: errstr says which) or KT_ENOMEM.
 */
int kt_webhook_source_create(const struct kt_webhook_opts *o, struct kt_source **out, char *errstr,
                             size_t errlen);

/* The URL of the audit path as bound (the real port when 0 was asked). */
const char *kt_webhook_url(const struct kt_source *src);
/* The metrics listener's URL, or NULL. */
const char *kt_webhook_metrics_url(const struct kt_source *src);

/* A consistent copy of the counters. Thread-safe. */
void kt_webhook_stats(struct kt_source *src, struct kt_webhook_stats *out);

#endif
