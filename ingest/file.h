/*
 * file.h: the file source. Replays files, directories of rotated logs, .gz files and stdin,
 * or follows one live log like `tail -F` (rename rotation and copytruncate).
 *
 * It frames JSON values with ingest/frame.h (JSON lines, pretty-printed values, EventList
 * and arrays unwrapped into their items), fills batches of records, and sets each batch's
 * checkpoint (file fingerprint, offset just past the last value, framer mode). With a
 * checkpoint lookup it resumes: a file whose fingerprint is known starts at its offset, and a
 * file already read to its end is skipped.
 */
#ifndef KT_INGEST_FILE_H
#define KT_INGEST_FILE_H

#include "source.h"

struct kt_file_opts {
    size_t max_event_size;    /* larger values are rejected (first KB kept); default 16 MiB */
    size_t batch_records;     /* records per batch at most; default 4096 */
    size_t batch_bytes;       /* bytes per batch, soft limit; default 4 MiB */
    int follow;               /* follow the single path after its end (tail -F) */
    int poll_ms;              /* follow: how often to look for growth/rotation; default 250 */
    const char *cluster;      /* cluster name of every event (wins over envelopes'), or NULL */
    kt_ckpt_lookup_fn lookup; /* resume from checkpoints; NULL reads everything */
    void *lookup_ctx;         /* passed to lookup */
};

/*
 * Create a file source over paths (files, directories, .gz, "-" for stdin), borrowed for the
 * call. Paths are checked lazily: a missing file or unreadable directory is reported when
 * reached (one kt_error line), counted in kt_file_source_failures(), and skipped; so is a
 * corrupt gzip stream, after what was read before it. Returns 0, KT_EINVAL (bad options,
 * follow with several paths or stdin) or KT_ENOMEM.
 */
int kt_file_source_create(const char *const *paths, size_t npaths, const struct kt_file_opts *o,
                          struct kt_source **out, char *errstr, size_t errlen);

/* Paths that could not be read (missing, unreadable, corrupt): the exit code depends on it. */
unsigned kt_file_source_failures(const struct kt_source *src);
/* Files skipped because a checkpoint says they were read to the end already. */
unsigned kt_file_source_skipped(const struct kt_source *src);

#endif
