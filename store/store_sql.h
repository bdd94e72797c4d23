/*
 * store_sql.h: every SQL statement of the store, by name (fluent-bit's tail_sql.h idea).
 *
 * Schema migrations are a list: MIGRATIONS[i] takes user_version i to i + 1.
 */
#ifndef KT_STORE_SQL_H
#define KT_STORE_SQL_H

#define SQL_PRAGMAS                                                                                \
    "PRAGMA journal_mode=WAL;"                                                                     \
    "PRAGMA temp_store=MEMORY;"                                                                    \
    "PRAGMA cache_size=-65536;" /* 64 MiB page cache */                                            \
    "PRAGMA wal_autocheckpoint=10000;"

/* Version 1: the dictionary, events, raw JSON, alerts, rejects, file checkpoints, views. */
#define SQL_SCHEMA_V1                                                                              \
    /* the dictionary: every repeated string once */                                               \
    "CREATE TABLE strings ("                                                                       \
    "  id INTEGER PRIMARY KEY,"                                                                    \
    "  s  TEXT NOT NULL UNIQUE);" /* one row per (auditID, stage); string columns are strings.id   \
                                   */                                                              \
    "CREATE TABLE events ("                                                                        \
    "  id          INTEGER PRIMARY KEY,"                                                           \
    "  ts          INTEGER NOT NULL," /* stageTimestamp, microseconds since the epoch (UTC) */     \
    "  received_ts INTEGER,"          /* requestReceivedTimestamp, microseconds */                 \
    "  audit_id    TEXT NOT NULL,"                                                                 \
    "  stage       INTEGER,"                                                                       \
    "  level       INTEGER,"                                                                       \
    "  verb        INTEGER,"                                                                       \
    "  user        INTEGER," /* user.username */                                                   \
    "  groups      INTEGER," /* user.groups joined with ',' */                                     \
    "  imp_user    INTEGER," /* impersonatedUser.username */                                       \
    "  source_ips  INTEGER," /* sourceIPs joined with ',' */                                       \
    "  user_agent  INTEGER,"                                                                       \
    "  resource    INTEGER,"                                                                       \
    "  subresource INTEGER,"                                                                       \
    "  namespace   INTEGER,"                                                                       \
    "  name        INTEGER,"                                                                       \
    "  api_group   INTEGER,"                                                                       \
    "  api_version INTEGER,"                                                                       \
    "  code        INTEGER,"  /* responseStatus.code */                                            \
    "  decision    INTEGER,"  /* authorization.k8s.io/decision */                                  \
    "  authz_reason INTEGER," /* authorization.k8s.io/reason */                                    \
    "  request_uri TEXT,"                                                                          \
    "  cluster     INTEGER," /* source's cluster tag, else cluster_name annotation */              \
    "  origin      INTEGER," /* where it was read: file path, '-' */                               \
    "  offset      INTEGER," /* byte offset of the event in its origin */                          \
    "  UNIQUE (audit_id, stage));"                                                                 \
    "CREATE INDEX events_ts ON events (ts);"                                                       \
    "CREATE INDEX events_user_ts ON events (user, ts);"                                            \
    "CREATE INDEX events_resource_verb_ts ON events (resource, verb, ts);" /* the event JSON as    \
                                                                              received: flagged    \
                                                                              events, or all with  \
                                                                              --keep-raw all */    \
    "CREATE TABLE raw ("                                                                           \
    "  event_id INTEGER PRIMARY KEY REFERENCES events (id),"                                       \
    "  json     TEXT NOT NULL);"                                                                   \
    "CREATE TABLE alerts ("                                                                        \
    "  id       INTEGER PRIMARY KEY,"                                                              \
    "  event_id INTEGER REFERENCES events (id),"                                                   \
    "  ts       INTEGER NOT NULL," /* the event's stageTimestamp, microseconds */                  \
    "  audit_id TEXT NOT NULL,"                                                                    \
    "  stage    INTEGER," /* strings.id */                                                         \
    "  rule     TEXT NOT NULL,"                                                                    \
    "  priority INTEGER NOT NULL," /* 0 emergency ... 7 debug */                                   \
    "  tags     TEXT,"             /* comma-separated */                                           \
    "  output   TEXT,"                                                                             \
    "  fields   TEXT," /* output fields, a JSON object */                                          \
    "  UNIQUE (audit_id, stage, rule));"                                                           \
    "CREATE INDEX alerts_ts ON alerts (ts);"                                                       \
    "CREATE INDEX alerts_rule_ts ON alerts (rule, ts);" /* input that could not be stored as an    \
                                                           event */                                \
    "CREATE TABLE rejects ("                                                                       \
    "  id          INTEGER PRIMARY KEY,"                                                           \
    "  ingested_at INTEGER NOT NULL," /* wall clock, microseconds */                               \
    "  origin      TEXT,"                                                                          \
    "  offset      INTEGER,"                                                                       \
    "  line        INTEGER,"                                                                       \
    "  reason      TEXT NOT NULL,"                                                                 \
    "  text        TEXT,"                 /* the first KB of the input */                          \
    "  UNIQUE (origin, offset, reason));" /* where each file stands, by fingerprint (hash of its   \
                                             first KB) */                                          \
    "CREATE TABLE ckpt_file ("                                                                     \
    "  fingerprint INTEGER PRIMARY KEY,"                                                           \
    "  path        TEXT,"                                                                          \
    "  offset      INTEGER NOT NULL,"                                                              \
    "  mode        INTEGER NOT NULL,"                                                              \
    "  done        INTEGER NOT NULL,"                                                              \
    "  updated_at  INTEGER NOT NULL);" SQL_VIEWS_V1

#define SQL_TIME(col)                                                                              \
    "strftime('%Y-%m-%dT%H:%M:%S', " col " / 1000000, 'unixepoch') || '.' || "                     \
    "substr('000000' || (" col " % 1000000), -6) || 'Z'"

#define SQL_VIEWS_V1                                                                               \
    "CREATE VIEW v_events AS SELECT e.id AS id, " SQL_TIME(                                        \
        "e.ts") " AS time, e.ts AS ts,"                                                            \
                "  e.received_ts AS received_ts, e.audit_id AS audit_id,"                          \
                "  (SELECT s FROM strings WHERE id = e.stage) AS stage,"                           \
                "  (SELECT s FROM strings WHERE id = e.level) AS level,"                           \
                "  (SELECT s FROM strings WHERE id = e.verb) AS verb,"                             \
                "  (SELECT s FROM strings WHERE id = e.user) AS user,"                             \
                "  (SELECT s FROM strings WHERE id = e.groups) AS groups,"                         \
                "  (SELECT s FROM strings WHERE id = e.imp_user) AS imp_user,"                     \
                "  (SELECT s FROM strings WHERE id = e.source_ips) AS source_ips,"                 \
                "  (SELECT s FROM strings WHERE id = e.user_agent) AS user_agent,"                 \
                "  (SELECT s FROM strings WHERE id = e.resource) AS resource,"                     \
                "  (SELECT s FROM strings WHERE id = e.subresource) AS subresource,"               \
                "  (SELECT s FROM strings WHERE id = e.namespace) AS namespace,"                   \
                "  (SELECT s FROM strings WHERE id = e.name) AS name,"                             \
                "  (SELECT s FROM strings WHERE id = e.api_group) AS api_group,"                   \
                "  (SELECT s FROM strings WHERE id = e.api_version) AS api_version,"               \
                "  e.code AS code,"                                                                \
                "  (SELECT s FROM strings WHERE id = e.decision) AS decision,"                     \
                "  (SELECT s FROM strings WHERE id = e.authz_reason) AS authz_reason,"             \
                "  e.request_uri AS request_uri,"                                                  \
                "  (SELECT s FROM strings WHERE id = e.cluster) AS cluster,"                       \
                "  (SELECT s FROM strings WHERE id = e.origin) AS origin,"                         \
                "  e.offset AS offset,"                                                            \
                "  (SELECT json FROM raw WHERE event_id = e.id) AS raw "                           \
                "FROM events e;"                                                                   \
                "CREATE VIEW v_alerts AS SELECT a.id AS id, " SQL_TIME(                            \
                    "a.ts") " AS time, a.ts AS ts,"                                                \
                            "  a.rule AS rule,"                                                    \
                            "  CASE a.priority WHEN 0 THEN 'Emergency' WHEN 1 THEN 'Alert' WHEN "  \
                            "2 THEN 'Critical'"                                                    \
                            "    WHEN 3 THEN 'Error' WHEN 4 THEN 'Warning' WHEN 5 THEN 'Notice'"   \
                            "    WHEN 6 THEN 'Informational' ELSE 'Debug' END AS priority,"        \
                            "  a.priority AS priority_num, a.tags AS tags, a.output AS output, "   \
                            "a.fields AS fields,"                                                  \
                            "  a.audit_id AS audit_id, ev.stage AS stage, ev.user AS user, "       \
                            "ev.verb AS verb,"                                                     \
                            "  ev.resource AS resource, ev.namespace AS namespace, ev.name AS "    \
                            "name,"                                                                \
                            "  ev.source_ips AS source_ips, ev.user_agent AS user_agent, ev.code " \
                            "AS code,"                                                             \
                            "  a.event_id AS event_id "                                            \
                            "FROM alerts a LEFT JOIN v_events ev ON ev.id = a.event_id;"           \
                            "CREATE VIEW v_rejects AS SELECT id, " SQL_TIME(                       \
                                "ingested_at") " AS time, origin, offset,"                         \
                                               "  line, reason, text FROM rejects;"

#define SQL_BEGIN "BEGIN IMMEDIATE"
#define SQL_COMMIT "COMMIT"
#define SQL_ROLLBACK "ROLLBACK"

#define SQL_DICT_GET "SELECT id FROM strings WHERE s = ?1"
#define SQL_DICT_ADD "INSERT INTO strings (s) VALUES (?1)"

#define SQL_EVENT_INSERT                                                                           \
    "INSERT OR IGNORE INTO events (ts, received_ts, audit_id, stage, level, verb, user, groups,"   \
    " imp_user, source_ips, user_agent, resource, subresource, namespace, name, api_group,"        \
    " api_version, code, decision, authz_reason, request_uri, cluster, origin, offset)"            \
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"    \
    " ?19, ?20, ?21, ?22, ?23, ?24)"
#define SQL_EVENT_ID "SELECT id FROM events WHERE audit_id = ?1 AND stage = ?2"
#define SQL_RAW_INSERT "INSERT OR IGNORE INTO raw (event_id, json) VALUES (?1, ?2)"
#define SQL_ALERT_INSERT                                                                           \
    "INSERT OR IGNORE INTO alerts (event_id, ts, audit_id, stage, rule, priority, tags, output,"   \
    " fields) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
#define SQL_REJECT_INSERT                                                                          \
    "INSERT OR IGNORE INTO rejects (ingested_at, origin, offset, line, reason, text)"              \
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
#define SQL_CKPT_UPSERT                                                                            \
    "INSERT INTO ckpt_file (fingerprint, path, offset, mode, done, updated_at)"                    \
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (fingerprint) DO UPDATE SET"                     \
    " path = excluded.path, offset = excluded.offset, mode = excluded.mode,"                       \
    " done = excluded.done, updated_at = excluded.updated_at"
#define SQL_CKPT_GET "SELECT offset, mode, done FROM ckpt_file WHERE fingerprint = ?1"

#endif
