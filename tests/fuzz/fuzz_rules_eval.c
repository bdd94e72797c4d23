/*
 * fuzz_rules_eval.c: libFuzzer harness for matching (rules_eval.c, fields.c, walk.c, pss.c,
 * corr.c through the rule set): the default pack (the copy compiled into the binary, which is
 * rules/k8s_audit_rules.yaml) loaded once, then any bytes, one event per line, decoded and
 * matched, their correlation hits fed to a new engine and every alert rendered, without a
 * crash, a leak or an out-of-bounds read.
 *
 * Build: cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DKT_FUZZ=ON && cmake --build
 * build-fuzz --target fuzz-rules-eval; run: build-fuzz/fuzz-rules-eval DIR
 * tests/fuzz/corpus/rules_eval (one fixture event per file; DIR: a scratch copy).
 */
#include "fuzz_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kt_log_level = KT_LOG_ERROR; /* the loader's notes on skipped rules, once per input */
    static struct kt_ruleset *rs;
    if (rs == NULL) {
        char err[1024];
        if (kt_ruleset_load_srcs(kt_rules_builtin(), 1, NULL, &rs, err, sizeof(err)) != 0) {
            abort(); /* the pack itself is broken: nothing to fuzz */
        }
    }
    struct kt_batch *b = kt_batch_create();
    if (b != NULL && fuzz_batch_fill(b, (const char *)data, size) == 0) {
        fuzz_rules_run(rs, b);
    }
    kt_batch_destroy(b);
    return 0;
}
