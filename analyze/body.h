/*
 * body.h: fields read from an event's bodies (requestObject, responseObject).
 *
 * The rule compiler asks kt_body_field_lookup() for every field name it does not own
 * (ka.req.*, ka.resp.*, ka.target.pod.name, the Pod Security Standards fields) and tells an
 * extractor which ones the loaded rules reference (kt_body_want). Per event, kt_body_bind()
 * is cheap; the first kt_body_get() parses the body once with yajl callbacks, collecting only
 * the wanted fields, and later gets read the results. For patch requests, pod and service
 * fields come from the responseObject (the request body is a patch document). Pod fields
 * also apply to workload templates (deployments, daemonsets, statefulsets, replicasets, jobs:
 * spec.template.spec; cronjobs: spec.jobTemplate.spec.template.spec).
 */
#ifndef KT_ANALYZE_BODY_H
#define KT_ANALYZE_BODY_H

#include "event.h"
#include "value.h"

struct kt_body;

/* Resolve a field name ("ka.req.pod.containers.image"). Returns its id (>= 0) or KT_ENOENT.
 * *takes_arg is set when the field takes a [ARG] (ka.req.volume.hostpath[/etc]). */
int kt_body_field_lookup(const char *name, size_t len, int *takes_arg);
/* Canonical name of a field id, for messages. */
const char *kt_body_field_name(int id);

/* A per-thread extractor; NULL on allocation failure. */
struct kt_body *kt_body_create(void);
void kt_body_destroy(struct kt_body *bx);
/* Declare that loaded rules reference field id (call at compile time, any number of times). */
void kt_body_want(struct kt_body *bx, int id);
/* Start a new event: borrowed ev and arena must outlive the gets. */
void kt_body_bind(struct kt_body *bx, const struct kt_event *ev, struct kt_arena *arena);
/* Value of field id (arg for [ARG] fields, else NULL) for the bound event. 0, or KT_ENOMEM. */
int kt_body_get(struct kt_body *bx, int id, struct kt_str arg, struct kt_value *out);

#endif
