/*
 * kt.h: the small vocabulary every ktrail module shares.
 *
 * Error codes, length-delimited string slices, a bump arena for decoded strings, and
 * level-checked logging. Everything here is dependency-free so that ingest/, analyze/ and
 * store/ can all include it without pulling in each other. It lives in ingest/ because
 * ingest is the bottom of the dependency order (ingest <- analyze <- store <- cli).
 */
#ifndef KT_INGEST_KT_H
#define KT_INGEST_KT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Return codes: 0 is success, failures are negative. */
enum {
    KT_OK = 0,
    KT_ENOMEM = -1, /* allocation failed */
    KT_EINVAL = -2, /* bad argument or configuration */
    KT_EIO = -3,    /* read, write or database failure */
    KT_EPARSE = -4, /* input is not what it should be */
    KT_EFULL = -5,  /* a bounded resource is full: try later */
    KT_EAGAIN = -6, /* nothing available yet */
    KT_EOF = -7,    /* the source has no more input */
    KT_ENOENT = -8, /* no such file or record */
};

/* Static English name of a KT_E* code ("out of memory", ...). */
const char *kt_strerror(int err);

/* A borrowed byte slice. Never NUL-terminated by contract: pass the length on. */
struct kt_str {
    const char *ptr; /* first byte, or NULL when the value is absent */
    size_t len;      /* length in bytes */
};

#define KT_STR_NULL ((struct kt_str){NULL, 0})
#define KT_STR_LIT(s) ((struct kt_str){(s), sizeof(s) - 1})

static inline int kt_str_eq(struct kt_str a, const char *lit, size_t litlen)
{
    return a.ptr != NULL && a.len == litlen && memcmp(a.ptr, lit, litlen) == 0;
}

/* A growable byte buffer (heap). Zero-initialise; kt_buf_free() releases it. */
struct kt_buf {
    char *p;    /* bytes, or NULL before the first append */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
};

/* Make room for extra more bytes; 0 or KT_ENOMEM. */
int kt_buf_reserve(struct kt_buf *b, size_t extra);
/* Append n bytes (p may be NULL when n is 0); 0 or KT_ENOMEM. */
int kt_buf_append(struct kt_buf *b, const void *p, size_t n);
/* Append a NUL-terminated string; 0 or KT_ENOMEM. */
int kt_buf_puts(struct kt_buf *b, const char *s);
/* Release the bytes; the buffer is empty and reusable afterwards. Accepts NULL. */
void kt_buf_free(struct kt_buf *b);
/* Append p[0, n) as a JSON string, quoted and escaped; 0 or KT_ENOMEM. */
int kt_buf_json_str(struct kt_buf *b, const char *p, size_t n);

/*
 * Unescape the body of a JSON string, in[0, n) without its quotes, into out (at least n
 * bytes: the text never grows; \u escapes of 6 bytes give at most 4, a surrogate pair of 12
 * gives 4). Lone surrogates become U+FFFD. Returns the length, or -1 on a bad escape.
 */
long kt_json_unescape(const char *in, size_t n, char *out);

/*
 * A bump allocator for decoded strings. Memory lives until kt_arena_reset() (which keeps
 * the first block for reuse) or kt_arena_free(). Blocks are chained, never moved, so
 * pointers handed out stay valid until reset.
 */
struct kt_arena_block;
struct kt_arena {
    struct kt_arena_block *head;  /* current block; older blocks chain behind it */
    struct kt_arena_block *spare; /* standard blocks kept by reset, for the next allocations */
    size_t used;                  /* bytes used in head */
    size_t total;                 /* bytes held in all blocks, spares too, for accounting */
};

/* Allocate len bytes aligned to 8; NULL on allocation failure. */
void *kt_arena_alloc(struct kt_arena *a, size_t len);
/* Copy len bytes into the arena; returns the copy, or NULL on allocation failure. */
char *kt_arena_dup(struct kt_arena *a, const char *p, size_t len);
/* Forget all allocations; keeps the standard blocks (up to 4 MiB) for reuse, so a steady
 * state allocates nothing. */
void kt_arena_reset(struct kt_arena *a);
/* Release every block. The arena may be reused afterwards (it is empty). */
void kt_arena_free(struct kt_arena *a);
/* Where an arena stands, to forget what is allocated after it (benchmarks repeating work). */
struct kt_arena_mark {
    struct kt_arena_block *head; /* the current block then */
    size_t used;                 /* bytes used in it then */
};
struct kt_arena_mark kt_arena_mark(const struct kt_arena *a);
/* Forget the allocations made since m (blocks added since go to the spares, as reset does). */
void kt_arena_rewind(struct kt_arena *a, struct kt_arena_mark m);

/* Logging: level-checked before arguments are evaluated; lines carry a module prefix. */
enum kt_log_level { KT_LOG_ERROR = 0, KT_LOG_WARN = 1, KT_LOG_INFO = 2, KT_LOG_DEBUG = 3 };
extern int kt_log_level;
void kt_log_write(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define KT_LOG(level, module, ...)                                                                 \
    do {                                                                                           \
        if ((level) <= kt_log_level) {                                                             \
            kt_log_write((level), (module), __VA_ARGS__);                                          \
        }                                                                                          \
    } while (0)
#define kt_error(module, ...) KT_LOG(KT_LOG_ERROR, module, __VA_ARGS__)
#define kt_warn(module, ...) KT_LOG(KT_LOG_WARN, module, __VA_ARGS__)
#define kt_info(module, ...) KT_LOG(KT_LOG_INFO, module, __VA_ARGS__)
#define kt_debug(module, ...) KT_LOG(KT_LOG_DEBUG, module, __VA_ARGS__)

/* Monotonic clock in microseconds, and wall clock in microseconds since the epoch. */
int64_t kt_now_mono_us(void);
int64_t kt_now_wall_us(void);

/* Parse an RFC 3339 timestamp ("2024-05-01T12:00:00.123456Z", offsets allowed) into
 * microseconds since the epoch. 0 on success, KT_EPARSE when it is not one. */
int kt_parse_rfc3339(const char *p, size_t len, int64_t *out_us);
/* Format us (microseconds since the epoch) as "2024-05-01T12:00:00.123456Z" into out (at
 * least 28 bytes); returns the length (27), or 0 (out "") for a year outside 0000-9999. */
size_t kt_format_rfc3339(int64_t us, char *out);

/* Parse a duration, a non-negative number with ms, s, m, h, d or w (bare: seconds), into
 * microseconds. 0 on success, KT_EPARSE when it is not one. */
int kt_parse_duration(const char *s, int64_t *out_us);

/* 64-bit FNV-1a, used for fingerprints and dictionary hashing. */
uint64_t kt_hash64(const void *p, size_t len);

#endif
