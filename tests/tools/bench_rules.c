/*
 * bench_rules.c: matching speed on one core, without storage; and correlation state memory.
 *
 *   bench-rules RULES.yaml CORPUS   (JSON lines, one audit event a line)
 *   bench-rules --corr-memory USERS RULES.yaml
 *
 * Loads the corpus into batches of 4096 records as the file source would, decodes every
 * batch once, then times the matcher alone over all batches (repeated until at least one
 * second has passed), and decode + match together. Prints events/s and alerts. When the rule
 * file has correlations, the matcher is timed twice more, alternating: with the correlations
 * disabled (single-event rules only) and with them (their steps evaluated and hits recorded),
 * plus the engine fed with the hits in order as the store's writer would (on the same core
 * here; the writer runs it on its own thread).
 *
 * --corr-memory feeds every correlation of the rule file USERS distinct users (one
 * observation each, a millisecond apart) and prints the state's bytes, groups and evictions
 * against the cap the max_groups bounds imply, and the peak RSS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "decode.h"
#include "rules.h"

enum { BATCH = 4096 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the machine is shared */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Time the matcher of rs over all batches, at least a second; events/s. Alerts and hits of
 * the last round in *alerts and *hits. */
static double time_match(const struct kt_ruleset *rs, struct kt_batch **bs, size_t nb,
                         size_t events, size_t *alerts, size_t *hits, size_t *rounds_out)
{
    struct kt_matcher *m = kt_matcher_create(rs);
    size_t rounds = 0;
    double match_s = 0;
    int keep = 0;
    while (match_s < 1.0 || !keep) {
        keep = match_s >= 1.0; /* the last round's hits stay valid, for the engine */
        *alerts = *hits = 0;
        for (size_t i = 0; i < nb; i++) {
            bs[i]->nalerts = 0;
            bs[i]->nhits = 0;
            /* what a round adds to the arena (outputs, hit keys) is forgotten after it, as the
             * pipeline resets each batch: steady state, no fresh pages */
            struct kt_arena_mark mk = kt_arena_mark(&bs[i]->arena);
            double s = now_s();
            kt_matcher_run(m, bs[i]);
            match_s += now_s() - s;
            *alerts += bs[i]->nalerts;
            *hits += bs[i]->nhits;
            if (!keep) {
                kt_arena_rewind(&bs[i]->arena, mk);
            }
        }
        rounds++;
    }
    kt_matcher_destroy(m);
    if (rounds_out != NULL) {
        *rounds_out = rounds;
    }
    return (double)events * (double)rounds / match_s;
}

/* The rule set of file with every correlation disabled (an override file written to /tmp). */
static struct kt_ruleset *without_correlations(const char *file, const struct kt_ruleset *full)
{
    char tmp[] = "/tmp/bench-rules-XXXXXX";
    int fd = mkstemp(tmp);
    FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    struct kt_ruleset *rs = NULL;
    char err[512];
    if (fp == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < kt_ruleset_count(full); i++) {
        struct kt_rule_info ri;
        kt_ruleset_info(full, i, &ri);
        if (strcmp(ri.kind, "rule") != 0) {
            fprintf(fp, "- %s: \"%s\"\n  enabled: false\n", ri.kind, ri.name);
        }
    }
    fclose(fp);
    const char *files[] = {file, tmp};
    if (kt_ruleset_load(files, 2, NULL, &rs, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench-rules: %s\n", err);
    }
    remove(tmp);
    return rs;
}

static int corr_memory(const char *file, long users)
{
    const char *files[] = {file};
    struct kt_ruleset *rs = NULL;
    char err[512], key[64], val[64];
    if (kt_ruleset_load(files, 1, NULL, &rs, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench-rules: %s\n", err);
        return 3;
    }
    struct kt_corr *c = kt_ruleset_corr_engine(rs);
    size_t n = kt_ruleset_ncorr(rs);
    size_t keylen = (size_t)snprintf(key, sizeof(key), "user-%07ld", users - 1);
    double t0 = now_s();
    uint64_t fired = 0;
    for (long u = 0; u < users; u++) {
        snprintf(key, sizeof(key), "user-%07ld", u);
        snprintf(val, sizeof(val), "v%ld", u);
        for (size_t j = 0; j < n; j++) {
            struct kt_corr_fire f;
            int rc = kt_corr_feed(c, j, 0, (struct kt_str){key, strlen(key)},
                                  (struct kt_str){val, strlen(val)},
                                  1714521600000000LL + (int64_t)u * 1000, (uint64_t)u + 1, &f);
            fired += rc == 1;
        }
    }
    double secs = now_s() - t0;
    struct kt_corr_stats st;
    struct rusage ru;
    kt_corr_stats(c, &st);
    getrusage(RUSAGE_SELF, &ru);
    uint64_t cap = kt_corr_cap_bytes(c, keylen);
    printf("corr_memory users=%ld correlations=%zu observations=%llu in %.2f s\n", users, n,
           (unsigned long long)users * n, secs);
    printf("corr_memory groups=%llu evicted=%llu fired=%llu state_bytes=%llu cap_bytes=%llu"
           " (%.0f%% of cap) peak_rss_mb=%.1f\n",
           (unsigned long long)st.groups, (unsigned long long)st.evicted, (unsigned long long)fired,
           (unsigned long long)st.bytes, (unsigned long long)cap,
           cap > 0 ? 100.0 * (double)st.bytes / (double)cap : 0, (double)ru.ru_maxrss / 1024);
    kt_corr_destroy(c);
    kt_ruleset_destroy(rs);
    return st.bytes <= cap ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--corr-memory") == 0) {
        return corr_memory(argv[3], atol(argv[2]));
    }
    if (argc != 3) {
        fprintf(stderr, "usage: bench-rules RULES.yaml CORPUS\n"
                        "       bench-rules --corr-memory USERS RULES.yaml\n");
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
    double t0 = now_s();
    for (size_t i = 0; i < nb; i++) {
        kt_decode_batch(d, bs[i]);
    }
    double decode_s = now_s() - t0;

    size_t alerts = 0, hits = 0, rounds = 0;
    double match_eps = time_match(rs, bs, nb, events, &alerts, &hits, &rounds);
    double both_eps = (double)events / (decode_s + (double)events / match_eps);
    printf("rules=%zu events=%zu alerts=%zu\n", kt_ruleset_count(rs), events, alerts);
    printf("match_only events_per_s=%.0f (one core, %zu rounds)\n", match_eps, rounds);
    printf("decode_and_match events_per_s=%.0f\n", both_eps);
    struct kt_ruleset *single = kt_ruleset_ncorr(rs) > 0 ? without_correlations(argv[1], rs) : NULL;
    if (single != NULL) {
        /* alternate, best of three each: the machine is shared */
        double best_single = 0, best_corr = 0;
        size_t a1 = 0, h1 = 0, a2 = 0, h2 = 0;
        for (int k = 0; k < 3; k++) {
            double e1 = time_match(single, bs, nb, events, &a1, &h1, NULL);
            double e2 = time_match(rs, bs, nb, events, &a2, &h2, NULL);
            best_single = e1 > best_single ? e1 : best_single;
            best_corr = e2 > best_corr ? e2 : best_corr;
        }
        /* the engine, fed with the last round's hits in input order (row ids: event numbers) */
        struct kt_corr *c = kt_ruleset_corr_engine(rs);
        uint64_t fired = 0, ref = 0;
        double t1 = now_s();
        for (size_t i = 0; i < nb; i++) {
            for (size_t k = 0; k < bs[i]->nhits; k++) {
                const struct kt_corr_hit *h = &bs[i]->hits[k];
                struct kt_corr_fire f;
                ref = (uint64_t)i * BATCH + h->event + 1;
                fired += kt_corr_feed(c, h->corr, h->step, h->key, h->value,
                                      bs[i]->events[h->event].ts_us, ref, &f) == 1;
            }
        }
        double feed_s = now_s() - t1;
        size_t per[64] = {0};
        for (size_t i = 0; i < nb; i++) {
            for (size_t k = 0; k < bs[i]->nhits; k++) {
                per[bs[i]->hits[k].corr < 64 ? bs[i]->hits[k].corr : 63]++;
            }
        }
        size_t nrules = kt_ruleset_count(rs) - kt_ruleset_ncorr(rs);
        for (size_t j = 0; j < kt_ruleset_ncorr(rs) && j < 64; j++) {
            struct kt_rule_info ri;
            kt_ruleset_info(rs, nrules + j, &ri);
            printf("  hits %-40s %zu\n", ri.name, per[j]);
        }
        struct kt_corr_stats st;
        kt_corr_stats(c, &st);
        kt_corr_destroy(c);
        printf("match_single_event events_per_s=%.0f (%zu rules, %zu alerts)\n", best_single,
               kt_ruleset_count(single) - kt_ruleset_ncorr(single), a1);
        printf("match_with_correlations events_per_s=%.0f (%zu correlations, %zu hits):"
               " %.1f%% of single-event\n",
               best_corr, kt_ruleset_ncorr(rs), h2, 100.0 * best_corr / best_single);
        printf("corr_feed hits_per_s=%.0f (%zu hits, %llu firings, %llu groups, %.1f MB)\n",
               feed_s > 0 ? (double)h2 / feed_s : 0, h2, (unsigned long long)fired,
               (unsigned long long)st.groups, (double)st.bytes / 1e6);
        printf("match_with_correlations_and_feed events_per_s=%.0f: %.1f%% of single-event\n",
               (double)events / ((double)events / best_corr + feed_s),
               100.0 * ((double)events / ((double)events / best_corr + feed_s)) / best_single);
        kt_ruleset_destroy(single);
    }
    kt_decoder_destroy(d);
    for (size_t i = 0; i < nb; i++) {
        kt_batch_destroy(bs[i]);
    }
    free(bs);
    kt_ruleset_destroy(rs);
    return 0;
}
