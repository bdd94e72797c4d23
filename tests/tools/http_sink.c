/*
 * http_sink.c: an HTTP receiver for tests of alert delivery (--alerts-http).
 *
 *   http-sink [--port N] [--out FILE] [--status CODE] [--fail N] [--delay-ms N]
 *             [--tls-cert F --tls-key F] [--header NAME]
 *
 * Listens on 127.0.0.1 (port 0: any free one), prints the port on a line of stdout, and
 * appends the body of every POST it accepts to FILE as one line (with --header NAME, the
 * value of that request header first, then a tab). It answers CODE (default 200) to every
 * request after the first N, which get 500; --delay-ms waits before answering. It serves
 * until SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sink {
    FILE *out;
    unsigned status;
    long fail;
    long delay_ms;
    const char *header;
};

struct request {
    char *body;
    size_t len;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned code)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(2, "{}", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state)
{
    struct sink *s = cls;
    struct request *rq = *state;
    (void)url;
    (void)version;
    if (rq == NULL) {
        rq = calloc(1, sizeof(*rq));
        *state = rq;
        return rq != NULL ? MHD_YES : MHD_NO;
    }
    if (*size > 0) {
        char *p = realloc(rq->body, rq->len + *size);
        if (p == NULL) {
            return MHD_NO;
        }
        memcpy(p + rq->len, data, *size);
        rq->body = p;
        rq->len += *size;
        *size = 0;
        return MHD_YES;
    }
    if (s->delay_ms > 0) {
        usleep((useconds_t)s->delay_ms * 1000);
    }
    if (strcmp(method, "POST") != 0) {
        return answer(c, 405);
    }
    if (__atomic_fetch_sub(&s->fail, 1, __ATOMIC_RELAXED) > 0) {
        return answer(c, 500);
    }
    if (s->status >= 200 && s->status < 300 && s->out != NULL) {
        flockfile(s->out);
        if (s->header != NULL) {
            const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, s->header);
            fprintf(s->out, "%s\t", v != NULL ? v : "");
        }
        fwrite(rq->body, 1, rq->len, s->out);
        fputc('\n', s->out);
        fflush(s->out);
        funlockfile(s->out);
    }
    return answer(c, s->status);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode why)
{
    struct request *rq = *state;
    (void)cls;
    (void)c;
    (void)why;
    if (rq != NULL) {
        free(rq->body);
        free(rq);
    }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;
    if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (p = calloc(1, (size_t)n + 1)) != NULL &&
        fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    if (f != NULL) {
        fclose(f);
    }
    return p;
}

int main(int argc, char **argv)
{
    struct sink s = {.status = 200};
    unsigned port = 0;
    const char *cert = NULL, *key = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (strcmp(o, "--port") == 0) {
            port = (unsigned)atoi(v);
        } else if (strcmp(o, "--out") == 0) {
            s.out = fopen(v, "a");
        } else if (strcmp(o, "--status") == 0) {
            s.status = (unsigned)atoi(v);
        } else if (strcmp(o, "--fail") == 0) {
            s.fail = atol(v);
        } else if (strcmp(o, "--delay-ms") == 0) {
            s.delay_ms = atol(v);
        } else if (strcmp(o, "--tls-cert") == 0) {
            cert = v;
        } else if (strcmp(o, "--tls-key") == 0) {
            key = v;
        } else if (strcmp(o, "--header") == 0) {
            s.header = v;
        } else {
            fprintf(stderr, "http-sink: unknown option %s\n", o);
            return 2;
        }
    }
    char *cert_pem = cert != NULL ? slurp(cert) : NULL;
    char *key_pem = key != NULL ? slurp(key) : NULL;
    if ((cert != NULL) != (cert_pem != NULL) || (key != NULL) != (key_pem != NULL)) {
        fputs("http-sink: cannot read the TLS certificate or key\n", stderr);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG | (cert_pem != NULL ? MHD_USE_TLS : 0);
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, &s, MHD_OPTION_SOCK_ADDR, &sa,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_ARRAY,
                         cert_pem != NULL ? tls : tls + 2, MHD_OPTION_END);
    if (d == NULL) {
        fputs("http-sink: cannot listen\n", stderr);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("%u\n", info != NULL ? info->port : 0);
    fflush(stdout);
    while (!stop) {
        pause();
    }
    MHD_stop_daemon(d);
    if (s.out != NULL) {
        fclose(s.out);
    }
    free(cert_pem);
    free(key_pem);
    return 0;
}
