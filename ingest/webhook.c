/*
 * webhook.c: the webhook source (see webhook.h).
 *
 * Threads: libmicrohttpd runs one thread per connection (MHD_USE_THREAD_PER_CONNECTION), so
 * a connection's thread can simply wait for its request's commit; the connection limit
 * (--max-connections authenticated, plus room for those not yet) bounds the threads. The
 * pipeline's thread calls next() and the store's writer calls ack(). One mutex guards the
 * queue, the counters, the connections' lists and every request's progress; each request has
 * its own condition variable, signalled when its last batch is acknowledged.
 *
 * Life of a POST: the first call of the access handler checks the route, the credentials,
 * the content type, the announced length and the queue room (holding the announced length),
 * and either answers at once or allocates a struct req. Upload calls append to req->body
 * (holding more room as it grows). The last call frames the body (ingest/frame.c, in this
 * thread), answers 400 when the framing fails, queues the request and waits for it to be
 * done. next() copies records of queued requests into a batch and records in a struct token
 * which requests the batch holds, and how many of their records; ack() counts them down. The
 * room is given back when the request ends (on_completed).
 */
#include "webhook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "envelope.h"
#include "frame.h"
#include "jwt.h"

const int kt_webhook_codes[KT_WH_NCODES] = {200, 400, 401, 404, 405, 413, 500, 503, 0};
const double kt_webhook_buckets[KT_WH_NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                   0.5,   1,    2.5,   5,    10,  30};

enum {
    RETRY_AFTER_S = 5,
    STOP_GRACE_US = 10 * 1000 * 1000,
    PROBE_US = 1000 * 1000,
    IDLE_TIMEOUT_S = 120, /* an authenticated connection's inactivity timeout */
    MAX_PENDING = 64,     /* connections not yet authenticated, per listener */
};

/* What a POST is, by its path. */
enum route {
    R_AUDIT,    /* the apiserver's webhook: EventLists (any shape, in fact) */
    R_FIREHOSE, /* an Amazon Data Firehose HTTP endpoint delivery */
    R_PUBSUB,   /* a Pub/Sub push (wrapped or unwrapped) */
};

/* One record of a request body, as the envelope layer opened it. */
struct rec {
    size_t pos;         /* in req->body, or in req->extra when extra */
    size_t len;         /* bytes */
    uint64_t off;       /* byte offset in the body of the value it came from */
    uint64_t line;      /* 1-based line in the body */
    const char *reject; /* static reason, or NULL */
    size_t cpos;        /* the cluster its envelope names: bytes in req->extra... */
    uint32_t clen;      /* ...and their length, 0 when none */
    uint8_t extra;      /* the bytes are in req->extra (opened, converted, a reject's head) */
    uint8_t truncated;  /* cut short in transport and salvaged */
};

/* One POST on the audit path, from its first byte to its answer. */
struct req {
    char *body;          /* the body */
    size_t len;          /* body bytes received */
    size_t cap;          /* allocated */
    size_t announced;    /* Content-Length, 0 when none */
    size_t held;         /* bytes of the queue budget it holds (hold_locked) */
    int too_big;         /* the body passed max_body: discarding the rest */
    struct kt_buf extra; /* bytes of records that are not slices of the body */
    int route;           /* enum route */
    char request_id[80]; /* Firehose: X-Amz-Firehose-Request-Id, echoed in the answer */
    struct rec *recs;    /* opened records */
    size_t nrecs;        /* count */
    size_t recs_cap;     /* allocated */
    size_t next;         /* first record not yet in a batch (queue owner: next()) */
    int pending;         /* batches holding its records, not yet acknowledged */
    int status;          /* first failed ack, 0 if none */
    int done;            /* every record acknowledged, or the source gave up on it */
    pthread_cond_t cv;   /* done changed */
    const char *cluster; /* a stable string (options, token or map table, or cn), or NULL */
    char cn[256];        /* client certificate common name, when one was checked */
    char origin[80];     /* "webhook:<peer address>" */
    int64_t t_queued;    /* monotonic us when the body was complete */
    struct req *qnext;   /* queue link */
    int uploading;       /* counted in the source's uploading */
    int refuse;          /* answer this status once the body is read (and dropped) */
    int gzip;            /* Content-Encoding: gzip */
    char why[192];       /* and this reason */
};

/* What one batch holds: the requests (in order) whose records it has, to count down in ack. */
struct token {
    struct req **reqs;  /* requests with records in the batch */
    size_t n;           /* count */
    size_t cap;         /* allocated */
    struct token *next; /* the source's list of tokens in flight */
    struct token *prev;
};

/* Name/value pairs read from a two-column file (tokens, CN map). */
struct pair {
    char *key;   /* token or CN */
    char *value; /* cluster, or NULL */
};

/*
 * One TCP connection, from accept to close. Until a request on it authenticates it is pending:
 * on its listener's list, oldest first, under the short --auth-timeout, and the first to be
 * shut down when a newer connection needs the room.
 */
struct conn {
    struct listener *l; /* its listener */
    MHD_socket fd;      /* its socket, open as long as the conn exists */
    int authed;         /* a request on it authenticated: counted in l->nauthed */
    int listed;         /* on l's pending list */
    struct conn *prev;  /* pending list links */
    struct conn *next;
};

/* A listener: the audit one, or the one for GET endpoints only. */
struct listener {
    struct kt_webhook *w;  /* owner */
    struct MHD_Daemon *d;  /* the server */
    int metrics_only;      /* answer GET endpoints only */
    int serves_status;     /* answer /readyz and /metrics */
    char url[384];         /* as bound */
    unsigned max_authed;   /* authenticated connections at most (--max-connections) */
    struct conn *pending;  /* connections not yet authenticated, oldest first (w->mu) */
    struct conn *pend_end; /* the newest */
    unsigned npending;     /* on the list, at most MAX_PENDING */
    unsigned nauthed;      /* authenticated connections open */
};

struct kt_webhook {
    struct kt_source base;    /* first: the interface */
    struct kt_webhook_opts o; /* options; strings borrowed from the caller... */
    char path[256];           /* ...except the audit path, copied */
    int audit_off;            /* the audit path has no credentials: it is not served */
    struct pair *fh_keys;     /* Firehose access keys, with their clusters */
    size_t nfh_keys;
    struct pair *ps_tokens; /* Pub/Sub push tokens (?token= or bearer), with their clusters */
    size_t nps_tokens;
    struct kt_jwks *jwks; /* keys verifying Pub/Sub's OIDC tokens, or NULL */
    char cluster[256];    /* and the default cluster, copied ("" = none) */
    char *cert_pem;       /* TLS material, kept for MHD's lifetime */
    char *key_pem;
    char *ca_pem;
    struct pair *tokens; /* bearer tokens */
    size_t ntokens;
    struct pair *cnmap; /* CN -> cluster */
    size_t ncnmap;
    struct listener main;    /* the audit listener */
    struct listener metrics; /* GET endpoints, when o.metrics_listen */

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;  /* the queue got a request, or stop */
    struct req *head;   /* queued requests, oldest first */
    struct req *tail;
    struct token *tokens_live;  /* tokens of batches in flight */
    size_t uploading;           /* requests admitted and still receiving their body */
    size_t held;                /* bytes admitted requests hold, from first byte to answer */
    int stopping;               /* stop() was called */
    int64_t stop_at;            /* when, monotonic us */
    int closed;                 /* next() said KT_EOF or destroy() started: refuse all */
    int failing;                /* the last ack failed */
    int64_t last_probe;         /* monotonic us of the last request let through while failing */
    struct kt_webhook_stats st; /* counters */
};

/* ---- small helpers ---- */

static int count_code(struct kt_webhook *w, int code)
{
    size_t i;
    for (i = 0; i < KT_WH_OTHER; i++) {
        if (kt_webhook_codes[i] == code) {
            break;
        }
    }
    pthread_mutex_lock(&w->mu);
    w->st.requests[i]++;
    pthread_mutex_unlock(&w->mu);
    return code;
}

static char *read_file(const char *path, size_t *len_out, char *errstr, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (f == NULL) {
        snprintf(errstr, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap + 65536);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                snprintf(errstr, errlen, "%s: out of memory", path);
                return NULL;
            }
            buf = nb;
            cap += 65536;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(errstr, errlen, "%s: read error", path);
        return NULL;
    }
    buf[len] = '\0';
    if (len_out != NULL) {
        *len_out = len;
    }
    return buf;
}

/* Lines "KEY [VALUE]" ('#' comments, blank lines skipped). 0, or KT_EINVAL/KT_ENOMEM. */
static int read_pairs(const char *path, struct pair **out, size_t *nout, char *errstr,
                      size_t errlen)
{
    char *text = read_file(path, NULL, errstr, errlen);
    struct pair *v = NULL;
    size_t n = 0, cap = 0;
    if (text == NULL) {
        return KT_EINVAL;
    }
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *k = strtok(line, " \t\r");
        if (k == NULL || k[0] == '#') {
            continue;
        }
        char *val = strtok(NULL, " \t\r");
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            struct pair *nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                goto nomem;
            }
            v = nv;
        }
        v[n].key = strdup(k);
        v[n].value = val != NULL ? strdup(val) : NULL;
        n++;
        if (v[n - 1].key == NULL || (val != NULL && v[n - 1].value == NULL)) {
            goto nomem;
        }
    }
    free(text);
    if (n == 0) {
        snprintf(errstr, errlen, "%s: no entries", path);
        free(v);
        return KT_EINVAL;
    }
    *out = v;
    *nout = n;
    return 0;
nomem:
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].value);
    }
    free(v);
    free(text);
    snprintf(errstr, errlen, "%s: out of memory", path);
    return KT_ENOMEM;
}

static void free_pairs(struct pair *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* tokens are secrets: do not leave them in freed memory */
        explicit_bzero(v[i].key, strlen(v[i].key));
        free(v[i].key);
        free(v[i].value);
    }
    free(v);
}

/* Equal, in time that depends on the lengths only, not on where the bytes differ. */
static int ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    size_t n = alen > blen ? alen : blen;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        unsigned char y = i < blen ? (unsigned char)b[i] : 0;
        diff |= x ^ y;
    }
    return diff == 0;
}

/* The index of the entry whose key is t[0, len), or -1. Every key is compared, so timing
 * tells nothing about which one matched, or where a wrong one differs. */
static int find_secret(const struct pair *v, size_t n, const char *t, size_t len)
{
    int hit = -1;
    for (size_t i = 0; i < n; i++) {
        if (ct_equal(t, len, v[i].key, strlen(v[i].key)) && hit < 0) {
            hit = (int)i;
        }
    }
    return hit;
}

/* ---- answers ---- */

static enum MHD_Result answer(struct MHD_Connection *c, int code, const char *ctype,
                              const char *body, size_t len, int retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (retry_after) {
        char s[16];
        snprintf(s, sizeof(s), "%d", RETRY_AFTER_S);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, s);
    }
    if (code == 401) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    }
    if (code == 405) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST");
    }
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)code, r);
    MHD_destroy_response(r);
    return ret;
}

/* A JSON error body {"code":N,"error":"..."}; msg must not need escaping beyond quotes. */
static enum MHD_Result answer_error(struct kt_webhook *w, struct MHD_Connection *c, int code,
                                    const char *msg, int count)
{
    char body[768];
    size_t k = (size_t)snprintf(body, sizeof(body), "{\"code\":%d,\"error\":\"", code);
    for (const char *p = msg; *p != '\0' && k + 8 < sizeof(body); p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') {
            body[k++] = '\\';
            body[k++] = (char)ch;
        } else if (ch < 0x20) {
            body[k++] = ' ';
        } else {
            body[k++] = (char)ch;
        }
    }
    k += (size_t)snprintf(body + k, sizeof(body) - k, "\"}\n");
    if (count) {
        count_code(w, code);
    }
    return answer(c, code, "application/json", body, k, code == 503);
}

/* ---- authentication ---- */

/* The verified client certificate's CN into cn; 0, -1 when none was sent, -2 when the one
 * sent does not verify against the trusted CA. */
static int client_cert_cn(struct MHD_Connection *c, char *cn, size_t cnlen)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci == NULL || ci->tls_session == NULL) {
        return -1;
    }
    gnutls_session_t s = (gnutls_session_t)ci->tls_session;
    unsigned n = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(s, &n);
    if (chain == NULL || n == 0) {
        return -1;
    }
    unsigned status = 0;
    if (gnutls_certificate_verify_peers2(s, &status) != GNUTLS_E_SUCCESS || status != 0) {
        return -2;
    }
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) != GNUTLS_E_SUCCESS) {
        return -1;
    }
    int rc = -1;
    size_t len = cnlen;
    if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) == GNUTLS_E_SUCCESS) {
        if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &len) ==
            GNUTLS_E_SUCCESS) {
            rc = 0;
        } else {
            cn[0] = '\0';
            rc = 0; /* verified, without a CN */
        }
    }
    gnutls_x509_crt_deinit(crt);
    return rc;
}

/*
 * Check the credentials of a request. 0 and *cluster (stable, or NULL) on success; -1 with a
 * reason otherwise.
 */
static int authenticate(struct kt_webhook *w, struct MHD_Connection *c, struct req *rq,
                        const char **cluster, const char **why)
{
    *cluster = w->cluster[0] != '\0' ? w->cluster : NULL;
    if (w->o.client_ca == NULL && w->tokens == NULL) {
        return 0; /* --insecure without authentication */
    }
    if (w->tokens != NULL) {
        const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
            int hit = find_secret(w->tokens, w->ntokens, h + 7, strlen(h + 7));
            if (hit >= 0) {
                if (w->tokens[hit].value != NULL) {
                    *cluster = w->tokens[hit].value;
                }
                return 0;
            }
            *why = "invalid bearer token";
        } else {
            *why = h != NULL ? "Authorization is not a bearer token"
                             : "missing credentials: a client certificate or a bearer token";
        }
    }
    if (w->o.client_ca != NULL) {
        int cert = client_cert_cn(c, rq->cn, sizeof(rq->cn));
        if (cert == 0) {
            *cluster = rq->cn[0] != '\0' ? rq->cn : *cluster;
            for (size_t i = 0; i < w->ncnmap; i++) {
                if (strcmp(w->cnmap[i].key, rq->cn) == 0 && w->cnmap[i].value != NULL) {
                    *cluster = w->cnmap[i].value;
                    break;
                }
            }
            return 0;
        }
        if (cert == -2) {
            *why = "client certificate not signed by the trusted CA (--client-ca)";
        } else if (w->tokens == NULL) {
            *why = "missing client certificate";
        }
    }
    return -1;
}

/* Firehose: the access key the delivery stream was configured with. */
static int authenticate_firehose(struct kt_webhook *w, struct MHD_Connection *c,
                                 const char **cluster, const char **why)
{
    *cluster = w->cluster[0] != '\0' ? w->cluster : NULL;
    if (w->fh_keys == NULL) {
        return 0; /* --insecure */
    }
    const char *k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Firehose-Access-Key");
    if (k == NULL) {
        *why = "missing X-Amz-Firehose-Access-Key";
        return -1;
    }
    int hit = find_secret(w->fh_keys, w->nfh_keys, k, strlen(k));
    if (hit < 0) {
        *why = "invalid Firehose access key";
        return -1;
    }
    if (w->fh_keys[hit].value != NULL) {
        *cluster = w->fh_keys[hit].value;
    }
    return 0;
}

/* Pub/Sub push: a token in the URL (?token=) or a bearer token from the token file, or a
 * Google-signed OIDC token for the configured audience. */
static int authenticate_pubsub(struct kt_webhook *w, struct MHD_Connection *c, const char **cluster,
                               char *why, size_t whylen)
{
    *cluster = w->cluster[0] != '\0' ? w->cluster : NULL;
    if (w->ps_tokens == NULL && w->jwks == NULL) {
        return 0; /* --insecure */
    }
    const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *bearer = h != NULL && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : NULL;
    if (t == NULL) {
        t = bearer;
    }
    if (t != NULL && w->ps_tokens != NULL) {
        int hit = find_secret(w->ps_tokens, w->nps_tokens, t, strlen(t));
        if (hit >= 0) {
            if (w->ps_tokens[hit].value != NULL) {
                *cluster = w->ps_tokens[hit].value;
            }
            return 0;
        }
    }
    if (bearer != NULL && w->jwks != NULL) {
        struct kt_jwt_claims cl;
        if (kt_jwt_verify(w->jwks, bearer, strlen(bearer), w->o.pubsub_audience,
                          kt_now_wall_us() / 1000000, &cl, why, whylen) != 0) {
            return -1;
        }
        /* Google signs a token for any audience anyone asks for: the signer is the proof */
        if (!cl.email_verified || strcmp(cl.email, w->o.pubsub_email) != 0) {
            snprintf(why, whylen, "OIDC token of another account than --pubsub-email");
            return -1;
        }
        return 0;
    }
    snprintf(why, whylen, "%s",
             t == NULL ? "missing credentials: ?token= in the push URL or a bearer token"
                       : "invalid push token");
    return -1;
}

/* ---- requests ---- */

static void req_free(struct req *rq)
{
    if (rq == NULL) {
        return;
    }
    pthread_cond_destroy(&rq->cv);
    free(rq->body);
    kt_buf_free(&rq->extra);
    free(rq->recs);
    free(rq);
}

/* The bytes a request holds in memory: its body, its records and their extra bytes. */
static size_t req_footprint(const struct req *rq)
{
    return rq->cap + rq->extra.cap + rq->recs_cap * sizeof(struct rec);
}

/*
 * Make rq hold want bytes of the --queue budget, from its admission to its end (on_completed
 * gives them back): bodies count while they upload, are framed and wait for their commit, so
 * that the budget bounds the memory of requests, not only of those queued. Growing fails with
 * KT_EFULL when it would pass --queue while other requests hold some; a request alone may
 * hold up to --max-body, so that no body the options allow is refused for ever. Called with
 * w->mu held.
 */
static int hold_locked(struct kt_webhook *w, struct req *rq, size_t want)
{
    size_t others = w->held - rq->held;
    if (want > rq->held && others > 0 && others + want > w->o.queue_bytes) {
        return KT_EFULL;
    }
    w->held = others + want;
    rq->held = want;
    return 0;
}

static int req_hold(struct kt_webhook *w, struct req *rq, size_t want)
{
    pthread_mutex_lock(&w->mu);
    int rc = hold_locked(w, rq, want);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Append n upload bytes to rq's body, room held first: exactly the announced length, else
 * doubling. 0, KT_EFULL (the budget is spent) or KT_ENOMEM. */
static int req_append(struct kt_webhook *w, struct req *rq, const char *p, size_t n)
{
    if (rq->cap - rq->len < n) {
        size_t cap = rq->cap == 0 && rq->announced >= n ? rq->announced : rq->cap;
        cap = cap != 0 ? cap : 65536;
        while (cap - rq->len < n) {
            cap *= 2;
        }
        int rc = req_hold(w, rq, req_footprint(rq) - rq->cap + cap);
        if (rc != 0) {
            return rc;
        }
        char *nb = realloc(rq->body, cap);
        if (nb == NULL) {
            return KT_ENOMEM;
        }
        rq->body = nb;
        rq->cap = cap;
    }
    memcpy(rq->body + rq->len, p, n);
    rq->len += n;
    return 0;
}

/* Free what a refused request received, and give its room back: the rest is dropped. */
static void req_drop_body(struct kt_webhook *w, struct req *rq)
{
    free(rq->body);
    rq->body = NULL;
    rq->cap = rq->len = 0;
    req_hold(w, rq, 0);
}

/* The sink of a request's opened records. */
struct req_sink {
    struct req *rq; /* the request */
    size_t events;  /* records that look like events (or are rejects) */
};

static int req_add(void *ctx, const struct kt_opened *o)
{
    struct req_sink *rs = ctx;
    struct req *rq = rs->rq;
    if (rq->nrecs == rq->recs_cap) {
        size_t cap = rq->recs_cap ? rq->recs_cap * 2 : 512;
        struct rec *nr = realloc(rq->recs, cap * sizeof(*nr));
        if (nr == NULL) {
            return KT_ENOMEM;
        }
        rq->recs = nr;
        rq->recs_cap = cap;
    }
    struct rec *r = &rq->recs[rq->nrecs];
    memset(r, 0, sizeof(*r));
    r->off = o->off;
    r->line = o->line;
    r->len = o->len;
    r->reject = o->reject;
    r->truncated = o->truncated != 0;
    if (o->ptr >= rq->body && o->ptr + o->len <= rq->body + rq->len) {
        r->pos = (size_t)(o->ptr - rq->body); /* a slice of the body: no copy */
    } else {
        r->extra = 1;
        r->pos = rq->extra.len;
        if (kt_buf_append(&rq->extra, o->ptr, o->len) != 0) {
            return KT_ENOMEM;
        }
    }
    if (o->cluster.ptr != NULL && o->cluster.len > 0) {
        r->cpos = rq->extra.len;
        r->clen = (uint32_t)o->cluster.len;
        if (kt_buf_append(&rq->extra, o->cluster.ptr, o->cluster.len) != 0) {
            return KT_ENOMEM;
        }
    }
    rq->nrecs++;
    const char *bytes = r->extra ? rq->extra.p + r->pos : rq->body + r->pos;
    if (r->reject != NULL ||
        memmem(bytes, r->len, "\"auditID\"", sizeof("\"auditID\"") - 1) != NULL) {
        rs->events++;
    }
    return 0;
}

/*
 * Frame the body and open each value into records (envelope.h). 0; KT_EPARSE with *why when
 * the body's JSON structure is broken or, on the audit path, it holds no audit event;
 * KT_ENOMEM.
 */
static int req_frame(struct kt_webhook *w, struct req *rq, const char **why)
{
    struct kt_framer f;
    struct req_sink rs = {rq, 0};
    struct kt_env_sink sink = {req_add, &rs};
    struct kt_env_counts counts = {0, 0, 0};
    size_t i = 0;
    int rc = 0;
    while (i < rq->len && (rq->body[i] == ' ' || rq->body[i] == '\n' || rq->body[i] == '\r' ||
                           rq->body[i] == '\t')) {
        i++;
    }
    if (i == rq->len) {
        *why = "empty body: expected an EventList, an Event or a JSON array of Events";
        return KT_EPARSE;
    }
    if (rq->body[i] != '{' && rq->body[i] != '[') {
        *why = "not JSON: expected an EventList, an Event or a JSON array of Events";
        return KT_EPARSE;
    }
    struct kt_envelope *env = kt_envelope_create(w->o.max_event_size);
    if (env == NULL) {
        return KT_ENOMEM;
    }
    kt_framer_init(&f, KT_FRAME_TOP, w->o.max_event_size, 0, 1);
    while (rc == 0) {
        struct kt_frame fr;
        kt_framer_next(&f, rq->body, rq->len, 1, &fr);
        if (fr.kind == KT_FRAME_MORE) {
            break;
        }
        if (fr.kind == KT_FRAME_REJECT && strcmp(fr.reason, KT_FRAME_OVERSIZE) != 0) {
            /* a broken structure, not one bad item: the whole body is refused */
            *why = fr.reason;
            rc = KT_EPARSE;
            break;
        }
        if (fr.kind == KT_FRAME_REJECT) {
            struct kt_opened o = {fr.ptr, fr.len, fr.off, fr.line, fr.reason, KT_STR_NULL, 0};
            counts.records++;
            rc = req_add(&rs, &o);
            continue;
        }
        struct kt_str stamp = {fr.stamp, fr.stamplen};
        rc = kt_envelope_open_value(env, fr.ptr, fr.len, fr.off, fr.line, stamp, &sink, &counts);
    }
    kt_envelope_destroy(env);
    __atomic_add_fetch(&w->base.skipped, (uint64_t)counts.skipped, __ATOMIC_RELAXED);
    if (rc == 0 && rq->route == R_AUDIT && rq->nrecs > 0 && rs.events == 0) {
        *why = "no audit events: expected an EventList, an Event or a JSON array of Events";
        rc = KT_EPARSE;
    }
    return rc;
}

/* Enqueue rq (its bytes are held already) unless closed; 0, or 503 with *why. Called with
 * w->mu held. */
static int enqueue_locked(struct kt_webhook *w, struct req *rq, const char **why)
{
    if (w->closed) {
        *why = "shutting down";
        return 503;
    }
    rq->t_queued = kt_now_mono_us();
    rq->qnext = NULL;
    if (w->tail != NULL) {
        w->tail->qnext = rq;
    } else {
        w->head = rq;
    }
    w->tail = rq;
    w->st.queued_bytes += rq->len + rq->extra.len;
    w->st.queued_requests++;
    w->st.events += rq->nrecs;
    pthread_cond_signal(&w->cv);
    return 0;
}

static void observe_latency_locked(struct kt_webhook *w, int64_t us)
{
    double s = (double)us / 1e6;
    size_t i = 0;
    while (i < KT_WH_NBUCKETS && s > kt_webhook_buckets[i]) {
        i++;
    }
    w->st.latency[i]++;
    w->st.latency_sum += s;
    w->st.latency_count++;
}

/* Firehose's answer: {"requestId":..., "timestamp":ms[, "errorMessage":...]}. */
static enum MHD_Result answer_firehose(struct kt_webhook *w, struct MHD_Connection *c,
                                       const struct req *rq, int code, const char *msg)
{
    char body[1024];
    size_t k = (size_t)snprintf(body, sizeof(body), "{\"requestId\":\"");
    for (const char *p = rq->request_id; *p != '\0' && k + 8 < sizeof(body) / 2; p++) {
        unsigned char ch = (unsigned char)*p;
        body[k++] = ch == '"' || ch == '\\' || ch < 0x20 ? '_' : (char)ch;
    }
    k += (size_t)snprintf(body + k, sizeof(body) - k, "\",\"timestamp\":%lld",
                          (long long)(kt_now_wall_us() / 1000));
    if (msg != NULL) {
        k += (size_t)snprintf(body + k, sizeof(body) - k, ",\"errorMessage\":\"");
        for (const char *p = msg; *p != '\0' && k + 8 < sizeof(body); p++) {
            unsigned char ch = (unsigned char)*p;
            if (ch == '"' || ch == '\\') {
                body[k++] = '\\';
                body[k++] = (char)ch;
            } else {
                body[k++] = ch < 0x20 ? ' ' : (char)ch;
            }
        }
        k += (size_t)snprintf(body + k, sizeof(body) - k, "\"");
    }
    k += (size_t)snprintf(body + k, sizeof(body) - k, "}\n");
    return answer(c, count_code(w, code), "application/json", body, k, code == 503);
}

/* An error answer in the shape the request's protocol expects. */
static enum MHD_Result answer_req_error(struct kt_webhook *w, struct MHD_Connection *c,
                                        const struct req *rq, int code, const char *msg)
{
    if (rq->route == R_FIREHOSE) {
        return answer_firehose(w, c, rq, code, msg);
    }
    return answer_error(w, c, code, msg, 1);
}

/* A gzip'ed body (Content-Encoding: gzip), inflated in place of the body. 0, or KT_EPARSE
 * with *why, or KT_ENOMEM. */
static int req_gunzip(struct kt_webhook *w, struct req *rq, const char **why)
{
    struct kt_buf out = {NULL, 0, 0};
    int rc = kt_gunzip(rq->body, rq->len, w->o.max_body, &out, why);
    if (rc == 0) {
        rc = req_hold(w, rq, req_footprint(rq) - rq->cap + out.cap);
    }
    if (rc != 0) {
        kt_buf_free(&out);
        if (rc == KT_EPARSE && strstr(*why, "larger") != NULL) {
            *why = "decompressed body larger than --max-body";
        }
        return rc;
    }
    free(rq->body);
    rq->body = out.p;
    rq->len = out.len;
    rq->cap = out.cap;
    return 0;
}

/* The last call of a POST: frame, queue, wait for the commit, answer. */
static enum MHD_Result finish_post(struct kt_webhook *w, struct MHD_Connection *c, struct req *rq)
{
    const char *why = NULL;
    char msg[512];
    pthread_mutex_lock(&w->mu);
    if (rq->uploading) {
        rq->uploading = 0;
        w->uploading--;
    }
    pthread_mutex_unlock(&w->mu);
    if (rq->refuse) {
        return answer_req_error(w, c, rq, rq->refuse, rq->why);
    }
    if (rq->too_big) {
        snprintf(msg, sizeof(msg), "body larger than --max-body (%zu bytes)", w->o.max_body);
        return answer_req_error(w, c, rq, 413, msg);
    }
    int rc = 0;
    if (rq->gzip) {
        rc = req_gunzip(w, rq, &why);
    }
    if (rc == 0 && rq->route == R_FIREHOSE && rq->request_id[0] == '\0') {
        /* no X-Amz-Firehose-Request-Id header: the body names the request too */
        kt_json_top_string(rq->body, rq->len, "requestId", rq->request_id, sizeof(rq->request_id));
    }
    if (rc == 0) {
        rc = req_frame(w, rq, &why);
    }
    if (rc == 0) {
        rc = req_hold(w, rq, req_footprint(rq)); /* the records, and bytes opened from it */
    }
    if (rc == KT_EFULL) {
        return answer_req_error(w, c, rq, 503, "queue full: storage is behind");
    }
    if (rc == KT_ENOMEM) {
        return answer_req_error(w, c, rq, 503, "out of memory");
    }
    if (rc != 0) {
        return answer_req_error(w, c, rq, 400, why);
    }
    if (rq->nrecs == 0) {
        if (rq->route == R_FIREHOSE) {
            return answer_firehose(w, c, rq, 200, NULL);
        }
        return answer(c, count_code(w, 200), "application/json", "{\"events\":0}\n", 13, 0);
    }
    pthread_mutex_lock(&w->mu);
    int code = enqueue_locked(w, rq, &why);
    if (code != 0) {
        pthread_mutex_unlock(&w->mu);
        return answer_req_error(w, c, rq, code, why);
    }
    while (!rq->done) {
        pthread_cond_wait(&rq->cv, &w->mu);
    }
    int status = rq->status;
    if (status == 0) {
        observe_latency_locked(w, kt_now_mono_us() - rq->t_queued);
    }
    pthread_mutex_unlock(&w->mu);
    if (status != 0) {
        snprintf(msg, sizeof(msg), "not stored: %s", kt_strerror(status));
        return answer_req_error(w, c, rq, 503, msg);
    }
    if (rq->route == R_FIREHOSE) {
        return answer_firehose(w, c, rq, 200, NULL);
    }
    int n = snprintf(msg, sizeof(msg), "{\"events\":%zu}\n", rq->nrecs);
    return answer(c, count_code(w, 200), "application/json", msg, (size_t)n, 0);
}

/* Answer code once the body is in, its bytes dropped as they come (see refuse). */
static void refuse_later(struct req *rq, int code, const char *why)
{
    rq->refuse = code;
    snprintf(rq->why, sizeof(rq->why), "%s", why);
}

/*
 * Refuse a POST whose headers are in. A client waiting for "100 Continue" before it sends the
 * body is answered at once (it sends nothing then); any other is answered once its body is in:
 * answering before would close the connection with the client still sending, and the client
 * may then see a reset instead of the answer.
 */
static enum MHD_Result refuse(struct kt_webhook *w, struct MHD_Connection *c, struct req *rq,
                              int code, const char *why)
{
    const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0) {
        return answer_req_error(w, c, rq, code, why);
    }
    refuse_later(rq, code, why);
    return MHD_YES;
}

/* ---- connections: authenticated ones are never crowded out by others ---- */

static void pending_unlink_locked(struct listener *l, struct conn *k)
{
    if (!k->listed) {
        return;
    }
    *(k->prev != NULL ? &k->prev->next : &l->pending) = k->next;
    *(k->next != NULL ? &k->next->prev : &l->pend_end) = k->prev;
    k->prev = k->next = NULL;
    k->listed = 0;
    l->npending--;
}

/*
 * MHD's connection notifications. A new connection is pending; when that makes more than
 * MAX_PENDING, the oldest pending one is shut down (its thread then sees the end of its
 * socket and closes it): idle sockets, half handshakes and slow headers can hold the pending
 * room only until newer connections come, and never an authenticated connection's.
 */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct listener *l = cls;
    struct kt_webhook *w = l->w;
    struct conn *k = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (k != NULL) {
            pthread_mutex_lock(&w->mu);
            pending_unlink_locked(l, k);
            l->nauthed -= k->authed != 0;
            pthread_mutex_unlock(&w->mu);
            free(k);
            *socket_context = NULL;
        }
        return;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    k = calloc(1, sizeof(*k));
    if (k == NULL || ci == NULL) {
        if (ci != NULL) {
            shutdown(ci->connect_fd, SHUT_RDWR); /* untracked, it could never be evicted */
        }
        free(k);
        return;
    }
    k->l = l;
    k->fd = ci->connect_fd;
    pthread_mutex_lock(&w->mu);
    k->prev = l->pend_end;
    *(l->pend_end != NULL ? &l->pend_end->next : &l->pending) = k;
    l->pend_end = k;
    k->listed = 1;
    l->npending++;
    if (l->npending > MAX_PENDING) {
        struct conn *old = l->pending;
        pending_unlink_locked(l, old);
        shutdown(old->fd, SHUT_RDWR); /* open: its CLOSED notification has not come */
        w->st.conns_evicted++;
    }
    pthread_mutex_unlock(&w->mu);
    *socket_context = k;
}

/*
 * The connection of c has authenticated: it leaves the pending room for the authenticated
 * one (at most --max-connections) and gets the long inactivity timeout, as an apiserver
 * keeps connections open between batches. 0, or KT_EFULL when the authenticated room is full.
 */
static int conn_authed(struct listener *l, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn *k = ci != NULL ? ci->socket_context : NULL;
    if (k == NULL || k->authed) {
        return 0;
    }
    pthread_mutex_lock(&l->w->mu);
    int full = l->nauthed >= l->max_authed;
    if (!full) {
        pending_unlink_locked(l, k);
        k->authed = 1;
        l->nauthed++;
    }
    pthread_mutex_unlock(&l->w->mu);
    if (full) {
        return KT_EFULL;
    }
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S);
    return 0;
}

/* The route of a POST's path, or -1. */
static int route_of(const struct kt_webhook *w, const char *url)
{
    if (!w->audit_off && strcmp(url, w->path) == 0) {
        return R_AUDIT;
    }
    if (w->o.firehose_path != NULL && strcmp(url, w->o.firehose_path) == 0) {
        return R_FIREHOSE;
    }
    if (w->o.pubsub_path != NULL && strcmp(url, w->o.pubsub_path) == 0) {
        return R_PUBSUB;
    }
    return -1;
}

/* GET /healthz, /readyz, /metrics. */
static enum MHD_Result answer_get(struct listener *l, struct MHD_Connection *c, const char *url)
{
    struct kt_webhook *w = l->w;
    if (strcmp(url, "/healthz") == 0) {
        return answer(c, 200, "text/plain", "ok\n", 3, 0);
    }
    if (l->serves_status && (strcmp(url, "/readyz") == 0 || strcmp(url, "/metrics") == 0)) {
        if (w->o.status == NULL) {
            return answer(c, 200, "text/plain", "ok\n", 3, 0);
        }
        char *body = NULL;
        size_t len = 0;
        const char *ctype = "text/plain";
        int code = w->o.status(w->o.status_ctx, url, &body, &len, &ctype);
        enum MHD_Result r = answer(c, code, ctype, body != NULL ? body : "", len, 0);
        free(body);
        return r;
    }
    return answer(c, 404, "text/plain", "not found\n", 10, 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct listener *l = cls;
    struct kt_webhook *w = l->w;
    struct req *rq = *con_cls;
    (void)version;

    if (rq != NULL) {
        if (*upload_data_size > 0 && rq->refuse) {
            *upload_data_size = 0; /* read and dropped: see refuse() */
            return MHD_YES;
        }
        if (*upload_data_size > 0) {
            int rc = 0;
            if (!rq->too_big && rq->len + *upload_data_size > w->o.max_body) {
                rq->too_big = 1; /* keep reading, to answer 413 on a clean connection */
                req_drop_body(w, rq);
            } else if (!rq->too_big &&
                       (rc = req_append(w, rq, upload_data, *upload_data_size)) != 0) {
                req_drop_body(w, rq);
                refuse_later(rq, 503,
                             rc == KT_EFULL ? "queue full: storage is behind" : "out of memory");
            }
            *upload_data_size = 0;
            return MHD_YES;
        }
        return finish_post(w, c, rq);
    }

    /* first call: the headers are in */
    int is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    int route = route_of(w, url);
    if (l->metrics_only || (!is_post && route < 0)) {
        if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, "HEAD") == 0) {
            return answer_get(l, c, url);
        }
        return answer(c, 405, "text/plain", "method not allowed\n", 19, 0);
    }
    if (route < 0) {
        char msg[384];
        snprintf(msg, sizeof(msg), "unknown path: audit events are posted to %s",
                 w->audit_off ? (w->o.firehose_path != NULL ? w->o.firehose_path : w->o.pubsub_path)
                              : w->path);
        return answer_error(w, c, 404, msg, 1);
    }
    if (!is_post) {
        return answer_error(w, c, 405, "audit events are sent with POST", 1);
    }
    rq = calloc(1, sizeof(*rq));
    if (rq == NULL) {
        return answer_error(w, c, 503, "out of memory", 1);
    }
    pthread_cond_init(&rq->cv, NULL);
    *con_cls = rq;
    rq->route = route;
    const char *why = "unauthorized";
    char whybuf[192];
    int denied;
    if (route == R_FIREHOSE) {
        const char *id =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Firehose-Request-Id");
        snprintf(rq->request_id, sizeof(rq->request_id), "%s", id != NULL ? id : "");
        denied = authenticate_firehose(w, c, &rq->cluster, &why);
    } else if (route == R_PUBSUB) {
        denied = authenticate_pubsub(w, c, &rq->cluster, whybuf, sizeof(whybuf));
        why = whybuf;
    } else {
        denied = authenticate(w, c, rq, &rq->cluster, &why);
    }
    if (denied != 0) {
        kt_debug("webhook", "401 on %s: %s", url, why);
        return refuse(w, c, rq, 401, why);
    }
    if (conn_authed(l, c) != 0) {
        return refuse(w, c, rq, 503, "too many connections (--max-connections)");
    }
    const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (ctype == NULL || strncasecmp(ctype, "application/json", 16) != 0 ||
        (ctype[16] != '\0' && ctype[16] != ';' && ctype[16] != ' ')) {
        return refuse(w, c, rq, 400, "Content-Type must be application/json");
    }
    const char *cenc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    if (cenc != NULL && strcasecmp(cenc, "gzip") == 0) {
        rq->gzip = 1;
    } else if (cenc != NULL && strcasecmp(cenc, "identity") != 0) {
        return refuse(w, c, rq, 400, "unsupported Content-Encoding: send gzip or identity");
    }
    const char *clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    unsigned long long announced = clen != NULL ? strtoull(clen, NULL, 10) : 0;
    if (announced > w->o.max_body) {
        char msg[128];
        /* at once: curl and Go send Expect: 100-continue for large bodies, so none was sent */
        *con_cls = NULL;
        req_free(rq);
        snprintf(msg, sizeof(msg), "body larger than --max-body (%zu bytes)", w->o.max_body);
        return answer_error(w, c, 413, msg, 1);
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char host[64] = "?";
    if (ci != NULL && ci->client_addr != NULL) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET) {
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, host,
                      sizeof(host));
        } else if (sa->sa_family == AF_INET6) {
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, host,
                      sizeof(host));
        }
    }
    snprintf(rq->origin, sizeof(rq->origin), "webhook:%s", host);

    /* refuse fast, before reading a body we could not keep */
    pthread_mutex_lock(&w->mu);
    const char *busy = NULL;
    int64_t now = kt_now_mono_us();
    if (w->closed || w->stopping) {
        busy = "shutting down";
    } else if (w->failing && now - w->last_probe < PROBE_US) {
        busy = "storage is failing";
    } else if (hold_locked(w, rq, (size_t)announced) != 0) {
        busy = "queue full: storage is behind";
    } else {
        if (w->failing) {
            w->last_probe = now; /* one request a second finds out whether it recovered */
        }
        w->uploading++;
        rq->uploading = 1;
    }
    pthread_mutex_unlock(&w->mu);
    if (busy != NULL) {
        return refuse(w, c, rq, 503, busy);
    }
    rq->announced = (size_t)announced;
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct listener *l = cls;
    struct kt_webhook *w = l->w;
    struct req *rq = *con_cls;
    (void)c;
    (void)toe;
    if (rq == NULL) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    if (rq->uploading) {
        /* the connection ended during the upload: it was never queued */
        rq->uploading = 0;
        w->uploading--;
    }
    hold_locked(w, rq, 0);
    pthread_mutex_unlock(&w->mu);
    req_free(rq);
    *con_cls = NULL;
}

/* ---- the source interface ---- */

static int token_add(struct token *t, struct req *rq)
{
    if (t->n > 0 && t->reqs[t->n - 1] == rq) {
        return 0;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct req **nr = realloc(t->reqs, cap * sizeof(*nr));
        if (nr == NULL) {
            return KT_ENOMEM;
        }
        t->reqs = nr;
        t->cap = cap;
    }
    t->reqs[t->n++] = rq;
    return 0;
}

static void token_unlink_locked(struct kt_webhook *w, struct token *t)
{
    if (t->prev != NULL) {
        t->prev->next = t->next;
    } else {
        w->tokens_live = t->next;
    }
    if (t->next != NULL) {
        t->next->prev = t->prev;
    }
}

/* Count a batch's requests down; status < 0 marks them failed. Called with w->mu held. */
static void token_release_locked(struct kt_webhook *w, struct token *t, int status)
{
    for (size_t i = 0; i < t->n; i++) {
        struct req *rq = t->reqs[i];
        if (status != 0 && rq->status == 0) {
            rq->status = status;
        }
        rq->pending--;
        if (rq->pending == 0 && rq->next == rq->nrecs) {
            rq->done = 1;
            w->st.queued_requests--;
            pthread_cond_signal(&rq->cv);
        }
    }
    token_unlink_locked(w, t);
    free(t->reqs);
    free(t);
}

static int wh_next(struct kt_source *src, struct kt_batch *b, int timeout_ms)
{
    struct kt_webhook *w = (struct kt_webhook *)src;
    struct token *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return KT_ENOMEM;
    }
    pthread_mutex_lock(&w->mu);
    int64_t deadline = kt_now_mono_us() + (int64_t)timeout_ms * 1000;
    while (w->head == NULL) {
        if (w->stopping && (w->uploading == 0 || kt_now_mono_us() - w->stop_at > STOP_GRACE_US)) {
            w->closed = 1;
            pthread_mutex_unlock(&w->mu);
            free(t);
            return KT_EOF;
        }
        int64_t now = kt_now_mono_us();
        if (now >= deadline) {
            pthread_mutex_unlock(&w->mu);
            free(t);
            return KT_EAGAIN;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (deadline - now) * 1000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    /* take records from the queue's head while they fit; the requests stay the
     * connections' (they wait for the ack), so their bodies can be read unlocked below */
    struct take {
        struct req *rq;
        size_t from, to;
    } takes[64];
    size_t ntakes = 0, nrecs = 0, bytes = 0;
    const char *cluster = w->head->cluster;
    while (w->head != NULL && ntakes < sizeof(takes) / sizeof(takes[0])) {
        struct req *rq = w->head;
        if (ntakes > 0 &&
            (rq->cluster != cluster || (cluster != NULL && strcmp(rq->cluster, cluster) != 0))) {
            break; /* one cluster per batch */
        }
        size_t from = rq->next, to = from;
        while (to < rq->nrecs && (nrecs == 0 || (nrecs < w->o.batch_records &&
                                                 bytes + rq->recs[to].len <= w->o.batch_bytes))) {
            bytes += rq->recs[to].len;
            nrecs++;
            to++;
        }
        if (to == from) {
            break;
        }
        if (token_add(t, rq) != 0) {
            break;
        }
        rq->next = to;
        rq->pending++;
        takes[ntakes].rq = rq;
        takes[ntakes].from = from;
        takes[ntakes].to = to;
        ntakes++;
        if (to < rq->nrecs) {
            break; /* the batch is full */
        }
        w->head = rq->qnext;
        if (w->head == NULL) {
            w->tail = NULL;
        }
        w->st.queued_bytes -= rq->len + rq->extra.len;
    }
    t->next = w->tokens_live;
    if (t->next != NULL) {
        t->next->prev = t;
    }
    w->tokens_live = t;
    pthread_mutex_unlock(&w->mu);

    b->src_token = t;
    b->cluster = cluster != NULL ? (struct kt_str){cluster, strlen(cluster)} : KT_STR_NULL;
    int rc = kt_batch_reserve(b, bytes);
    for (size_t i = 0; rc == 0 && i < ntakes; i++) {
        struct req *rq = takes[i].rq;
        int origin = kt_batch_origin(b, rq->origin);
        if (origin < 0) {
            rc = origin;
            break;
        }
        for (size_t k = takes[i].from; k < takes[i].to; k++) {
            const struct rec *r = &rq->recs[k];
            struct kt_record *out = kt_batch_add_record(b);
            if (out == NULL) {
                rc = KT_ENOMEM;
                break;
            }
            out->pos = b->len;
            out->len = r->len;
            out->off = r->off;
            out->line = r->line;
            out->origin = (uint32_t)origin;
            out->reject = r->reject;
            out->truncated = r->truncated;
            if (r->clen > 0) {
                int ci = kt_batch_cluster(b, rq->extra.p + r->cpos, r->clen);
                if (ci < 0) {
                    rc = ci;
                    break;
                }
                out->cluster = (uint32_t)ci;
            }
            memcpy(b->buf + b->len, (r->extra ? rq->extra.p : rq->body) + r->pos, r->len);
            b->len += r->len;
        }
    }
    if (rc != 0) {
        /* the requests get 503 through the ack the pipeline will not send: do it here */
        pthread_mutex_lock(&w->mu);
        token_release_locked(w, t, rc);
        pthread_mutex_unlock(&w->mu);
        b->src_token = NULL;
        kt_batch_reset(b);
        return KT_EAGAIN;
    }
    src->bytes_done += bytes;
    return 0;
}

static void wh_ack(struct kt_source *src, struct kt_batch *b, int status)
{
    struct kt_webhook *w = (struct kt_webhook *)src;
    struct token *t = b->src_token;
    if (t == NULL) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->failing = status != 0;
    token_release_locked(w, t, status);
    pthread_mutex_unlock(&w->mu);
    b->src_token = NULL;
}

static void wh_stop(struct kt_source *src)
{
    struct kt_webhook *w = (struct kt_webhook *)src;
    pthread_mutex_lock(&w->mu);
    if (!w->stopping) {
        w->stopping = 1;
        w->stop_at = kt_now_mono_us();
    }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    /* no new connections; requests on open ones are answered 503 */
    if (w->main.d != NULL) {
        MHD_socket fd = MHD_quiesce_daemon(w->main.d);
        if (fd != MHD_INVALID_SOCKET) {
            close(fd);
        }
    }
}

static void wh_destroy(struct kt_source *src)
{
    struct kt_webhook *w = (struct kt_webhook *)src;
    pthread_mutex_lock(&w->mu);
    w->closed = 1;
    /* whatever was not committed is answered 503 so that its connection can end */
    for (struct req *rq = w->head; rq != NULL; rq = rq->qnext) {
        rq->next = rq->nrecs;
        if (rq->status == 0) {
            rq->status = KT_EIO;
        }
        if (rq->pending == 0) {
            rq->done = 1;
            pthread_cond_signal(&rq->cv);
        }
    }
    w->head = w->tail = NULL;
    while (w->tokens_live != NULL) {
        token_release_locked(w, w->tokens_live, KT_EIO);
    }
    pthread_mutex_unlock(&w->mu);
    if (w->main.d != NULL) {
        MHD_stop_daemon(w->main.d);
    }
    if (w->metrics.d != NULL) {
        MHD_stop_daemon(w->metrics.d);
    }
    free_pairs(w->tokens, w->ntokens);
    free_pairs(w->cnmap, w->ncnmap);
    free_pairs(w->fh_keys, w->nfh_keys);
    free_pairs(w->ps_tokens, w->nps_tokens);
    kt_jwks_destroy(w->jwks);
    if (w->key_pem != NULL) {
        explicit_bzero(w->key_pem, strlen(w->key_pem));
    }
    free(w->key_pem);
    free(w->cert_pem);
    free(w->ca_pem);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static const struct kt_source_ops webhook_ops = {
    .name = "webhook",
    .next = wh_next,
    .ack = wh_ack,
    .stop = wh_stop,
    .destroy = wh_destroy,
};

/* ---- start ---- */

/* "host:port", "[v6]:port" or ":port" into a socket address. 0, or KT_EINVAL with errstr. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, char *errstr, size_t errlen)
{
    char host[256];
    const char *port;
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof(host)) {
            snprintf(errstr, errlen, "bad listen address '%s' (want [ADDR]:PORT)", spec);
            return KT_EINVAL;
        }
        memcpy(host, spec + 1, (size_t)(end - spec - 1));
        host[end - spec - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (colon == NULL || (size_t)(colon - spec) >= sizeof(host)) {
            snprintf(errstr, errlen, "bad listen address '%s' (want ADDR:PORT or :PORT)", spec);
            return KT_EINVAL;
        }
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = colon + 1;
    }
    char *end = NULL;
    long p = strtol(port, &end, 10);
    if (*port == '\0' || *end != '\0' || p < 0 || p > 65535) {
        snprintf(errstr, errlen, "bad port in listen address '%s'", spec);
        return KT_EINVAL;
    }
    struct addrinfo hints = {.ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int g = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &ai);
    if (g != 0 || ai == NULL) {
        snprintf(errstr, errlen, "listen address '%s': %s", spec, gai_strerror(g));
        return KT_EINVAL;
    }
    /* without a host, listen on every IPv4 address (AI_PASSIVE gives 0.0.0.0 first) */
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

/* libmicrohttpd's logger; the format is its own. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') {
        msg[--n] = '\0';
    }
    kt_debug("webhook", "http: %s", msg);
}

static int start_listener(struct kt_webhook *w, struct listener *l, const char *spec, int tls,
                          char *errstr, size_t errlen)
{
    struct sockaddr_storage ss;
    int rc = parse_listen(spec, &ss, errstr, errlen);
    if (rc != 0) {
        return rc;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    if (tls) {
        flags |= MHD_USE_TLS;
    }
    /* the pending room, twice: connections shut down take a moment to close */
    l->max_authed = l->metrics_only ? 0 : w->o.max_connections;
    struct MHD_OptionItem opts[13];
    size_t n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                        (intptr_t)(l->max_authed + 2 * MAX_PENDING), NULL};
    /* until a request authenticates; then IDLE_TIMEOUT_S (conn_authed) */
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)w->o.auth_timeout, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, l};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, l};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_STACK_SIZE, 256 * 1024, NULL};
    if (tls) {
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, w->cert_pem};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, w->key_pem};
        if (w->ca_pem != NULL) {
            opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, w->ca_pem};
        }
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    l->w = w;
    l->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, l, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
    if (l->d == NULL) {
        snprintf(errstr, errlen,
                 "cannot listen on %s (address in use, not local, or bad TLS key/certificate)",
                 spec);
        return KT_EINVAL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = di != NULL ? di->port : 0;
    char host[64] = "0.0.0.0";
    if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)&ss)->sin6_addr, host, sizeof(host));
        snprintf(l->url, sizeof(l->url), "%s://[%s]:%u%s", tls ? "https" : "http", host, port,
                 l->metrics_only ? "" : w->path);
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&ss)->sin_addr, host, sizeof(host));
        snprintf(l->url, sizeof(l->url), "%s://%s:%u%s", tls ? "https" : "http", host, port,
                 l->metrics_only ? "" : w->path);
    }
    return 0;
}

int kt_webhook_source_create(const struct kt_webhook_opts *o, struct kt_source **out, char *errstr,
                             size_t errlen)
{
    *out = NULL;
    if (o->listen == NULL) {
        snprintf(errstr, errlen, "serve needs --listen ADDR:PORT");
        return KT_EINVAL;
    }
    if ((o->tls_cert == NULL) != (o->tls_key == NULL)) {
        snprintf(errstr, errlen, "--tls-cert and --tls-key go together");
        return KT_EINVAL;
    }
    if (o->client_ca != NULL && o->tls_cert == NULL) {
        snprintf(errstr, errlen, "--client-ca needs TLS (--tls-cert and --tls-key)");
        return KT_EINVAL;
    }
    if (o->cn_map_file != NULL && o->client_ca == NULL) {
        snprintf(errstr, errlen, "--cluster-map maps client certificates: it needs --client-ca");
        return KT_EINVAL;
    }
    if (!o->insecure && o->tls_cert == NULL) {
        snprintf(errstr, errlen,
                 "refusing plain HTTP: give --tls-cert and --tls-key, or --insecure to accept "
                 "unencrypted audit events");
        return KT_EINVAL;
    }
    int others = o->firehose_path != NULL || o->pubsub_path != NULL;
    if (!o->insecure && o->client_ca == NULL && o->token_file == NULL && !others) {
        snprintf(errstr, errlen,
                 "refusing an open audit sink (anyone could forge history): give --client-ca or "
                 "--token-file, or --insecure");
        return KT_EINVAL;
    }
    if (!o->insecure && o->firehose_path != NULL && o->firehose_key_file == NULL) {
        snprintf(errstr, errlen,
                 "refusing an open Firehose endpoint: give --firehose-key-file (the access key "
                 "of the delivery stream), or --insecure");
        return KT_EINVAL;
    }
    if (!o->insecure && o->pubsub_path != NULL && o->pubsub_token_file == NULL &&
        o->pubsub_jwks == NULL) {
        snprintf(errstr, errlen,
                 "refusing an open Pub/Sub endpoint: give --pubsub-token-file or --pubsub-jwks "
                 "with --pubsub-audience, or --insecure");
        return KT_EINVAL;
    }
    if ((o->pubsub_jwks == NULL) != (o->pubsub_audience == NULL) ||
        (o->pubsub_jwks == NULL) != (o->pubsub_email == NULL)) {
        snprintf(errstr, errlen,
                 "--pubsub-jwks, --pubsub-audience and --pubsub-email go together (Google signs "
                 "tokens for any account: the push subscription's service account must be named)");
        return KT_EINVAL;
    }
    struct kt_webhook *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return KT_ENOMEM;
    }
    w->base.ops = &webhook_ops;
    w->o = *o;
    snprintf(w->path, sizeof(w->path), "%s", o->path != NULL ? o->path : "/k8s-audit");
    snprintf(w->cluster, sizeof(w->cluster), "%s", o->cluster != NULL ? o->cluster : "");
    w->o.path = w->path;
    if (w->o.max_body == 0) {
        w->o.max_body = 32u << 20;
    }
    if (w->o.max_event_size == 0) {
        w->o.max_event_size = 16u << 20;
    }
    if (w->o.queue_bytes == 0) {
        w->o.queue_bytes = 256u << 20;
    }
    if (w->o.max_connections == 0) {
        w->o.max_connections = 128;
    }
    if (w->o.auth_timeout == 0) {
        w->o.auth_timeout = 10;
    }
    if (w->o.batch_records == 0) {
        w->o.batch_records = 1024;
    }
    if (w->o.batch_bytes == 0) {
        w->o.batch_bytes = 4u << 20;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    int rc = 0;
    if (o->tls_cert != NULL) {
        w->cert_pem = read_file(o->tls_cert, NULL, errstr, errlen);
        w->key_pem = w->cert_pem != NULL ? read_file(o->tls_key, NULL, errstr, errlen) : NULL;
        if (w->key_pem == NULL) {
            rc = KT_EINVAL;
            goto fail;
        }
    }
    if (o->client_ca != NULL &&
        (w->ca_pem = read_file(o->client_ca, NULL, errstr, errlen)) == NULL) {
        rc = KT_EINVAL;
        goto fail;
    }
    if (o->token_file != NULL &&
        (rc = read_pairs(o->token_file, &w->tokens, &w->ntokens, errstr, errlen)) != 0) {
        goto fail;
    }
    if (o->cn_map_file != NULL &&
        (rc = read_pairs(o->cn_map_file, &w->cnmap, &w->ncnmap, errstr, errlen)) != 0) {
        goto fail;
    }
    if (o->firehose_key_file != NULL &&
        (rc = read_pairs(o->firehose_key_file, &w->fh_keys, &w->nfh_keys, errstr, errlen)) != 0) {
        goto fail;
    }
    if (o->pubsub_token_file != NULL && (rc = read_pairs(o->pubsub_token_file, &w->ps_tokens,
                                                         &w->nps_tokens, errstr, errlen)) != 0) {
        goto fail;
    }
    if (o->pubsub_jwks != NULL &&
        (rc = kt_jwks_load(o->pubsub_jwks, &w->jwks, errstr, errlen)) != 0) {
        goto fail;
    }
    /* with only cloud endpoints configured, the apiserver's path has no credentials */
    w->audit_off = !o->insecure && o->client_ca == NULL && o->token_file == NULL;
    w->main.serves_status = o->metrics_listen == NULL;
    if ((rc = start_listener(w, &w->main, o->listen, o->tls_cert != NULL, errstr, errlen)) != 0) {
        goto fail;
    }
    if (o->metrics_listen != NULL) {
        w->metrics.metrics_only = 1;
        w->metrics.serves_status = 1;
        rc = start_listener(w, &w->metrics, o->metrics_listen, 0, errstr, errlen);
        if (rc != 0) {
            goto fail;
        }
    }
    *out = &w->base;
    return 0;
fail:
    wh_destroy(&w->base);
    return rc;
}

const char *kt_webhook_url(const struct kt_source *src)
{
    return ((const struct kt_webhook *)src)->main.url;
}

const char *kt_webhook_metrics_url(const struct kt_source *src)
{
    const struct kt_webhook *w = (const struct kt_webhook *)src;
    return w->metrics.d != NULL ? w->metrics.url : NULL;
}

void kt_webhook_stats(struct kt_source *src, struct kt_webhook_stats *out)
{
    struct kt_webhook *w = (struct kt_webhook *)src;
    pthread_mutex_lock(&w->mu);
    *out = w->st;
    out->held_bytes = w->held;
    pthread_mutex_unlock(&w->mu);
}
