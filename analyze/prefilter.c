/*
 * prefilter.c: which rules can match an event, decided from its verb and resource alone.
 *
 * Almost every rule's condition is an AND whose conjuncts include `ka.verb = X` or
 * `ka.verb in (...)` and `ka.target.resource = Y` or `... in (...)` (the pack's macros kcreate,
 * pod, secret... inline to exactly that). A conjunct that is false makes the rule false, so a
 * rule whose verbs or resources cannot include the event's is skipped without evaluating it.
 * At load, each rule gets a verb mask (one bit per common verb, one for any other) and a
 * resource mask (one bit per resource some rule names, up to 62, one for any other); per
 * event, the verb and the resource are looked up once. Only non-negated '=' and 'in'
 * conjuncts reachable through ANDs from the root count; anything else leaves the masks
 * all-ones, so a rule is never skipped wrongly, only evaluated needlessly. `ka.stage = X`
 * conjuncts (the macros kevt, kevt_started) give a stage mask the same way, checked against
 * the stage the decoder already classified.
 */
#include <string.h>

#include "rules_int.h"

static const char *const verbs[] = {"get",    "list",  "watch",  "create",
                                    "update", "patch", "delete", "deletecollection"};
/* The last bits: a value no rule names, and no value at all (which no '=' or 'in' matches,
 * but a rule without such a conjunct must still see). */
enum {
    NVERBS = sizeof(verbs) / sizeof(verbs[0]),
    VERB_ABSENT = 30,
    VERB_OTHER = 31,
    RES_MAX = 62,
    RES_ABSENT = 62,
    RES_OTHER = 63
};

static uint32_t verb_bit(const char *s, size_t len)
{
    for (int i = 0; i < NVERBS; i++) {
        if (strlen(verbs[i]) == len && memcmp(verbs[i], s, len) == 0) {
            return 1u << i;
        }
    }
    return 1u << VERB_OTHER;
}

static uint64_t res_bit(const struct kt_ruleset *rs, const char *s, size_t len)
{
    for (int i = 0; i < rs->npf_res; i++) {
        if (rs->pf_reslen[i] == len && memcmp(rs->pf_res[i], s, len) == 0) {
            return 1ull << i;
        }
    }
    return 1ull << RES_OTHER;
}

/* Intern a resource a rule names; its bit (RES_OTHER when the table is full). */
static uint64_t res_intern(struct kt_ruleset *rs, const char *s, size_t len)
{
    uint64_t bit = res_bit(rs, s, len);
    if (bit != 1ull << RES_OTHER || rs->npf_res == RES_MAX) {
        return bit;
    }
    rs->pf_res[rs->npf_res] = s; /* the node's value: lives as long as the rule set */
    rs->pf_reslen[rs->npf_res] = len;
    return 1ull << rs->npf_res++;
}

/* The bit of a stage name: its enum kt_stage (KT_STAGE_UNKNOWN for any other text, which
 * the decoder classifies the same way). */
static uint32_t stage_bit(const char *s, size_t len)
{
    static const char *const names[] = {NULL, "RequestReceived", "ResponseStarted",
                                        "ResponseComplete", "Panic"};
    for (int i = 1; i < 5; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
            return 1u << i;
        }
    }
    return 1u << KT_STAGE_UNKNOWN;
}

/* Narrow the masks by the conjuncts under nd (ANDs only). */
static void conjuncts(struct kt_ruleset *rs, const struct node *nd, const int *ids, uint32_t *vm,
                      uint64_t *rm, uint32_t *sm)
{
    int verb_id = ids[0], res_id = ids[1], stage_id = ids[2];
    if (nd == NULL) {
        return;
    }
    if (nd->kind == N_AND) {
        conjuncts(rs, nd->a, ids, vm, rm, sm);
        conjuncts(rs, nd->b, ids, vm, rm, sm);
        return;
    }
    if (nd->kind != N_CMP || (nd->op != OP_EQ && nd->op != OP_IN) || nd->f.arg != NULL ||
        nd->f.nalt > 0) {
        return;
    }
    if (nd->f.id == verb_id) {
        uint32_t m = 0;
        for (size_t i = 0; i < nd->nvals; i++) {
            m |= verb_bit(nd->vals[i], nd->lens[i]);
        }
        *vm &= m;
    } else if (nd->f.id == res_id) {
        uint64_t m = 0;
        for (size_t i = 0; i < nd->nvals; i++) {
            m |= res_intern(rs, nd->vals[i], nd->lens[i]);
        }
        *rm &= m;
    } else if (nd->f.id == stage_id) {
        uint32_t m = 0;
        for (size_t i = 0; i < nd->nvals; i++) {
            m |= stage_bit(nd->vals[i], nd->lens[i]);
        }
        *sm &= m;
    }
}

void prefilter_compile(struct kt_ruleset *rs)
{
    int takes_arg = 0;
    const char *ptr = NULL;
    int verb_id = field_lookup("ka.verb", 7, &takes_arg, &ptr);
    int res_id = field_lookup("ka.target.resource", 18, &takes_arg, &ptr);
    int stage_id = field_lookup("ka.stage", 8, &takes_arg, &ptr);
    const int ids[3] = {verb_id, res_id, stage_id};
    rs->npf_res = 0;
    for (size_t i = 0; i < rs->nrules; i++) {
        struct rule *r = &rs->rules[i];
        r->pf_verbs = ~0u;
        r->pf_res = ~0ull;
        r->pf_stage = ~0u;
        conjuncts(rs, r->root, ids, &r->pf_verbs, &r->pf_res, &r->pf_stage);
    }
    for (size_t i = 0; i < rs->ncorrs; i++) {
        for (size_t k = 0; k < rs->corrs[i].nsteps; k++) {
            struct cstep *st = &rs->corrs[i].steps[k];
            st->pf_verbs = ~0u;
            st->pf_res = ~0ull;
            st->pf_stage = ~0u;
            if (st->rule >= 0) {
                st->pf_verbs = rs->rules[st->rule].pf_verbs;
                st->pf_res = rs->rules[st->rule].pf_res;
                st->pf_stage = rs->rules[st->rule].pf_stage;
            } else {
                conjuncts(rs, st->root, ids, &st->pf_verbs, &st->pf_res, &st->pf_stage);
            }
        }
    }
}

void prefilter_event(const struct kt_ruleset *rs, const struct kt_event *ev, uint32_t *verb,
                     uint64_t *res, uint32_t *stage)
{
    *stage = 1u << (ev->stage <= KT_STAGE_PANIC ? ev->stage : KT_STAGE_UNKNOWN);
    struct kt_str v = ev->f[KT_F_VERB], r = ev->f[KT_F_RESOURCE];
    *verb = v.ptr != NULL ? verb_bit(v.ptr, v.len) : 1u << VERB_ABSENT;
    *res = r.ptr != NULL ? res_bit(rs, r.ptr, r.len) : 1ull << RES_ABSENT;
}
