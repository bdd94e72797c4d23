/*
 * event.h: one decoded audit event, as the store and the rules see it.
 *
 * Every string is a slice: into the batch's raw bytes when the JSON had no escapes, into
 * the batch arena when it had. Absent values have ptr == NULL. Bodies (requestObject,
 * responseObject) are not decoded here: the decoder records their byte spans so that the
 * rule engine can extract just the fields its loaded rules reference, only for the events
 * whose rules need them.
 */
#ifndef KT_ANALYZE_EVENT_H
#define KT_ANALYZE_EVENT_H

#include "../ingest/kt.h"

enum kt_stage {
    KT_STAGE_UNKNOWN = 0,
    KT_STAGE_REQUEST_RECEIVED = 1,
    KT_STAGE_RESPONSE_STARTED = 2,
    KT_STAGE_RESPONSE_COMPLETE = 3,
    KT_STAGE_PANIC = 4,
};

enum kt_level {
    KT_LEVEL_UNKNOWN = 0,
    KT_LEVEL_NONE = 1,
    KT_LEVEL_METADATA = 2,
    KT_LEVEL_REQUEST = 3,
    KT_LEVEL_REQUEST_RESPONSE = 4,
};

/* Scalar string fields of an event; the store's columns and the ka.* fields read these. */
enum kt_field {
    KT_F_AUDIT_ID,        /* auditID */
    KT_F_STAGE,           /* stage, as written */
    KT_F_LEVEL,           /* level, as written */
    KT_F_VERB,            /* verb */
    KT_F_URI,             /* requestURI */
    KT_F_USER,            /* user.username */
    KT_F_USER_UID,        /* user.uid */
    KT_F_IMP_USER,        /* impersonatedUser.username */
    KT_F_USER_AGENT,      /* userAgent */
    KT_F_RESOURCE,        /* objectRef.resource */
    KT_F_SUBRESOURCE,     /* objectRef.subresource */
    KT_F_NAMESPACE,       /* objectRef.namespace */
    KT_F_NAME,            /* objectRef.name; for a create without one, the body's metadata.name */
    KT_F_API_GROUP,       /* objectRef.apiGroup */
    KT_F_API_VERSION,     /* objectRef.apiVersion */
    KT_F_RESP_STATUS,     /* responseStatus.status ("Failure") */
    KT_F_RESP_REASON,     /* responseStatus.reason */
    KT_F_RESP_MESSAGE,    /* responseStatus.message */
    KT_F_DECISION,        /* annotations["authorization.k8s.io/decision"] */
    KT_F_AUTHZ_REASON,    /* annotations["authorization.k8s.io/reason"] */
    KT_F_PSS_VIOLATIONS,  /* annotations["pod-security.kubernetes.io/audit-violations"] */
    KT_F_PSS_ENFORCE,     /* annotations["pod-security.kubernetes.io/enforce-policy"] */
    KT_F_ADMISSION_FAIL,  /* annotations["validation.policy.admission.k8s.io/validation_failure"] */
    KT_F_CLUSTER_ANNOT,   /* annotations["cluster_name"], or the cluster its envelope names */
    KT_F_POD_NAME_EXTRA,  /* user.extra["authentication.kubernetes.io/pod-name"][0] */
    KT_F_NODE_NAME_EXTRA, /* user.extra["authentication.kubernetes.io/node-name"][0] */
    KT_F_STAGE_TS,        /* stageTimestamp, as written */
    KT_F_RECV_TS,         /* requestReceivedTimestamp, as written */
    KT_F_COUNT
};

/* A list of strings (groups, sourceIPs), in the batch arena. */
struct kt_strlist {
    struct kt_str *v; /* values */
    uint32_t n;       /* count */
};

struct kt_event {
    uint32_t rec;                /* index of the record in its batch (raw JSON and position) */
    uint8_t stage;               /* enum kt_stage */
    uint8_t level;               /* enum kt_level */
    uint8_t flags;               /* KT_EV_* */
    const char *reject;          /* why the record is not a usable event (static or in the arena) */
    int64_t ts_us;               /* stageTimestamp, microseconds since the epoch (UTC) */
    int64_t recv_us;             /* requestReceivedTimestamp, or 0 */
    int32_t code;                /* responseStatus.code, or 0 when absent */
    struct kt_str f[KT_F_COUNT]; /* scalar fields by enum kt_field */
    struct kt_strlist groups;    /* user.groups */
    struct kt_strlist source_ips; /* sourceIPs */
    struct kt_str req_obj;        /* requestObject JSON text (span in the raw bytes), or NULL */
    struct kt_str resp_obj;       /* responseObject JSON text, or NULL */
};

enum {
    KT_EV_KEEP_RAW = 1,  /* store the raw JSON (a rule flagged it, or --keep-raw all) */
    KT_EV_TRUNCATED = 2, /* cut short in transport: only the fields before the cut */
};

#endif
