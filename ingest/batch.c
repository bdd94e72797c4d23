/*
 * batch.c: batch allocation, reuse and growth (see batch.h for the ownership rules).
 */
#include "batch.h"

#include <stdlib.h>

struct kt_batch *kt_batch_create(void)
{
    return calloc(1, sizeof(struct kt_batch));
}

void kt_batch_reset(struct kt_batch *b)
{
    b->len = 0;
    b->nrecs = 0;
    for (size_t i = 0; i < b->norigins; i++) {
        free(b->origins[i]);
    }
    b->norigins = 0;
    for (size_t i = 0; i < b->nclusters; i++) {
        free(b->clusters[i]);
    }
    b->nclusters = 0;
    kt_arena_reset(&b->arena);
    b->nalerts = 0;
    b->nhits = 0;
    b->ckpt_kind = KT_CKPT_NONE;
    free(b->ckpt_file.path);
    memset(&b->ckpt_file, 0, sizeof(b->ckpt_file));
    for (size_t i = 0; i < b->nckpt_kafka; i++) {
        free(b->ckpt_kafka[i].topic);
    }
    b->nckpt_kafka = 0;
    b->cluster = KT_STR_NULL;
    b->src_token = NULL;
    b->on_done = NULL;
    b->on_done_ctx = NULL;
}

void kt_batch_destroy(struct kt_batch *b)
{
    if (b == NULL) {
        return;
    }
    kt_batch_reset(b);
    kt_arena_free(&b->arena);
    free(b->buf);
    free(b->recs);
    free(b->origins);
    free(b->clusters);
    free(b->events);
    free(b->alerts);
    free(b->hits);
    free(b->ckpt_kafka);
    free(b);
}

int kt_batch_reserve(struct kt_batch *b, size_t extra)
{
    if (b->cap - b->len >= extra) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 64 * 1024;
    while (cap - b->len < extra) {
        cap *= 2;
    }
    char *buf = realloc(b->buf, cap);
    if (buf == NULL) {
        return KT_ENOMEM;
    }
    b->buf = buf;
    b->cap = cap;
    return 0;
}

struct kt_record *kt_batch_add_record(struct kt_batch *b)
{
    if (b->nrecs == b->caprecs) {
        size_t cap = b->caprecs ? b->caprecs * 2 : 256;
        struct kt_record *recs = realloc(b->recs, cap * sizeof(*recs));
        if (recs == NULL) {
            return NULL;
        }
        b->recs = recs;
        b->caprecs = cap;
    }
    struct kt_record *r = &b->recs[b->nrecs++];
    memset(r, 0, sizeof(*r));
    return r;
}

/* Index of the name p[0, len) in the table, added when new; or KT_ENOMEM. */
static int intern(char ***tab, size_t *n, size_t *cap, const char *p, size_t len)
{
    for (size_t i = 0; i < *n; i++) {
        if (strncmp((*tab)[i], p, len) == 0 && (*tab)[i][len] == '\0') {
            return (int)i;
        }
    }
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        char **t = realloc(*tab, ncap * sizeof(*t));
        if (t == NULL) {
            return KT_ENOMEM;
        }
        *tab = t;
        *cap = ncap;
    }
    char *copy = strndup(p, len);
    if (copy == NULL) {
        return KT_ENOMEM;
    }
    (*tab)[*n] = copy;
    return (int)(*n)++;
}

int kt_batch_origin(struct kt_batch *b, const char *name)
{
    return intern(&b->origins, &b->norigins, &b->caporigins, name, strlen(name));
}

int kt_batch_cluster(struct kt_batch *b, const char *p, size_t len)
{
    int i = intern(&b->clusters, &b->nclusters, &b->capclusters, p, len);
    return i < 0 ? i : i + 1;
}

struct kt_str kt_batch_record_cluster(const struct kt_batch *b, const struct kt_record *r)
{
    if (r->cluster == 0 || r->cluster > b->nclusters) {
        return KT_STR_NULL;
    }
    const char *c = b->clusters[r->cluster - 1];
    return (struct kt_str){c, strlen(c)};
}

int kt_batch_ckpt_kafka(struct kt_batch *b, const char *topic, int32_t partition,
                        int64_t next_offset)
{
    for (size_t i = 0; i < b->nckpt_kafka; i++) {
        struct kt_ckpt_kafka *c = &b->ckpt_kafka[i];
        if (c->partition == partition && strcmp(c->topic, topic) == 0) {
            c->next_offset = next_offset;
            b->ckpt_kind = KT_CKPT_KAFKA;
            return 0;
        }
    }
    if (b->nckpt_kafka == b->capckpt_kafka) {
        size_t cap = b->capckpt_kafka ? b->capckpt_kafka * 2 : 8;
        struct kt_ckpt_kafka *c = realloc(b->ckpt_kafka, cap * sizeof(*c));
        if (c == NULL) {
            return KT_ENOMEM;
        }
        b->ckpt_kafka = c;
        b->capckpt_kafka = cap;
    }
    char *copy = strdup(topic);
    if (copy == NULL) {
        return KT_ENOMEM;
    }
    b->ckpt_kafka[b->nckpt_kafka++] =
        (struct kt_ckpt_kafka){.topic = copy, .partition = partition, .next_offset = next_offset};
    b->ckpt_kind = KT_CKPT_KAFKA;
    return 0;
}

void kt_batch_ckpt_kafka_drop(struct kt_batch *b, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < b->nckpt_kafka; i++) {
        struct kt_ckpt_kafka *c = &b->ckpt_kafka[i];
        if (c->partition == partition && strcmp(c->topic, topic) == 0) {
            free(c->topic);
            memmove(c, c + 1, (b->nckpt_kafka - i - 1) * sizeof(*c));
            b->nckpt_kafka--;
            return;
        }
    }
}
