/*
 * file.c: the file source (see file.h).
 *
 * Paths are consumed in order; a directory is expanded, when reached, into its files sorted
 * oldest first. Each file is read into a window buffer (plain read() or zlib's gzread for
 * .gz), framed, and its values copied into the caller's batch. A batch never spans two files,
 * so a batch's checkpoint always names one file: its fingerprint (hash of the first KB),
 * the offset just past the last value, and the framer's state there (mode, line, column), so
 * that a resumed framer frames the rest exactly as an uninterrupted one would.
 *
 * Following, a file truncated in place (copytruncate) is told by its size falling below what
 * was read, or by its first bytes no longer being those read: a copytruncate followed at once
 * by a write of more than was read keeps the size growing, and only the content tells.
 */
#include "file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "envelope.h"
#include "frame.h"

enum { READ_CHUNK = 1 << 20, FP_BYTES = 1024 };

struct file_src {
    struct kt_source base; /* must be first */
    struct kt_file_opts o; /* options, defaults filled in */
    char **paths;          /* paths still to read (directories expanded in place) */
    size_t npaths;         /* entries */
    size_t cappaths;       /* allocated */
    size_t next;           /* next path to open */
    unsigned failures;     /* paths that could not be read */
    unsigned skipped;      /* files a checkpoint says are done */
    volatile int stopping; /* stop() was called */

    /* the open file */
    char *path;   /* its path (heap), NULL when none is open */
    int fd;       /* plain file or stdin, -1 when gz */
    gzFile gz;    /* .gz, else NULL */
    int is_stdin; /* no checkpoints for stdin */
    uint64_t fp;  /* fingerprint */
    dev_t dev;    /* identity, for rotation */
    ino_t ino;
    uint64_t read_off;       /* stream offset of the byte after the window */
    char head[FP_BYTES];     /* its first bytes as read (for gzip, compressed): fingerprinted,
                                and compared by a follower to tell a copytruncate */
    size_t headlen;          /* bytes of head known */
    int eof;                 /* the read side has ended (for now, when following) */
    int rotated;             /* following: the path names a new file; finish this one */
    struct kt_framer fr;     /* framing state */
    struct kt_envelope *env; /* opens each framed value (envelopes, shippers' records) */
    char *win;               /* window of the stream: buf[0] is at fr.base */
    size_t wlen;             /* bytes in the window */
    size_t wcap;             /* allocated */
};

static void close_file(struct file_src *s)
{
    if (s->gz != NULL) {
        gzclose(s->gz);
        s->gz = NULL;
    } else if (s->fd >= 0 && !s->is_stdin) {
        close(s->fd);
    }
    s->fd = -1;
    free(s->path);
    s->path = NULL;
    s->is_stdin = 0;
    s->wlen = 0;
    s->headlen = 0;
}

/* A gzip file, by its magic bytes rather than its name: Firehose's S3 objects are gzip
 * without a .gz suffix. */
static int is_gzip_fd(int fd)
{
    unsigned char m[2];
    return pread(fd, m, 2, 0) == 2 && m[0] == 0x1f && m[1] == 0x8b;
}

static int add_path(struct file_src *s, size_t at, const char *p)
{
    if (s->npaths == s->cappaths) {
        size_t cap = s->cappaths ? s->cappaths * 2 : 8;
        char **np = realloc(s->paths, cap * sizeof(*np));
        if (np == NULL) {
            return KT_ENOMEM;
        }
        s->paths = np;
        s->cappaths = cap;
    }
    char *copy = strdup(p);
    if (copy == NULL) {
        return KT_ENOMEM;
    }
    memmove(s->paths + at + 1, s->paths + at, (s->npaths - at) * sizeof(*s->paths));
    s->paths[at] = copy;
    s->npaths++;
    return 0;
}

/* Rotated files carry "-YYYY-MM-DDTHH-MM-SS.mmm" (lumberjack): the key orders them. */
struct dirent_key {
    char *path;     /* full path (heap) */
    char stamp[24]; /* the name's timestamp, or "" */
    time_t mtime;   /* modification time */
};

static void name_stamp(const char *name, char *out)
{
    out[0] = '\0';
    for (const char *p = name; *p != '\0'; p++) {
        const char *t = p + 1;
        if (*p == '-' && strlen(t) >= 23 && t[4] == '-' && t[7] == '-' && t[10] == 'T' &&
            t[13] == '-' && t[16] == '-' && t[19] == '.') {
            memcpy(out, t, 23);
            out[23] = '\0';
            return;
        }
    }
}

static int cmp_key(const void *a, const void *b)
{
    const struct dirent_key *x = a, *y = b;
    int xs = x->stamp[0] != '\0', ys = y->stamp[0] != '\0';
    if (xs != ys) {
        return xs ? -1 : 1; /* rotated files first: the active file is the newest */
    }
    int c = strcmp(x->stamp, y->stamp);
    if (c != 0) {
        return c;
    }
    if (x->mtime != y->mtime) {
        return x->mtime < y->mtime ? -1 : 1;
    }
    return strcmp(x->path, y->path);
}

/* Replace the directory at paths[at] by its files in time order. */
static int expand_dir(struct file_src *s, size_t at)
{
    char *dir = s->paths[at];
    DIR *d = opendir(dir);
    struct dirent_key *keys = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (d == NULL) {
        kt_error("ingest:file", "cannot read directory %s: %s", dir, strerror(errno));
        s->failures++;
        free(dir);
        memmove(s->paths + at, s->paths + at + 1, (s->npaths - at - 1) * sizeof(*s->paths));
        s->npaths--;
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char full[4096];
        struct stat sb;
        snprintf(full, sizeof(full), "%s/%s", dir, e->d_name);
        if (stat(full, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct dirent_key *nk = realloc(keys, cap * sizeof(*nk));
            if (nk == NULL) {
                rc = KT_ENOMEM;
                goto out;
            }
            keys = nk;
        }
        keys[n].path = strdup(full);
        if (keys[n].path == NULL) {
            rc = KT_ENOMEM;
            goto out;
        }
        name_stamp(e->d_name, keys[n].stamp);
        keys[n].mtime = sb.st_mtime;
        n++;
    }
    qsort(keys, n, sizeof(*keys), cmp_key);
    free(dir);
    memmove(s->paths + at, s->paths + at + 1, (s->npaths - at - 1) * sizeof(*s->paths));
    s->npaths--;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = add_path(s, at + i, keys[i].path);
    }
out:
    for (size_t i = 0; i < n; i++) {
        free(keys[i].path);
    }
    free(keys);
    closedir(d);
    return rc;
}

/* Read the first KB of the file on fd (size bytes long) into head: the file's fingerprint is
 * their hash, and a follower compares them to tell a copytruncate. Returns the fingerprint. */
static uint64_t load_head(struct file_src *s, int fd, uint64_t size)
{
    ssize_t n = pread(fd, s->head, size < FP_BYTES ? (size_t)size : FP_BYTES, 0);
    s->headlen = n > 0 ? (size_t)n : 0;
    return kt_hash64(s->head, s->headlen) ^ ((uint64_t)s->headlen * 0x9e3779b97f4a7c15ULL);
}

/* zlib's error text without the "<fd:N>: " that gzdopen() puts before it. */
static const char *gz_message(gzFile gz, int *zerr)
{
    const char *msg = gzerror(gz, zerr);
    const char *p = strstr(msg, ">: ");
    return msg[0] == '<' && p != NULL ? p + 3 : msg;
}

/* Bytes p[0, n) were just read at read_off: keep those of the first KB not yet known. */
static void note_head(struct file_src *s, const char *p, size_t n)
{
    uint64_t from = s->read_off > s->headlen ? s->read_off : s->headlen;
    if (from >= FP_BYTES || from >= s->read_off + n) {
        return;
    }
    size_t take = (size_t)(s->read_off + n - from);
    if (take > FP_BYTES - from) {
        take = FP_BYTES - (size_t)from;
    }
    memcpy(s->head + from, p + (from - s->read_off), take);
    s->headlen = (size_t)from + take;
}

/* Read up to READ_CHUNK more bytes into the window. >0 bytes, 0 at EOF, <0 on error. */
static ssize_t fill(struct file_src *s)
{
    if (s->wcap - s->wlen < READ_CHUNK) {
        size_t cap = s->wcap ? s->wcap : 2 * READ_CHUNK;
        while (cap - s->wlen < READ_CHUNK) {
            cap *= 2;
        }
        char *w = realloc(s->win, cap);
        if (w == NULL) {
            return KT_ENOMEM;
        }
        s->win = w;
        s->wcap = cap;
    }
    ssize_t n;
    if (s->gz != NULL) {
        n = gzread(s->gz, s->win + s->wlen, READ_CHUNK);
        if (n < 0) {
            int zerr = 0;
            const char *msg = gz_message(s->gz, &zerr);
            kt_error("ingest:file", "%s: corrupt gzip stream after %llu bytes: %s", s->path,
                     (unsigned long long)s->read_off, msg);
            return KT_EIO;
        }
        if (n == 0) {
            /* gzread reports a stream cut short or followed by garbage only through gzerror */
            int zerr = Z_OK;
            const char *msg = gz_message(s->gz, &zerr);
            if (zerr != Z_OK && zerr != Z_STREAM_END) {
                kt_error("ingest:file", "%s: corrupt gzip stream after %llu bytes: %s", s->path,
                         (unsigned long long)s->read_off, msg);
                return KT_EIO;
            }
        }
    } else {
        do {
            n = read(s->fd, s->win + s->wlen, READ_CHUNK);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            kt_error("ingest:file", "cannot read %s: %s", s->path, strerror(errno));
            return KT_EIO;
        }
        s->base.bytes_done += (uint64_t)n;
        note_head(s, s->win + s->wlen, (size_t)n);
    }
    s->wlen += (size_t)n;
    s->read_off += (uint64_t)n;
    return n;
}

/* Skip the first off bytes of a gzip stream (resuming). */
static int gz_skip(struct file_src *s, uint64_t off)
{
    char tmp[65536];
    while (off > 0) {
        int want = off < sizeof(tmp) ? (int)off : (int)sizeof(tmp);
        int n = gzread(s->gz, tmp, (unsigned)want);
        if (n <= 0) {
            return KT_EIO;
        }
        off -= (uint64_t)n;
    }
    return 0;
}

/* Open the next path. 0: a file is open; KT_EOF: none left; KT_ENOMEM. */
static int open_next(struct file_src *s)
{
    while (s->next < s->npaths) {
        const char *p = s->paths[s->next];
        struct stat sb;
        if (strcmp(p, "-") == 0) {
            s->path = strdup("-");
            if (s->path == NULL) {
                return KT_ENOMEM;
            }
            s->next++;
            s->fd = STDIN_FILENO;
            s->is_stdin = 1;
            s->read_off = 0;
            goto opened;
        }
        if (stat(p, &sb) != 0) {
            kt_error("ingest:file", "cannot open %s: %s", p, strerror(errno));
            s->failures++;
            s->next++;
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            int rc = expand_dir(s, s->next);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        s->next++;
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            kt_error("ingest:file", "cannot open %s: %s", p, strerror(errno));
            s->failures++;
            continue;
        }
        s->fp = load_head(s, fd, (uint64_t)sb.st_size);
        s->dev = sb.st_dev;
        s->ino = sb.st_ino;
        struct kt_ckpt_file c = {0};
        if (s->o.lookup != NULL && s->o.lookup(s->o.lookup_ctx, s->fp, &c) == 0) {
            int gz = is_gzip_fd(fd);
            if (c.done && (gz || c.offset >= (uint64_t)sb.st_size) && !s->o.follow) {
                kt_debug("ingest:file", "%s: already replayed, skipped", p);
                s->skipped++;
                s->base.bytes_done += (uint64_t)sb.st_size;
                close(fd);
                continue;
            }
        } else {
            c = (struct kt_ckpt_file){0};
        }
        struct kt_frame_at at = {c.offset, c.line, c.col, c.mode};
        s->path = strdup(p);
        if (s->path == NULL) {
            close(fd);
            return KT_ENOMEM;
        }
        if (is_gzip_fd(fd)) {
            s->gz = gzdopen(fd, "rb");
            if (s->gz == NULL) {
                close(fd);
                return KT_ENOMEM;
            }
            gzbuffer(s->gz, 256 * 1024);
            s->fd = -1;
            if (at.off > 0 && gz_skip(s, at.off) != 0) {
                kt_error("ingest:file", "%s: cannot resume at offset %llu: corrupt gzip stream", p,
                         (unsigned long long)at.off);
                s->failures++;
                close_file(s);
                continue;
            }
            s->base.bytes_done += (uint64_t)sb.st_size; /* counted whole: sizes differ */
        } else {
            s->fd = fd;
            if (at.off > 0 && lseek(fd, (off_t)at.off, SEEK_SET) < 0) {
                at = (struct kt_frame_at){0, 1, 0, KT_FRAME_TOP};
            }
            s->base.bytes_done += at.off;
        }
        s->read_off = at.off;
        kt_framer_resume(&s->fr, s->o.max_event_size, &at);
        if (at.off > 0) {
            kt_debug("ingest:file", "%s: resuming at offset %llu, line %llu", p,
                     (unsigned long long)at.off, (unsigned long long)at.line);
        }
        goto opened;
    }
    return KT_EOF;
opened:
    if (s->is_stdin) {
        kt_framer_init(&s->fr, KT_FRAME_TOP, s->o.max_event_size, 0, 1);
    }
    s->wlen = 0;
    s->eof = 0;
    s->rotated = 0;
    return 0;
}

static void set_ckpt(struct file_src *s, struct kt_batch *b, int done)
{
    if (s->is_stdin) {
        return;
    }
    free(b->ckpt_file.path);
    b->ckpt_file.path = strdup(s->path);
    b->ckpt_kind = KT_CKPT_FILE;
    struct kt_frame_at at;
    kt_framer_at(&s->fr, &at);
    b->ckpt_file.fingerprint = s->fp;
    b->ckpt_file.offset = at.off;
    b->ckpt_file.mode = at.mode;
    b->ckpt_file.line = at.line;
    b->ckpt_file.col = at.col;
    b->ckpt_file.done = done;
}

/* Open a frame into the batch's records: a value through the envelope layer, a reject as is. */
static int add_frame(struct file_src *s, struct kt_batch *b, const struct kt_frame *fr)
{
    int origin = kt_batch_origin(b, s->path);
    if (origin < 0) {
        return origin;
    }
    struct kt_env_batch eb = {b, (uint32_t)origin};
    if (fr->kind == KT_FRAME_REJECT) {
        struct kt_opened r = {fr->ptr, fr->len, fr->off, fr->line, fr->reason, KT_STR_NULL, 0};
        return kt_env_batch_add(&eb, &r);
    }
    struct kt_env_sink sink = {kt_env_batch_add, &eb};
    struct kt_env_counts c = {0, 0, 0};
    struct kt_str stamp = {fr->stamp, fr->stamplen};
    int rc = kt_envelope_open_value(s->env, fr->ptr, fr->len, fr->off, fr->line, stamp, &sink, &c);
    s->base.skipped += c.skipped;
    return rc;
}

/* Following a plain file: was it truncated in place since its head was read? Its first bytes
 * are no longer those read (or fewer than were read). */
static int replaced_in_place(const struct file_src *s)
{
    char now[FP_BYTES];
    if (s->fd < 0 || s->is_stdin) {
        return 0;
    }
    ssize_t n = pread(s->fd, now, s->headlen, 0);
    return n != (ssize_t)s->headlen || memcmp(now, s->head, s->headlen) != 0;
}

/* The open file was truncated in place: forget what was read of it, start it again. What the
 * window held of the old content went with the copy. */
static void read_from_start(struct file_src *s, uint64_t size)
{
    kt_info("ingest:file", "%s: truncated (copytruncate), reading from the start", s->path);
    lseek(s->fd, 0, SEEK_SET);
    s->read_off = 0;
    s->wlen = 0;
    s->fp = load_head(s, s->fd, size);
    kt_framer_init(&s->fr, KT_FRAME_TOP, s->o.max_event_size, 0, 1);
}

/*
 * Following, and nothing more to read now. A rename rotation (the path names another file)
 * marks this file rotated: it is read once more to its end, then closed, and the new file is
 * opened by name. A file truncated in place (smaller than what was read, or with other first
 * bytes) is read again from the start. Returns 1 when there may be more to read now, else 0.
 */
static int follow_check(struct file_src *s)
{
    struct stat sb;
    if (stat(s->paths[0], &sb) != 0) {
        return 0; /* mid-rotation: wait for the new file */
    }
    if (sb.st_dev != s->dev || sb.st_ino != s->ino) {
        s->rotated = 1;
        return 1;
    }
    if (s->fd >= 0 && ((uint64_t)sb.st_size < s->read_off || replaced_in_place(s))) {
        read_from_start(s, (uint64_t)sb.st_size);
        return 1;
    }
    return 0;
}

static void nap(const struct file_src *s)
{
    struct timespec ts = {s->o.poll_ms / 1000, (long)(s->o.poll_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int file_next(struct kt_source *base, struct kt_batch *b, int timeout_ms)
{
    struct file_src *s = (struct file_src *)base;
    int64_t deadline = kt_now_mono_us() + (int64_t)timeout_ms * 1000;
    if (s->o.cluster != NULL && s->o.cluster[0] != '\0') {
        b->cluster = (struct kt_str){s->o.cluster, strlen(s->o.cluster)};
    }
    for (;;) {
        if (s->path == NULL) {
            if (s->stopping) {
                return b->nrecs > 0 ? 0 : KT_EOF;
            }
            if (s->o.follow) {
                struct stat sb;
                if (stat(s->paths[0], &sb) != 0) { /* rotation in progress */
                    if (kt_now_mono_us() >= deadline) {
                        return KT_EAGAIN;
                    }
                    nap(s);
                    continue;
                }
                s->next = 0;
            }
            int rc = open_next(s);
            if (rc == KT_EOF) {
                return b->nrecs > 0 ? 0 : KT_EOF;
            }
            if (rc != 0) {
                snprintf(s->base.error, sizeof(s->base.error), "%s", kt_strerror(rc));
                return rc;
            }
        }
        int finishing = s->eof && (!s->o.follow || s->rotated);
        struct kt_frame fr;
        kt_framer_next(&s->fr, s->win, s->wlen, finishing, &fr);
        if (fr.kind != KT_FRAME_MORE) {
            int rc = add_frame(s, b, &fr);
            if (rc != 0) {
                return rc;
            }
            if (b->nrecs >= s->o.batch_records || b->len >= s->o.batch_bytes) {
                set_ckpt(s, b, 0);
                return 0;
            }
            continue;
        }
        /* MORE: drop what is framed, read on */
        size_t keep = kt_framer_keep(&s->fr);
        if (keep > 0) {
            memmove(s->win, s->win + keep, s->wlen - keep);
            s->wlen -= keep;
            kt_framer_shift(&s->fr, keep);
        }
        if (finishing) {
            /* the file is finished: its batch ends here */
            set_ckpt(s, b, 1);
            if (s->rotated) {
                kt_info("ingest:file", "%s: rotated, following the new file", s->paths[0]);
            }
            close_file(s);
            return 0;
        }
        if (s->stopping && s->o.follow) {
            set_ckpt(s, b, 0);
            close_file(s);
            return b->nrecs > 0 || b->ckpt_kind != KT_CKPT_NONE ? 0 : KT_EOF;
        }
        ssize_t n = fill(s);
        if (n < 0) {
            s->failures++;
            set_ckpt(s, b, 0);
            close_file(s);
            return n == KT_ENOMEM ? KT_ENOMEM : 0;
        }
        if (n > 0 && s->o.follow && replaced_in_place(s)) {
            /* what was just read may be new content at the old offset: read it from the start */
            struct stat sb;
            read_from_start(s, fstat(s->fd, &sb) == 0 ? (uint64_t)sb.st_size : 0);
            continue;
        }
        if (n > 0) {
            continue;
        }
        if (!s->o.follow || s->rotated) {
            s->eof = 1;
            continue;
        }
        /* following, nothing new */
        if (b->nrecs > 0) {
            set_ckpt(s, b, 0);
            return 0;
        }
        if (follow_check(s)) {
            continue;
        }
        if (kt_now_mono_us() >= deadline) {
            return KT_EAGAIN;
        }
        nap(s);
    }
}

static void file_stop(struct kt_source *base)
{
    ((struct file_src *)base)->stopping = 1;
}

static void file_destroy(struct kt_source *base)
{
    struct file_src *s = (struct file_src *)base;
    close_file(s);
    kt_envelope_destroy(s->env);
    for (size_t i = 0; i < s->npaths; i++) {
        free(s->paths[i]);
    }
    free(s->paths);
    free(s->win);
    free(s);
}

static const struct kt_source_ops file_ops = {
    .name = "file",
    .next = file_next,
    .ack = NULL,
    .stop = file_stop,
    .destroy = file_destroy,
};

static uint64_t path_size(const char *p)
{
    struct stat sb;
    if (stat(p, &sb) != 0) {
        return 0;
    }
    if (S_ISREG(sb.st_mode)) {
        return (uint64_t)sb.st_size;
    }
    uint64_t total = 0;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(p);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            char full[4096];
            snprintf(full, sizeof(full), "%s/%s", p, e->d_name);
            if (e->d_name[0] != '.' && stat(full, &sb) == 0 && S_ISREG(sb.st_mode)) {
                total += (uint64_t)sb.st_size;
            }
        }
        if (d != NULL) {
            closedir(d);
        }
    }
    return total;
}

int kt_file_source_create(const char *const *paths, size_t npaths, const struct kt_file_opts *o,
                          struct kt_source **out, char *errstr, size_t errlen)
{
    *out = NULL;
    if (npaths == 0) {
        snprintf(errstr, errlen, "no input path");
        return KT_EINVAL;
    }
    if (o->follow && (npaths != 1 || strcmp(paths[0], "-") == 0)) {
        snprintf(errstr, errlen, "--follow takes exactly one file (not stdin)");
        return KT_EINVAL;
    }
    struct file_src *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return KT_ENOMEM;
    }
    s->base.ops = &file_ops;
    s->o = *o;
    s->fd = -1;
    if (s->o.max_event_size == 0) {
        s->o.max_event_size = 16u << 20;
    }
    s->env = kt_envelope_create(s->o.max_event_size);
    if (s->env == NULL) {
        file_destroy(&s->base);
        snprintf(errstr, errlen, "out of memory");
        return KT_ENOMEM;
    }
    if (s->o.batch_records == 0) {
        s->o.batch_records = 4096;
    }
    if (s->o.batch_bytes == 0) {
        s->o.batch_bytes = 4u << 20;
    }
    if (s->o.poll_ms <= 0) {
        s->o.poll_ms = 250;
    }
    for (size_t i = 0; i < npaths; i++) {
        if (add_path(s, s->npaths, paths[i]) != 0) {
            file_destroy(&s->base);
            snprintf(errstr, errlen, "out of memory");
            return KT_ENOMEM;
        }
        s->base.bytes_total += path_size(paths[i]);
    }
    *out = &s->base;
    return 0;
}

unsigned kt_file_source_failures(const struct kt_source *src)
{
    return ((const struct file_src *)src)->failures;
}

unsigned kt_file_source_skipped(const struct kt_source *src)
{
    return ((const struct file_src *)src)->skipped;
}
