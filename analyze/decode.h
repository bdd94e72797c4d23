/*
 * decode.h: turn framed JSON values into struct kt_event, with yajl's streaming callbacks.
 *
 * One decoder per thread (it keeps a yajl handle and scratch state). It accepts every shape
 * a single event arrives in (with or without kind/apiVersion, audit.k8s.io/v1 or v1beta1);
 * containers (EventList, arrays) are unwrapped by the framer before this point.
 */
#ifndef KT_ANALYZE_DECODE_H
#define KT_ANALYZE_DECODE_H

#include "../ingest/batch.h"
#include "event.h"

struct kt_decoder;

/* Create a decoder; NULL on allocation failure. */
struct kt_decoder *kt_decoder_create(void);
void kt_decoder_destroy(struct kt_decoder *d);

/*
 * Decode one JSON text into ev. Borrowed: json must outlive ev (the batch's bytes); escaped
 * strings are copied into arena. Returns 0, or KT_EPARSE with ev->reject set to a reason
 * ("invalid JSON: ...", "truncated JSON", "not an audit event ...", "missing auditID",
 * "missing stage", "missing stageTimestamp", "bad stageTimestamp"): static or in the arena,
 * valid as long as the batch; a rejected event's other fields may be partly filled.
 * KT_ENOMEM when the arena cannot grow. A create whose objectRef has no name (generateName)
 * and no subresource gets the created object's name in ev->f[KT_F_NAME]: the
 * responseObject's metadata.name, else the requestObject's.
 */
int kt_decode_event(struct kt_decoder *d, const char *json, size_t len, struct kt_arena *arena,
                    struct kt_event *ev);

/*
 * Decode every record of b into b->events (allocated to match b->nrecs). Records the framer
 * rejected and values that fail to decode get ev->reject set; they are counted, not fatal.
 * Returns 0 or KT_ENOMEM.
 */
int kt_decode_batch(struct kt_decoder *d, struct kt_batch *b);

#endif
