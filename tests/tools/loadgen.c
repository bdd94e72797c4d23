/*
 * loadgen.c: a load generator for `ktrail serve`, standing in for kube-apiserver's audit
 * webhook backend.
 *
 *   loadgen --url http[s]://HOST:PORT/PATH [--cacert FILE] [--cert FILE --key FILE]
 *           [--token TOKEN] [--connections N] [--batch N] [--duration S | --requests N]
 *           [--events FILE] [--rate EVENTS_PER_SEC]
 *
 * Each connection is a thread with one keep-alive HTTP/1.1 connection (GnuTLS for https,
 * plain TCP for http) that POSTs EventList bodies of --batch events one after another and
 * reads each whole answer; a connection the server closes is reopened, and a request that
 * finds its reused connection already closed is sent once more on a new one. A request's
 * latency runs from its first byte sent to the last byte of its answer. --rate paces the
 * requests of all connections together on one schedule. After a 503 a connection pauses
 * (1 s with Retry-After, else 0.1 s) rather than hammer a server that pushes back; a server
 * silent for 30 s fails the request.
 *
 * Events come from --events (JSON lines, one Event per line, such as gen-audit's output),
 * cycled; without it, a built-in Metadata-level event stamped with the current time. Every
 * event sent is unique: the last 12 hex digits of its auditID are overwritten in place with a
 * counter shared by all connections, started at a random value so that two runs against one
 * database do not collide either, and the store never drops a duplicate. Each cycle through
 * the file moves its events' timestamps on by the file's time span, so time goes forward as
 * from a live apiserver (replaying the same times again would insert into the middle of
 * every time-ordered index, a load no cluster produces).
 *
 * At the end, one line on stdout for scripts (events: in all requests sent; events_per_sec:
 * events of 2xx answers per second of the run; errors: requests without an HTTP answer):
 *   requests= events= ok_events= seconds= events_per_sec= p50_ms= p90_ms= p99_ms= max_ms=
 *   status_2xx= status_503= status_other= errors=
 * Exit 0 when every request got a 2xx, 1 otherwise, 2 on bad usage. Each new error
 * (connection refused, TLS handshake or certificate verification failure) is one line on
 * stderr; when no request has been answered yet, the first one ends the run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

enum {
    IO_TIMEOUT_S = 30,   /* a server silent this long fails the request */
    RX_BUF = 16384,      /* answer headers must fit */
    HEAD_RESERVE = 4096, /* room for the request head before the body */
    ID_DIGITS = 12,      /* auditID digits overwritten by the counter */
    TS_LEN = 27,         /* 2006-01-02T15:04:05.000000Z */
};

/* One event to send: a line of the events file, or the built-in event. */
struct line {
    char *json;       /* the event, compact JSON without its newline (heap) */
    size_t len;       /* bytes */
    size_t id_at;     /* offset of the last ID_DIGITS characters of its auditID value */
    size_t ts_at[2];  /* offsets of its two timestamps' values, 0 when not in TS_LEN form */
    int64_t ts_us[2]; /* and their times, microseconds since the epoch */
};

/* What the connections share: set up before they start, then read-only but for the atomics. */
struct run {
    int tls;                                /* https:// */
    char host[256];                         /* URL host, without IPv6 brackets */
    char port[16];                          /* URL port, or the scheme's default */
    char hostport[300];                     /* Host header: host (bracketed if IPv6):port */
    const char *path;                       /* URL path, "/" at least (borrowed from argv) */
    const char *token;                      /* bearer token, or NULL (borrowed from argv) */
    int conns;                              /* connections, one thread each */
    long batch;                             /* events per request */
    double duration;                        /* seconds to run, when requests == 0 */
    long requests;                          /* requests in all, or 0 to run for duration */
    double rate;                            /* events per second in all, 0: unpaced */
    gnutls_certificate_credentials_t creds; /* trust and client certificate (https) */
    struct line *lines;                     /* events to send, cycled (heap) */
    size_t nlines;                          /* entries */
    int synthesized;                        /* the built-in event: stamp the time in it */
    size_t ts_at[2];                        /* built-in event: offsets of its timestamps */
    double t_start;                         /* monotonic seconds at start */
    double t_end;                           /* no request starts after it (duration mode) */
    int64_t span_us;                        /* the lines' time span: each cycle adds it */
    atomic_ullong next_line;                /* next line to send, modulo nlines */
    atomic_ullong next_id;                  /* the auditID counter */
    atomic_ullong slots;                    /* --rate: requests scheduled so far */
    atomic_long requests_left;              /* --requests: requests still to start */
    atomic_long answered;                   /* HTTP answers received, all connections */
    atomic_int stop;                        /* end the run early */
    pthread_mutex_t err_lock;               /* guards last_err and stderr */
    char last_err[512];                     /* last error printed: each new one once */
};

/* One keep-alive connection and what was received on it but not yet consumed. */
struct conn {
    int fd;               /* socket, -1 when closed */
    gnutls_session_t tls; /* its TLS session (https), else NULL */
    unsigned long served; /* answers read on it: a reused connection when > 0 */
    size_t rx;            /* bytes received for the current request */
    char buf[RX_BUF];     /* received bytes */
    size_t pos;           /* first unconsumed byte of buf */
    size_t len;           /* end of the received bytes in buf */
};

/* An HTTP answer, as far as loadgen cares. */
struct answer {
    int status;       /* HTTP status code */
    int keep;         /* the connection may carry another request */
    long retry_after; /* Retry-After seconds, or 0 */
};

/* A connection thread: its connection, its request buffer and its tallies. */
struct worker {
    struct run *run;              /* shared (borrowed) */
    pthread_t th;                 /* the thread */
    struct conn c;                /* its connection */
    char *req;                    /* HEAD_RESERVE bytes, then the body (heap) */
    size_t req_cap;               /* allocated */
    double *lat;                  /* seconds of each answered request (heap) */
    size_t nlat;                  /* entries */
    size_t lat_cap;               /* allocated */
    long requests;                /* requests started */
    long s2xx;                    /* answered 2xx */
    long s503;                    /* answered 503 */
    long other;                   /* answered anything else */
    long errors;                  /* no answer: connect, TLS or connection failure */
    unsigned long long ok_events; /* events of 2xx answers */
};

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Print msg (if any) and the usage on out; returns the exit code of a usage error. */
static int usage(FILE *out, const char *msg)
{
    if (msg != NULL) {
        fprintf(stderr, "loadgen: %s\n", msg);
    }
    fputs("usage: loadgen --url http[s]://HOST:PORT/PATH [--cacert FILE] [--cert FILE --key "
          "FILE]\n"
          "               [--token TOKEN] [--connections N (4)] [--batch N (400)]\n"
          "               [--duration SECONDS (10) | --requests N] [--events FILE]\n"
          "               [--rate EVENTS_PER_SEC (0: as fast as answered)]\n",
          out);
    return 2;
}

/* Print "loadgen: MESSAGE" on stderr unless it is the message printed last. */
static void __attribute__((format(printf, 2, 3))) report(struct run *r, const char *fmt, ...)
{
    char msg[sizeof(r->last_err)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&r->err_lock);
    if (strcmp(msg, r->last_err) != 0) {
        fprintf(stderr, "loadgen: %s\n", msg);
        memcpy(r->last_err, msg, sizeof(msg));
    }
    pthread_mutex_unlock(&r->err_lock);
}

/* A whole decimal in [min, max] (returns 0), or -1. */
static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* A finite number >= min (returns 0), or -1. */
static int parse_double(const char *s, double min, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < min) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Split URL into r's scheme, host, port, Host header and path (a slice of url). */
static int parse_url(struct run *r, const char *url)
{
    const char *p;
    if (strncmp(url, "https://", 8) == 0) {
        r->tls = 1;
        p = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        return -1;
    }
    const char *slash = strchr(p, '/');
    const char *end = slash != NULL ? slash : p + strlen(p);
    const char *port = NULL, *hend = end;
    if (*p == '[') { /* [v6addr]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL || (rb + 1 != end && rb[1] != ':')) {
            return -1;
        }
        port = rb + 1 != end ? rb + 2 : NULL;
        hend = rb;
        p++;
    } else {
        port = memchr(p, ':', (size_t)(end - p));
        hend = port != NULL ? port++ : end;
    }
    size_t hl = (size_t)(hend - p), pl = port != NULL ? (size_t)(end - port) : 0;
    if (hl == 0 || hl >= sizeof(r->host) || (port != NULL && (pl == 0 || pl >= sizeof(r->port)))) {
        return -1;
    }
    memcpy(r->host, p, hl);
    r->host[hl] = '\0';
    if (port != NULL) {
        memcpy(r->port, port, pl);
        r->port[pl] = '\0';
    } else {
        strcpy(r->port, r->tls ? "443" : "80");
    }
    int v6 = strchr(r->host, ':') != NULL;
    snprintf(r->hostport, sizeof(r->hostport), "%s%s%s:%s", v6 ? "[" : "", r->host, v6 ? "]" : "",
             r->port);
    r->path = slash != NULL ? slash : "/";
    return 0;
}

/* The offset of the last ID_DIGITS characters of the "auditID" value in json, or -1. */
static long find_id(const char *json, size_t len)
{
    const char *k = memmem(json, len, "\"auditID\"", 9);
    if (k == NULL) {
        return -1;
    }
    const char *p = k + 9, *end = json + len;
    while (p < end && (*p == ' ' || *p == ':')) {
        p++;
    }
    if (p == end || *p != '"') {
        return -1;
    }
    const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
    if (q == NULL || q - (p + 1) < ID_DIGITS || memchr(p + 1, '\\', (size_t)(q - p - 1))) {
        return -1;
    }
    return (long)(q - ID_DIGITS - json);
}

/* Add json (taken) to r's lines; -1 when out of memory (json is freed). */
static int add_line(struct run *r, char *json, size_t len, long id_at, size_t *cap)
{
    if (r->nlines == *cap) {
        size_t ncap = *cap ? *cap * 2 : 1024;
        struct line *nl = realloc(r->lines, ncap * sizeof(*nl));
        if (nl == NULL) {
            free(json);
            return -1;
        }
        r->lines = nl;
        *cap = ncap;
    }
    struct line *l = &r->lines[r->nlines++];
    *l = (struct line){json, len, (size_t)id_at, {0, 0}, {0, 0}};
    static const char *const keys[2] = {"\"requestReceivedTimestamp\":\"", "\"stageTimestamp\":\""};
    for (int k = 0; k < 2; k++) {
        const char *at = memmem(json, len, keys[k], strlen(keys[k]));
        struct tm tm = {0};
        int us = 0, n = 0;
        if (at == NULL) {
            continue;
        }
        at += strlen(keys[k]);
        if ((size_t)(at - json) + TS_LEN <= len && at[TS_LEN - 1] == 'Z' &&
            sscanf(at, "%4d-%2d-%2dT%2d:%2d:%2d.%6d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &us, &n) == 7 &&
            n == TS_LEN - 1) {
            tm.tm_year -= 1900;
            tm.tm_mon -= 1;
            l->ts_at[k] = (size_t)(at - json);
            l->ts_us[k] = (int64_t)timegm(&tm) * 1000000 + us;
        }
    }
    return 0;
}

/* Write t (microseconds since the epoch) at p in TS_LEN characters. */
static void put_ts(char *p, int64_t t)
{
    char ts[48]; /* TS_LEN used; the rest lets -Wformat-truncation prove the fit */
    time_t secs = (time_t)(t / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + 19, sizeof(ts) - 19, ".%06ldZ", (long)(t % 1000000));
    memcpy(p, ts, TS_LEN);
}

/* Read the events of path (JSON lines) into r; lines without an auditID are skipped. */
static int load_events(struct run *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t bcap = 0, cap = 0, skipped = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&buf, &bcap, f)) > 0) {
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) {
            n--;
        }
        long id_at = find_id(buf, (size_t)n);
        if (id_at < 0) {
            skipped += n > 0;
            continue;
        }
        char *json = malloc((size_t)n);
        if (json == NULL) {
            rc = -1;
            break;
        }
        memcpy(json, buf, (size_t)n);
        rc = add_line(r, json, (size_t)n, id_at, &cap);
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
        rc = -1;
    } else if (rc != 0) {
        fputs("loadgen: out of memory\n", stderr);
    } else if (r->nlines == 0) {
        fprintf(stderr, "loadgen: %s: no event with an auditID of %d characters or more\n", path,
                ID_DIGITS);
        rc = -1;
    } else if (skipped > 0) {
        fprintf(stderr, "loadgen: %s: %zu lines without an auditID skipped\n", path, skipped);
    }
    /* each cycle is shifted by the file's span (plus a second), so times keep increasing */
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; rc == 0 && i < r->nlines; i++) {
        for (int k = 0; k < 2; k++) {
            if (r->lines[i].ts_at[k] != 0) {
                lo = r->lines[i].ts_us[k] < lo ? r->lines[i].ts_us[k] : lo;
                hi = r->lines[i].ts_us[k] > hi ? r->lines[i].ts_us[k] : hi;
            }
        }
    }
    r->span_us = lo <= hi ? hi - lo + 1000000 : 0;
    free(buf);
    fclose(f);
    return rc;
}

static unsigned long long random_u64(void)
{
    unsigned long long v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
        v = (unsigned long long)time(NULL) * 2654435761ULL ^ (unsigned long long)getpid();
    }
    return v;
}

/* The built-in event: a Metadata-level get by a service account, stamped when sent. */
static int synth_event(struct run *r)
{
    unsigned long long u = random_u64();
    char ev[1024];
    int n = snprintf(
        ev, sizeof(ev),
        "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\","
        "\"auditID\":\"%08x-%04x-4%03x-%04x-000000000000\",\"stage\":\"ResponseComplete\","
        "\"requestURI\":\"/api/v1/namespaces/default/configmaps/loadgen\",\"verb\":\"get\","
        "\"user\":{\"username\":\"system:serviceaccount:default:loadgen\",\"groups\":["
        "\"system:serviceaccounts\",\"system:authenticated\"]},\"sourceIPs\":[\"10.0.0.1\"],"
        "\"userAgent\":\"ktrail-loadgen\",\"objectRef\":{\"resource\":\"configmaps\","
        "\"namespace\":\"default\",\"name\":\"loadgen\",\"apiVersion\":\"v1\"},"
        "\"responseStatus\":{\"metadata\":{},\"code\":200},"
        "\"requestReceivedTimestamp\":\"1970-01-01T00:00:00.000000Z\","
        "\"stageTimestamp\":\"1970-01-01T00:00:00.000000Z\"}",
        (unsigned)(u >> 32), (unsigned)(u >> 16) & 0xffff, (unsigned)(u >> 4) & 0xfff,
        0x8000 | ((unsigned)u & 0x3fff));
    const char *ts1 = strstr(ev, "\"requestReceivedTimestamp\":\"");
    const char *ts2 = strstr(ev, "\"stageTimestamp\":\"");
    r->ts_at[0] = (size_t)(ts1 - ev) + 28;
    r->ts_at[1] = (size_t)(ts2 - ev) + 18;
    r->synthesized = 1;
    char *json = strdup(ev);
    size_t cap = 0;
    if (json == NULL || add_line(r, json, (size_t)n, find_id(ev, (size_t)n), &cap) != 0) {
        fputs("loadgen: out of memory\n", stderr);
        return -1;
    }
    return 0;
}

static void put_hex(char *p, unsigned long long v)
{
    for (int i = ID_DIGITS - 1; i >= 0; i--) {
        p[i] = "0123456789abcdef"[v & 0xf];
        v >>= 4;
    }
}

/* Build the next request (head and EventList body) in w->req; returns where it starts, its
 * length in *len, or NULL when out of memory. */
static char *build_request(struct worker *w, size_t *len)
{
    static const char head[] = "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\","
                               "\"metadata\":{},\"items\":[";
    struct run *r = w->run;
    unsigned long long first = atomic_fetch_add(&r->next_line, (unsigned long long)r->batch);
    unsigned long long id = atomic_fetch_add(&r->next_id, (unsigned long long)r->batch);
    size_t need = HEAD_RESERVE + sizeof(head) + 2;
    for (long i = 0; i < r->batch; i++) {
        need += r->lines[(first + (unsigned long long)i) % r->nlines].len + 1;
    }
    if (need > w->req_cap) {
        char *nb = realloc(w->req, need);
        if (nb == NULL) {
            return NULL;
        }
        w->req = nb;
        w->req_cap = need;
    }
    char ts[48] = ""; /* TS_LEN used; the rest lets -Wformat-truncation prove the fit */
    if (r->synthesized) {
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts + 19, sizeof(ts) - 19, ".%06ldZ", now.tv_nsec / 1000);
    }
    char *body = w->req + HEAD_RESERVE, *p = body;
    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    for (long i = 0; i < r->batch; i++) {
        const struct line *l = &r->lines[(first + (unsigned long long)i) % r->nlines];
        if (i > 0) {
            *p++ = ',';
        }
        memcpy(p, l->json, l->len);
        put_hex(p + l->id_at, id + (unsigned long long)i);
        int64_t shift = (int64_t)((first + (unsigned long long)i) / r->nlines) * r->span_us;
        for (int k = 0; k < 2 && shift > 0; k++) {
            if (l->ts_at[k] != 0) {
                put_ts(p + l->ts_at[k], l->ts_us[k] + shift);
            }
        }
        if (r->synthesized) {
            memcpy(p + r->ts_at[0], ts, TS_LEN);
            memcpy(p + r->ts_at[1], ts, TS_LEN);
        }
        p += l->len;
    }
    *p++ = ']';
    *p++ = '}';
    size_t blen = (size_t)(p - body);
    char h[HEAD_RESERVE];
    int hl = snprintf(h, sizeof(h),
                      "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ktrail-loadgen\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n%s%s%s\r\n",
                      r->path, r->hostport, blen, r->token ? "Authorization: Bearer " : "",
                      r->token ? r->token : "", r->token ? "\r\n" : "");
    if (hl < 0 || (size_t)hl >= sizeof(h)) {
        return NULL; /* cannot happen: main() bounds the path and the token */
    }
    memcpy(body - hl, h, (size_t)hl);
    *len = (size_t)hl + blen;
    return body - hl;
}

static void conn_close(struct conn *c, int polite)
{
    if (c->tls != NULL) {
        if (polite) {
            gnutls_bye(c->tls, GNUTLS_SHUT_WR);
        }
        gnutls_deinit(c->tls);
        c->tls = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
}

/* Describe a failed TLS call: the verification status, the alert received, or the error. */
static void tls_error(struct conn *c, int rc, const char *what, char *err, size_t errlen)
{
    gnutls_datum_t out = {NULL, 0};
    if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR &&
        gnutls_certificate_verification_status_print(gnutls_session_get_verify_cert_status(c->tls),
                                                     GNUTLS_CRT_X509, &out, 0) == 0) {
        size_t n = strlen((char *)out.data);
        while (n > 0 && out.data[n - 1] == ' ') {
            out.data[--n] = '\0';
        }
        snprintf(err, errlen, "%s: server certificate verification failed: %s", what,
                 (char *)out.data);
        gnutls_free(out.data);
    } else if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        snprintf(err, errlen, "%s: the server sent the TLS alert \"%s\"", what,
                 gnutls_alert_get_name(gnutls_alert_get(c->tls)));
    } else {
        snprintf(err, errlen, "%s: %s", what, gnutls_strerror(rc));
    }
}

/* Connect c to the URL's host (each address in turn) and, for https, shake hands verifying
 * the server certificate against the URL host. 0, or -1 with a message in err. */
static int conn_open(struct run *r, struct conn *c, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(r->host, r->port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", r->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *a = ai; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        struct timeval tv = {IO_TIMEOUT_S, 0}; /* also bounds connect() on Linux */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        snprintf(err, errlen, "connect to %s: %s", r->hostport, strerror(saved));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->served = 0;
    c->pos = c->len = 0;
    if (!r->tls) {
        return 0;
    }
    struct in6_addr ip;
    int literal = inet_pton(AF_INET, r->host, &ip) == 1 || inet_pton(AF_INET6, r->host, &ip) == 1;
    rc = gnutls_init(&c->tls, GNUTLS_CLIENT);
    if (rc == 0) {
        rc = gnutls_set_default_priority(c->tls);
    }
    if (rc == 0) {
        rc = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, r->creds);
    }
    if (rc == 0 && !literal) { /* SNI carries names only */
        rc = gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, r->host, strlen(r->host));
    }
    if (rc == 0) {
        gnutls_session_set_verify_cert(c->tls, r->host, 0);
        gnutls_transport_set_int(c->tls, fd);
        gnutls_handshake_set_timeout(c->tls, IO_TIMEOUT_S * 1000);
        gnutls_record_set_timeout(c->tls, IO_TIMEOUT_S * 1000);
        do {
            rc = gnutls_handshake(c->tls);
        } while (rc < 0 && gnutls_error_is_fatal(rc) == 0);
    }
    if (rc < 0) {
        char what[320];
        snprintf(what, sizeof(what), "TLS handshake with %s", r->hostport);
        tls_error(c, rc, what, err, errlen);
        conn_close(c, 0);
        return -1;
    }
    return 0;
}

static int conn_send(struct run *r, struct conn *c, const char *p, size_t n, char *err,
                     size_t errlen)
{
    while (n > 0) {
        ssize_t w = c->tls != NULL ? gnutls_record_send(c->tls, p, n) : send(c->fd, p, n, 0);
        if (w < 0 && (c->tls != NULL ? w == GNUTLS_E_INTERRUPTED : errno == EINTR)) {
            continue;
        }
        if (w < 0) {
            if (c->tls != NULL) {
                tls_error(c, (int)w, "send", err, errlen);
            } else {
                snprintf(err, errlen, "send to %s: %s", r->hostport,
                         errno == EAGAIN ? "timed out" : strerror(errno));
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Receive more bytes into c->buf; their count, 0 at the end of the stream, -1 on error. */
static ssize_t conn_fill(struct run *r, struct conn *c, char *err, size_t errlen)
{
    if (c->pos == c->len) {
        c->pos = c->len = 0;
    } else if (c->len == sizeof(c->buf) && c->pos > 0) {
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    if (c->len == sizeof(c->buf)) {
        snprintf(err, errlen, "answer from %s: headers over %d bytes", r->hostport, RX_BUF);
        return -1;
    }
    for (;;) {
        void *at = c->buf + c->len;
        size_t room = sizeof(c->buf) - c->len;
        ssize_t n =
            c->tls != NULL ? gnutls_record_recv(c->tls, at, room) : recv(c->fd, at, room, 0);
        /* GNUTLS_E_AGAIN also follows TLS 1.3 post-handshake messages (session tickets);
         * a silent server gives GNUTLS_E_TIMEDOUT (gnutls_record_set_timeout) */
        if (n < 0 && (c->tls != NULL ? n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED ||
                                           n == GNUTLS_E_REHANDSHAKE
                                     : errno == EINTR)) {
            continue;
        }
        if (n == GNUTLS_E_PREMATURE_TERMINATION && c->tls != NULL) {
            n = 0; /* closed without close_notify: an end of stream all the same */
        }
        if (n < 0) {
            if (c->tls != NULL) {
                tls_error(c, (int)n, "receive", err, errlen);
            } else {
                snprintf(err, errlen, "receive from %s: %s", r->hostport,
                         errno == EAGAIN ? "timed out" : strerror(errno));
            }
            return -1;
        }
        if (n == 0) {
            snprintf(err, errlen, "%s closed the connection before the whole answer", r->hostport);
        }
        c->len += (size_t)n;
        c->rx += (size_t)n;
        return n;
    }
}

/* The next line (up to CRLF) of the answer; it points into c->buf, valid until the next read. */
static char *next_line(struct run *r, struct conn *c, size_t *len, char *err, size_t errlen)
{
    for (;;) {
        char *s = c->buf + c->pos, *e = memmem(s, c->len - c->pos, "\r\n", 2);
        if (e != NULL) {
            *len = (size_t)(e - s);
            c->pos += *len + 2;
            return s;
        }
        if (conn_fill(r, c, err, errlen) <= 0) {
            return NULL;
        }
    }
}

/* Consume n bytes of answer body; 0, or -1. */
static int skip_bytes(struct run *r, struct conn *c, unsigned long long n, char *err, size_t errlen)
{
    while (n > 0) {
        if (c->pos == c->len && conn_fill(r, c, err, errlen) <= 0) {
            return -1;
        }
        size_t k = c->len - c->pos < n ? c->len - c->pos : (size_t)n;
        c->pos += k;
        n -= k;
    }
    return 0;
}

/* Does header line s (len bytes) have the given name? Then its value, trimmed, into v. */
static int header_is(const char *s, size_t len, const char *name, char *v, size_t vlen)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(s, name, nl) != 0 || s[nl] != ':') {
        return 0;
    }
    s += nl + 1;
    len -= nl + 1;
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
        len--;
    }
    len = len < vlen - 1 ? len : vlen - 1;
    memcpy(v, s, len);
    v[len] = '\0';
    return 1;
}

/* Read one whole answer: status line, headers, and the body (Content-Length, chunked, or up to
 * the end of the stream). 0, or -1 with a message in err. */
static int read_answer(struct run *r, struct conn *c, struct answer *a, char *err, size_t errlen)
{
    size_t len;
    char *s, v[128];
    int minor;
    do { /* 1xx answers precede the final one */
        if ((s = next_line(r, c, &len, err, errlen)) == NULL) {
            return -1;
        }
        s[len] = '\0'; /* over the CR, already consumed */
        if (sscanf(s, "HTTP/1.%d %3d", &minor, &a->status) != 2 || a->status < 100) {
            snprintf(err, errlen, "answer from %s is not HTTP/1.x: %.60s", r->hostport, s);
            return -1;
        }
        long long clen = -1;
        int chunked = 0;
        a->keep = minor >= 1;
        a->retry_after = 0;
        while ((s = next_line(r, c, &len, err, errlen)) != NULL && len > 0) {
            if (header_is(s, len, "Content-Length", v, sizeof(v))) {
                clen = strtoll(v, NULL, 10);
            } else if (header_is(s, len, "Transfer-Encoding", v, sizeof(v))) {
                chunked = strcasestr(v, "chunked") != NULL;
            } else if (header_is(s, len, "Connection", v, sizeof(v))) {
                a->keep = strcasestr(v, "close") == NULL && (minor >= 1 || strcasestr(v, "keep"));
            } else if (header_is(s, len, "Retry-After", v, sizeof(v))) {
                a->retry_after = strtol(v, NULL, 10);
            }
        }
        if (s == NULL) {
            return -1;
        }
        if (a->status < 200 || a->status == 204 || a->status == 304) {
            continue;
        } else if (chunked) {
            unsigned long long n;
            do {
                if ((s = next_line(r, c, &len, err, errlen)) == NULL) {
                    return -1;
                }
                n = strtoull(s, NULL, 16); /* stops at the CR or a ';' extension */
                if (n > 0 && skip_bytes(r, c, n + 2, err, errlen) != 0) {
                    return -1;
                }
            } while (n > 0);
            while ((s = next_line(r, c, &len, err, errlen)) != NULL && len > 0) {
            } /* trailers */
            if (s == NULL) {
                return -1;
            }
        } else if (clen >= 0) {
            if (skip_bytes(r, c, (unsigned long long)clen, err, errlen) != 0) {
                return -1;
            }
        } else { /* the body runs to the end of the stream */
            ssize_t n;
            while ((n = conn_fill(r, c, err, errlen)) > 0) {
                c->pos = c->len;
            }
            a->keep = 0;
            if (n < 0) {
                return -1;
            }
        }
    } while (a->status < 200);
    return 0;
}

/* Send req on w's connection (opened or reopened as needed) and read its answer. A reused
 * connection that fails before any answer byte was probably closed by the server while idle:
 * the request goes once more on a new connection. 0, or -1 with a message in err. */
static int post(struct worker *w, const char *req, size_t len, struct answer *a, char *err,
                size_t errlen)
{
    struct run *r = w->run;
    struct conn *c = &w->c;
    for (int attempt = 0;; attempt++) {
        if (c->fd < 0 && conn_open(r, c, err, errlen) != 0) {
            return -1;
        }
        int reused = c->served > 0;
        c->rx = 0;
        int sent = conn_send(r, c, req, len, err, errlen) == 0;
        char rerr[512];
        /* after a failed send, an answer may still be waiting (413 before the whole body) */
        if (read_answer(r, c, a, sent ? err : rerr, sent ? errlen : sizeof(rerr)) == 0) {
            c->served++;
            if (!sent || !a->keep) {
                conn_close(c, sent);
            }
            return 0;
        }
        if (!sent && strstr(rerr, "TLS alert") != NULL) {
            snprintf(err, errlen, "%s", rerr); /* the server's reason (TLS 1.3: after the
                                                * handshake, e.g. a refused client cert) */
        }
        conn_close(c, 0);
        if (!reused || c->rx > 0 || attempt > 0) {
            return -1;
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->run;
    char err[512];
    while (!atomic_load(&r->stop)) {
        if (r->requests > 0 ? atomic_fetch_sub(&r->requests_left, 1) <= 0
                            : now_mono() >= r->t_end) {
            break;
        }
        if (r->rate > 0) { /* one schedule for all connections: request k is due at k*batch/rate */
            unsigned long long k = atomic_fetch_add(&r->slots, 1);
            double due = r->t_start + (double)k * (double)r->batch / r->rate;
            if (r->requests == 0 && due >= r->t_end) {
                break;
            }
            if (due > now_mono()) {
                sleep_s(due - now_mono());
            }
        }
        size_t len;
        const char *req = build_request(w, &len);
        if (req == NULL) {
            report(r, "out of memory");
            atomic_store(&r->stop, 1);
            break;
        }
        struct answer a;
        w->requests++;
        double t0 = now_mono();
        if (post(w, req, len, &a, err, sizeof(err)) != 0) {
            w->errors++;
            report(r, "%s", err);
            if (atomic_load(&r->answered) == 0) {
                atomic_store(&r->stop, 1); /* the server cannot be reached or spoken to */
            } else {
                sleep_s(0.1);
            }
            continue;
        }
        double dt = now_mono() - t0;
        atomic_fetch_add(&r->answered, 1);
        if (w->nlat == w->lat_cap) {
            size_t ncap = w->lat_cap ? w->lat_cap * 2 : 1024;
            double *nl = realloc(w->lat, ncap * sizeof(*nl));
            if (nl == NULL) {
                report(r, "out of memory");
                atomic_store(&r->stop, 1);
                break;
            }
            w->lat = nl;
            w->lat_cap = ncap;
        }
        w->lat[w->nlat++] = dt;
        if (a.status >= 200 && a.status < 300) {
            w->s2xx++;
            w->ok_events += (unsigned long long)r->batch;
        } else if (a.status == 503) {
            w->s503++;
            sleep_s(a.retry_after > 0 ? 1.0 : 0.1); /* back off, but keep measuring */
        } else {
            w->other++;
            report(r, "%s answered %d", r->hostport, a.status);
        }
    }
    conn_close(&w->c, 1);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of the n sorted values v, nearest rank, in milliseconds. */
static double pctl_ms(const double *v, size_t n, double q)
{
    if (n == 0) {
        return 0;
    }
    size_t i = (size_t)(q * (double)n);
    i += (double)i < q * (double)n; /* rounded up */
    return v[i > 0 ? i - 1 : 0] * 1000;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"cacert", required_argument, NULL, 'a'},
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"token", required_argument, NULL, 't'},
        {"connections", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},
        {"duration", required_argument, NULL, 'd'},
        {"requests", required_argument, NULL, 'r'},
        {"rate", required_argument, NULL, 'R'},
        {"events", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static struct run run = {.conns = 4, .batch = 400, .duration = 10};
    struct run *r = &run;
    const char *url = NULL, *events = NULL, *cacert = NULL, *cert = NULL, *key = NULL;
    long conns = 4;
    int have_duration = 0, opt, li = 0;
    while ((opt = getopt_long(argc, argv, "", longopts, &li)) != -1) {
        int bad = 0;
        switch (opt) {
        case 'u':
            url = optarg;
            break;
        case 'a':
            cacert = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 't':
            r->token = optarg;
            bad = strlen(optarg) > 1024 || strpbrk(optarg, "\r\n") != NULL;
            break;
        case 'n':
            bad = parse_long(optarg, 1, 1024, &conns);
            break;
        case 'b':
            bad = parse_long(optarg, 1, 1000000, &r->batch);
            break;
        case 'd':
            bad = parse_double(optarg, 0.001, &r->duration);
            have_duration = 1;
            break;
        case 'r':
            bad = parse_long(optarg, 1, 1000000000, &r->requests);
            break;
        case 'R':
            bad = parse_double(optarg, 0, &r->rate);
            break;
        case 'e':
            events = optarg;
            break;
        case 'h':
            usage(stdout, NULL);
            return 0;
        default:
            return usage(stderr, "unknown option");
        }
        if (bad) {
            fprintf(stderr, "loadgen: bad value for --%s: %s\n", longopts[li].name, optarg);
            return usage(stderr, NULL);
        }
    }
    r->conns = (int)conns;
    if (optind < argc) {
        return usage(stderr, "unexpected argument");
    }
    if (url == NULL) {
        return usage(stderr, "--url is required");
    }
    if (parse_url(r, url) != 0 || strlen(r->path) > 512 || strpbrk(r->path, " \r\n")) {
        return usage(stderr, "--url must be http[s]://HOST[:PORT][/PATH] (IPv6 HOST in brackets)");
    }
    if (have_duration && r->requests > 0) {
        return usage(stderr, "--duration and --requests exclude each other");
    }
    if ((cert == NULL) != (key == NULL)) {
        return usage(stderr, "--cert and --key go together");
    }
    signal(SIGPIPE, SIG_IGN); /* a closed connection is an error to count, not a death */
    int rc = 1;
    struct worker *w = NULL;
    pthread_mutex_init(&r->err_lock, NULL);
    if ((events != NULL ? load_events(r, events) : synth_event(r)) != 0) {
        rc = 2;
        goto out;
    }
    atomic_store(&r->next_id, random_u64());
    if (r->tls) {
        int g = gnutls_certificate_allocate_credentials(&r->creds);
        if (g == 0 && cacert != NULL) {
            g = gnutls_certificate_set_x509_trust_file(r->creds, cacert, GNUTLS_X509_FMT_PEM);
            if (g == 0) {
                fprintf(stderr, "loadgen: %s: no CA certificate in it\n", cacert);
                rc = 2;
                goto out;
            }
        } else if (g == 0) {
            g = gnutls_certificate_set_x509_system_trust(r->creds);
        }
        if (g >= 0 && cert != NULL) {
            g = gnutls_certificate_set_x509_key_file(r->creds, cert, key, GNUTLS_X509_FMT_PEM);
        }
        if (g < 0) {
            fprintf(stderr, "loadgen: %s: %s\n",
                    cert != NULL ? cert : (cacert != NULL ? cacert : "system trust"),
                    gnutls_strerror(g));
            rc = 2;
            goto out;
        }
    }
    w = calloc((size_t)r->conns, sizeof(*w));
    if (w == NULL) {
        fputs("loadgen: out of memory\n", stderr);
        goto out;
    }
    atomic_store(&r->requests_left, r->requests);
    r->t_start = now_mono();
    r->t_end = r->t_start + r->duration;
    int started = 0;
    for (; started < r->conns; started++) {
        w[started].run = r;
        w[started].c.fd = -1;
        if (pthread_create(&w[started].th, NULL, worker_main, &w[started]) != 0) {
            report(r, "cannot start a thread: %s", strerror(errno));
            atomic_store(&r->stop, 1);
            break;
        }
    }
    struct worker all = {0};
    for (int i = 0; i < started; i++) {
        pthread_join(w[i].th, NULL);
    }
    double secs = now_mono() - r->t_start;
    for (int i = 0; i < started; i++) {
        all.requests += w[i].requests;
        all.s2xx += w[i].s2xx;
        all.s503 += w[i].s503;
        all.other += w[i].other;
        all.errors += w[i].errors;
        all.ok_events += w[i].ok_events;
        all.nlat += w[i].nlat;
    }
    all.lat = malloc((all.nlat + 1) * sizeof(*all.lat));
    if (all.lat == NULL) {
        fputs("loadgen: out of memory\n", stderr);
        goto out;
    }
    size_t k = 0;
    for (int i = 0; i < started; i++) {
        if (w[i].nlat > 0) { /* w[i].lat may be NULL */
            memcpy(all.lat + k, w[i].lat, w[i].nlat * sizeof(*all.lat));
            k += w[i].nlat;
        }
    }
    qsort(all.lat, all.nlat, sizeof(*all.lat), cmp_double);
    printf("requests=%ld events=%llu ok_events=%llu seconds=%.2f events_per_sec=%.0f p50_ms=%.1f "
           "p90_ms=%.1f p99_ms=%.1f max_ms=%.1f status_2xx=%ld status_503=%ld status_other=%ld "
           "errors=%ld\n",
           all.requests, (unsigned long long)all.requests * (unsigned long long)r->batch,
           all.ok_events, secs, (double)all.ok_events / secs, pctl_ms(all.lat, all.nlat, 0.5),
           pctl_ms(all.lat, all.nlat, 0.9), pctl_ms(all.lat, all.nlat, 0.99),
           pctl_ms(all.lat, all.nlat, 1.0), all.s2xx, all.s503, all.other, all.errors);
    fflush(stdout);
    rc = all.requests > 0 && all.s2xx == all.requests ? 0 : 1;
    free(all.lat);
out:
    for (int i = 0; w != NULL && i < r->conns; i++) {
        free(w[i].req);
        free(w[i].lat);
    }
    free(w);
    for (size_t i = 0; i < r->nlines; i++) {
        free(r->lines[i].json);
    }
    free(r->lines);
    if (r->creds != NULL) {
        gnutls_certificate_free_credentials(r->creds);
    }
    pthread_mutex_destroy(&r->err_lock);
    return rc;
}
