/*
 * store_sql.h: every SQL statement of the store, by name (fluent-bit's tail_sql.h idea).
 *
 * The schema carries its own comments (SQL "--" lines are kept in sqlite_schema), so
 * `sqlite3 ktrail.db '.schema events'` tells an analyst what each column holds. A new database
 * is made by SQL_SCHEMA, at the current version; migrations are a list in store.c: entry
 * N - 1 takes PRAGMA user_version from N - 1 to N (N >= 2), in one transaction. SQL_SCHEMA_V1
 * makes the version 1 database the tests migrate. PRAGMA application_id marks the file as
 * ktrail's, so a database of another program is refused by name, whatever its user_version
 * says.
 */
#ifndef KT_STORE_STORE_SQL_H
#define KT_STORE_STORE_SQL_H

/* clang-format off */

/* "ktrl" in ASCII: PRAGMA application_id of every ktrail database. */
#define SQL_APP_ID 0x6b74726c

/* ---- opening: identify the file, then tune the connection ---- */
/* Pragmas that end in '=' take an integer appended by the code. */

#define SQL_GET_USER_VERSION "PRAGMA user_version"
#define SQL_GET_APP_ID "PRAGMA application_id"
#define SQL_COUNT_OBJECTS "SELECT count(*) FROM sqlite_schema"
#define SQL_SET_USER_VERSION "PRAGMA user_version="
#define SQL_SET_APP_ID "PRAGMA application_id="

/* page_size only takes effect on a new, empty database, so it is set before anything else. */
#define SQL_PAGE_SIZE "PRAGMA page_size="
#define SQL_WAL "PRAGMA journal_mode=WAL"
#define SQL_SYNC_NORMAL "PRAGMA synchronous=NORMAL"
#define SQL_SYNC_FULL "PRAGMA synchronous=FULL"
/* negative: KiB, not pages */
#define SQL_CACHE_SIZE_KIB "PRAGMA cache_size=-"
#define SQL_TEMP_STORE "PRAGMA temp_store=MEMORY"
#define SQL_MMAP_SIZE "PRAGMA mmap_size="
/* the store's own checkpointer replaces SQLite's automatic one (see store.c) */
#define SQL_NO_AUTOCKPT "PRAGMA wal_autocheckpoint=0"
/* bytes the WAL file is truncated back to when it restarts */
#define SQL_JOURNAL_SIZE_LIMIT "PRAGMA journal_size_limit="
#define SQL_GET_PAGE_SIZE "PRAGMA page_size"
/* answers with the limit in force, never below the file's current page count */
#define SQL_MAX_PAGE_COUNT "PRAGMA max_page_count="

/* ---- start-up and checking ---- */

/* Opening proves the database writable with a write of page 1 that changes nothing (the
 * version it has), so a read-only file, directory or filesystem fails at start, not at the
 * first batch. The version is appended. */
#define SQL_PROBE_WRITE "PRAGMA user_version="
/* at most 100 problems, one a row; a single row "ok" when sound */
#define SQL_INTEGRITY_CHECK "PRAGMA integrity_check(100)"

/* ---- schema version 1 ---- */

/*
 * Events are unique on (ts, audit_id, stage), not on (audit_id, stage) alone, for two reasons.
 * Safety: the apiserver takes the auditID from the client's Audit-ID request header when one
 * is sent (k8s.io/apiserver WithAuditInit; aggregated apiservers get it that way on purpose),
 * so a unique key of (audit_id, stage) would let any client make its requests vanish as
 * "duplicates" of an earlier one by reusing that request's ID. Speed: a replayed event (log
 * reread, webhook retry, Kafka redelivery) is the same event with the same stageTimestamp, so
 * leading with ts dedupes replays exactly while keeping the index appended in time order; a
 * unique index led by random UUIDs dirties a different page for nearly every insert (measured
 * in store.c's header comment). The same index answers time-range queries, so events(ts)
 * needs no index of its own. Alerts follow the event row: unique on (event_id, rule).
 *
 * The stage column is 0 (no such strings row) when an event has no stage, never NULL: NULLs
 * are distinct in a UNIQUE constraint, so a NULL stage would defeat deduplication.
 */
/* The tables of version 1, in pieces that the current schema (SQL_SCHEMA) shares. */
#define SQL_STRINGS                                                                                \
    "CREATE TABLE strings (\n"                                                                     \
    "  -- the dictionary: every repeated string (user, verb, resource...) stored once\n"           \
    "  id INTEGER PRIMARY KEY,\n"                                                                  \
    "  s  TEXT NOT NULL UNIQUE -- the string\n"                                                    \
    ");\n"
#define SQL_EVENTS_INDEXES                                                                         \
    "CREATE INDEX events_user_ts ON events (user, ts);\n"                                          \
    "CREATE INDEX events_resource_verb_ts ON events (resource, verb, ts);\n"
#define SQL_ALERTS_INDEXES                                                                         \
    "CREATE INDEX alerts_ts ON alerts (ts);\n"                                                     \
    "CREATE INDEX alerts_rule_ts ON alerts (rule, ts);\n"
#define SQL_REJECTS                                                                                \
    "CREATE TABLE rejects (\n"                                                                     \
    "  -- input that could not be stored as an event, with where it was and why\n"                 \
    "  id          INTEGER PRIMARY KEY,\n"                                                         \
    "  ingested_at INTEGER NOT NULL, -- wall clock when stored, microseconds since the epoch\n"    \
    "  origin      TEXT,             -- file path, '-' for stdin\n"                                \
    "  offset      INTEGER,          -- byte offset in origin (uncompressed for .gz)\n"            \
    "  line        INTEGER,          -- 1-based line in origin; NULL when lines mean nothing\n"    \
    "  reason      TEXT NOT NULL,    -- why it was rejected\n"                                     \
    "  text        TEXT,             -- the first 1024 bytes of the input (cut at a UTF-8 boundary)\n" \
    "  UNIQUE (origin, offset, reason));\n"
#define SQL_CKPT_FILE_COLUMNS_V1                                                                   \
    "  -- where each input file stands, written in the transaction of the batch it ends\n"         \
    "  fingerprint INTEGER PRIMARY KEY, -- hash of the file's first bytes (uint64 bits as int64)\n" \
    "  path        TEXT,             -- path it was last read from\n"                              \
    "  offset      INTEGER NOT NULL, -- resume here\n"                                             \
    "  mode        INTEGER NOT NULL, -- framer state at offset: 0 top, 1 array, 2 EventList items\n" \
    "  done        INTEGER NOT NULL, -- 1 when read to its end and not followed\n"
#define SQL_SCHEMA_V1                                                                              \
    SQL_STRINGS                                                                                    \
    "CREATE TABLE events (\n"                                                                      \
    "  -- one row per audit event and stage. INTEGER columns marked 'dict' hold strings.id,\n"     \
    "  -- NULL when the event had no such value; query v_events to see the text\n"                 \
    "  id           INTEGER PRIMARY KEY,\n"                                                        \
    "  ts           INTEGER NOT NULL, -- stageTimestamp, microseconds since the epoch (UTC)\n"     \
    "  received_ts  INTEGER,          -- requestReceivedTimestamp, microseconds; NULL if absent\n" \
    "  audit_id     TEXT NOT NULL,    -- auditID (client-settable through the Audit-ID header)\n"  \
    "  stage        INTEGER NOT NULL, -- dict: RequestReceived, ResponseStarted, ResponseComplete, Panic; 0 if absent\n" \
    "  level        INTEGER,          -- dict: None, Metadata, Request, RequestResponse\n"         \
    "  verb         INTEGER,          -- dict: get, list, watch, create, update, patch, delete...\n" \
    "  user         INTEGER,          -- dict: user.username\n"                                    \
    "  groups       INTEGER,          -- dict: user.groups joined with ','\n"                      \
    "  imp_user     INTEGER,          -- dict: impersonatedUser.username\n"                        \
    "  source_ips   INTEGER,          -- dict: sourceIPs joined with ','; the last one is the apiserver's peer\n" \
    "  user_agent   INTEGER,          -- dict: userAgent (client-supplied)\n"                      \
    "  resource     INTEGER,          -- dict: objectRef.resource\n"                               \
    "  subresource  INTEGER,          -- dict: objectRef.subresource (exec, log, status...)\n"     \
    "  namespace    INTEGER,          -- dict: objectRef.namespace\n"                              \
    "  name         INTEGER,          -- dict: objectRef.name\n"                                   \
    "  api_group    INTEGER,          -- dict: objectRef.apiGroup ('' or absent: core)\n"          \
    "  api_version  INTEGER,          -- dict: objectRef.apiVersion\n"                             \
    "  code         INTEGER,          -- responseStatus.code (HTTP status); NULL if absent\n"      \
    "  decision     INTEGER,          -- dict: annotation authorization.k8s.io/decision\n"         \
    "  authz_reason INTEGER,          -- dict: annotation authorization.k8s.io/reason\n"           \
    "  request_uri  TEXT,             -- requestURI as sent, query string included\n"              \
    "  cluster      INTEGER,          -- dict: the source's cluster tag, else annotation cluster_name\n" \
    "  origin       INTEGER,          -- dict: where it was read: a file path, '-' for stdin\n"    \
    "  offset       INTEGER,          -- byte offset of the event in its origin\n"                 \
    "  UNIQUE (ts, audit_id, stage));\n"                                                           \
    SQL_EVENTS_INDEXES                                                                             \
    "CREATE TABLE raw (\n"                                                                         \
    "  -- the event JSON as received: events flagged by a rule, events with alerts,\n"             \
    "  -- or every event with --keep-raw all\n"                                                    \
    "  event_id INTEGER PRIMARY KEY REFERENCES events (id),\n"                                     \
    "  json     TEXT NOT NULL);\n"                                                                 \
    "CREATE TABLE alerts (\n"                                                                      \
    "  -- rule matches; a rule fires at most once per event row, whatever is replayed\n"           \
    "  id       INTEGER PRIMARY KEY,\n"                                                            \
    "  event_id INTEGER NOT NULL REFERENCES events (id),\n"                                        \
    "  ts       INTEGER NOT NULL, -- the event's stageTimestamp, microseconds\n"                   \
    "  audit_id TEXT NOT NULL,    -- the event's auditID\n"                                        \
    "  stage    INTEGER NOT NULL, -- dict: the event's stage; 0 if absent\n"                       \
    "  rule     TEXT NOT NULL,    -- rule name\n"                                                  \
    "  priority INTEGER NOT NULL, -- 0 emergency, 1 alert, 2 critical, 3 error, 4 warning, 5 notice, 6 informational, 7 debug\n" \
    "  tags     TEXT,             -- the rule's tags joined with ','\n"                            \
    "  output   TEXT,             -- the rule's output, rendered\n"                                \
    "  fields   TEXT,             -- the output fields, a JSON object\n"                           \
    "  UNIQUE (event_id, rule));\n"                                                                \
    SQL_ALERTS_INDEXES                                                                             \
    SQL_REJECTS                                                                                    \
    "CREATE TABLE ckpt_file (\n"                                                                   \
    SQL_CKPT_FILE_COLUMNS_V1                                                                       \
    "  updated_at  INTEGER NOT NULL  -- wall clock, microseconds since the epoch\n"                \
    ");\n"                                                                                         \
    SQL_VIEWS_V1

/*
 * ISO-8601 UTC text with microseconds ("2024-05-01T12:00:00.123456Z") from a column of
 * microseconds since the epoch. The modulo is floored so that times before 1970 print right.
 */
#define SQL_US(col) "((" col " % 1000000 + 1000000) % 1000000)"
#define SQL_TIME(col)                                                                              \
    "strftime('%Y-%m-%dT%H:%M:%S', (" col " - " SQL_US(col) ") / 1000000, 'unixepoch') || '.' || " \
    "substr('00000' || " SQL_US(col) ", -6) || 'Z'"

/*
 * The views resolve the dictionary with one LEFT JOIN per column, not with subqueries: a
 * filter on a resolved name (WHERE user = 'alice') lets SQLite turn that join into an inner
 * join, look 'alice' up in strings and walk the events_user_ts index. `time` is text and
 * compares correctly with ISO-8601 prefixes ("time >= '2024-05-01'"), but it is computed, so
 * such a filter scans the rows the other conditions leave; filter on `ts` (microseconds) to
 * use the time index: ts >= strftime('%s', '2024-05-01') * 1000000.
 */
#define SQL_DICT(col) "  " col ".s AS " col ",\n"
#define SQL_JOIN(col) "  LEFT JOIN strings " col " ON " col ".id = e." col "\n"

/* The v_events view, with extra columns (text of "  e.col AS col,\n" lines) before raw. */
#define SQL_V_EVENTS(extra)                                                                        \
    SQL_V_EVENTS_X("v_events", extra, "e.audit_id", "e.request_uri", "raw.json AS raw",            \
                   "  LEFT JOIN raw ON raw.event_id = e.id\n")
/* A view of events: its name, extra columns, the audit_id and request_uri columns'
 * expressions, the last column (no comma) and the joins they need. */
#define SQL_V_EVENTS_X(view, extra, auditcol, uricol, last, joins)                                 \
    "CREATE VIEW " view " AS SELECT\n"                                                             \
    "  e.id AS id,\n"                                                                              \
    "  " SQL_TIME("e.ts") " AS time,\n"                                                            \
    "  e.ts AS ts, e.received_ts AS received_ts, " auditcol " AS audit_id,\n"                      \
    SQL_DICT("stage") SQL_DICT("level") SQL_DICT("verb") SQL_DICT("user") SQL_DICT("groups")       \
    SQL_DICT("imp_user") SQL_DICT("source_ips") SQL_DICT("user_agent") SQL_DICT("resource")        \
    SQL_DICT("subresource") SQL_DICT("namespace") SQL_DICT("name") SQL_DICT("api_group")           \
    SQL_DICT("api_version")                                                                        \
    "  e.code AS code,\n"                                                                          \
    SQL_DICT("decision") SQL_DICT("authz_reason")                                                  \
    "  " uricol " AS request_uri,\n"                                                               \
    SQL_DICT("cluster") SQL_DICT("origin")                                                         \
    "  e.offset AS offset,\n"                                                                      \
    extra                                                                                          \
    "  " last "\n"                                                                                 \
    "FROM events e\n"                                                                              \
    SQL_JOIN("stage") SQL_JOIN("level") SQL_JOIN("verb") SQL_JOIN("user") SQL_JOIN("groups")       \
    SQL_JOIN("imp_user") SQL_JOIN("source_ips") SQL_JOIN("user_agent") SQL_JOIN("resource")        \
    SQL_JOIN("subresource") SQL_JOIN("namespace") SQL_JOIN("name") SQL_JOIN("api_group")           \
    SQL_JOIN("api_version") SQL_JOIN("decision") SQL_JOIN("authz_reason") SQL_JOIN("cluster")      \
    SQL_JOIN("origin")                                                                             \
    joins ";\n"

/* The v_alerts view, with extra columns (text of ", a.col AS col" items) after event_id. */
#define SQL_V_ALERTS(extra)                                                                        \
    SQL_V_ALERTS_X(extra, "a.audit_id", "a.tags", "a.output", "a.fields", "")
/* ... with the tags, output and fields columns' expressions and the joins they need. */
#define SQL_V_ALERTS_X(extra, auditcol, tagscol, outputcol, fieldscol, joins)                      \
    "CREATE VIEW v_alerts AS SELECT\n"                                                             \
    "  a.id AS id,\n"                                                                              \
    "  " SQL_TIME("a.ts") " AS time,\n"                                                            \
    "  a.ts AS ts, a.rule AS rule,\n"                                                              \
    "  CASE a.priority WHEN 0 THEN 'Emergency' WHEN 1 THEN 'Alert' WHEN 2 THEN 'Critical'\n"       \
    "    WHEN 3 THEN 'Error' WHEN 4 THEN 'Warning' WHEN 5 THEN 'Notice'\n"                         \
    "    WHEN 6 THEN 'Informational' ELSE 'Debug' END AS priority,\n"                              \
    "  a.priority AS priority_num, " tagscol " AS tags, " outputcol " AS output,\n"                \
    "  " fieldscol " AS fields,\n"                                                                 \
    "  " auditcol " AS audit_id, stage.s AS stage,\n"                                              \
    "  user.s AS user, verb.s AS verb, resource.s AS resource, namespace.s AS namespace,\n"        \
    "  name.s AS name, source_ips.s AS source_ips, user_agent.s AS user_agent,\n"                  \
    "  e.code AS code, cluster.s AS cluster, a.event_id AS event_id" extra "\n"                    \
    "FROM alerts a\n"                                                                              \
    "  LEFT JOIN events e ON e.id = a.event_id\n"                                                  \
    "  LEFT JOIN strings stage ON stage.id = a.stage\n"                                            \
    SQL_JOIN("user") SQL_JOIN("verb") SQL_JOIN("resource") SQL_JOIN("namespace") SQL_JOIN("name")  \
    SQL_JOIN("source_ips") SQL_JOIN("user_agent") SQL_JOIN("cluster")                              \
    joins ";\n"

#define SQL_V_REJECTS                                                                              \
    "CREATE VIEW v_rejects AS SELECT\n"                                                            \
    "  id, " SQL_TIME("ingested_at") " AS time,\n"                                                 \
    "  ingested_at, origin, offset, line, reason, text\n"                                          \
    "FROM rejects;\n"
#define SQL_VIEWS_V1                                                                               \
    SQL_V_EVENTS("")                                                                               \
    SQL_V_ALERTS("")                                                                               \
    SQL_V_REJECTS

/* ---- schema version 2: Kafka partition checkpoints ---- */

/*
 * One row per (topic, partition) this database has stored messages of: the offset to resume
 * at, written in the transaction of the batch it ends, so the stored events and the position
 * can never disagree (the Kafka source seeks here when a partition is assigned to it).
 */
#define SQL_SCHEMA_V2                                                                              \
    "CREATE TABLE ckpt_kafka (\n"                                                                  \
    "  -- where each Kafka partition stands, written in the transaction of the batch it ends\n"    \
    "  topic       TEXT NOT NULL,    -- topic name\n"                                              \
    "  partition   INTEGER NOT NULL, -- partition number\n"                                        \
    "  next_offset INTEGER NOT NULL, -- the next message to read: just past the last one stored\n" \
    "  updated_at  INTEGER NOT NULL, -- wall clock, microseconds since the epoch\n"                \
    "  PRIMARY KEY (topic, partition)) WITHOUT ROWID;\n"

/* ---- schema version 3: correlations (stateful detection) ---- */

/*
 * A correlation's alert is a row of alerts on the event that completed it; alert_events links
 * it to every event that contributed (the count's events, the distinct values' latest
 * sightings, each step of a sequence), so one join pulls the whole story. corr_state holds
 * each open group of count, distinct and sequence correlations as of the last commit, written
 * in the same transaction as the events that changed it: a restart continues the windows.
 * first_seen holds every key a first_seen correlation has seen, with its first and last
 * sighting (event time); memory only caches it. Group keys are the by-values joined with
 * char(31): replace(group_key, char(31), '|') prints them as alerts do.
 */
#define SQL_SCHEMA_V3                                                                              \
    "CREATE TABLE alert_events (\n"                                                                \
    "  -- the events behind a correlation's alert, one row per (alert, event)\n"                   \
    "  alert_id INTEGER NOT NULL REFERENCES alerts (id),\n"                                        \
    "  event_id INTEGER NOT NULL REFERENCES events (id),\n"                                        \
    "  PRIMARY KEY (alert_id, event_id)) WITHOUT ROWID;\n"                                         \
    "CREATE INDEX alert_events_event ON alert_events (event_id);\n"                                \
    "CREATE TABLE corr_state (\n"                                                                  \
    "  -- open groups of count, distinct and sequence correlations, as of the last commit\n"       \
    "  rule       TEXT NOT NULL,    -- correlation name\n"                                         \
    "  group_key  TEXT NOT NULL,    -- its by-values joined with char(31)\n"                       \
    "  last_ts    INTEGER NOT NULL, -- newest event time in the group, microseconds\n"             \
    "  state      BLOB NOT NULL,    -- the group's observations (ktrail's format)\n"               \
    "  updated_at INTEGER NOT NULL, -- wall clock, microseconds since the epoch\n"                 \
    "  PRIMARY KEY (rule, group_key)) WITHOUT ROWID;\n"                                            \
    "CREATE TABLE first_seen (\n"                                                                  \
    "  -- every key a first_seen correlation has seen\n"                                           \
    "  rule     TEXT NOT NULL,    -- correlation name\n"                                           \
    "  key      TEXT NOT NULL,    -- its by-values joined with char(31)\n"                         \
    "  first_ts INTEGER NOT NULL, -- event time first seen, microseconds\n"                        \
    "  last_ts  INTEGER NOT NULL, -- event time last seen, microseconds\n"                         \
    "  PRIMARY KEY (rule, key)) WITHOUT ROWID;\n"

/* ---- schema version 4: events cut short in transport ---- */

/*
 * An event a transport cut (Azure's 16 KiB, CloudWatch's "[Truncated...]", GKE's
 * audit.k8s.io/truncated label) is stored with the fields that preceded the cut and marked.
 */
#define SQL_SCHEMA_V4                                                                              \
    "ALTER TABLE events ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;"                          \
    " -- 1: cut short in transport, only the fields before the cut\n"                              \
    "DROP VIEW v_events;\n"                                                                        \
    SQL_V_EVENTS("  e.truncated AS truncated,\n")

/* ---- schema version 5: one alert per request, and bursts told once ---- */

/*
 * A rule alerts once per request: the stages of one request (same requestReceivedTimestamp,
 * auditID, rule, identity, verb and object) after the first that matched are linked to its
 * alert in
 * alert_events instead of alerting again; alerts_request finds that alert. A rule or
 * correlation with suppress: merges further matches of one group within its window into the
 * group's first alert (count, last_ts and alert_events grow); alert_groups holds the open
 * groups.
 */
#define SQL_ALERT_GROUPS                                                                           \
    "CREATE TABLE alert_groups (\n"                                                                \
    "  -- open suppression groups: further matches within the window go to alert_id\n"             \
    "  rule      TEXT NOT NULL,    -- rule or correlation name\n"                                  \
    "  group_key TEXT NOT NULL,    -- its suppress.by values joined with char(31)\n"               \
    "  alert_id  INTEGER NOT NULL REFERENCES alerts (id),\n"                                       \
    "  until_ts  INTEGER NOT NULL, -- event time the window closes, microseconds\n"                \
    "  PRIMARY KEY (rule, group_key)) WITHOUT ROWID;\n"
#define SQL_SCHEMA_V5                                                                              \
    "ALTER TABLE alerts ADD COLUMN recv_ts INTEGER;"                                               \
    " -- the event's requestReceivedTimestamp, microseconds: the same at every stage of a request\n" \
    "CREATE INDEX alerts_request ON alerts (recv_ts, audit_id, rule) WHERE recv_ts IS NOT NULL;\n" \
    "ALTER TABLE alerts ADD COLUMN count INTEGER NOT NULL DEFAULT 1;"                              \
    " -- matches merged into this alert: its request's other stages, its suppression group's\n"    \
    "ALTER TABLE alerts ADD COLUMN last_ts INTEGER;"                                               \
    " -- event time of the last match merged, microseconds; NULL if none\n"                        \
    SQL_ALERT_GROUPS                                                                               \
    "DROP VIEW v_alerts;\n"                                                                        \
    SQL_V_ALERTS(", a.count AS count, " SQL_TIME("coalesce(a.last_ts, a.ts)") " AS last_time")

/* ---- schema version 6: a file checkpoint holds where its line and column stand ---- */

/*
 * The framer resumes exactly where it stood (ingest/frame.h): reject line numbers go on from
 * the checkpoint instead of restarting at 1, and the column decides which later lines start
 * a new value. Checkpoints written before version 6 read as line 0 (counted from 1 again)
 * and column 0, as they were resumed before.
 */
#define SQL_SCHEMA_V6                                                                              \
    "ALTER TABLE ckpt_file ADD COLUMN line INTEGER NOT NULL DEFAULT 0;"                            \
    " -- 1-based line of offset; 0 when unknown (written before schema version 6)\n"               \
    "ALTER TABLE ckpt_file ADD COLUMN col INTEGER NOT NULL DEFAULT 0;"                             \
    " -- column of offset: bytes between its line's start and it\n"

/* ---- schema version 7: compact storage (raw JSON in blocks, compact alerts), indexes ---- */

/*
 * The JSON of up to 128 kept events, concatenated, is one zlib stream in raw_blocks (about 8
 * times smaller than the text); each raw row names its block and its span. The sqlite3 shell
 * has sqlar_uncompress() built in (its .archive support), so v_events.raw still reads there as
 * the text received; ktrail registers the same function on its own connections. Rows written
 * before keep their text in raw.json (block NULL). A client without the function cannot use
 * v_events at all: v_events_lite is the same view without raw. The requestURI is a dictionary
 * value from now on (the column uri). events_name finds an object's history (ktrail timeline
 * --object); alerts_request keeps only the time (a request's alerts are a handful).
 */
#define SQL_RAW_TEXT                                                                               \
    "CASE WHEN raw.block IS NULL THEN raw.json ELSE CAST(substr(sqlar_uncompress(rb.z, rb.n), "    \
    "raw.off + 1, raw.len) AS TEXT) END"
/*
 * An alert of a rule keeps what changes from one alert to the next, the values of its output
 * fields (vals, a JSON array), and names its format (fmt, a dictionary value shared by every
 * alert of the rule: {"t": tags, "p": [the output text around the fields], "k": [the field
 * names]}); v_alerts puts output, fields and tags back together with SQLite's JSON functions,
 * which every SQLite client has. A correlation's alert keeps its text as before.
 */
#define SQL_ALERT_OUTPUT                                                                           \
    "coalesce(a.output, (SELECT group_concat(p.value || CASE WHEN p.key < json_array_length("      \
    "a.vals) THEN coalesce(a.vals ->> p.key, '<NA>') ELSE '' END, '') FROM json_each(fmt.s, "      \
    "'$.p') p))"
#define SQL_ALERT_FIELDS                                                                           \
    "coalesce(a.fields, (SELECT json_group_object(k.value, a.vals -> k.key) FROM json_each("       \
    "fmt.s, '$.k') k))"
#define SQL_ALERT_TAGS "coalesce(a.tags, fmt.s ->> '$.t')"
/* An auditID as text: a UUID is stored as its 16 bytes (see store.c, bind_audit_id). */
#define SQL_AUDIT_TEXT(col)                                                                        \
    "CASE WHEN typeof(" col ") = 'blob' THEN lower(substr(hex(" col "), 1, 8) || '-' ||"           \
    " substr(hex(" col "), 9, 4) || '-' || substr(hex(" col "), 13, 4) || '-' ||"                  \
    " substr(hex(" col "), 17, 4) || '-' || substr(hex(" col "), 21)) ELSE " col " END"
#define SQL_RAW_BLOCKS                                                                             \
    "CREATE TABLE raw_blocks (\n"                                                                  \
    "  -- raw JSON of up to 128 events, concatenated; sqlar_uncompress(z, n) gives it back\n"      \
    "  id INTEGER PRIMARY KEY,\n"                                                                  \
    "  z  BLOB NOT NULL,    -- zlib stream (compress2), or the bytes as they are when n = length(z)\n" \
    "  n  INTEGER NOT NULL  -- uncompressed length\n"                                              \
    ");\n"
/* The views of version 7: alerts put back together, events with the raw JSON read through
 * its block, and the same without raw (v_events_lite). */
#define SQL_V_ALERTS_V7                                                                            \
    SQL_V_ALERTS_X(", a.count AS count, " SQL_TIME("coalesce(a.last_ts, a.ts)") " AS last_time",   \
                   "coalesce(nullif(a.audit_id, ''), " SQL_AUDIT_TEXT("e.audit_id") ")",           \
                   SQL_ALERT_TAGS, SQL_ALERT_OUTPUT, SQL_ALERT_FIELDS,                             \
                   "  LEFT JOIN strings fmt ON fmt.id = a.fmt\n")
#define SQL_V_EVENTS_V7                                                                            \
    SQL_V_EVENTS_X("v_events", "  e.truncated AS truncated,\n", SQL_AUDIT_TEXT("e.audit_id"),      \
                   "coalesce(e.request_uri, uri.s)",                                               \
                   SQL_RAW_TEXT " AS raw",                                                         \
                   "  LEFT JOIN strings uri ON uri.id = e.uri\n"                                   \
                   "  LEFT JOIN raw ON raw.event_id = e.id\n"                                      \
                   "  LEFT JOIN raw_blocks rb ON rb.id = raw.block\n")                             \
    SQL_V_EVENTS_X("v_events_lite", "", SQL_AUDIT_TEXT("e.audit_id"),                              \
                   "coalesce(e.request_uri, uri.s)",                                               \
                   "e.truncated AS truncated", "  LEFT JOIN strings uri ON uri.id = e.uri\n")
#define SQL_SCHEMA_V7                                                                              \
    "ALTER TABLE alerts ADD COLUMN fmt INTEGER;"                                                   \
    " -- dict: the rule's output format (then output, fields and tags are NULL)\n"                 \
    "ALTER TABLE alerts ADD COLUMN vals TEXT; -- the output fields' values, a JSON array\n"        \
    "DROP VIEW v_alerts;\n"                                                                        \
    SQL_V_ALERTS_V7                                                                                \
    "ALTER TABLE events ADD COLUMN uri INTEGER;"                                                   \
    " -- dict: requestURI (then request_uri is NULL; rows written before have the text there)\n"   \
    SQL_RAW_BLOCKS                                                                                 \
    "ALTER TABLE raw ADD COLUMN block INTEGER;"                                                    \
    " -- raw_blocks.id holding the JSON ('' in json), or NULL: json holds it\n"                    \
    "ALTER TABLE raw ADD COLUMN off INTEGER; -- byte offset of the JSON in the block\n"            \
    "ALTER TABLE raw ADD COLUMN len INTEGER; -- its length in bytes\n"                             \
    "CREATE INDEX raw_block ON raw (block) WHERE block IS NOT NULL;\n"                             \
    "CREATE INDEX events_name ON events (name) WHERE name IS NOT NULL;\n"                          \
    "DROP INDEX alerts_request;\n"                                                                 \
    "CREATE INDEX alerts_request ON alerts (recv_ts) WHERE recv_ts IS NOT NULL;\n"                 \
    "DROP VIEW v_events;\n"                                                                        \
    SQL_V_EVENTS_V7

/* ---- the current schema, for a new database ---- */

/*
 * A new database is made at the current version in one step, so that its tables read as one
 * text, each column on its line with its comment (ALTER TABLE ADD COLUMN appends a column
 * behind the last one's comment, and drops the new one's). It is what migrating a version 1
 * database step by step gives, column for column and index for index: test_store holds the two
 * to it.
 */
#define SQL_SCHEMA                                                                                 \
    SQL_STRINGS                                                                                    \
    "CREATE TABLE events (\n"                                                                      \
    "  -- one row per audit event and stage. INTEGER columns marked 'dict' hold strings.id,\n"     \
    "  -- NULL when the event had no such value; query v_events to see the text\n"                 \
    "  id           INTEGER PRIMARY KEY,\n"                                                        \
    "  ts           INTEGER NOT NULL, -- stageTimestamp, microseconds since the epoch (UTC)\n"     \
    "  received_ts  INTEGER,          -- requestReceivedTimestamp, microseconds; NULL if absent\n" \
    "  audit_id     TEXT NOT NULL,    -- auditID (client-settable through the Audit-ID header); a UUID as its 16 bytes (a BLOB)\n" \
    "  stage        INTEGER NOT NULL, -- dict: RequestReceived, ResponseStarted, ResponseComplete, Panic; 0 if absent\n" \
    "  level        INTEGER,          -- dict: None, Metadata, Request, RequestResponse\n"         \
    "  verb         INTEGER,          -- dict: get, list, watch, create, update, patch, delete...\n" \
    "  user         INTEGER,          -- dict: user.username\n"                                    \
    "  groups       INTEGER,          -- dict: user.groups joined with ','\n"                      \
    "  imp_user     INTEGER,          -- dict: impersonatedUser.username\n"                        \
    "  source_ips   INTEGER,          -- dict: sourceIPs joined with ','; the last one is the apiserver's peer\n" \
    "  user_agent   INTEGER,          -- dict: userAgent (client-supplied)\n"                      \
    "  resource     INTEGER,          -- dict: objectRef.resource\n"                               \
    "  subresource  INTEGER,          -- dict: objectRef.subresource (exec, log, status...)\n"     \
    "  namespace    INTEGER,          -- dict: objectRef.namespace\n"                              \
    "  name         INTEGER,          -- dict: objectRef.name\n"                                   \
    "  api_group    INTEGER,          -- dict: objectRef.apiGroup ('' or absent: core)\n"          \
    "  api_version  INTEGER,          -- dict: objectRef.apiVersion\n"                             \
    "  code         INTEGER,          -- responseStatus.code (HTTP status); NULL if absent\n"      \
    "  decision     INTEGER,          -- dict: annotation authorization.k8s.io/decision\n"         \
    "  authz_reason INTEGER,          -- dict: annotation authorization.k8s.io/reason\n"           \
    "  request_uri  TEXT,             -- NULL: rows stored before schema version 7 hold the requestURI here\n" \
    "  cluster      INTEGER,          -- dict: the source's cluster tag, else annotation cluster_name\n" \
    "  origin       INTEGER,          -- dict: where it was read: a file path, '-' for stdin\n"    \
    "  offset       INTEGER,          -- byte offset of the event in its origin\n"                 \
    "  truncated    INTEGER NOT NULL DEFAULT 0, -- 1: cut short in transport, only the fields before the cut\n" \
    "  uri          INTEGER,          -- dict: requestURI as sent, query string included\n"        \
    "  UNIQUE (ts, audit_id, stage));\n"                                                           \
    SQL_EVENTS_INDEXES                                                                             \
    "CREATE INDEX events_name ON events (name) WHERE name IS NOT NULL;\n"                          \
    "CREATE TABLE raw (\n"                                                                         \
    "  -- the event JSON as received: events flagged by a rule, events with alerts,\n"             \
    "  -- or every event with --keep-raw all\n"                                                    \
    "  event_id INTEGER PRIMARY KEY REFERENCES events (id),\n"                                     \
    "  json     TEXT NOT NULL, -- '' (rows stored before schema version 7 hold the JSON here, block NULL)\n" \
    "  block    INTEGER,       -- raw_blocks.id holding the JSON\n"                                \
    "  off      INTEGER,       -- byte offset of the JSON in the block\n"                          \
    "  len      INTEGER        -- its length in bytes\n"                                           \
    ");\n"                                                                                         \
    "CREATE INDEX raw_block ON raw (block) WHERE block IS NOT NULL;\n"                             \
    SQL_RAW_BLOCKS                                                                                 \
    "CREATE TABLE alerts (\n"                                                                      \
    "  -- rule matches; a rule fires at most once per event row, whatever is replayed;\n"          \
    "  -- query v_alerts to see them whole\n"                                                      \
    "  id       INTEGER PRIMARY KEY,\n"                                                            \
    "  event_id INTEGER NOT NULL REFERENCES events (id),\n"                                        \
    "  ts       INTEGER NOT NULL, -- the event's stageTimestamp, microseconds\n"                   \
    "  audit_id TEXT NOT NULL,    -- '': the event's (rows stored before schema version 6 hold it here)\n" \
    "  stage    INTEGER NOT NULL, -- dict: the event's stage; 0 if absent\n"                       \
    "  rule     TEXT NOT NULL,    -- rule or correlation name\n"                                   \
    "  priority INTEGER NOT NULL, -- 0 emergency, 1 alert, 2 critical, 3 error, 4 warning, 5 notice, 6 informational, 7 debug\n" \
    "  tags     TEXT,             -- the tags joined with ','; NULL when fmt holds them\n"         \
    "  output   TEXT,             -- the output, rendered; NULL when fmt and vals hold it\n"       \
    "  fields   TEXT,             -- the output fields, a JSON object; NULL when fmt and vals hold them\n" \
    "  recv_ts  INTEGER,          -- the event's requestReceivedTimestamp, microseconds: the same at every stage of a request\n" \
    "  count    INTEGER NOT NULL DEFAULT 1, -- matches merged into this alert: its request's other stages, its suppression group's\n" \
    "  last_ts  INTEGER,          -- event time of the last match merged, microseconds; NULL if none\n" \
    "  fmt      INTEGER,          -- dict: a rule's output format, shared by its alerts (a correlation's: NULL)\n" \
    "  vals     TEXT,             -- the output fields' values, a JSON array\n"                    \
    "  UNIQUE (event_id, rule));\n"                                                                \
    SQL_ALERTS_INDEXES                                                                             \
    "CREATE INDEX alerts_request ON alerts (recv_ts) WHERE recv_ts IS NOT NULL;\n"                 \
    SQL_REJECTS                                                                                    \
    "CREATE TABLE ckpt_file (\n"                                                                   \
    SQL_CKPT_FILE_COLUMNS_V1                                                                       \
    "  updated_at  INTEGER NOT NULL, -- wall clock, microseconds since the epoch\n"                \
    "  line        INTEGER NOT NULL DEFAULT 0, -- 1-based line of offset; 0 when unknown (written before schema version 6)\n" \
    "  col         INTEGER NOT NULL DEFAULT 0  -- column of offset: bytes between its line's start and it\n" \
    ");\n"                                                                                         \
    SQL_SCHEMA_V2                                                                                  \
    SQL_SCHEMA_V3                                                                                  \
    SQL_ALERT_GROUPS                                                                               \
    SQL_V_EVENTS_V7                                                                                \
    SQL_V_ALERTS_V7                                                                                \
    SQL_V_REJECTS

/* ---- writing a batch ---- */

#define SQL_BEGIN "BEGIN IMMEDIATE"
#define SQL_COMMIT "COMMIT"
#define SQL_ROLLBACK "ROLLBACK"

#define SQL_DICT_GET "SELECT id FROM strings WHERE s = ?1"
#define SQL_DICT_ADD "INSERT INTO strings (s) VALUES (?1)"

/* Parameter numbers of SQL_EVENT_INSERT, in column order. */
enum {
    SQL_EV_TS = 1,
    SQL_EV_RECEIVED_TS,
    SQL_EV_AUDIT_ID,
    SQL_EV_STAGE,
    SQL_EV_LEVEL,
    SQL_EV_VERB,
    SQL_EV_USER,
    SQL_EV_GROUPS,
    SQL_EV_IMP_USER,
    SQL_EV_SOURCE_IPS,
    SQL_EV_USER_AGENT,
    SQL_EV_RESOURCE,
    SQL_EV_SUBRESOURCE,
    SQL_EV_NAMESPACE,
    SQL_EV_NAME,
    SQL_EV_API_GROUP,
    SQL_EV_API_VERSION,
    SQL_EV_CODE,
    SQL_EV_DECISION,
    SQL_EV_AUTHZ_REASON,
    SQL_EV_REQUEST_URI,
    SQL_EV_CLUSTER,
    SQL_EV_ORIGIN,
    SQL_EV_OFFSET,
    SQL_EV_TRUNCATED,
};
#define SQL_EVENT_INSERT                                                                           \
    "INSERT OR IGNORE INTO events (ts, received_ts, audit_id, stage, level, verb, user, groups,"   \
    " imp_user, source_ips, user_agent, resource, subresource, namespace, name, api_group,"        \
    " api_version, code, decision, authz_reason, uri, cluster, origin, offset, truncated)"         \
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"    \
    " ?19, ?20, ?21, ?22, ?23, ?24, ?25)"
/* The row a duplicate collided with: the unique key, in its order. */
#define SQL_EVENT_ID "SELECT id FROM events WHERE ts = ?1 AND audit_id = ?2 AND stage = ?3"
#define SQL_RAW_INSERT                                                                             \
    "INSERT OR IGNORE INTO raw (event_id, json, block, off, len) VALUES (?1, '', ?2, ?3, ?4)"
#define SQL_RAW_BLOCK_INSERT "INSERT INTO raw_blocks (z, n) VALUES (?1, ?2)"
#define SQL_RAW_EXISTS "SELECT 1 FROM raw WHERE event_id = ?1"
#define SQL_ALERT_INSERT                                                                           \
    "INSERT OR IGNORE INTO alerts (event_id, ts, audit_id, stage, rule, priority, tags, output,"   \
    " fields, recv_ts, fmt, vals) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
#define SQL_REJECT_INSERT                                                                          \
    "INSERT OR IGNORE INTO rejects (ingested_at, origin, offset, line, reason, text)"              \
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
#define SQL_CKPT_UPSERT                                                                            \
    "INSERT INTO ckpt_file (fingerprint, path, offset, mode, done, updated_at, line, col)"         \
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (fingerprint) DO UPDATE SET"             \
    " path = excluded.path, offset = excluded.offset, mode = excluded.mode,"                       \
    " done = excluded.done, updated_at = excluded.updated_at, line = excluded.line,"               \
    " col = excluded.col"
#define SQL_CKPT_GET "SELECT offset, mode, done, line, col FROM ckpt_file WHERE fingerprint = ?1"
#define SQL_CKPT_KAFKA_UPSERT                                                                      \
    "INSERT INTO ckpt_kafka (topic, partition, next_offset, updated_at) VALUES (?1, ?2, ?3, ?4)"   \
    " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset,"            \
    " updated_at = excluded.updated_at"
/* The alert of another stage of the same request: the same requestReceivedTimestamp (the
 * apiserver's, once per request), auditID (client-settable, through the Audit-ID header) and
 * rule, and the same identity, verb and object. The index leads with time, so it is appended
 * to like the events' key; the join order is forced (the planner would scan events). Alerts
 * stored since schema 6 leave their auditID to their event (''). */
#define SQL_ALERT_REQUEST                                                                          \
    "SELECT a.id, a.event_id FROM alerts a INDEXED BY alerts_request"                              \
    " CROSS JOIN events e ON e.id = a.event_id CROSS JOIN events n ON n.id = ?3"                   \
    " WHERE a.recv_ts = ?4 AND a.audit_id IN (?1, '') AND a.rule = ?2 AND a.event_id != ?3"        \
    " AND e.audit_id IS n.audit_id AND e.user IS n.user AND e.verb IS n.verb AND e.resource IS n.resource" \
    " AND e.subresource IS n.subresource AND e.namespace IS n.namespace AND e.name IS n.name"      \
    " LIMIT 1"
#define SQL_ALERT_EXISTS "SELECT id FROM alerts WHERE event_id = ?1 AND rule = ?2"
/* One more match merged into alert ?1, at event time ?2. */
#define SQL_ALERT_MERGE                                                                            \
    "UPDATE alerts SET count = count + 1, last_ts = max(coalesce(last_ts, ts), ?2) WHERE id = ?1"
#define SQL_GROUP_GET                                                                              \
    "SELECT g.alert_id, g.until_ts, a.event_id FROM alert_groups g JOIN alerts a"                  \
    " ON a.id = g.alert_id WHERE g.rule = ?1 AND g.group_key = ?2"
#define SQL_GROUP_PUT                                                                              \
    "INSERT OR REPLACE INTO alert_groups (rule, group_key, alert_id, until_ts) VALUES (?1, ?2, ?3, ?4)"
#define SQL_ALERT_EVENT_INSERT                                                                     \
    "INSERT OR IGNORE INTO alert_events (alert_id, event_id) VALUES (?1, ?2)"
#define SQL_CORR_PUT                                                                               \
    "INSERT INTO corr_state (rule, group_key, last_ts, state, updated_at)"                         \
    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (rule, group_key) DO UPDATE SET"                     \
    " last_ts = excluded.last_ts, state = excluded.state, updated_at = excluded.updated_at"
#define SQL_CORR_DEL "DELETE FROM corr_state WHERE rule = ?1 AND group_key = ?2"
#define SQL_CORR_LOAD                                                                              \
    "SELECT group_key, state, last_ts FROM corr_state WHERE rule = ?1 ORDER BY last_ts"
#define SQL_SEEN_PUT                                                                               \
    "INSERT INTO first_seen (rule, key, first_ts, last_ts) VALUES (?1, ?2, ?3, ?4)"                \
    " ON CONFLICT (rule, key) DO UPDATE SET first_ts = min(first_ts, excluded.first_ts),"          \
    " last_ts = max(last_ts, excluded.last_ts)"
#define SQL_SEEN_GET "SELECT first_ts, last_ts FROM first_seen WHERE rule = ?1 AND key = ?2"
/* the most recently seen keys (up to ?2), oldest first, to warm the cache on open */
#define SQL_SEEN_LOAD                                                                              \
    "SELECT key, first_ts, last_ts FROM (SELECT key, first_ts, last_ts FROM first_seen"            \
    " WHERE rule = ?1 ORDER BY last_ts DESC LIMIT ?2) ORDER BY last_ts"
/* when the learning period began: the earliest sighting */
#define SQL_SEEN_START "SELECT min(first_ts) FROM first_seen WHERE rule = ?1"
#define SQL_CKPT_KAFKA_GET "SELECT next_offset FROM ckpt_kafka WHERE topic = ?1 AND partition = ?2"

/* clang-format on */

#endif
