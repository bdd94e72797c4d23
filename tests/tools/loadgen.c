/*
 * loadgen.c: load generator for `ktrail serve`, standing in for kube-apiserver's webhook
 * backend: N keep-alive connections (HTTPS with GnuTLS, or plain HTTP), each POSTing
 * EventList bodies of --batch events one after another, and measuring each request from its
 * first byte sent to its whole answer read.
 *
 * Events come from a JSON-lines file (gen-audit's output), cycled; every event sent is made
 * unique by overwriting the last 12 hex digits of its auditID with a global counter, so the
 * store never sees a duplicate however long the run.
 *
 * Prints one line for scripts: requests= events= ok_events= seconds= events_per_sec= p50_ms=
 * p90_ms= p99_ms= max_ms= status_2xx= status_503= status_other= errors= (events_per_sec counts
 * events of 2xx answers). Exit 0 when every request got a 2xx, 1 otherwise, 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct opts {
    int tls;            /* https */
    char host[304];     /* from the URL */
    char port[16];      /* from the URL */
    char path[512];     /* from the URL */
    const char *cacert; /* trust for the server certificate */
    const char *cert;   /* client certificate, or NULL */
    const char *key;    /* its key */
    const char *token;  /* bearer token, or NULL */
    int conns;          /* connections */
    int batch;          /* events per request */
    double duration;    /* seconds, when requests == 0 */
    long requests;      /* total requests, or 0 */
    double rate;        /* events per second overall, 0: as fast as possible */
};

static struct opts O = {.conns = 4, .batch = 400, .duration = 10};
static char **lines;            /* the events file, one event per entry */
static size_t *line_lens;       /* their lengths */
static size_t nlines;           /* count */
static atomic_ullong next_line; /* cycles through lines */
static atomic_ullong next_id;   /* makes auditIDs unique */
static atomic_long requests_left;
static gnutls_certificate_credentials_t creds;
static double t_start, t_end;

struct result {
    double *lat;   /* seconds, per request */
    size_t n, cap; /* count, allocated */
    long ok2xx, s503, other, errors;
    unsigned long long events, ok_events;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die_usage(const char *msg)
{
    fprintf(stderr,
            "loadgen: %s\nusage: loadgen --url http[s]://HOST:PORT/PATH [--cacert FILE] [--cert "
            "FILE --key FILE] [--token T] [--connections N] [--batch N] [--duration S | "
            "--requests N] [--rate EVENTS_PER_S] [--events FILE]\n",
            msg);
    exit(2);
}

static void parse_url(const char *url)
{
    const char *p;
    if (strncmp(url, "https://", 8) == 0) {
        O.tls = 1;
        p = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        die_usage("--url must start with http:// or https://");
    }
    const char *slash = strchr(p, '/');
    size_t hl = slash != NULL ? (size_t)(slash - p) : strlen(p);
    char hp[300];
    if (hl >= sizeof(hp)) {
        die_usage("URL host too long");
    }
    memcpy(hp, p, hl);
    hp[hl] = '\0';
    snprintf(O.path, sizeof(O.path), "%s", slash != NULL ? slash : "/");
    char *colon = strrchr(hp, ':');
    if (hp[0] == '[') {
        char *end = strchr(hp, ']');
        if (end == NULL) {
            die_usage("bad IPv6 URL");
        }
        *end = '\0';
        snprintf(O.host, sizeof(O.host), "%s", hp + 1);
        snprintf(O.port, sizeof(O.port), "%s", end[1] == ':' ? end + 2 : (O.tls ? "443" : "80"));
    } else if (colon != NULL) {
        *colon = '\0';
        snprintf(O.host, sizeof(O.host), "%s", hp);
        snprintf(O.port, sizeof(O.port), "%s", colon + 1);
    } else {
        snprintf(O.host, sizeof(O.host), "%s", hp);
        snprintf(O.port, sizeof(O.port), "%s", O.tls ? "443" : "80");
    }
}

static void load_events(const char *path)
{
    size_t cap = 0;
    if (path == NULL) {
        /* a small built-in event; the auditID is rewritten per send */
        static char ev[] =
            "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\","
            "\"auditID\":\"00000000-0000-4000-8000-000000000000\",\"stage\":\"ResponseComplete\","
            "\"requestURI\":\"/api/v1/namespaces/default/pods\",\"verb\":\"list\",\"user\":{"
            "\"username\":\"loadgen\",\"groups\":[\"system:authenticated\"]},\"sourceIPs\":[\"10.0."
            "0.1\"],\"userAgent\":\"loadgen\",\"objectRef\":{\"resource\":\"pods\",\"namespace\":"
            "\"default\",\"apiVersion\":\"v1\"},\"responseStatus\":{\"code\":200},"
            "\"requestReceivedTimestamp\":\"2026-01-01T00:00:00.000000Z\",\"stageTimestamp\":"
            "\"2026-01-01T00:00:00.001000Z\"}";
        lines = malloc(sizeof(*lines));
        line_lens = malloc(sizeof(*line_lens));
        lines[0] = ev;
        line_lens[0] = strlen(ev);
        nlines = 1;
        return;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    while ((n = getline(&line, &lcap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
            n--;
        }
        if (n == 0 || strstr(line, "\"auditID\":\"") == NULL) {
            continue;
        }
        if (nlines == cap) {
            cap = cap ? cap * 2 : 4096;
            lines = realloc(lines, cap * sizeof(*lines));
            line_lens = realloc(line_lens, cap * sizeof(*line_lens));
            if (lines == NULL || line_lens == NULL) {
                fputs("loadgen: out of memory\n", stderr);
                exit(2);
            }
        }
        lines[nlines] = strndup(line, (size_t)n);
        line_lens[nlines] = (size_t)n;
        nlines++;
    }
    free(line);
    fclose(f);
    if (nlines == 0) {
        fprintf(stderr, "loadgen: %s: no events with an auditID\n", path);
        exit(2);
    }
}

/* A connection: a socket and, for https, its TLS session. */
struct conn {
    int fd;
    gnutls_session_t s;
    int up;
};

static void conn_close(struct conn *c)
{
    if (c->up && O.tls) {
        gnutls_deinit(c->s);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
    c->up = 0;
}

static int conn_open(struct conn *c, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(O.host, O.port, &hints, &ai);
    if (g != 0) {
        snprintf(err, errlen, "%s: %s", O.host, gai_strerror(g));
        return -1;
    }
    c->fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, errlen, "connect %s:%s: %s", O.host, O.port, strerror(errno));
        freeaddrinfo(ai);
        if (c->fd >= 0) {
            close(c->fd);
        }
        c->fd = -1;
        return -1;
    }
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (O.tls) {
        gnutls_init(&c->s, GNUTLS_CLIENT);
        gnutls_set_default_priority(c->s);
        gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, creds);
        gnutls_server_name_set(c->s, GNUTLS_NAME_DNS, O.host, strlen(O.host));
        gnutls_session_set_verify_cert(c->s, O.host, 0);
        gnutls_transport_set_int(c->s, c->fd);
        int rc;
        do {
            rc = gnutls_handshake(c->s);
        } while (rc < 0 && gnutls_error_is_fatal(rc) == 0);
        if (rc < 0) {
            snprintf(err, errlen, "TLS handshake with %s:%s: %s", O.host, O.port,
                     gnutls_strerror(rc));
            gnutls_deinit(c->s);
            close(c->fd);
            c->fd = -1;
            return -1;
        }
    }
    c->up = 1;
    return 0;
}

static int conn_write(struct conn *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = O.tls ? gnutls_record_send(c->s, p, n) : send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && ((O.tls && (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED)) ||
                      (!O.tls && errno == EINTR))) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static ssize_t conn_read(struct conn *c, char *p, size_t n)
{
    for (;;) {
        ssize_t r = O.tls ? gnutls_record_recv(c->s, p, n) : recv(c->fd, p, n, 0);
        if (r < 0 && ((O.tls && (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)) ||
                      (!O.tls && errno == EINTR))) {
            continue;
        }
        return r;
    }
}

/* Read one response; its status, or -1 on a broken connection. *close_after set when the
 * server closes. */
static int read_response(struct conn *c, int *close_after)
{
    char buf[16384];
    size_t len = 0;
    char *hend = NULL;
    while (hend == NULL) {
        if (len == sizeof(buf) - 1) {
            return -1;
        }
        ssize_t r = conn_read(c, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0) {
            return -1;
        }
        len += (size_t)r;
        buf[len] = '\0';
        hend = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        return -1;
    }
    long clen = 0;
    *close_after = 0;
    for (char *h = strstr(buf, "\r\n"); h != NULL && h < hend; h = strstr(h + 2, "\r\n")) {
        if (strncasecmp(h + 2, "Content-Length:", 15) == 0) {
            clen = strtol(h + 17, NULL, 10);
        } else if (strncasecmp(h + 2, "Connection: close", 17) == 0) {
            *close_after = 1;
        }
    }
    long have = (long)(len - (size_t)(hend + 4 - buf));
    while (have < clen) {
        ssize_t r = conn_read(c, buf, sizeof(buf));
        if (r <= 0) {
            return -1;
        }
        have += r;
    }
    return status;
}

/* Build the next EventList body in *body (grown as needed); returns its length. */
static size_t build_body(char **body, size_t *cap)
{
    size_t need = 128;
    unsigned long long first = atomic_fetch_add(&next_line, (unsigned long long)O.batch);
    for (int i = 0; i < O.batch; i++) {
        need += line_lens[(first + (unsigned)i) % nlines] + 1;
    }
    if (need > *cap) {
        *cap = need * 2;
        *body = realloc(*body, *cap);
        if (*body == NULL) {
            fputs("loadgen: out of memory\n", stderr);
            exit(1);
        }
    }
    char *p = *body;
    static const char head[] = "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\","
                               "\"metadata\":{},\"items\":[";
    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    for (int i = 0; i < O.batch; i++) {
        size_t k = (first + (unsigned)i) % nlines;
        if (i > 0) {
            *p++ = ',';
        }
        memcpy(p, lines[k], line_lens[k]);
        char *id = strstr(p, "\"auditID\":\"");
        if (id != NULL && id < p + line_lens[k]) {
            char *q = strchr(id + 11, '"');
            if (q != NULL && q - (id + 11) >= 12) {
                char hex[13];
                snprintf(hex, sizeof(hex), "%012llx",
                         (unsigned long long)atomic_fetch_add(&next_id, 1) & 0xffffffffffffULL);
                memcpy(q - 12, hex, 12);
            }
        }
        p += line_lens[k];
    }
    *p++ = ']';
    *p++ = '}';
    return (size_t)(p - *body);
}

static void *worker(void *arg)
{
    struct result *res = arg;
    struct conn c = {.fd = -1};
    char *body = NULL, head[2048], err[512];
    size_t cap = 0;
    double per_conn_rate = O.rate > 0 ? O.rate / O.conns : 0;
    double next_at = now_s();
    for (;;) {
        if (O.requests > 0) {
            if (atomic_fetch_sub(&requests_left, 1) <= 0) {
                break;
            }
        } else if (now_s() >= t_end) {
            break;
        }
        if (per_conn_rate > 0) {
            double wait = next_at - now_s();
            if (wait > 0) {
                struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
                nanosleep(&ts, NULL);
            }
            next_at += O.batch / per_conn_rate;
        }
        if (!c.up && conn_open(&c, err, sizeof(err)) != 0) {
            fprintf(stderr, "loadgen: %s\n", err);
            res->errors++;
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        size_t blen = build_body(&body, &cap);
        int hl = snprintf(head, sizeof(head),
                          "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\n%s%s%s\r\n",
                          O.path, O.host, O.port, blen, O.token ? "Authorization: Bearer " : "",
                          O.token ? O.token : "", O.token ? "\r\n" : "");
        double t0 = now_s();
        int close_after = 0, status = -1;
        if (conn_write(&c, head, (size_t)hl) == 0 && conn_write(&c, body, blen) == 0) {
            status = read_response(&c, &close_after);
        }
        double dt = now_s() - t0;
        res->events += (unsigned long long)O.batch;
        if (status < 0) {
            res->errors++;
            conn_close(&c);
            continue;
        }
        if (res->n == res->cap) {
            res->cap = res->cap ? res->cap * 2 : 4096;
            res->lat = realloc(res->lat, res->cap * sizeof(*res->lat));
            if (res->lat == NULL) {
                fputs("loadgen: out of memory\n", stderr);
                exit(1);
            }
        }
        res->lat[res->n++] = dt;
        if (status >= 200 && status < 300) {
            res->ok2xx++;
            res->ok_events += (unsigned long long)O.batch;
        } else if (status == 503) {
            res->s503++;
        } else {
            res->other++;
        }
        if (close_after) {
            conn_close(&c);
        }
    }
    conn_close(&c);
    free(body);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},      {"cacert", required_argument, NULL, 'a'},
        {"cert", required_argument, NULL, 'c'},     {"key", required_argument, NULL, 'k'},
        {"token", required_argument, NULL, 't'},    {"connections", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},    {"duration", required_argument, NULL, 'd'},
        {"requests", required_argument, NULL, 'r'}, {"rate", required_argument, NULL, 'R'},
        {"events", required_argument, NULL, 'e'},   {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *events = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 'a':
            O.cacert = optarg;
            break;
        case 'c':
            O.cert = optarg;
            break;
        case 'k':
            O.key = optarg;
            break;
        case 't':
            O.token = optarg;
            break;
        case 'n':
            O.conns = atoi(optarg);
            break;
        case 'b':
            O.batch = atoi(optarg);
            break;
        case 'd':
            O.duration = atof(optarg);
            break;
        case 'r':
            O.requests = atol(optarg);
            break;
        case 'R':
            O.rate = atof(optarg);
            break;
        case 'e':
            events = optarg;
            break;
        default:
            die_usage("unknown option");
        }
    }
    if (url == NULL) {
        die_usage("--url is required");
    }
    if (O.conns < 1 || O.conns > 1024 || O.batch < 1 || O.duration <= 0 || O.requests < 0) {
        die_usage("--connections, --batch and --duration must be positive");
    }
    if ((O.cert == NULL) != (O.key == NULL)) {
        die_usage("--cert and --key go together");
    }
    parse_url(url);
    load_events(events);
    if (O.tls) {
        gnutls_global_init();
        gnutls_certificate_allocate_credentials(&creds);
        if (O.cacert != NULL &&
            gnutls_certificate_set_x509_trust_file(creds, O.cacert, GNUTLS_X509_FMT_PEM) <= 0) {
            fprintf(stderr, "loadgen: %s: no CA certificate read\n", O.cacert);
            return 2;
        }
        if (O.cert != NULL) {
            int rc =
                gnutls_certificate_set_x509_key_file(creds, O.cert, O.key, GNUTLS_X509_FMT_PEM);
            if (rc < 0) {
                fprintf(stderr, "loadgen: %s / %s: %s\n", O.cert, O.key, gnutls_strerror(rc));
                return 2;
            }
        }
    }
    atomic_store(&requests_left, O.requests);
    struct result *res = calloc((size_t)O.conns, sizeof(*res));
    pthread_t *th = calloc((size_t)O.conns, sizeof(*th));
    t_start = now_s();
    t_end = t_start + O.duration;
    for (int i = 0; i < O.conns; i++) {
        pthread_create(&th[i], NULL, worker, &res[i]);
    }
    struct result all = {0};
    for (int i = 0; i < O.conns; i++) {
        pthread_join(th[i], NULL);
    }
    double secs = now_s() - t_start;
    for (int i = 0; i < O.conns; i++) {
        all.ok2xx += res[i].ok2xx;
        all.s503 += res[i].s503;
        all.other += res[i].other;
        all.errors += res[i].errors;
        all.events += res[i].events;
        all.ok_events += res[i].ok_events;
        all.n += res[i].n;
    }
    double *lat = calloc(all.n + 1, sizeof(*lat));
    size_t k = 0;
    for (int i = 0; i < O.conns; i++) {
        memcpy(lat + k, res[i].lat, res[i].n * sizeof(*lat));
        k += res[i].n;
        free(res[i].lat);
    }
    qsort(lat, all.n, sizeof(*lat), cmp_double);
#define PCT(p) (all.n ? lat[(size_t)((double)(all.n - 1) * (p))] * 1000 : 0)
    printf("requests=%zu events=%llu ok_events=%llu seconds=%.2f events_per_sec=%.0f p50_ms=%.1f "
           "p90_ms=%.1f p99_ms=%.1f max_ms=%.1f status_2xx=%ld status_503=%ld status_other=%ld "
           "errors=%ld\n",
           all.n, all.events, all.ok_events, secs, (double)all.ok_events / secs, PCT(0.5), PCT(0.9),
           PCT(0.99), all.n ? lat[all.n - 1] * 1000 : 0, all.ok2xx, all.s503, all.other,
           all.errors);
    free(lat);
    free(res);
    free(th);
    if (events != NULL) {
        for (size_t i = 0; i < nlines; i++) {
            free(lines[i]);
        }
    }
    free(lines);
    free(line_lens);
    if (O.tls) {
        gnutls_certificate_free_credentials(creds);
        gnutls_global_deinit();
    }
    return all.errors == 0 && all.s503 == 0 && all.other == 0 ? 0 : 1;
}
