/*
 * fuzz_rules_load.c: libFuzzer harness for the rule loader and compiler (rules_load.c,
 * rules_compile.c, prefilter.c): any bytes, as a rule file, must load or fail with an error
 * without a crash, a leak, or more than a little time and memory (run with
 * -rss_limit_mb=2048 -timeout=10). A rule set that loads is then run over two events that
 * many rules can match (one per line, so correlations see a sequence), so that what the load
 * accepted cannot crash the matcher later (as `by: [c: ]` did).
 *
 * Build: cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DKT_FUZZ=ON && cmake --build
 * build-fuzz --target fuzz-rules-load; run: build-fuzz/fuzz-rules-load -rss_limit_mb=2048
 * -timeout=10 DIR tests/fuzz/corpus/rules_load (DIR: a scratch copy for new inputs).
 */
#include "fuzz_rules.h"

static const char EVENTS[] =
    "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"RequestResponse\","
    "\"auditID\":\"f1\",\"stage\":\"ResponseComplete\",\"verb\":\"create\",\"requestURI\":"
    "\"/api/v1/namespaces/web/pods/p/exec?command=sh&command=-c&container=app\",\"user\":{"
    "\"username\":\"alice\",\"groups\":[\"dev\",\"system:authenticated\"]},\"sourceIPs\":["
    "\"10.0.0.1\"],\"userAgent\":\"kubectl/v1.29\",\"objectRef\":{\"resource\":\"pods\","
    "\"namespace\":\"web\",\"name\":\"p\"},\"responseStatus\":{\"code\":201},\"requestObject\":"
    "{\"metadata\":{\"name\":\"p\",\"labels\":{\"a/b\":\"x\"}},\"spec\":{\"hostNetwork\":true,"
    "\"containers\":[{\"name\":\"c0\",\"image\":\"nginx\",\"securityContext\":{\"privileged\":"
    "true}}],\"volumes\":[{\"name\":\"h\",\"hostPath\":{\"path\":\"/etc\"}}]}},"
    "\"stageTimestamp\":\"2024-05-01T00:00:00.000001Z\",\"annotations\":{"
    "\"authorization.k8s.io/decision\":\"allow\"}}\n"
    "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\","
    "\"auditID\":\"f2\",\"stage\":\"ResponseComplete\",\"verb\":\"get\",\"requestURI\":"
    "\"/api/v1/namespaces/web/secrets/s\",\"user\":{\"username\":\"alice\"},\"sourceIPs\":["
    "\"10.0.0.2\"],\"objectRef\":{\"resource\":\"secrets\",\"namespace\":\"web\",\"name\":"
    "\"s\"},\"responseStatus\":{\"code\":200},\"stageTimestamp\":"
    "\"2024-05-01T00:00:01.000001Z\"}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kt_log_level = KT_LOG_ERROR; /* the loader's notes on skipped rules, once per input */
    char *copy = malloc(size > 0 ? size : 1); /* exactly size bytes: over-reads are caught */
    struct kt_ruleset *rs = NULL;
    struct kt_batch *b = NULL;
    char err[1024];
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);
    struct kt_rules_src src = {"fuzz.yaml", copy, size};
    if (kt_ruleset_load_srcs(&src, 1, NULL, &rs, err, sizeof(err)) == 0 &&
        (b = kt_batch_create()) != NULL && fuzz_batch_fill(b, EVENTS, sizeof(EVENTS) - 1) == 0) {
        fuzz_rules_run(rs, b);
    }
    kt_batch_destroy(b);
    kt_ruleset_destroy(rs);
    free(copy);
    return 0;
}
