/*
 * rules_test.c: `ktrail rules test`: data-driven rule tests (jq's .test idea).
 *
 * A test file is a YAML sequence of cases:
 *   - name: what the case shows
 *     event: |
 *       {"kind":"Event", ... one audit event as JSON ...}
 *     fires: [Rule A]          # rules that must fire
 *     not_fires: [Rule B]      # rules that must not
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
        const char *name = scalar_of(&doc, c, "name", &n);
        const char *event = scalar_of(&doc, c, "event", &n);
        scalar_of(&doc, c, "fires", &fires);
        scalar_of(&doc, c, "not_fires", &not_fires);
        name = name != NULL ? name : "(unnamed)";
        if (event == NULL) {
            fprintf(out, "FAIL %s:%lu: %s: no event\n", file, line, name);
            (*failed)++;
            continue;
        }
        kt_batch_reset(b);
        size_t len = strlen(event);
        struct kt_record *r = NULL;
        if (kt_batch_reserve(b, len) != 0 || (r = kt_batch_add_record(b)) == NULL) {
            rc = KT_ENOMEM;
            break;
        }
        memcpy(b->buf, event, len);
        b->len = r->len = len;
        if ((rc = kt_decode_batch(dec, b)) != 0 || (rc = kt_matcher_run(m, b)) != 0) {
            break;
        }
        if (b->events[0].reject != NULL) {
            fprintf(out, "FAIL %s:%lu: %s: event rejected: %s\n", file, line, name,
                    b->events[0].reject);
            (*failed)++;
            continue;
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
