/*
 * salvage.c: repairing an audit event cut short by its transport (see salvage.h).
 *
 * One pass over the bytes with a small state machine: a stack of the open containers (bounded
 * by MAX_DEPTH, no recursion) and the last "safe point", the offset just after a '{' or '[' or
 * just after a complete member value or array element. Cutting the text at the safe point and
 * closing the containers open there gives valid JSON that keeps every complete member. The
 * containers below the safe point's depth cannot change after it is recorded: closing one of
 * them completes a value, which records a new safe point. So the safe point is an offset and a
 * depth, and the stack itself gives the closing brackets.
 *
 * The scan also validates what it reads (string escapes, UTF-8 sequences as yajl checks them,
 * number grammar, literals, the punctuation between members), so the kept prefix is JSON the
 * decoder accepts. A cut inside a multi-byte character is inside an unclosed string, which is
 * dropped with its member.
 */
#include "salvage.h"

#include <stdio.h>

enum {
    MAX_DEPTH = 256, /* containers open at once; deeper input is treated as cut there */
    TS_STAGE = 1,    /* top-level "stageTimestamp" is complete */
    TS_RECEIVED = 2, /* top-level "requestReceivedTimestamp" is complete */
};

/* Where the scanner stands. */
enum state {
    ST_START,        /* before the top-level '{' */
    ST_KEY_OR_END,   /* just after '{': a key or '}' */
    ST_KEY,          /* after ',' in an object: a key */
    ST_IN_KEY,       /* inside a key string */
    ST_COLON,        /* after a key: ':' */
    ST_VALUE,        /* after ':' or after ',' in an array: a value */
    ST_VALUE_OR_END, /* just after '[': a value or ']' */
    ST_AFTER,        /* after a value: ',' or the closing bracket */
    ST_IN_STR,       /* inside a string value */
    ST_NUMBER,       /* inside a number (see enum num) */
    ST_LITERAL,      /* inside true, false or null */
    ST_DONE,         /* the top-level object is closed: only whitespace may follow */
};

/* Number grammar (RFC 8259), one state per position; those marked "may end" may end it. */
enum num {
    N_MINUS,   /* after '-': a digit */
    N_ZERO,    /* after a leading 0 (may end) */
    N_INT,     /* in the integer digits (may end) */
    N_DOT,     /* after '.': a digit */
    N_FRAC,    /* in the fraction digits (may end) */
    N_EXP,     /* after 'e' or 'E': a sign or a digit */
    N_EXPSIGN, /* after the exponent's sign: a digit */
    N_EXPDIG,  /* in the exponent digits (may end) */
};

struct scan {
    const char *p;         /* the text (borrowed) */
    size_t n;              /* its length */
    enum state st;         /* current state */
    char stack[MAX_DEPTH]; /* open containers, '{' or '[', outermost first */
    size_t depth;          /* entries used in stack */
    size_t safe_pos;       /* cut here (exclusive) ... */
    size_t safe_depth;     /* ... and close stack[1, safe_depth) there */
    size_t members;        /* complete top-level members */
    size_t close_pos;      /* offset of the top-level '}' when ST_DONE */
    size_t key_start;      /* first byte of the top-level key being read */
    int key_ts;            /* TS_* bit of the last top-level key, or 0 */
    int ts_seen;           /* TS_* bits of the complete top-level timestamps */
    int esc;               /* in a string: 1 after '\\', 0 otherwise */
    int hexleft;           /* in a string: hex digits of a \u escape still to come */
    int utf8left;          /* in a string: continuation bytes of a UTF-8 sequence to come */
    enum num num;          /* in a number: where */
    const char *lit;       /* in a literal: its spelling */
    size_t lit_i;          /* in a literal: bytes matched */
};

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A value ended just before offset end: it is a safe point, and maybe a top-level member. */
static void value_done(struct scan *s, size_t end)
{
    s->st = ST_AFTER;
    s->safe_pos = end;
    s->safe_depth = s->depth;
    if (s->depth == 1) {
        s->members++;
        s->ts_seen |= s->key_ts;
    }
}

/* Open a container at offset i. 0, or 1 when it would be too deep (the text is cut there). */
static int push(struct scan *s, size_t i, char c)
{
    if (s->depth == MAX_DEPTH) {
        return 1;
    }
    if (s->depth == 1) {
        /* a top-level member whose value is a container is kept from here on (as {} at
         * least), so its key counts as present */
        s->ts_seen |= s->key_ts;
    }
    s->stack[s->depth++] = c;
    s->safe_pos = i + 1;
    s->safe_depth = s->depth;
    s->st = c == '{' ? ST_KEY_OR_END : ST_VALUE_OR_END;
    return 0;
}

/* Close the innermost container with c at offset i. 0, or KT_EPARSE on a mismatch. */
static int pop(struct scan *s, size_t i, char c)
{
    if (s->depth == 0 || s->stack[s->depth - 1] != (c == '}' ? '{' : '[')) {
        return KT_EPARSE;
    }
    s->depth--;
    if (s->depth == 0) {
        s->st = ST_DONE;
        s->close_pos = i;
    } else {
        value_done(s, i + 1);
    }
    return 0;
}

/* Which timestamp a top-level key names (raw bytes; escaped spellings do not count). */
static int key_ts(const char *k, size_t len)
{
    if (len == 14 && memcmp(k, "stageTimestamp", 14) == 0) {
        return TS_STAGE;
    }
    if (len == 24 && memcmp(k, "requestReceivedTimestamp", 24) == 0) {
        return TS_RECEIVED;
    }
    return 0;
}

/* Start a value with its first byte c at offset i. 0, 1 when cut (too deep), or KT_EPARSE. */
static int start_value(struct scan *s, size_t i, char c)
{
    switch (c) {
    case '{':
    case '[':
        return push(s, i, c);
    case '"':
        s->st = ST_IN_STR;
        s->esc = 0;
        s->hexleft = 0;
        s->utf8left = 0;
        return 0;
    case 't':
        s->lit = "true";
        break;
    case 'f':
        s->lit = "false";
        break;
    case 'n':
        s->lit = "null";
        break;
    case '-':
        s->st = ST_NUMBER;
        s->num = N_MINUS;
        return 0;
    default:
        if (c >= '0' && c <= '9') {
            s->st = ST_NUMBER;
            s->num = c == '0' ? N_ZERO : N_INT;
            return 0;
        }
        return KT_EPARSE;
    }
    s->st = ST_LITERAL;
    s->lit_i = 1;
    return 0;
}

/*
 * One byte of a string (key or value). Returns 1 at the closing quote, 0 inside the string,
 * KT_EPARSE on a bad escape, a raw control character or a malformed UTF-8 sequence (the
 * checks yajl makes: a lead byte 110xxxxx, 1110xxxx or 11110xxx, then 10xxxxxx bytes).
 */
static int string_byte(struct scan *s, char c)
{
    unsigned char u = (unsigned char)c;
    if (s->utf8left > 0) {
        if ((u & 0xC0) != 0x80) {
            return KT_EPARSE;
        }
        s->utf8left--;
        return 0;
    }
    if (u >= 0x80) {
        if ((u >> 5) == 0x6) {
            s->utf8left = 1;
        } else if ((u >> 4) == 0xE) {
            s->utf8left = 2;
        } else if ((u >> 3) == 0x1E) {
            s->utf8left = 3;
        } else {
            return KT_EPARSE;
        }
        return 0;
    }
    if (s->hexleft > 0) {
        if (!is_hex(c)) {
            return KT_EPARSE;
        }
        s->hexleft--;
        return 0;
    }
    if (s->esc) {
        s->esc = 0;
        switch (c) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            return 0;
        case 'u':
            s->hexleft = 4;
            return 0;
        default:
            return KT_EPARSE;
        }
    }
    if (c == '"') {
        return 1;
    }
    if (c == '\\') {
        s->esc = 1;
        return 0;
    }
    if (u < 0x20) {
        return KT_EPARSE;
    }
    return 0;
}

/*
 * One byte of a number. Returns 0 when it belongs to the number, 1 when the number ended just
 * before it (the byte is then read again in ST_AFTER), KT_EPARSE when the number is malformed.
 */
static int number_byte(struct scan *s, char c)
{
    int digit = c >= '0' && c <= '9';
    switch (s->num) {
    case N_MINUS:
        if (!digit) {
            return KT_EPARSE;
        }
        s->num = c == '0' ? N_ZERO : N_INT;
        return 0;
    case N_ZERO:
    case N_INT:
        if (digit && s->num == N_INT) {
            return 0;
        }
        if (c == '.') {
            s->num = N_DOT;
            return 0;
        }
        if (c == 'e' || c == 'E') {
            s->num = N_EXP;
            return 0;
        }
        return 1;
    case N_DOT:
        if (!digit) {
            return KT_EPARSE;
        }
        s->num = N_FRAC;
        return 0;
    case N_FRAC:
        if (digit) {
            return 0;
        }
        if (c == 'e' || c == 'E') {
            s->num = N_EXP;
            return 0;
        }
        return 1;
    case N_EXP:
        if (c == '+' || c == '-') {
            s->num = N_EXPSIGN;
            return 0;
        }
        if (!digit) {
            return KT_EPARSE;
        }
        s->num = N_EXPDIG;
        return 0;
    case N_EXPSIGN:
        if (!digit) {
            return KT_EPARSE;
        }
        s->num = N_EXPDIG;
        return 0;
    case N_EXPDIG:
        return digit ? 0 : 1;
    }
    return KT_EPARSE;
}

/*
 * Scan s->p[0, s->n). 0 when the scan reached the end of the text, was cut by the depth limit,
 * or closed the top-level object (ST_DONE); KT_EPARSE on invalid JSON.
 */
static int scan_text(struct scan *s)
{
    size_t i = 0;
    while (i < s->n) {
        char c = s->p[i];
        int rc = 0;
        switch (s->st) {
        case ST_START:
            if (is_ws(c)) {
                break;
            }
            if (c != '{') {
                return KT_EPARSE;
            }
            rc = push(s, i, c);
            break;
        case ST_KEY_OR_END:
        case ST_KEY:
            if (is_ws(c)) {
                break;
            }
            if (c == '}' && s->st == ST_KEY_OR_END) {
                rc = pop(s, i, c);
            } else if (c == '"') {
                s->st = ST_IN_KEY;
                s->esc = 0;
                s->hexleft = 0;
                s->utf8left = 0;
                s->key_start = i + 1;
            } else {
                return KT_EPARSE;
            }
            break;
        case ST_IN_KEY:
            rc = string_byte(s, c);
            if (rc == 1) {
                if (s->depth == 1) {
                    s->key_ts = key_ts(s->p + s->key_start, i - s->key_start);
                }
                s->st = ST_COLON;
                rc = 0;
            }
            break;
        case ST_COLON:
            if (is_ws(c)) {
                break;
            }
            if (c != ':') {
                return KT_EPARSE;
            }
            s->st = ST_VALUE;
            break;
        case ST_VALUE_OR_END:
        case ST_VALUE:
            if (is_ws(c)) {
                break;
            }
            if (c == ']' && s->st == ST_VALUE_OR_END) {
                rc = pop(s, i, c);
            } else {
                rc = start_value(s, i, c);
            }
            break;
        case ST_AFTER:
            if (is_ws(c)) {
                break;
            }
            if (c == ',') {
                s->st = s->stack[s->depth - 1] == '{' ? ST_KEY : ST_VALUE;
            } else if (c == '}' || c == ']') {
                rc = pop(s, i, c);
            } else {
                return KT_EPARSE;
            }
            break;
        case ST_IN_STR:
            rc = string_byte(s, c);
            if (rc == 1) {
                value_done(s, i + 1);
                rc = 0;
            }
            break;
        case ST_NUMBER:
            rc = number_byte(s, c);
            if (rc == 1) {
                value_done(s, i);
                continue; /* read c again, after the value */
            }
            break;
        case ST_LITERAL:
            if (c != s->lit[s->lit_i]) {
                return KT_EPARSE;
            }
            s->lit_i++;
            if (s->lit[s->lit_i] == '\0') {
                value_done(s, i + 1);
            }
            break;
        case ST_DONE:
            if (!is_ws(c)) {
                return KT_EPARSE;
            }
            break;
        }
        if (rc < 0) {
            return rc;
        }
        if (rc == 1) {
            return 0; /* too deep: cut here */
        }
        i++;
    }
    return 0;
}

/* Append the timestamps missing from seen (TS_* bits), each preceded by a comma when the
 * object already has a member. 0 or KT_ENOMEM. */
static int append_times(struct kt_buf *out, int seen, int has_member, int64_t time_us)
{
    char ts[64];
    char member[160];
    static const struct {
        int bit;
        const char *key;
    } keys[] = {{TS_RECEIVED, "requestReceivedTimestamp"}, {TS_STAGE, "stageTimestamp"}};

    if (time_us == 0 || kt_format_rfc3339(time_us, ts) == 0) {
        return 0; /* no time, or a year outside 0000-9999 */
    }
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        if (seen & keys[k].bit) {
            continue;
        }
        snprintf(member, sizeof(member), "%s\"%s\":\"%s\"", has_member ? "," : "", keys[k].key, ts);
        if (kt_buf_puts(out, member) != 0) {
            return KT_ENOMEM;
        }
        has_member = 1;
    }
    return 0;
}

int kt_salvage_event(const char *p, size_t n, int64_t time_us, struct kt_buf *out)
{
    struct scan s;
    size_t old_len = out->len;
    int rc = 0;

    memset(&s, 0, sizeof(s));
    s.p = p;
    s.n = n;
    rc = scan_text(&s);
    if (rc != 0) {
        goto cleanup;
    }
    if (s.st == ST_START) {
        rc = KT_EPARSE; /* empty or only whitespace */
        goto cleanup;
    }
    if (s.st == ST_DONE) {
        /* complete: unchanged, the timestamps inserted before the final '}' if missing */
        if (kt_buf_append(out, p, s.close_pos) != 0 ||
            append_times(out, s.ts_seen, s.members > 0, time_us) != 0 ||
            kt_buf_append(out, p + s.close_pos, n - s.close_pos) != 0) {
            rc = KT_ENOMEM;
        }
        goto cleanup;
    }
    if (kt_buf_append(out, p, s.safe_pos) != 0) {
        rc = KT_ENOMEM;
        goto cleanup;
    }
    for (size_t d = s.safe_depth; d > 1; d--) {
        char close = s.stack[d - 1] == '{' ? '}' : ']';
        if (kt_buf_append(out, &close, 1) != 0) {
            rc = KT_ENOMEM;
            goto cleanup;
        }
    }
    /* a top-level member still open at the safe point is kept, closed, so it counts */
    if (append_times(out, s.ts_seen, s.members > 0 || s.safe_depth > 1, time_us) != 0 ||
        kt_buf_append(out, "}", 1) != 0) {
        rc = KT_ENOMEM;
        goto cleanup;
    }

cleanup:
    if (rc != 0) {
        out->len = old_len;
    }
    return rc;
}
