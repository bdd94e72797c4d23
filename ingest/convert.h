/*
 * convert.h: cloud log records that are not audit Events, rewritten as audit Event JSON.
 *
 * GKE has no audit Event anywhere: each request is a Cloud Logging LogEntry whose protoPayload
 * is a google.cloud.audit.AuditLog. Azure's Log Analytics AKSAudit table returns rows with
 * PascalCase columns. Both are converted here, field by field (the mapping is in
 * ../shared/guide/cloud-shapes.md and in the README's "Managed clusters" section), into the
 * JSON text of an audit.k8s.io/v1 Event, which then goes through the decoder like any event:
 * so a converted record gives the same rows and alerts as the Event it stands for, as far as
 * the record carries the fields. The envelope layer (envelope.c) decides which records are
 * converted; these functions only convert one.
 */
#ifndef KT_INGEST_CONVERT_H
#define KT_INGEST_CONVERT_H

#include "kt.h"

/* What a conversion produced. Zero-initialise; the caller owns json (kt_buf_free). */
struct kt_convert_out {
    struct kt_buf json; /* the Event JSON text (appended to: the caller empties it) */
    char cluster[256];  /* cluster name found in the record, "" when none */
    int truncated;      /* the record says its event was cut in transport (GKE label
                           audit.k8s.io/truncated, AKS "skipped-too-big-size-object") */
    const char *skip;   /* not NULL: the record is not a Kubernetes audit record (another
                           resource type or service): static reason, nothing written */
};

/*
 * Convert the LogEntry JSON text p[0, n) (borrowed). 0: out->json holds the Event, or
 * out->skip says why the entry is not one; KT_EPARSE with a static reason in *why (not JSON,
 * no protoPayload, no methodName...); KT_ENOMEM.
 */
int kt_convert_gke(const char *p, size_t n, struct kt_convert_out *out, const char **why);

/* Convert one AKSAudit row (a JSON object with PascalCase columns); as kt_convert_gke. */
int kt_convert_aks_row(const char *p, size_t n, struct kt_convert_out *out, const char **why);

#endif
