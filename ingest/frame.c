/*
 * frame.c: the framing state machine (see frame.h).
 *
 * Rules for broken input, chosen so that one bad line never takes good ones with it:
 * - JSON strings cannot hold a raw newline: a newline inside a string ends the value there,
 *   as a reject, and scanning resumes on the next line.
 * - A value that began a line and is still on that line when the line ends, with the next
 *   line starting with '{', was a truncated JSON line: it is rejected and the next line is
 *   framed afresh. Pretty-printed values are unaffected (their inner lines do not start a
 *   new object at column 0 right after the opening line).
 * - Text outside any value is rejected a line at a time.
 */
#include "frame.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum state {
    S_BETWEEN, /* between values */
    S_VALUE,   /* inside a value, outside strings */
    S_STRING,  /* inside a string */
    S_ESCAPE,  /* after a backslash in a string */
    S_JUNK,    /* inside a line of text that is not a value */
    S_REST,    /* after an EventList's items: skipping the rest of its object */
    S_REST_STRING,
    S_REST_ESCAPE,
};

enum { HEAD = 1024 };

void kt_framer_init(struct kt_framer *f, int mode, size_t max, uint64_t off, uint64_t line)
{
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    f->state = S_BETWEEN;
    f->max = max;
    f->base = off;
    f->line = line > 0 ? line : 1;
    f->col0 = 1;
}

static int in_frame(const struct kt_framer *f)
{
    return f->state != S_BETWEEN;
}

size_t kt_framer_keep(const struct kt_framer *f)
{
    return in_frame(f) && !f->oversize ? f->vstart : f->pos;
}

void kt_framer_shift(struct kt_framer *f, size_t n)
{
    f->base += n;
    f->pos -= n;
    f->vstart = f->vstart >= n ? f->vstart - n : 0;
    f->sstart = f->sstart >= n ? f->sstart - n : 0;
}

int kt_framer_mode(const struct kt_framer *f)
{
    return f->mode;
}

uint64_t kt_framer_offset(const struct kt_framer *f)
{
    return f->base + (in_frame(f) && !f->oversize ? f->vstart : f->pos);
}

static void begin(struct kt_framer *f, int state)
{
    f->state = state;
    f->vstart = f->pos;
    f->voff = f->base + f->pos;
    f->vline = f->line;
    f->vcol0 = f->col0;
    f->vlines = 0;
    f->depth = 0;
    f->items = 0;
    f->oversize = 0;
    f->headlen = 0;
    memcpy(f->vstamp, f->stamp, f->stamplen);
    f->vstamplen = f->stamplen;
    f->stamplen = 0;
}

/* Emit buf[vstart, end) as a value or, with a reason, as a reject; then go between values. */
static void emit(struct kt_framer *f, const char *buf, size_t end, const char *reason,
                 struct kt_frame *out)
{
    out->off = f->voff;
    out->line = f->vline;
    if (f->vstamplen > 0) {
        out->stamp = f->vstamp;
        out->stamplen = f->vstamplen;
    }
    if (f->oversize) {
        out->kind = KT_FRAME_REJECT;
        out->reason = KT_FRAME_OVERSIZE;
        out->ptr = f->head;
        out->len = f->headlen;
    } else if (reason != NULL) {
        size_t len = end - f->vstart;
        out->kind = KT_FRAME_REJECT;
        out->reason = reason;
        out->ptr = buf + f->vstart;
        out->len = len < HEAD ? len : HEAD;
    } else {
        out->kind = KT_FRAME_VALUE;
        out->reason = NULL;
        out->ptr = buf + f->vstart;
        out->len = end - f->vstart;
    }
    f->state = S_BETWEEN;
    f->oversize = 0;
}

/* The value grew past max: keep its first KB and let the caller drop the rest. */
static void check_size(struct kt_framer *f, const char *buf)
{
    if (!f->oversize && f->pos - f->vstart > f->max) {
        f->headlen = f->pos - f->vstart < HEAD ? f->pos - f->vstart : HEAD;
        memcpy(f->head, buf + f->vstart, f->headlen);
        f->oversize = 1;
    }
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Scan a string body quickly: stop at '"', '\\' or '\n'. Most of the input is string bodies,
 * so this loop is the framer's hot path: 16 bytes at a time with SSE2 where available. */
static size_t scan_string(const char *buf, size_t pos, size_t len)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i slash = _mm_set1_epi8('\\');
    const __m128i nl = _mm_set1_epi8('\n');
    while (pos + 16 <= len) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(buf + pos));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                                   _mm_cmpeq_epi8(v, nl));
        int mask = _mm_movemask_epi8(hit);
        if (mask != 0) {
            return pos + (size_t)__builtin_ctz((unsigned)mask);
        }
        pos += 16;
    }
#endif
    while (pos < len) {
        char c = buf[pos];
        if (c == '"' || c == '\\' || c == '\n') {
            break;
        }
        pos++;
    }
    return pos;
}

/*
 * At the start of a line in buf[pos, len): a CloudWatch Logs export prefix,
 * "YYYY-MM-DDT<time> {"? 1 with *plen the bytes before the '{', 0 when not, -1 when more
 * bytes are needed to tell.
 */
static int stamp_prefix(const char *buf, size_t pos, size_t len, int eof, size_t *plen)
{
    static const char shape[] = "dddd-dd-ddT";
    size_t i = 0;
    for (; i < sizeof(shape) - 1; i++) {
        if (pos + i >= len) {
            return eof ? 0 : -1;
        }
        char c = buf[pos + i];
        if (shape[i] == 'd' ? (c < '0' || c > '9') : c != shape[i]) {
            return 0;
        }
    }
    for (; i < 39; i++) {
        if (pos + i >= len) {
            return eof ? 0 : -1;
        }
        char c = buf[pos + i];
        if (c == ' ') {
            if (pos + i + 1 >= len) {
                return eof ? 0 : -1;
            }
            if (buf[pos + i + 1] != '{') {
                return 0;
            }
            *plen = i;
            return 1;
        }
        if (!((c >= '0' && c <= '9') || c == ':' || c == '.' || c == '-' || c == '+' || c == 'Z' ||
              c == 'z')) {
            return 0;
        }
    }
    return 0;
}

static void newline(struct kt_framer *f)
{
    f->line++;
    f->col0 = 1;
}

void kt_framer_next(struct kt_framer *f, const char *buf, size_t len, int eof, struct kt_frame *out)
{
    memset(out, 0, sizeof(*out));
    while (f->pos < len) {
        char c = buf[f->pos];
        switch (f->state) {
        case S_BETWEEN:
            if (is_space(c)) {
                f->pos++;
                if (c == '\n') {
                    newline(f);
                } else {
                    f->col0 = 0;
                }
                continue;
            }
            if (c == ',' && f->mode != KT_FRAME_TOP) {
                f->pos++;
                f->col0 = 0;
                continue;
            }
            if (c == '[' && f->mode == KT_FRAME_TOP) {
                f->mode = KT_FRAME_ARRAY;
                f->pos++;
                f->col0 = 0;
                continue;
            }
            if (c == ']' && f->mode == KT_FRAME_ARRAY) {
                f->mode = KT_FRAME_TOP;
                f->pos++;
                f->col0 = 0;
                continue;
            }
            if (c == ']' && f->mode == KT_FRAME_ITEMS) {
                begin(f, S_REST);
                f->depth = 1; /* still inside the EventList object */
                f->pos++;
                f->col0 = 0;
                continue;
            }
            if (f->col0 && c >= '0' && c <= '9' && f->mode == KT_FRAME_TOP) {
                size_t plen = 0;
                int m = stamp_prefix(buf, f->pos, len, eof, &plen);
                if (m < 0) {
                    out->kind = KT_FRAME_MORE;
                    return;
                }
                if (m > 0) {
                    memcpy(f->stamp, buf + f->pos, plen);
                    f->stamplen = plen;
                    f->pos += plen + 1;
                    f->col0 = 0;
                    continue;
                }
            }
            if (c == '{') {
                begin(f, S_VALUE);
                f->depth = 1;
                f->pos++;
                f->col0 = 0;
                continue;
            }
            begin(f, S_JUNK);
            continue;
        case S_JUNK:
            if (c == '\n') {
                emit(f, buf, f->pos, "not JSON: text outside any JSON value", out);
                f->pos++;
                newline(f);
                return;
            }
            f->pos++;
            f->col0 = 0;
            check_size(f, buf);
            continue;
        case S_VALUE:
            f->pos++;
            f->col0 = 0;
            if (f->items == 1 && !is_space(c)) {
                f->items = c == ':' ? 2 : 0;
                if (c == ':') {
                    continue;
                }
            } else if (f->items == 2 && !is_space(c)) {
                f->items = 0;
                if (c == '[') {
                    /* an EventList: its items are the values */
                    f->mode = KT_FRAME_ITEMS;
                    f->state = S_BETWEEN;
                    continue;
                }
            }
            if (c == '"') {
                f->state = S_STRING;
                f->sstart = f->pos;
            } else if (c == '{' || c == '[') {
                f->depth++;
            } else if (c == '}' || c == ']') {
                if (--f->depth == 0) {
                    emit(f, buf, f->pos, NULL, out);
                    return;
                }
            } else if (c == '\n') {
                f->pos--; /* look at the next line before deciding */
                if (f->pos + 1 >= len && !eof) {
                    return; /* MORE */
                }
                int truncated =
                    f->vcol0 && !f->vlines && f->pos + 1 < len && buf[f->pos + 1] == '{';
                if (truncated) {
                    emit(f, buf, f->pos, "truncated JSON: the next line starts a new value", out);
                    f->pos++;
                    newline(f);
                    return;
                }
                f->pos++;
                f->vlines = 1;
                newline(f);
            }
            check_size(f, buf);
            continue;
        case S_STRING:
            f->pos = scan_string(buf, f->pos, len);
            if (f->pos >= len) {
                check_size(f, buf);
                continue;
            }
            c = buf[f->pos];
            if (c == '"') {
                f->pos++;
                f->state = S_VALUE;
                /* a key "items" directly inside a top-level object? */
                if (f->mode == KT_FRAME_TOP && f->depth == 1 && f->pos - f->sstart == 6 &&
                    memcmp(buf + f->sstart, "items", 5) == 0) {
                    f->items = 1;
                }
            } else if (c == '\\') {
                f->pos++;
                f->state = S_ESCAPE;
            } else { /* a raw newline: the string, and the value, are broken */
                emit(f, buf, f->pos, "invalid JSON: line break inside a string (truncated?)", out);
                f->pos++;
                newline(f);
                return;
            }
            check_size(f, buf);
            continue;
        case S_ESCAPE:
            if (c == '\n') {
                f->state = S_STRING; /* let S_STRING reject it */
                continue;
            }
            f->pos++;
            f->state = S_STRING;
            continue;
        case S_REST:
            f->pos++;
            if (c == '"') {
                f->state = S_REST_STRING;
            } else if (c == '{' || c == '[') {
                f->depth++;
            } else if ((c == '}' || c == ']') && --f->depth == 0) {
                f->state = S_BETWEEN;
                f->mode = KT_FRAME_TOP;
            } else if (c == '\n') {
                newline(f);
            }
            continue;
        case S_REST_STRING:
            f->pos++;
            if (c == '"') {
                f->state = S_REST;
            } else if (c == '\\') {
                f->state = S_REST_ESCAPE;
            }
            continue;
        case S_REST_ESCAPE:
            f->pos++;
            f->state = S_REST_STRING;
            continue;
        }
    }
    if (eof && (f->state == S_VALUE || f->state == S_STRING || f->state == S_ESCAPE)) {
        emit(f, buf, len, "truncated JSON at end of input", out);
        return;
    }
    if (eof && f->state == S_JUNK) {
        emit(f, buf, len, "not JSON: text outside any JSON value", out);
        return;
    }
    out->kind = KT_FRAME_MORE;
}
