/*
 * bench_rules.c: matching speed on one core, without storage.
 *
 *   bench-rules RULES.yaml CORPUS   (JSON lines, one audit event a line)
 *
 * Loads the corpus into batches of 4096 records as the file source would, decodes every
 * batch once, then times the matcher alone over all batches (repeated until at least one
 * second has passed), and decode + match together. Prints events/s and alerts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode.h"
#include "rules.h"

enum { BATCH = 4096 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench-rules RULES.yaml CORPUS\n");
        return 2;
    }
    const char *files[] = {argv[1]};
    struct kt_ruleset *rs = NULL;
    char err[512];
    if (kt_ruleset_load(files, 1, NULL, &rs, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench-rules: %s\n", err);
        return 3;
    }
    FILE *fp = fopen(argv[2], "r");
    if (fp == NULL) {
        perror(argv[2]);
        return 1;
    }
    struct kt_batch **bs = NULL;
    size_t nb = 0, events = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (nb == 0 || bs[nb - 1]->nrecs == BATCH) {
            bs = realloc(bs, (nb + 1) * sizeof(*bs));
            bs[nb++] = kt_batch_create();
        }
        struct kt_batch *b = bs[nb - 1];
        kt_batch_reserve(b, (size_t)len);
        struct kt_record *r = kt_batch_add_record(b);
        memcpy(b->buf + b->len, line, (size_t)len);
        r->pos = b->len;
        r->len = (size_t)len;
        b->len += (size_t)len;
        events++;
    }
    free(line);
    fclose(fp);

    struct kt_decoder *d = kt_decoder_create();
    struct kt_matcher *m = kt_matcher_create(rs);
    double t0 = now_s();
    for (size_t i = 0; i < nb; i++) {
        kt_decode_batch(d, bs[i]);
    }
    double decode_s = now_s() - t0;

    size_t alerts = 0, rounds = 0;
    double match_s = 0;
    while (match_s < 1.0) {
        alerts = 0;
        for (size_t i = 0; i < nb; i++) {
            bs[i]->nalerts = 0;
            double s = now_s();
            kt_matcher_run(m, bs[i]);
            match_s += now_s() - s;
            alerts += bs[i]->nalerts;
        }
        rounds++;
    }
    double match_eps = (double)events * (double)rounds / match_s;
    double both_eps = (double)events / (decode_s + match_s / (double)rounds);
    printf("rules=%zu events=%zu alerts=%zu\n", kt_ruleset_count(rs), events, alerts);
    printf("match_only events_per_s=%.0f (one core, %zu rounds)\n", match_eps, rounds);
    printf("decode_and_match events_per_s=%.0f\n", both_eps);
    kt_matcher_destroy(m);
    kt_decoder_destroy(d);
    for (size_t i = 0; i < nb; i++) {
        kt_batch_destroy(bs[i]);
    }
    free(bs);
    kt_ruleset_destroy(rs);
    return 0;
}
