/*
 * alerts_http.c: the --alerts-http options every sink shares (replay, serve, consume), and
 * starting and stopping the store's delivery threads (store/deliver.h) around a run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The first line of path, without surrounding blanks, in out; 0, or -1 (printed). */
static int read_token(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "ktrail: --alerts-http-token-file %s: cannot read it\n", path);
        return -1;
    }
    char *line = fgets(out, (int)cap, f) != NULL ? out : NULL;
    fclose(f);
    size_t n = line != NULL ? strcspn(line, "\r\n") : 0;
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t')) {
        n--;
    }
    size_t skip = line != NULL ? strspn(line, " \t") : 0;
    if (n <= skip) {
        fprintf(stderr, "ktrail: --alerts-http-token-file %s: no token in its first line\n", path);
        return -1;
    }
    memmove(out, out + skip, n - skip);
    out[n - skip] = '\0';
    return 0;
}

int cli_alerts_http_option(int c, const char *arg, struct alerts_http_args *ha)
{
    struct kt_deliver_dest *d = ha->n > 0 ? &ha->dests[ha->n - 1] : NULL;
    const char *name = c == CLI_OPT_HTTP_HEADER       ? "--alerts-http-header"
                       : c == CLI_OPT_HTTP_TOKEN_FILE ? "--alerts-http-token-file"
                       : c == CLI_OPT_HTTP_CA         ? "--alerts-http-ca"
                                                      : "--alerts-min-priority";
    if (c == CLI_OPT_HTTP) {
        if (ha->n == CLI_MAX_HTTP) {
            fprintf(stderr, "ktrail: at most %d --alerts-http destinations\n", CLI_MAX_HTTP);
            return -1;
        }
        d = &ha->dests[ha->n];
        memset(d, 0, sizeof(*d));
        d->url = arg;
        d->headers = ha->headers[ha->n];
        d->min_priority = KT_PRIO_DEBUG;
        ha->n++;
        return 1;
    }
    if (c != CLI_OPT_HTTP_HEADER && c != CLI_OPT_HTTP_TOKEN_FILE && c != CLI_OPT_HTTP_CA &&
        c != CLI_OPT_HTTP_MIN_PRIORITY) {
        return 0;
    }
    if (d == NULL) {
        fprintf(stderr, "ktrail: %s applies to the --alerts-http URL before it: give one first\n",
                name);
        return -1;
    }
    size_t i = ha->n - 1;
    switch (c) {
    case CLI_OPT_HTTP_HEADER:
        if (strchr(arg, ':') == NULL || d->nheaders == CLI_MAX_HTTP_HEADERS) {
            fprintf(stderr, "ktrail: %s takes 'Name: value' (at most %d), not '%s'\n", name,
                    CLI_MAX_HTTP_HEADERS, arg);
            return -1;
        }
        ha->headers[i][d->nheaders++] = arg;
        return 1;
    case CLI_OPT_HTTP_TOKEN_FILE:
        if (read_token(arg, ha->tokens[i], sizeof(ha->tokens[i])) != 0) {
            return -1;
        }
        d->bearer = ha->tokens[i];
        return 1;
    case CLI_OPT_HTTP_CA:
        d->ca_file = arg;
        return 1;
    default:
        d->min_priority = kt_priority_parse(arg);
        if (d->min_priority < 0) {
            fprintf(stderr, "ktrail: %s: '%s' is not a priority (emergency ... debug)\n", name,
                    arg);
            return -1;
        }
        return 1;
    }
}

struct kt_deliver *cli_alerts_http_start(const struct alerts_http_args *ha, const char *db,
                                         int *failed)
{
    struct kt_deliver *d = NULL;
    char err[512] = "";
    *failed = 0;
    if (ha->n > 0 && kt_deliver_start(db, ha->dests, ha->n, &d, err, sizeof(err)) != 0) {
        fprintf(stderr, "ktrail: %s\n", err);
        *failed = 1;
    }
    return d;
}

void cli_alerts_http_finish(struct kt_deliver *d, const char *cmd)
{
    if (d == NULL) {
        return;
    }
    kt_deliver_drain(d, CLI_ALERTS_HTTP_DRAIN_MS);
    for (size_t i = 0; i < kt_deliver_count(d); i++) {
        struct kt_deliver_stats st;
        kt_deliver_stats(d, i, &st);
        fprintf(stderr, "ktrail %s: alerts to %s: %llu delivered, %llu refused", cmd,
                kt_deliver_name(d, i), (unsigned long long)st.delivered,
                (unsigned long long)st.rejected);
        if (st.pending > 0) {
            fprintf(stderr, ", %llu kept for the next run (%llu failed attempts)",
                    (unsigned long long)st.pending, (unsigned long long)st.failures);
        }
        fputc('\n', stderr);
    }
    kt_deliver_stop(d, 0);
}

const char cli_alerts_http_usage[] =
    "  --alerts-http URL       POST each stored alert, as Falco's JSON alert, to URL, in\n"
    "                          order and at least once (repeatable; the options below\n"
    "                          apply to the URL before them)\n"
    "  --alerts-http-header 'Name: value'   a header to send (repeatable)\n"
    "  --alerts-http-token-file F           send the token in F as a bearer token\n"
    "  --alerts-http-ca F      trust the CAs in F for an https URL\n"
    "  --alerts-min-priority P send only alerts of priority P or more severe\n";
