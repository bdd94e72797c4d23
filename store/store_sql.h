/*
 * store_sql.h: every SQL statement of the store, by name (fluent-bit's tail_sql.h idea).
 *
 * The schema carries its own comments (SQL "--" lines), so `.schema events` in sqlite3 shows
 * an analyst what each column holds. Migrations are a list in store.c: entry i takes
 * PRAGMA user_version from i to i + 1.
 */
#ifndef KT_STORE_SQL_H
#define KT_STORE_SQL_H

/* clang-format off */

/* Connection settings. The writer does not checkpoint the WAL itself: a checkpointer thread on
 * its own connection does, so the fsyncs of a checkpoint never stall the writer. */
#define SQL_PRAGMAS                                                                                \
    "PRAGMA journal_mode=WAL;"                                                                     \
    "PRAGMA temp_store=MEMORY;"                                                                    \
    "PRAGMA cache_size=-16384;"                                                                    \
    "PRAGMA wal_autocheckpoint=0;"

/*
 * Version 1: the dictionary, events, raw JSON, alerts, rejects, file checkpoints, views.
 *
 * Events are unique on (ts, audit_id, stage). The key of an event is (auditID, stage); a
 * duplicate (a replay, a webhook retry, Kafka's at-least-once) is the same event and carries
 * the same stageTimestamp, so leading with ts dedupes exactly the same and keeps inserts in
 * time order: a unique index led by random UUIDs rewrites pages all over the index on every
 * batch and, measured at a million events, halved the insert rate. The same index serves
 * queries by time.
 */
#define SQL_SCHEMA_V1                                                                              \
    "CREATE TABLE strings (\n"                                                                     \
    "  -- the dictionary: every repeated string (user, verb, resource...) stored once\n"          \
    "  id INTEGER PRIMARY KEY,\n"                                                                  \
    "  s  TEXT NOT NULL UNIQUE);\n"                                                                \
    "CREATE TABLE events (\n"                                                                      \
    "  -- one row per audit event and stage; INTEGER string columns are strings.id\n"             \
    "  id           INTEGER PRIMARY KEY,\n"                                                        \
    "  ts           INTEGER NOT NULL, -- stageTimestamp, microseconds since the epoch (UTC)\n"    \
    "  received_ts  INTEGER,          -- requestReceivedTimestamp, microseconds\n"                \
    "  audit_id     TEXT NOT NULL,    -- auditID\n"                                                \
    "  stage        INTEGER,          -- RequestReceived, ResponseStarted, ResponseComplete, Panic\n" \
    "  level        INTEGER,          -- Metadata, Request, RequestResponse\n"                    \
    "  verb         INTEGER,\n"                                                                    \
    "  user         INTEGER,          -- user.username\n"                                          \
    "  groups       INTEGER,          -- user.groups joined with ','\n"                            \
    "  imp_user     INTEGER,          -- impersonatedUser.username\n"                              \
    "  source_ips   INTEGER,          -- sourceIPs joined with ','\n"                              \
    "  user_agent   INTEGER,\n"                                                                    \
    "  resource     INTEGER,          -- objectRef.resource\n"                                     \
    "  subresource  INTEGER,\n"                                                                    \
    "  namespace    INTEGER,\n"                                                                    \
    "  name         INTEGER,\n"                                                                    \
    "  api_group    INTEGER,\n"                                                                    \
    "  api_version  INTEGER,\n"                                                                    \
    "  code         INTEGER,          -- responseStatus.code (HTTP status)\n"                      \
    "  decision     INTEGER,          -- annotation authorization.k8s.io/decision\n"               \
    "  authz_reason INTEGER,          -- annotation authorization.k8s.io/reason\n"                 \
    "  request_uri  TEXT,\n"                                                                       \
    "  cluster      INTEGER,          -- the source's cluster tag, else annotation cluster_name\n" \
    "  origin       INTEGER,          -- where it was read: a file path, '-' for stdin\n"         \
    "  offset       INTEGER,          -- byte offset of the event in its origin\n"                \
    "  UNIQUE (ts, audit_id, stage));\n"                                                           \
    "CREATE INDEX events_user_ts ON events (user, ts);\n"                                          \
    "CREATE INDEX events_resource_verb_ts ON events (resource, verb, ts);\n"                       \
    "CREATE TABLE raw (\n"                                                                         \
    "  -- the event JSON as received: flagged events, or all with --keep-raw all\n"               \
    "  event_id INTEGER PRIMARY KEY REFERENCES events (id),\n"                                     \
    "  json     TEXT NOT NULL);\n"                                                                 \
    "CREATE TABLE alerts (\n"                                                                      \
    "  -- rule matches; the same (audit_id, stage, rule) is never stored twice\n"                 \
    "  id       INTEGER PRIMARY KEY,\n"                                                            \
    "  event_id INTEGER REFERENCES events (id),\n"                                                 \
    "  ts       INTEGER NOT NULL, -- the event's stageTimestamp, microseconds\n"                   \
    "  audit_id TEXT NOT NULL,\n"                                                                  \
    "  stage    INTEGER,          -- strings.id\n"                                                 \
    "  rule     TEXT NOT NULL,\n"                                                                  \
    "  priority INTEGER NOT NULL, -- 0 emergency, 1 alert, 2 critical, 3 error, 4 warning, 5 notice, 6 info, 7 debug\n" \
    "  tags     TEXT,             -- comma-separated\n"                                            \
    "  output   TEXT,\n"                                                                           \
    "  fields   TEXT,             -- output fields, a JSON object\n"                               \
    "  UNIQUE (audit_id, stage, rule));\n"                                                         \
    "CREATE INDEX alerts_ts ON alerts (ts);\n"                                                     \
    "CREATE INDEX alerts_rule_ts ON alerts (rule, ts);\n"                                          \
    "CREATE TABLE rejects (\n"                                                                     \
    "  -- input that could not be stored as an event, with where it was and why\n"                \
    "  id          INTEGER PRIMARY KEY,\n"                                                         \
    "  ingested_at INTEGER NOT NULL, -- wall clock, microseconds\n"                                \
    "  origin      TEXT,\n"                                                                        \
    "  offset      INTEGER,          -- byte offset in origin\n"                                   \
    "  line        INTEGER,          -- 1-based line in origin\n"                                  \
    "  reason      TEXT NOT NULL,\n"                                                               \
    "  text        TEXT,             -- the first KB of the input\n"                               \
    "  UNIQUE (origin, offset, reason));\n"                                                        \
    "CREATE TABLE ckpt_file (\n"                                                                   \
    "  -- where each file stands, by fingerprint (a hash of its first KB)\n"                      \
    "  fingerprint INTEGER PRIMARY KEY,\n"                                                         \
    "  path        TEXT,\n"                                                                        \
    "  offset      INTEGER NOT NULL, -- resume here\n"                                             \
    "  mode        INTEGER NOT NULL, -- framer state at offset: 0 top, 1 array, 2 EventList items\n" \
    "  done        INTEGER NOT NULL, -- read to its end\n"                                         \
    "  updated_at  INTEGER NOT NULL);\n"                                                           \
    SQL_VIEWS_V1

/* ISO-8601 UTC text with microseconds from a microseconds column. */
#define SQL_TIME(col)                                                                              \
    "strftime('%Y-%m-%dT%H:%M:%S', " col " / 1000000, 'unixepoch') || '.' || "                    \
    "substr('000000' || (" col " % 1000000), -6) || 'Z'"

/* The views join the dictionary with LEFT JOINs (not subqueries), so that a filter such as
 * user = 'alice' is simplified to an inner join and can use the (user, ts) index. */
#define SQL_DICT(col) "  " col ".s AS " col ",\n"
#define SQL_JOIN(col) "  LEFT JOIN strings " col " ON " col ".id = e." col "\n"

#define SQL_VIEWS_V1                                                                               \
    "CREATE VIEW v_events AS SELECT\n"                                                             \
    "  e.id AS id, " SQL_TIME("e.ts") " AS time, e.ts AS ts, e.received_ts AS received_ts,\n"     \
    "  e.audit_id AS audit_id,\n"                                                                  \
    SQL_DICT("stage") SQL_DICT("level") SQL_DICT("verb") SQL_DICT("user") SQL_DICT("groups")       \
    SQL_DICT("imp_user") SQL_DICT("source_ips") SQL_DICT("user_agent") SQL_DICT("resource")        \
    SQL_DICT("subresource") SQL_DICT("namespace") SQL_DICT("name") SQL_DICT("api_group")           \
    SQL_DICT("api_version")                                                                        \
    "  e.code AS code,\n"                                                                          \
    SQL_DICT("decision") SQL_DICT("authz_reason")                                                  \
    "  e.request_uri AS request_uri,\n"                                                            \
    SQL_DICT("cluster") SQL_DICT("origin")                                                         \
    "  e.offset AS offset,\n"                                                                      \
    "  raw.json AS raw\n"                                                                          \
    "FROM events e\n"                                                                              \
    SQL_JOIN("stage") SQL_JOIN("level") SQL_JOIN("verb") SQL_JOIN("user") SQL_JOIN("groups")       \
    SQL_JOIN("imp_user") SQL_JOIN("source_ips") SQL_JOIN("user_agent") SQL_JOIN("resource")        \
    SQL_JOIN("subresource") SQL_JOIN("namespace") SQL_JOIN("name") SQL_JOIN("api_group")           \
    SQL_JOIN("api_version") SQL_JOIN("decision") SQL_JOIN("authz_reason") SQL_JOIN("cluster")      \
    SQL_JOIN("origin")                                                                             \
    "  LEFT JOIN raw ON raw.event_id = e.id;\n"                                                    \
    "CREATE VIEW v_alerts AS SELECT\n"                                                             \
    "  a.id AS id, " SQL_TIME("a.ts") " AS time, a.ts AS ts, a.rule AS rule,\n"                   \
    "  CASE a.priority WHEN 0 THEN 'Emergency' WHEN 1 THEN 'Alert' WHEN 2 THEN 'Critical'\n"      \
    "    WHEN 3 THEN 'Error' WHEN 4 THEN 'Warning' WHEN 5 THEN 'Notice'\n"                         \
    "    WHEN 6 THEN 'Informational' ELSE 'Debug' END AS priority,\n"                              \
    "  a.priority AS priority_num, a.tags AS tags, a.output AS output, a.fields AS fields,\n"      \
    "  a.audit_id AS audit_id, ev.stage AS stage, ev.user AS user, ev.verb AS verb,\n"             \
    "  ev.resource AS resource, ev.namespace AS namespace, ev.name AS name,\n"                     \
    "  ev.source_ips AS source_ips, ev.user_agent AS user_agent, ev.code AS code,\n"               \
    "  ev.cluster AS cluster, a.event_id AS event_id\n"                                            \
    "FROM alerts a LEFT JOIN v_events ev ON ev.id = a.event_id;\n"                                 \
    "CREATE VIEW v_rejects AS SELECT\n"                                                            \
    "  id, " SQL_TIME("ingested_at") " AS time, origin, offset, line, reason, text\n"             \
    "FROM rejects;\n"

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
#define SQL_EVENT_ID "SELECT id FROM events WHERE ts = ?3 AND audit_id = ?1 AND stage = ?2"
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

/* clang-format on */

#endif
