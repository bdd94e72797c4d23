/*
 * rules_test.c: `ktrail rules test`: data-driven rule tests (jq's .test idea).
 *
 * A test file is a YAML sequence of cases:
 *   - name: what the case shows
 *     event: |
 *       {"kind":"Event", ... one audit event as JSON ...}
 *     fires: [Rule A]          # rules that must fire
 *     not_fires: [Rule B]      # rules that must not
 *
 * For correlations, a case gives `events:` instead, a list of events in input order: they
 * run through the rules and then, in order, through a correlation engine of their own (new
 * for each case, so cases never share state); fires and not_fires then hold for the whole
 * case, rules and correlations alike.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "decode.h"
#include "rules.h"

static const char *scalar_of(yaml_document_t *doc, yaml_node_t *map, const char *key,
                             yaml_node_t **node)
{
    *node = NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0) {
            *node = yaml_document_get_node(doc, p->value);
            return (*node)->type == YAML_SCALAR_NODE ? (const char *)(*node)->data.scalar.value
                                                     : NULL;
        }
    }
    return NULL;
}

static int fired(const struct kt_batch *b, const char *rule)
{
    for (size_t i = 0; i < b->nalerts; i++) {
        if (strcmp(b->alerts[i].rule, rule) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Note in cover that the rule named rule has a case of kind bit (1 fires, 2 must not). */
static void covered(const struct kt_ruleset *rs, unsigned char *cover, const char *rule, int bit)
{
    for (size_t i = 0; cover != NULL && i < kt_ruleset_count(rs); i++) {
        struct kt_rule_info ri;
        kt_ruleset_info(rs, i, &ri);
        if (strcmp(ri.name, rule) == 0) {
            cover[i] |= (unsigned char)bit;
        }
    }
}

/* Check one case's expectations; prints failures; returns 1 when all hold. */
static int check(yaml_document_t *doc, yaml_node_t *list, int want, const struct kt_batch *b,
                 const char *file, unsigned long line, const char *name, FILE *out,
                 const struct kt_ruleset *rs, unsigned char *cover)
{
    int ok = 1;
    if (list == NULL || list->type != YAML_SEQUENCE_NODE) {
        return 1;
    }
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top;
         it++) {
        yaml_node_t *v = yaml_document_get_node(doc, *it);
        if (v->type != YAML_SCALAR_NODE) {
            continue;
        }
        const char *rule = (const char *)v->data.scalar.value;
        covered(rs, cover, rule, want ? 1 : 2);
        if (fired(b, rule) != want) {
            fprintf(out, "FAIL %s:%lu: %s: rule \"%s\" %s\n", file, line, name, rule,
                    want ? "did not fire" : "fired");
            ok = 0;
        }
    }
    return ok;
}

/* Feed the batch's correlation hits, in order, to a new engine; firings become alerts. The
 * references are the events' positions in the case, from 1. */
static int run_correlations(const struct kt_ruleset *rs, struct kt_matcher *m, struct kt_batch *b)
{
    struct kt_corr *c = kt_ruleset_corr_engine(rs);
    int rc = c != NULL ? 0 : KT_ENOMEM;
    size_t nhits = b->nhits;
    for (size_t k = 0; k < nhits && rc == 0; k++) {
        const struct kt_corr_hit h = b->hits[k];
        struct kt_corr_fire f;
        int fired = kt_corr_feed(c, h.corr, h.step, h.key, h.value, b->events[h.event].ts_us,
                                 (uint64_t)h.event + 1, &f);
        if (fired < 0) {
            rc = fired;
        } else if (fired == 1) {
            rc = kt_matcher_fire(m, b, &h, &f);
        }
    }
    kt_corr_destroy(c);
    return rc;
}

int kt_rules_test_file(const struct kt_ruleset *rs, const char *file, FILE *out, int *passed,
                       int *failed, unsigned char *cover, char *errstr, size_t errlen)
{
    FILE *fp = fopen(file, "r");
    if (fp == NULL) {
        snprintf(errstr, errlen, "%s: cannot open", file);
        return KT_EIO;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(errstr, errlen, "%s:%lu: malformed YAML: %s", file,
                 (unsigned long)parser.problem_mark.line + 1,
                 parser.problem != NULL ? parser.problem : "parse error");
        yaml_parser_delete(&parser);
        fclose(fp);
        return KT_EPARSE;
    }
    struct kt_decoder *dec = kt_decoder_create();
    struct kt_matcher *m = kt_matcher_create(rs);
    struct kt_batch *b = kt_batch_create();
    int rc = dec != NULL && m != NULL && b != NULL ? 0 : KT_ENOMEM;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (rc == 0 && (root == NULL || root->type != YAML_SEQUENCE_NODE)) {
        snprintf(errstr, errlen, "%s: a test file is a YAML sequence of cases", file);
        rc = KT_EPARSE;
    }
    for (yaml_node_item_t *it = rc == 0 ? root->data.sequence.items.start : NULL;
         it != NULL && it < root->data.sequence.items.top && rc == 0; it++) {
        yaml_node_t *c = yaml_document_get_node(&doc, *it), *n = NULL, *fires = NULL,
                    *not_fires = NULL;
        unsigned long line = (unsigned long)c->start_mark.line + 1;
        if (c->type != YAML_MAPPING_NODE) {
            continue;
        }
        yaml_node_t *events = NULL;
        const char *name = scalar_of(&doc, c, "name", &n);
        const char *event = scalar_of(&doc, c, "event", &n);
        scalar_of(&doc, c, "events", &events);
        scalar_of(&doc, c, "fires", &fires);
        scalar_of(&doc, c, "not_fires", &not_fires);
        name = name != NULL ? name : "(unnamed)";
        if (events != NULL && events->type != YAML_SEQUENCE_NODE) {
            events = NULL;
        }
        if ((event == NULL) == (events == NULL)) {
            fprintf(out, "FAIL %s:%lu: %s: needs an event or a list of events\n", file, line, name);
            (*failed)++;
            continue;
        }
        kt_batch_reset(b);
        size_t nev =
            events != NULL
                ? (size_t)(events->data.sequence.items.top - events->data.sequence.items.start)
                : 1;
        int bad = 0;
        for (size_t k = 0; k < nev && rc == 0; k++) {
            const char *text = event;
            if (events != NULL) {
                yaml_node_t *e = yaml_document_get_node(&doc, events->data.sequence.items.start[k]);
                if (e->type != YAML_SCALAR_NODE) {
                    /* JSON written bare is a YAML flow mapping, not the event's text */
                    fprintf(out,
                            "FAIL %s:%lu: %s: event %zu is not a string (write it as a | block)\n",
                            file, line, name, k + 1);
                    bad = 1;
                    break;
                }
                text = (const char *)e->data.scalar.value;
            }
            size_t len = strlen(text);
            struct kt_record *r = NULL;
            if (kt_batch_reserve(b, len + 1) != 0 || (r = kt_batch_add_record(b)) == NULL) {
                rc = KT_ENOMEM;
                break;
            }
            memcpy(b->buf + b->len, text, len);
            r->pos = b->len;
            r->len = len;
            b->len += len;
        }
        if (rc != 0) {
            break;
        }
        if (bad) {
            (*failed)++;
            continue;
        }
        if ((rc = kt_decode_batch(dec, b)) != 0 || (rc = kt_matcher_run(m, b)) != 0) {
            break;
        }
        int rejected = 0;
        for (size_t k = 0; k < b->nrecs && !rejected; k++) {
            if (b->events[k].reject != NULL) {
                fprintf(out, "FAIL %s:%lu: %s: event %zu rejected: %s\n", file, line, name, k + 1,
                        b->events[k].reject);
                rejected = 1;
            }
        }
        if (rejected) {
            (*failed)++;
            continue;
        }
        if (b->nhits > 0 && (rc = run_correlations(rs, m, b)) != 0) {
            break;
        }
        int ok = check(&doc, fires, 1, b, file, line, name, out, rs, cover);
        ok &= check(&doc, not_fires, 0, b, file, line, name, out, rs, cover);
        if (ok) {
            (*passed)++;
        } else {
            (*failed)++;
        }
    }
    if (rc == KT_ENOMEM) {
        snprintf(errstr, errlen, "out of memory");
    }
    kt_batch_destroy(b);
    kt_matcher_destroy(m);
    kt_decoder_destroy(dec);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}
