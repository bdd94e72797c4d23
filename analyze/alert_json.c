/*
 * alert_json.c: an alert as Falco's JSON alert, the one shape ktrail hands alerts on in
 * (stdout with --alerts json, HTTP receivers with --alerts-http), so what a receiver gets is
 * what a user saw.
 */
#include <string.h>

#include "rules.h"

#define PUT_LIT(b, lit) kt_buf_append((b), (lit), sizeof(lit) - 1)

/* tags "a,b,c" as a JSON array */
static int put_tags(struct kt_buf *b, struct kt_str tags)
{
    int rc = PUT_LIT(b, "[");
    const char *t = tags.ptr, *end = tags.ptr + tags.len;
    for (int first = 1; rc == 0 && t != NULL && t < end; first = 0) {
        const char *c = memchr(t, ',', (size_t)(end - t));
        size_t n = c != NULL ? (size_t)(c - t) : (size_t)(end - t);
        if (!first) {
            rc = PUT_LIT(b, ",");
        }
        rc = rc != 0 ? rc : kt_buf_json_str(b, t, n);
        t += n + (c != NULL);
    }
    return rc != 0 ? rc : PUT_LIT(b, "]");
}

int kt_alert_json(struct kt_buf *b, const struct kt_alert_doc *d)
{
    const char *pn = kt_priority_name(d->priority);
    int rc = 0;
    rc |= PUT_LIT(b, "{\"time\":");
    rc |= kt_buf_json_str(b, d->time.ptr, d->time.len);
    rc |= PUT_LIT(b, ",\"rule\":");
    rc |= kt_buf_json_str(b, d->rule, strlen(d->rule));
    rc |= PUT_LIT(b, ",\"priority\":");
    rc |= kt_buf_json_str(b, pn, strlen(pn));
    rc |= PUT_LIT(b, ",\"output\":");
    rc |= kt_buf_json_str(b, d->output.ptr, d->output.len);
    rc |= PUT_LIT(b, ",\"output_fields\":");
    rc |= d->fields.len > 0 ? kt_buf_append(b, d->fields.ptr, d->fields.len) : PUT_LIT(b, "{}");
    rc |= PUT_LIT(b, ",\"tags\":");
    rc |= put_tags(b, d->tags);
    rc |= PUT_LIT(b, ",\"source\":\"k8s_audit\"");
    if (d->hostname != NULL) {
        rc |= PUT_LIT(b, ",\"hostname\":");
        rc |= kt_buf_json_str(b, d->hostname, strlen(d->hostname));
    }
    rc |= PUT_LIT(b, ",\"audit_id\":");
    rc |= kt_buf_json_str(b, d->audit_id.ptr, d->audit_id.len);
    rc |= PUT_LIT(b, ",\"stage\":");
    rc |= kt_buf_json_str(b, d->stage.ptr, d->stage.len);
    rc |= PUT_LIT(b, "}");
    return rc != 0 ? KT_ENOMEM : 0;
}
