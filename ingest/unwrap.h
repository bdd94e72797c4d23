/*
 * unwrap.h: find the audit events in one message of a log shipper (a Kafka message).
 *
 * Shippers do not send bare events only. Fluent Bit and Vector wrap each log line in a record
 * ({"log": "<the event as a JSON string>", "@timestamp": ...}, {"message": "..."}), some merge
 * the event into the record (the event with extra top-level keys), the apiserver's webhook
 * batches are EventLists, and Azure's diagnostic export is an envelope
 * ({"records": [{"category": "kube-audit", "properties": {"log": "<event>"}}]}). The shape is
 * detected per message, and per value inside it, without parsing events: the framer
 * (frame.h) splits the bytes into values (JSON lines, arrays, EventList items), a scan of
 * each value's top-level keys tells an event from a wrapper, and a wrapper's payload (a JSON
 * string is unescaped first) goes through the same steps again, a few levels deep at most.
 *
 * Every value found becomes a record of the batch (its bytes copied into the batch buffer):
 * events for the decoder, or rejects with a reason. Values of unknown shape are passed on as
 * records too: the decoder rejects them with its own precise reason ("not an audit event ...").
 */
#ifndef KT_INGEST_UNWRAP_H
#define KT_INGEST_UNWRAP_H

#include "batch.h"

struct kt_unwrapper;

/* What one message yielded. */
struct kt_unwrap_counts {
    size_t records; /* records appended to the batch (events and rejects) */
    size_t rejects; /* of which rejects (reason set) */
    size_t skipped; /* envelope records of other categories (AKS kube-apiserver logs), dropped */
};

/* An unwrapper for values up to max_event bytes (0: 16 MiB); NULL on allocation failure. */
struct kt_unwrapper *kt_unwrapper_create(size_t max_event);
void kt_unwrapper_destroy(struct kt_unwrapper *u);

/*
 * Append the records found in msg[0, len) (borrowed) to b, each with origin and off (the
 * message's position: Kafka offset) and line 0. counts, when not NULL, receives what was
 * found. An empty message yields one reject. Returns 0, or KT_ENOMEM (the batch may then hold
 * part of the message's records: the caller discards the batch).
 */
int kt_unwrap(struct kt_unwrapper *u, const char *msg, size_t len, struct kt_batch *b,
              uint32_t origin, uint64_t off, struct kt_unwrap_counts *counts);

#endif
