/*
 * envelope.c: detecting and opening the shapes audit events arrive in (see envelope.h).
 *
 * A value is classified by scanning its top-level keys without parsing it: a bare Event's
 * first key ("kind", or "level" then "auditID" for webhook items) settles it at once. Any
 * other object is scanned to its end, collecting the members the shape table below needs,
 * and the first row whose keys are present opens it. Opening either passes a slice on
 * (an event merged in a shipper's record is the record itself), rewrites the value (GKE and
 * Log Analytics records converted, OpenShift's audit level put back, a cut event salvaged),
 * or yields a payload: an object in place, a JSON string unescaped, base64 decoded, gzip
 * inflated, which is framed and opened again one level deeper. Each level has its own
 * buffers, so a payload can be opened while the level holding it is still being walked;
 * MAX_DEPTH bounds the nesting.
 *
 * What an envelope says (cluster, time, that a transport delivered the text) is a struct
 * ctx handed down to the levels inside it: the innermost envelope that names a cluster wins.
 *
 * Shapes are tried in the order of the openers table below (the README lists them with what
 * each provider delivers): a bare Event never reaches it (its first key settles it), an
 * object holding Event keys is an Event merged into a shipper's record (OpenShift's gets its
 * audit level back), then CloudWatch messages, Lambda events, GKE entries, Log Analytics rows,
 * "records" and "events" arrays, AKS records, CloudWatch log events, Pub/Sub messages, base64
 * "data", and shippers' "message" or "log".
 * Anything else goes to the decoder, which rejects it with its own precise reason.
 */
#include "envelope.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include <zlib.h>

#include "convert.h"
#include "frame.h"
#include "salvage.h"

enum {
    MAX_DEPTH = 8,      /* levels of text: a Firehose body > record > DATA_MESSAGE > event */
    REJECT_HEAD = 1024, /* bytes of a rejected value kept (the store keeps as much) */
    CLUSTER_MAX = 255,  /* longest cluster name taken from an envelope */
    BUDGET_FACTOR = 4,  /* one value opens into at most this many times --max-event-size of
                           events: gzip in base64 in gzip could otherwise make gigabytes */
};

/* Buffers of one level of text. */
struct level {
    struct kt_framer fr;        /* frames this level's text */
    struct kt_buf text;         /* an unescaped JSON string payload */
    struct kt_buf bin;          /* a base64 payload, decoded */
    struct kt_buf gz;           /* a gzip payload, inflated */
    struct kt_buf out;          /* a rewritten value: salvaged, OpenShift level put back */
    struct kt_convert_out conv; /* a converted record (GKE, AKSAudit) */
};

struct kt_envelope {
    size_t max_event;               /* largest value accepted */
    size_t budget;                  /* bytes of events one outer value may open into */
    size_t used;                    /* of the value being opened */
    int over;                       /* it passed the budget: the rest is dropped */
    struct level lv[MAX_DEPTH];     /* per level of text */
    const struct kt_env_sink *sink; /* of the value being opened */
    struct kt_env_counts *c;        /* its counts */
    uint64_t off;                   /* its position in its origin */
    uint64_t line;
};

/* What an envelope says about the values inside it. */
struct ctx {
    struct kt_str cluster;      /* cluster name, or NULL */
    char cbuf[CLUSTER_MAX + 1]; /* a cluster name that had to be rewritten */
    int64_t time_us;            /* the envelope's time of the event, 0 when unknown */
    int transport;              /* the text is a string a log transport delivered: a cut
                                   event in it is salvaged */
};

/* A value's bytes in its text: [start, end); end == 0 when absent. */
struct span {
    size_t start;
    size_t end;
};

struct kt_envelope *kt_envelope_create(size_t max_event)
{
    struct kt_envelope *e = calloc(1, sizeof(*e));
    if (e != NULL) {
        e->max_event = max_event > 0 ? max_event : 16u << 20;
        e->budget = e->max_event * BUDGET_FACTOR;
    }
    return e;
}

void kt_envelope_destroy(struct kt_envelope *e)
{
    if (e == NULL) {
        return;
    }
    for (int i = 0; i < MAX_DEPTH; i++) {
        kt_buf_free(&e->lv[i].text);
        kt_buf_free(&e->lv[i].bin);
        kt_buf_free(&e->lv[i].gz);
        kt_buf_free(&e->lv[i].out);
        kt_buf_free(&e->lv[i].conv.json);
    }
    free(e);
}

/* ---- records out ---- */

static int emit(struct kt_envelope *e, const char *p, size_t n, const char *reject,
                const struct ctx *x, int truncated)
{
    if (e->over) {
        return 0;
    }
    if (e->used + n > e->budget) {
        e->over = 1;
        reject = "envelope opens into more than 4 x --max-event-size of events: the rest of it "
                 "is dropped";
    }
    e->used += n;
    struct kt_opened r = {
        .ptr = p,
        .len = reject != NULL && n > REJECT_HEAD ? REJECT_HEAD : n,
        .off = e->off,
        .line = e->line,
        .reject = reject,
        .cluster = x != NULL ? x->cluster : KT_STR_NULL,
        .truncated = truncated,
    };
    e->c->records++;
    e->c->rejects += reject != NULL;
    return e->sink->add(e->sink->ctx, &r);
}

int kt_env_batch_add(void *ctx, const struct kt_opened *r)
{
    struct kt_env_batch *eb = ctx;
    struct kt_batch *b = eb->b;
    uint32_t cluster = 0;
    if (r->cluster.ptr != NULL && r->cluster.len > 0) {
        int ci = kt_batch_cluster(b, r->cluster.ptr, r->cluster.len);
        if (ci < 0) {
            return ci;
        }
        cluster = (uint32_t)ci;
    }
    if (kt_batch_reserve(b, r->len) != 0) {
        return KT_ENOMEM;
    }
    struct kt_record *rec = kt_batch_add_record(b);
    if (rec == NULL) {
        return KT_ENOMEM;
    }
    if (r->len > 0) {
        memcpy(b->buf + b->len, r->ptr, r->len);
    }
    rec->pos = b->len;
    rec->len = r->len;
    b->len += r->len;
    rec->off = r->off;
    rec->line = r->line;
    rec->origin = eb->origin;
    rec->cluster = cluster;
    rec->truncated = r->truncated;
    rec->reject = r->reject;
    return 0;
}

/* ---- scanning JSON without parsing it ---- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t skip_ws(const char *p, size_t i, size_t n)
{
    while (i < n && is_ws(p[i])) {
        i++;
    }
    return i;
}

/* p[i] is '"': the index just past the closing quote, or 0 when the string is unterminated. */
static size_t skip_string(const char *p, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        const char *q = memchr(p + i, '"', n - i);
        if (q == NULL) {
            return 0;
        }
        size_t j = (size_t)(q - p), bs = 0;
        while (j - bs > i && p[j - bs - 1] == '\\') {
            bs++;
        }
        if (bs % 2 == 0) {
            return j + 1;
        }
        i = j;
    }
    return 0;
}

/* The index just past the value at p[i], or 0 when it is malformed or cut short. */
static size_t skip_value(const char *p, size_t i, size_t n)
{
    if (i >= n) {
        return 0;
    }
    if (p[i] == '"') {
        return skip_string(p, i, n);
    }
    if (p[i] == '{' || p[i] == '[') {
        size_t depth = 0;
        while (i < n) {
            char c = p[i];
            if (c == '"') {
                i = skip_string(p, i, n);
                if (i == 0) {
                    return 0;
                }
                continue;
            }
            if (c == '{' || c == '[') {
                depth++;
            } else if ((c == '}' || c == ']') && --depth == 0) {
                return i + 1;
            }
            i++;
        }
        return 0;
    }
    size_t j = i;
    while (j < n && !is_ws(p[j]) && p[j] != ',' && p[j] != '}' && p[j] != ']') {
        j++;
    }
    return j > i ? j : 0;
}

static int span_is(const char *p, struct span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.end - s.start == n && memcmp(p + s.start, lit, n) == 0;
}

/* A string value's body (without quotes) starts with lit. */
static int str_starts(const char *p, struct span v, const char *lit)
{
    size_t n = strlen(lit);
    return v.end - v.start >= n + 2 && p[v.start] == '"' && memcmp(p + v.start + 1, lit, n) == 0;
}

static int str_is(const char *p, struct span v, const char *lit)
{
    return v.end - v.start == strlen(lit) + 2 && str_starts(p, v, lit);
}

static char kind_of(const char *p, struct span v)
{
    return v.end == 0 ? 0 : p[v.start];
}

/* ---- the keys shapes are told by ---- */

enum key {
    /* Event keys only Events have: one of them makes an Event */
    K_AUDIT_ID,
    K_STAGE,
    K_STAGE_TS,
    K_RECV_TS,
    K_REQUEST_URI,
    K_VERB,
    K_OBJECT_REF,
    K_RESPONSE_STATUS,
    K_SOURCE_IPS,
    K_IMP_USER,
    K_EXCLUSIVE_END,
    /* Event keys others share (kind and apiVersion are exclusive with an audit value) */
    K_KIND = K_EXCLUSIVE_END,
    K_API_VERSION,
    K_LEVEL,
    K_USER,
    K_USER_AGENT,
    K_ANNOTATIONS,
    K_REQUEST_OBJECT,
    K_RESPONSE_OBJECT,
    K_METADATA,
    K_TIMESTAMP,
    K_EVENT_END,
    /* envelope keys */
    K_LOG = K_EVENT_END,
    K_MESSAGE,
    K_RECORDS,
    K_CATEGORY,
    K_PROPERTIES,
    K_RESOURCE_ID,
    K_TIME,
    K_MESSAGE_TYPE,
    K_LOG_GROUP,
    K_LOG_STREAM,
    K_LOG_EVENTS,
    K_AWSLOGS,
    K_DATA,
    K_EVENTS,
    K_LOG_STREAM_NAME,
    K_PROTO_PAYLOAD,
    K_AUDIT_ID_ROW,
    K_K8S_AUDIT_LEVEL,
    K_OPENSHIFT,
    K_CLUSTER_ID,
    K_COUNT
};

/* The key names, with their lengths (key_id compares lengths first: most keys differ there). */
#define KEY(s)                                                                                     \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
static const struct {
    const char *s; /* the name */
    size_t n;      /* its length */
} key_names[K_COUNT] = {
    [K_AUDIT_ID] = KEY("auditID"),
    [K_STAGE] = KEY("stage"),
    [K_STAGE_TS] = KEY("stageTimestamp"),
    [K_RECV_TS] = KEY("requestReceivedTimestamp"),
    [K_REQUEST_URI] = KEY("requestURI"),
    [K_VERB] = KEY("verb"),
    [K_OBJECT_REF] = KEY("objectRef"),
    [K_RESPONSE_STATUS] = KEY("responseStatus"),
    [K_SOURCE_IPS] = KEY("sourceIPs"),
    [K_IMP_USER] = KEY("impersonatedUser"),
    [K_KIND] = KEY("kind"),
    [K_API_VERSION] = KEY("apiVersion"),
    [K_LEVEL] = KEY("level"),
    [K_USER] = KEY("user"),
    [K_USER_AGENT] = KEY("userAgent"),
    [K_ANNOTATIONS] = KEY("annotations"),
    [K_REQUEST_OBJECT] = KEY("requestObject"),
    [K_RESPONSE_OBJECT] = KEY("responseObject"),
    [K_METADATA] = KEY("metadata"),
    [K_TIMESTAMP] = KEY("timestamp"),
    [K_LOG] = KEY("log"),
    [K_MESSAGE] = KEY("message"),
    [K_RECORDS] = KEY("records"),
    [K_CATEGORY] = KEY("category"),
    [K_PROPERTIES] = KEY("properties"),
    [K_RESOURCE_ID] = KEY("resourceId"),
    [K_TIME] = KEY("time"),
    [K_MESSAGE_TYPE] = KEY("messageType"),
    [K_LOG_GROUP] = KEY("logGroup"),
    [K_LOG_STREAM] = KEY("logStream"),
    [K_LOG_EVENTS] = KEY("logEvents"),
    [K_AWSLOGS] = KEY("awslogs"),
    [K_DATA] = KEY("data"),
    [K_EVENTS] = KEY("events"),
    [K_LOG_STREAM_NAME] = KEY("logStreamName"),
    [K_PROTO_PAYLOAD] = KEY("protoPayload"),
    [K_AUDIT_ID_ROW] = KEY("AuditId"),
    [K_K8S_AUDIT_LEVEL] = KEY("k8s_audit_level"),
    [K_OPENSHIFT] = KEY("openshift"),
    [K_CLUSTER_ID] = KEY("cluster_id"),
};
#undef KEY

/* The members of one object the shapes need. */
struct keys {
    struct span v[K_COUNT]; /* value spans by enum key; end == 0 when absent (first wins) */
    int event;              /* an exclusive Event key is present */
};

static int key_id(const char *p, struct span k)
{
    size_t n = k.end - k.start;
    for (int i = 0; i < K_COUNT; i++) {
        if (key_names[i].n == n && memcmp(p + k.start, key_names[i].s, n) == 0) {
            return i;
        }
    }
    return -1;
}

/* Is (key id, value) one that only an audit Event has? */
static int exclusive(const char *p, int id, struct span v)
{
    if (id >= 0 && id < K_EXCLUSIVE_END) {
        return 1;
    }
    return (id == K_KIND && str_is(p, v, "Event")) ||
           (id == K_API_VERSION && str_starts(p, v, "audit.k8s.io/"));
}

enum scan {
    SCAN_OTHER, /* not an object, or malformed: for the decoder to judge */
    SCAN_EVENT, /* an Event with no foreign key before its first exclusive key: stopped there */
    SCAN_FULL,  /* scanned to the end: k filled */
};

/* Walking the members of an object without parsing their values. */
struct members {
    const char *p; /* the object's text */
    size_t n;      /* its length */
    size_t i;      /* where the next member (or ',' or '}') is */
    int started;   /* a member was given */
};

/* 0 when p[0, n) starts an object, -1 when it does not. */
static int members_open(struct members *m, const char *p, size_t n)
{
    size_t i = skip_ws(p, 0, n);
    m->p = p;
    m->n = n;
    m->i = i + 1;
    m->started = 0;
    return i < n && p[i] == '{' ? 0 : -1;
}

/* The next member's key (without quotes) and value. 1: a member; 0: the object ended; -1: it
 * is malformed or cut short. */
static int members_next(struct members *m, struct span *key, struct span *val)
{
    const char *p = m->p;
    size_t n = m->n, i = skip_ws(p, m->i, n);
    if (i < n && p[i] == '}') {
        return 0;
    }
    if (m->started) {
        if (i >= n || p[i] != ',') {
            return -1;
        }
        i = skip_ws(p, i + 1, n);
    }
    if (i >= n || p[i] != '"') {
        return -1;
    }
    size_t kend = skip_string(p, i, n);
    if (kend == 0) {
        return -1;
    }
    *key = (struct span){i + 1, kend - 1};
    i = skip_ws(p, kend, n);
    if (i >= n || p[i] != ':') {
        return -1;
    }
    i = skip_ws(p, i + 1, n);
    size_t vend = skip_value(p, i, n);
    if (vend == 0) {
        return -1;
    }
    *val = (struct span){i, vend};
    m->i = vend;
    m->started = 1;
    return 1;
}

/*
 * Scan the object p[0, n) member by member into k. A bare Event (or a webhook item) stops
 * at its first exclusive key, so it costs a few comparisons.
 */
static int scan_object(const char *p, size_t n, struct keys *k)
{
    struct members m;
    struct span key, v;
    int foreign = 0, r;
    memset(k, 0, sizeof(*k));
    if (members_open(&m, p, n) != 0) {
        return SCAN_OTHER;
    }
    while ((r = members_next(&m, &key, &v)) > 0) {
        int id = key_id(p, key);
        if (exclusive(p, id, v)) {
            if (!foreign) {
                return SCAN_EVENT;
            }
            k->event = 1;
        } else if (id < 0 || id >= K_EVENT_END) {
            foreign = 1;
        }
        if (id >= 0 && k->v[id].end == 0) {
            k->v[id] = v;
        }
    }
    return r == 0 ? SCAN_FULL : SCAN_OTHER;
}

int kt_json_top_string(const char *p, size_t n, const char *key, char *out, size_t outlen)
{
    struct members m;
    struct span k, v;
    if (outlen == 0 || members_open(&m, p, n) != 0) {
        return KT_ENOENT;
    }
    while (members_next(&m, &k, &v) > 0) {
        if (span_is(p, k, key) && p[v.start] == '"') {
            size_t len = v.end - v.start - 2;
            len = len < outlen - 1 ? len : outlen - 1;
            memcpy(out, p + v.start + 1, len);
            out[len] = '\0';
            return 0;
        }
    }
    return KT_ENOENT;
}

/* ---- decoding payloads: JSON strings, base64, gzip ---- */

/* The string value at v in p, unescaped into buf (emptied first). 0, KT_EPARSE on a bad
 * escape, KT_ENOMEM. */
static int string_into(const char *p, struct span v, struct kt_buf *buf)
{
    size_t n = v.end - v.start - 2;
    buf->len = 0;
    if (kt_buf_reserve(buf, n + 1) != 0) {
        return KT_ENOMEM;
    }
    ssize_t len = kt_json_unescape(p + v.start + 1, n, buf->p);
    if (len < 0) {
        return KT_EPARSE;
    }
    buf->len = (size_t)len;
    return 0;
}

/* Base64 (standard or URL alphabet, padding optional, whitespace ignored) of in[0, n) into
 * out (emptied first). 0, KT_EPARSE when it is not base64, KT_ENOMEM. */
static int base64_into(const char *in, size_t n, struct kt_buf *out)
{
    out->len = 0;
    if (kt_buf_reserve(out, n / 4 * 3 + 3) != 0) {
        return KT_ENOMEM;
    }
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;
        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';
        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;
        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;
        } else if (c == '+' || c == '-') {
            v = 62;
        } else if (c == '/' || c == '_') {
            v = 63;
        } else if (c == '=') {
            pad++;
            continue;
        } else if (is_ws((char)c)) {
            continue;
        } else {
            return KT_EPARSE;
        }
        if (pad > 0) {
            return KT_EPARSE; /* data after padding */
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out->p[out->len++] = (char)((acc >> bits) & 0xff);
        }
    }
    return bits >= 6 ? KT_EPARSE : 0; /* a lone 6-bit group is no byte */
}

static int is_gzip(const char *p, size_t n)
{
    return n >= 2 && (unsigned char)p[0] == 0x1f && (unsigned char)p[1] == 0x8b;
}

int kt_gunzip(const char *p, size_t n, size_t max, struct kt_buf *out, const char **why)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 16) != Z_OK) {
        return KT_ENOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)p;
    zs.avail_in = (uInt)n;
    int rc = 0;
    for (;;) {
        size_t room = n * 4 > 65536 ? n * 4 : 65536;
        if (kt_buf_reserve(out, room) != 0) {
            rc = KT_ENOMEM;
            break;
        }
        zs.next_out = (Bytef *)(out->p + out->len);
        zs.avail_out = (uInt)(out->cap - out->len > UINT32_MAX ? UINT32_MAX : out->cap - out->len);
        uInt before = zs.avail_out;
        int z = inflate(&zs, Z_NO_FLUSH);
        out->len += before - zs.avail_out;
        if (out->len > max) {
            *why = "decompressed value larger than --max-event-size";
            rc = KT_EPARSE;
            break;
        }
        if (z == Z_STREAM_END) {
            /* another member? Firehose concatenates them; anything else ends the data */
            while (zs.avail_in > 0 && *zs.next_in == 0) {
                zs.next_in++;
                zs.avail_in--;
            }
            if (zs.avail_in == 0) {
                break;
            }
            if (zs.avail_in < 2 || zs.next_in[0] != 0x1f || zs.next_in[1] != 0x8b) {
                *why = "invalid gzip data: garbage after a gzip member";
                rc = KT_EPARSE;
                break;
            }
            inflateReset(&zs);
            continue;
        }
        if (z == Z_BUF_ERROR && zs.avail_in == 0) {
            *why = "invalid gzip data: cut short";
            rc = KT_EPARSE;
            break;
        }
        if (z != Z_OK && z != Z_BUF_ERROR) {
            *why = z == Z_MEM_ERROR ? "out of memory" : "invalid gzip data: corrupt";
            rc = z == Z_MEM_ERROR ? KT_ENOMEM : KT_EPARSE;
            break;
        }
    }
    inflateEnd(&zs);
    return rc;
}

/* ---- the levels ---- */

static int open_value(struct kt_envelope *e, int depth, const char *p, size_t n,
                      const struct ctx *x);
static int open_text(struct kt_envelope *e, int depth, const char *p, size_t n,
                     const struct ctx *x);

/* Start the context of a level inside x: a copy, whose cluster still points at its own
 * buffer when x's did. */
static void inherit(struct ctx *in, const struct ctx *x)
{
    *in = *x;
    if (x->cluster.ptr == x->cbuf) {
        in->cluster.ptr = in->cbuf;
    }
}

/* Set x's cluster to the string at v in p, lower-cased when asked. */
static void set_cluster(struct ctx *x, const char *p, struct span v, int lower)
{
    if (kind_of(p, v) != '"') {
        return;
    }
    char tmp[CLUSTER_MAX * 2 + 2];
    size_t n = v.end - v.start - 2;
    if (n == 0 || n > sizeof(tmp) - 1) {
        return;
    }
    ssize_t len = kt_json_unescape(p + v.start + 1, n, tmp);
    if (len <= 0) {
        return;
    }
    size_t m = (size_t)len < CLUSTER_MAX ? (size_t)len : CLUSTER_MAX;
    for (size_t i = 0; i < m; i++) {
        x->cbuf[i] = lower ? (char)tolower((unsigned char)tmp[i]) : tmp[i];
    }
    x->cbuf[m] = '\0';
    x->cluster = (struct kt_str){x->cbuf, m};
}

/* The cluster of an EKS log group: "/aws/eks/<cluster>/cluster", else the group's name. */
static void set_eks_cluster(struct ctx *x, const char *p, struct span v)
{
    set_cluster(x, p, v, 0);
    if (x->cluster.ptr != x->cbuf) {
        return;
    }
    static const char pre[] = "/aws/eks/", post[] = "/cluster";
    size_t n = x->cluster.len, a = sizeof(pre) - 1, b = sizeof(post) - 1;
    if (n > a + b && memcmp(x->cbuf, pre, a) == 0 && memcmp(x->cbuf + n - b, post, b) == 0) {
        memmove(x->cbuf, x->cbuf + a, n - a - b);
        x->cbuf[n - a - b] = '\0';
        x->cluster.len = n - a - b;
    }
}

/* The last '/'-separated segment of an Azure resource id, lower-cased. */
static void set_aks_cluster(struct ctx *x, const char *p, struct span v)
{
    set_cluster(x, p, v, 1);
    if (x->cluster.ptr != x->cbuf) {
        return;
    }
    char *slash = strrchr(x->cbuf, '/');
    if (slash != NULL && slash[1] != '\0') {
        size_t m = strlen(slash + 1);
        memmove(x->cbuf, slash + 1, m + 1);
        x->cluster.len = m;
    }
}

/* A time member: RFC 3339 text, or a number of milliseconds (CloudWatch). */
static void set_time(struct ctx *x, const char *p, struct span v)
{
    int64_t us = 0;
    if (kind_of(p, v) == '"') {
        if (kt_parse_rfc3339(p + v.start + 1, v.end - v.start - 2, &us) == 0) {
            x->time_us = us;
        }
        return;
    }
    int64_t ms = 0;
    size_t i = v.start;
    for (; i < v.end && p[i] >= '0' && p[i] <= '9' && ms < INT64_MAX / 10000; i++) {
        ms = ms * 10 + (p[i] - '0');
    }
    if (i == v.end && i > v.start) {
        x->time_us = ms * 1000;
    }
}

/* The reject reason of a wrapper member that holds neither an event nor a string. */
static const char *not_payload(const char *what)
{
    if (strcmp(what, "log") == 0) {
        return "\"log\" is neither an event nor a JSON string";
    }
    if (strcmp(what, "message") == 0) {
        return "\"message\" is neither an event nor a JSON string";
    }
    return "properties.log is neither an event nor a JSON string";
}

/*
 * A wrapper's payload at v in p: an object or array is opened in place, one level deeper;
 * a string is unescaped (and CloudWatch's "[Truncated...]" taken off) and opened as text
 * delivered by a transport. what names the member in reject reasons.
 */
static int open_payload(struct kt_envelope *e, int depth, const char *p, struct span v,
                        const struct ctx *x, const char *what)
{
    static const char cut[] = "[Truncated...]";
    const char *vp = p + v.start;
    size_t vn = v.end - v.start;
    if (depth + 1 >= MAX_DEPTH) {
        return emit(e, vp, vn, "envelope nested too deeply", x, 0);
    }
    if (vp[0] == '{') {
        return open_value(e, depth + 1, vp, vn, x);
    }
    if (vp[0] == '[') {
        return open_text(e, depth + 1, vp, vn, x);
    }
    if (vp[0] != '"') {
        return emit(e, vp, vn, not_payload(what), x, 0);
    }
    struct level *l = &e->lv[depth + 1];
    int rc = string_into(p, v, &l->text);
    if (rc == KT_ENOMEM) {
        return rc;
    }
    if (rc != 0) {
        return emit(e, vp, vn, "envelope payload: invalid JSON string escape", x, 0);
    }
    struct ctx inner;
    inherit(&inner, x);
    inner.transport = 1;
    size_t n = l->text.len;
    if (n >= sizeof(cut) - 1 &&
        memcmp(l->text.p + n - (sizeof(cut) - 1), cut, sizeof(cut) - 1) == 0) {
        n -= sizeof(cut) - 1;
    }
    return open_text(e, depth + 1, l->text.p, n, &inner);
}

/* A base64 payload (the string at v in p): decoded, inflated when gzip'ed, opened as text. */
static int open_base64(struct kt_envelope *e, int depth, const char *p, struct span v,
                       const struct ctx *x)
{
    if (kind_of(p, v) != '"') {
        return emit(e, p + v.start, v.end - v.start, "\"data\" is not a base64 string", x, 0);
    }
    if (depth + 1 >= MAX_DEPTH) {
        return emit(e, p + v.start, v.end - v.start, "envelope nested too deeply", x, 0);
    }
    struct level *l = &e->lv[depth + 1];
    int rc = base64_into(p + v.start + 1, v.end - v.start - 2, &l->bin);
    if (rc == KT_ENOMEM) {
        return rc;
    }
    if (rc != 0) {
        return emit(e, p + v.start, v.end - v.start, "\"data\" is not valid base64", x, 0);
    }
    return open_text(e, depth + 1, l->bin.p, l->bin.len, x);
}

/* The elements of the array at v in p, each opened one level deeper. */
static int open_elements(struct kt_envelope *e, int depth, const char *p, struct span v,
                         const struct ctx *x)
{
    if (depth + 1 >= MAX_DEPTH) {
        return emit(e, p + v.start, v.end - v.start, "envelope nested too deeply", x, 0);
    }
    size_t n = v.end - 1; /* the closing ']' */
    size_t i = skip_ws(p, v.start + 1, n);
    int rc = 0;
    while (rc == 0 && i < n) {
        size_t end = skip_value(p, i, n);
        if (end == 0) {
            return emit(e, p + i, n - i, "invalid JSON in an envelope's array", x, 0);
        }
        if (p[i] != '{') {
            rc = emit(e, p + i, end - i, "envelope array element is not an object", x, 0);
        } else {
            rc = open_value(e, depth + 1, p + i, end - i, x);
        }
        i = skip_ws(p, end, n);
        if (i < n && p[i] == ',') {
            i = skip_ws(p, i + 1, n);
        }
    }
    return rc;
}

/* A CloudWatch Logs log stream that is not the audit log: skip its events. */
static int other_stream(const char *p, struct span v)
{
    return kind_of(p, v) == '"' && !str_starts(p, v, "kube-apiserver-audit");
}

/* A DATA_MESSAGE: the messages of its logEvents, when its stream is the audit log. */
static int open_data_message(struct kt_envelope *e, int depth, const char *p, const struct keys *k,
                             const struct ctx *x)
{
    struct span ev = k->v[K_LOG_EVENTS];
    if (str_is(p, k->v[K_MESSAGE_TYPE], "CONTROL_MESSAGE")) {
        e->c->skipped++;
        return 0;
    }
    if (!str_is(p, k->v[K_MESSAGE_TYPE], "DATA_MESSAGE") || kind_of(p, ev) != '[') {
        return emit(e, p, k->v[K_MESSAGE_TYPE].end, "CloudWatch Logs message without logEvents", x,
                    0);
    }
    struct ctx inner;
    inherit(&inner, x);
    if (k->v[K_LOG_GROUP].end != 0) {
        set_eks_cluster(&inner, p, k->v[K_LOG_GROUP]);
    }
    int skip = other_stream(p, k->v[K_LOG_STREAM]);
    if (depth + 1 >= MAX_DEPTH) {
        return emit(e, p + ev.start, ev.end - ev.start, "envelope nested too deeply", x, 0);
    }
    size_t n = ev.end - 1;
    size_t i = skip_ws(p, ev.start + 1, n);
    int rc = 0;
    while (rc == 0 && i < n) {
        size_t end = skip_value(p, i, n);
        if (end == 0) {
            return emit(e, p + i, n - i, "invalid JSON in logEvents", x, 0);
        }
        struct keys le;
        if (skip) {
            e->c->skipped++;
        } else if (scan_object(p + i, end - i, &le) != SCAN_FULL ||
                   kind_of(p + i, le.v[K_MESSAGE]) == 0) {
            rc = emit(e, p + i, end - i, "logEvents element without a message", x, 0);
        } else {
            struct ctx one;
            inherit(&one, &inner);
            if (le.v[K_TIMESTAMP].end != 0) {
                set_time(&one, p + i, le.v[K_TIMESTAMP]);
            }
            rc = open_payload(e, depth + 1, p + i, le.v[K_MESSAGE], &one, "message");
        }
        i = skip_ws(p, end, n);
        if (i < n && p[i] == ',') {
            i = skip_ws(p, i + 1, n);
        }
    }
    return rc;
}

/* A converted record (GKE LogEntry, AKSAudit row) out of lv[depth].conv. */
static int emit_converted(struct kt_envelope *e, int depth, const char *p, size_t n, int rc,
                          const char *why, const struct ctx *x)
{
    struct kt_convert_out *o = &e->lv[depth].conv;
    if (rc == KT_ENOMEM) {
        return rc;
    }
    if (rc != 0) {
        return emit(e, p, n, why != NULL ? why : "cannot convert the record", x, 0);
    }
    if (o->skip != NULL) {
        e->c->skipped++;
        return 0;
    }
    struct ctx inner;
    inherit(&inner, x);
    if (o->cluster[0] != '\0') {
        inner.cluster = (struct kt_str){o->cluster, strlen(o->cluster)};
    }
    return emit(e, o->json.p, o->json.len, NULL, &inner, o->truncated);
}

/* OpenShift's forwarder record: the Event with the audit level of k8s_audit_level. */
static int open_openshift(struct kt_envelope *e, int depth, const char *p, size_t n,
                          const struct keys *k, const struct ctx *x)
{
    struct ctx inner;
    inherit(&inner, x);
    struct span os = k->v[K_OPENSHIFT];
    if (kind_of(p, os) == '{') {
        struct keys ok;
        if (scan_object(p + os.start, os.end - os.start, &ok) == SCAN_FULL) {
            set_cluster(&inner, p + os.start, ok.v[K_CLUSTER_ID], 0);
        }
    }
    struct span al = k->v[K_K8S_AUDIT_LEVEL];
    if (kind_of(p, al) != '"') {
        return emit(e, p, n, NULL, &inner, 0);
    }
    struct kt_buf *out = &e->lv[depth].out;
    struct span lv = k->v[K_LEVEL];
    int rc;
    out->len = 0;
    if (lv.end != 0) {
        rc = kt_buf_append(out, p, lv.start);
        rc = rc != 0 ? rc : kt_buf_append(out, p + al.start, al.end - al.start);
        rc = rc != 0 ? rc : kt_buf_append(out, p + lv.end, n - lv.end);
    } else {
        size_t brace = skip_ws(p, 0, n) + 1;
        rc = kt_buf_append(out, p, brace);
        rc = rc != 0 ? rc : kt_buf_puts(out, "\"level\":");
        rc = rc != 0 ? rc : kt_buf_append(out, p + al.start, al.end - al.start);
        rc = rc != 0 ? rc : kt_buf_puts(out, ",");
        rc = rc != 0 ? rc : kt_buf_append(out, p + brace, n - brace);
    }
    if (rc != 0) {
        return rc;
    }
    return emit(e, out->p, out->len, NULL, &inner, 0);
}

/* An Azure diagnostic record: properties.log of the kube-audit categories. */
static int open_aks_record(struct kt_envelope *e, int depth, const char *p, size_t n,
                           const struct keys *k, const struct ctx *x)
{
    struct span cat = k->v[K_CATEGORY];
    if (cat.end != 0 && !str_starts(p, cat, "kube-audit")) {
        e->c->skipped++; /* kube-apiserver, guard, ... logs on the same stream */
        return 0;
    }
    struct span props = k->v[K_PROPERTIES];
    struct keys pk;
    if (kind_of(p, props) != '{' ||
        scan_object(p + props.start, props.end - props.start, &pk) != SCAN_FULL ||
        pk.v[K_LOG].end == 0) {
        return emit(e, p, n, "\"records\" element without properties.log", x, 0);
    }
    struct ctx inner;
    inherit(&inner, x);
    if (k->v[K_RESOURCE_ID].end != 0) {
        set_aks_cluster(&inner, p, k->v[K_RESOURCE_ID]);
    }
    if (k->v[K_TIME].end != 0) {
        set_time(&inner, p, k->v[K_TIME]);
    }
    return open_payload(e, depth, p + props.start, pk.v[K_LOG], &inner, "properties.log");
}

/* ---- the table of shapes ---- */

/* The arguments every opener takes: the value p[0, n) at level depth, its members k, and what
 * the envelopes around it said, x. */
#define OPENER_ARGS                                                                                \
    struct kt_envelope *e, int depth, const char *p, size_t n, const struct keys *k,               \
        const struct ctx *x

static int is_openshift(const char *p, const struct keys *k)
{
    return k->event && (k->v[K_K8S_AUDIT_LEVEL].end != 0 || kind_of(p, k->v[K_OPENSHIFT]) == '{');
}

static int is_merged_event(const char *p, const struct keys *k)
{
    (void)p;
    return k->event;
}

static int open_as_is(OPENER_ARGS)
{
    (void)depth;
    (void)k;
    return emit(e, p, n, NULL, x, 0);
}

static int is_data_message(const char *p, const struct keys *k)
{
    (void)p;
    return k->v[K_MESSAGE_TYPE].end != 0;
}

static int open_data_message_value(OPENER_ARGS)
{
    (void)n;
    return open_data_message(e, depth, p, k, x);
}

static int is_lambda(const char *p, const struct keys *k)
{
    return kind_of(p, k->v[K_AWSLOGS]) == '{';
}

static int open_lambda(OPENER_ARGS)
{
    struct keys ak;
    const char *ap = p + k->v[K_AWSLOGS].start;
    if (scan_object(ap, k->v[K_AWSLOGS].end - k->v[K_AWSLOGS].start, &ak) != SCAN_FULL ||
        ak.v[K_DATA].end == 0) {
        return emit(e, p, n, "\"awslogs\" without data", x, 0);
    }
    return open_base64(e, depth, ap, ak.v[K_DATA], x);
}

static int is_gke(const char *p, const struct keys *k)
{
    return kind_of(p, k->v[K_PROTO_PAYLOAD]) != 0;
}

static int is_aks_row(const char *p, const struct keys *k)
{
    return kind_of(p, k->v[K_AUDIT_ID_ROW]) != 0;
}

/* GKE LogEntries and AKSAudit rows: converted into Event JSON (convert.c). */
static int open_converted(OPENER_ARGS)
{
    const char *why = NULL;
    struct kt_convert_out *o = &e->lv[depth].conv;
    o->json.len = 0;
    int rc = is_gke(p, k) ? kt_convert_gke(p, n, o, &why) : kt_convert_aks_row(p, n, o, &why);
    return emit_converted(e, depth, p, n, rc, why, x);
}

static int is_records(const char *p, const struct keys *k)
{
    return kind_of(p, k->v[K_RECORDS]) == '[';
}

static int is_events(const char *p, const struct keys *k)
{
    return kind_of(p, k->v[K_EVENTS]) == '[';
}

/* The elements of "records" or "events", each opened one level deeper. */
static int open_array_member(OPENER_ARGS)
{
    (void)n;
    return open_elements(e, depth, p, is_records(p, k) ? k->v[K_RECORDS] : k->v[K_EVENTS], x);
}

static int is_aks_record(const char *p, const struct keys *k)
{
    (void)p;
    return k->v[K_CATEGORY].end != 0 ||
           (k->v[K_PROPERTIES].end != 0 && k->v[K_RESOURCE_ID].end != 0);
}

static int is_log_event(const char *p, const struct keys *k)
{
    (void)p;
    return k->v[K_LOG_STREAM_NAME].end != 0 && k->v[K_MESSAGE].end != 0;
}

/* A filter-log-events element: its message, when its stream is the audit log. */
static int open_log_event(OPENER_ARGS)
{
    (void)n;
    if (other_stream(p, k->v[K_LOG_STREAM_NAME])) {
        e->c->skipped++;
        return 0;
    }
    struct ctx inner;
    inherit(&inner, x);
    if (k->v[K_TIMESTAMP].end != 0) {
        set_time(&inner, p, k->v[K_TIMESTAMP]);
    }
    return open_payload(e, depth, p, k->v[K_MESSAGE], &inner, "message");
}

static int is_pubsub(const char *p, const struct keys *k)
{
    struct keys mk;
    struct span m = k->v[K_MESSAGE];
    return kind_of(p, m) == '{' && scan_object(p + m.start, m.end - m.start, &mk) == SCAN_FULL &&
           kind_of(p + m.start, mk.v[K_DATA]) == '"' && !mk.event;
}

static int open_pubsub(OPENER_ARGS)
{
    struct keys mk;
    const char *mp = p + k->v[K_MESSAGE].start;
    (void)n;
    scan_object(mp, k->v[K_MESSAGE].end - k->v[K_MESSAGE].start, &mk);
    return open_base64(e, depth, mp, mk.v[K_DATA], x);
}

static int is_data(const char *p, const struct keys *k)
{
    return kind_of(p, k->v[K_DATA]) == '"' && k->v[K_MESSAGE].end == 0 && k->v[K_LOG].end == 0;
}

static int open_data(OPENER_ARGS)
{
    (void)n;
    return open_base64(e, depth, p, k->v[K_DATA], x);
}

/* A shipper's record: "message" (Vector, Fluentd; Filebeat's, beside a "log" object), else
 * "log" (Fluent Bit). */
static int is_shipper(const char *p, const struct keys *k)
{
    (void)p;
    return k->v[K_MESSAGE].end != 0 || k->v[K_LOG].end != 0;
}

static int open_shipper(OPENER_ARGS)
{
    (void)n;
    if (k->v[K_MESSAGE].end != 0 && (k->v[K_LOG].end == 0 || kind_of(p, k->v[K_LOG]) == '{')) {
        return open_payload(e, depth, p, k->v[K_MESSAGE], x, "message");
    }
    return open_payload(e, depth, p, k->v[K_LOG], x, "log");
}

/* Each shape: how its members tell it, how it is opened. The first row that matches opens
 * the value; adding a shape is a row here and a fixture in tests/fixtures/shapes. */
static const struct opener {
    const char *name;                                  /* the shape, for readers */
    int (*match)(const char *p, const struct keys *k); /* are these its members? */
    int (*open)(OPENER_ARGS);                          /* open it into records */
} openers[] = {
    {"openshift", is_openshift, open_openshift},
    {"event (merged into a shipper's record)", is_merged_event, open_as_is},
    {"eks-data-message", is_data_message, open_data_message_value},
    {"eks-lambda", is_lambda, open_lambda},
    {"gke-logentry", is_gke, open_converted},
    {"aks-row", is_aks_row, open_converted},
    {"records (AKS Event Hubs, Firehose HTTP)", is_records, open_array_member},
    {"eks-filter-log-events", is_events, open_array_member},
    {"aks-record", is_aks_record, open_aks_record},
    {"eks-log-event", is_log_event, open_log_event},
    {"pubsub-message", is_pubsub, open_pubsub},
    {"data (Firehose, Kinesis records)", is_data, open_data},
    {"shipper", is_shipper, open_shipper},
};

/* One value at this level: an event, an envelope to open, or the decoder's to judge. */
static int open_value(struct kt_envelope *e, int depth, const char *p, size_t n,
                      const struct ctx *x)
{
    struct keys k;
    if (scan_object(p, n, &k) != SCAN_FULL) {
        return emit(e, p, n, NULL, x, 0); /* a bare Event, or not an object at all */
    }
    for (size_t i = 0; i < sizeof(openers) / sizeof(openers[0]); i++) {
        if (openers[i].match(p, &k)) {
            return openers[i].open(e, depth, p, n, &k, x);
        }
    }
    return emit(e, p, n, NULL, x, 0);
}

/* A value cut short at the end of text a transport delivered: salvaged when it can be. */
static int salvage(struct kt_envelope *e, int depth, const char *p, size_t n, const char *reason,
                   const struct ctx *x)
{
    struct kt_buf *out = &e->lv[depth].out;
    out->len = 0;
    int rc = kt_salvage_event(p, n, x->time_us, out);
    if (rc == KT_ENOMEM) {
        return rc;
    }
    if (rc != 0) {
        return emit(e, p, n, reason, x, 0);
    }
    rc = emit(e, p, n,
              "event cut short in transport: stored truncated, with the fields before the cut", x,
              0);
    return rc != 0 ? rc : emit(e, out->p, out->len, NULL, x, 1);
}

/* Frame p[0, n) at level depth (gzip'ed bytes inflated first) and open each value. */
static int open_text(struct kt_envelope *e, int depth, const char *p, size_t n, const struct ctx *x)
{
    struct level *l = &e->lv[depth];
    size_t before = e->c->records + e->c->skipped;
    int rc = 0;

    if (is_gzip(p, n)) {
        const char *why = NULL;
        l->gz.len = 0;
        rc = kt_gunzip(p, n, e->max_event, &l->gz, &why);
        if (rc == KT_ENOMEM) {
            return rc;
        }
        if (rc != 0) {
            return emit(e, p, n, why, x, 0);
        }
        p = l->gz.p;
        n = l->gz.len;
    }
    kt_framer_init(&l->fr, KT_FRAME_TOP, e->max_event, 0, 1);
    while (rc == 0) {
        struct kt_frame fr;
        kt_framer_next(&l->fr, p, n, 1, &fr);
        if (fr.kind == KT_FRAME_MORE) {
            break;
        }
        if (fr.kind == KT_FRAME_VALUE) {
            struct ctx inner;
            inherit(&inner, x);
            if (fr.stamp != NULL) {
                int64_t us;
                if (kt_parse_rfc3339(fr.stamp, fr.stamplen, &us) == 0) {
                    inner.time_us = us;
                }
            }
            rc = open_value(e, depth, fr.ptr, fr.len, &inner);
        } else if (x->transport && fr.ptr >= p && fr.ptr < p + n &&
                   strcmp(fr.reason, "truncated JSON at end of input") == 0) {
            size_t at = (size_t)(fr.ptr - p);
            rc = salvage(e, depth, p + at, n - at, fr.reason, x);
        } else {
            rc = emit(e, fr.ptr, fr.len, fr.reason, x, 0);
        }
    }
    if (rc == 0 && e->c->records + e->c->skipped == before) {
        rc = emit(e, p, n, depth == 0 ? "empty message" : "empty wrapped value", x, 0);
    }
    return rc;
}

static void begin(struct kt_envelope *e, uint64_t off, uint64_t line,
                  const struct kt_env_sink *sink, struct kt_env_counts *c)
{
    e->sink = sink;
    e->c = c;
    e->off = off;
    e->line = line;
    e->used = 0;
    e->over = 0;
}

int kt_envelope_open_value(struct kt_envelope *e, const char *p, size_t n, uint64_t off,
                           uint64_t line, struct kt_str stamp, const struct kt_env_sink *sink,
                           struct kt_env_counts *c)
{
    struct ctx x;
    x.cluster = KT_STR_NULL;
    x.time_us = 0;
    x.transport = 0;
    if (stamp.ptr != NULL) {
        int64_t us;
        if (kt_parse_rfc3339(stamp.ptr, stamp.len, &us) == 0) {
            x.time_us = us;
        }
    }
    begin(e, off, line, sink, c);
    return open_value(e, 0, p, n, &x);
}

int kt_envelope_open_text(struct kt_envelope *e, const char *p, size_t n, uint64_t off,
                          const struct kt_env_sink *sink, struct kt_env_counts *c)
{
    struct ctx x;
    x.cluster = KT_STR_NULL;
    x.time_us = 0;
    x.transport = 0;
    begin(e, off, 0, sink, c);
    return open_text(e, 0, p != NULL ? p : "", p != NULL ? n : 0, &x);
}
