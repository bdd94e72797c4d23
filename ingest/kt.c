/*
 * kt.c: the shared vocabulary's implementation: error names, the arena, logging, clocks.
 */
#include "kt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int kt_log_level = KT_LOG_INFO;

const char *kt_strerror(int err)
{
    switch (err) {
    case KT_OK:
        return "success";
    case KT_ENOMEM:
        return "out of memory";
    case KT_EINVAL:
        return "invalid argument";
    case KT_EIO:
        return "input/output error";
    case KT_EPARSE:
        return "parse error";
    case KT_EFULL:
        return "resource full";
    case KT_EAGAIN:
        return "try again";
    case KT_EOF:
        return "end of input";
    case KT_ENOENT:
        return "not found";
    default:
        return "unknown error";
    }
}

int kt_buf_reserve(struct kt_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) {
            return KT_ENOMEM;
        }
        cap *= 2;
    }
    char *np = realloc(b->p, cap);
    if (np == NULL) {
        return KT_ENOMEM;
    }
    b->p = np;
    b->cap = cap;
    return 0;
}

int kt_buf_append(struct kt_buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return 0;
    }
    if (kt_buf_reserve(b, n) != 0) {
        return KT_ENOMEM;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

int kt_buf_puts(struct kt_buf *b, const char *s)
{
    return kt_buf_append(b, s, strlen(s));
}

int kt_buf_json_str(struct kt_buf *b, const char *p, size_t n)
{
    /* worst case: every byte a \u00XX escape */
    if (kt_buf_reserve(b, n * 6 + 2) != 0) {
        return KT_ENOMEM;
    }
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    return 0;
}

void kt_buf_free(struct kt_buf *b)
{
    if (b == NULL) {
        return;
    }
    free(b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

/* ---- JSON string bodies ---- */

static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Four hex digits at p (n bytes available); -1 when they are not. */
static int32_t hex4(const char *p, size_t n)
{
    int32_t v = 0;
    if (n < 4) {
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

long kt_json_unescape(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        const char *bs = memchr(in + i, '\\', n - i);
        size_t run = bs != NULL ? (size_t)(bs - in) - i : n - i;
        memcpy(out + o, in + i, run);
        o += run;
        i += run;
        if (i >= n) {
            break;
        }
        if (i + 1 >= n) {
            return -1;
        }
        char c = in[i + 1];
        i += 2;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            out[o++] = c;
            break;
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            int32_t cp = hex4(in + i, n - i);
            if (cp < 0) {
                return -1;
            }
            i += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                int32_t lo = i + 1 < n && in[i] == '\\' && in[i + 1] == 'u'
                                 ? hex4(in + i + 2, n - i - 2)
                                 : -1;
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 6;
                } else {
                    cp = 0xfffd;
                }
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                cp = 0xfffd;
            }
            o += put_utf8(out + o, (uint32_t)cp);
            break;
        }
        default:
            return -1;
        }
    }
    return (long)o;
}

/* Blocks hold their payload after the header; 64 KiB unless one allocation needs more. */
struct kt_arena_block {
    struct kt_arena_block *next; /* older block */
    size_t size;                 /* payload bytes */
    _Alignas(16) char data[];    /* payload */
};

enum { ARENA_BLOCK = 64 * 1024, ARENA_SPARES = 64 };

void *kt_arena_alloc(struct kt_arena *a, size_t len)
{
    size_t need = (len + 7) & ~(size_t)7;
    if (a->head == NULL || a->head->size - a->used < need) {
        size_t size = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        struct kt_arena_block *blk;
        if (size == ARENA_BLOCK && a->spare != NULL) {
            blk = a->spare; /* reuse: no allocation, no page faults */
            a->spare = blk->next;
        } else {
            blk = malloc(sizeof(*blk) + size);
            if (blk == NULL) {
                return NULL;
            }
            blk->size = size;
            a->total += size;
        }
        blk->next = a->head;
        a->head = blk;
        a->used = 0;
    }
    void *p = a->head->data + a->used;
    a->used += need;
    return p;
}

char *kt_arena_dup(struct kt_arena *a, const char *p, size_t len)
{
    char *q = kt_arena_alloc(a, len + 1);
    if (q != NULL) {
        memcpy(q, p, len);
        q[len] = '\0';
    }
    return q;
}

void kt_arena_reset(struct kt_arena *a)
{
    /* Standard blocks go to the spares (at most ARENA_SPARES), the rest is freed. */
    size_t nspare = 0;
    for (struct kt_arena_block *b = a->spare; b != NULL; b = b->next) {
        nspare++;
    }
    struct kt_arena_block *blk = a->head;
    while (blk != NULL) {
        struct kt_arena_block *next = blk->next;
        if (blk->size == ARENA_BLOCK && nspare < ARENA_SPARES) {
            blk->next = a->spare;
            a->spare = blk;
            nspare++;
        } else {
            a->total -= blk->size;
            free(blk);
        }
        blk = next;
    }
    a->head = NULL;
    a->used = 0;
}

struct kt_arena_mark kt_arena_mark(const struct kt_arena *a)
{
    return (struct kt_arena_mark){a->head, a->used};
}

void kt_arena_rewind(struct kt_arena *a, struct kt_arena_mark m)
{
    while (a->head != m.head && a->head != NULL) {
        struct kt_arena_block *blk = a->head;
        a->head = blk->next;
        if (blk->size == ARENA_BLOCK) {
            blk->next = a->spare;
            a->spare = blk;
        } else {
            a->total -= blk->size;
            free(blk);
        }
    }
    a->used = m.used;
}

void kt_arena_free(struct kt_arena *a)
{
    struct kt_arena_block *lists[2] = {a->head, a->spare};
    for (int i = 0; i < 2; i++) {
        struct kt_arena_block *blk = lists[i];
        while (blk != NULL) {
            struct kt_arena_block *next = blk->next;
            free(blk);
            blk = next;
        }
    }
    a->head = NULL;
    a->spare = NULL;
    a->used = 0;
    a->total = 0;
}

void kt_log_write(int level, const char *module, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *name = level >= 0 && level <= KT_LOG_DEBUG ? names[level] : "log";
    fprintf(stderr, "ktrail: [%s] %s: %s\n", module, name, msg);
}

int64_t kt_now_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t kt_now_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A word-at-a-time multiplicative hash: not cryptographic, good enough for hash tables and
 * file fingerprints, and several times faster than a byte loop on 100-byte strings. */
uint64_t kt_hash64(const void *p, size_t len)
{
    const unsigned char *s = p;
    const uint64_t k = 0x9e3779b97f4a7c15ULL;
    uint64_t h = 0x2545f4914f6cdd1dULL ^ ((uint64_t)len * k);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
        s += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, len);
    h = (h ^ w) * k;
    h ^= h >> 32;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 29;
    return h;
}
