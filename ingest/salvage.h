/*
 * salvage.h: an audit event cut short by its transport, repaired into valid JSON.
 *
 * Azure cuts properties.log at 16 KiB, CloudWatch ends oversized messages in "[Truncated...]":
 * what arrives is the first part of an Event's JSON, whose leading fields (kind, level,
 * auditID, stage, requestURI, verb, user, sourceIPs, objectRef...) are intact. Salvage keeps
 * every member that was complete before the cut, at every depth, closes the open containers,
 * and, when the cut took the timestamps (they come after the bodies), adds stageTimestamp
 * and requestReceivedTimestamp from the envelope's time. The result is an Event the decoder
 * reads like any other; the caller marks it truncated.
 */
#ifndef KT_INGEST_SALVAGE_H
#define KT_INGEST_SALVAGE_H

#include "kt.h"

/*
 * Repair the cut JSON object text p[0, n) (borrowed) into out (appended to). time_us is the
 * envelope's time of the event (microseconds since the epoch), used for missing timestamps,
 * or 0 when there is none. Returns 0; KT_EPARSE when nothing can be kept (the text does not
 * start with an object, or is invalid before the cut); KT_ENOMEM.
 */
int kt_salvage_event(const char *p, size_t n, int64_t time_us, struct kt_buf *out);

#endif
