/*
 * cidr.c: address prefixes for the in_cidr operator.
 *
 * The rule compiler parses each prefix once ("10.0.0.0/8", "2001:db8::/32", or a bare address
 * meaning that one host) into binary form; the evaluator parses the field's value (a source
 * IP, an external IP...) on the stack and compares the leading bits, so matching allocates
 * nothing. An IPv4-mapped IPv6 address (::ffff:10.1.2.3, what a dual-stack listener reports)
 * is its IPv4 address, so 10.0.0.0/8 covers it; anything that is not an address (a hostname,
 * an address with a port or a zone) is inside no prefix.
 */
#include <arpa/inet.h>
#include <string.h>

#include "rules_int.h"

/* ::ffff:a.b.c.d */
static int v4_mapped(const uint8_t a[16])
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, prefix, sizeof(prefix)) == 0;
}

int cidr_addr_parse(const char *s, size_t len, uint8_t out[16])
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (s == NULL || len == 0 || len >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (memchr(buf, ':', len) == NULL) {
        return inet_pton(AF_INET, buf, out) == 1 ? 4 : 0;
    }
    if (inet_pton(AF_INET6, buf, out) != 1) {
        return 0;
    }
    if (v4_mapped(out)) {
        memmove(out, out + 12, 4);
        return 4;
    }
    return 6;
}

int cidr_parse(const char *s, size_t len, struct cidr *c)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - s) : len;
    memset(c, 0, sizeof(*c));
    uint8_t a[16];
    /* parsed as written (a mapped prefix is rewritten below, with its length) */
    char buf[INET6_ADDRSTRLEN + 1];
    if (alen == 0 || alen >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    int fam = memchr(buf, ':', alen) == NULL ? 4 : 6;
    if (inet_pton(fam == 4 ? AF_INET : AF_INET6, buf, a) != 1) {
        return -1;
    }
    unsigned max = fam == 4 ? 32 : 128, bits = max;
    if (slash != NULL) {
        size_t n = len - alen - 1;
        if (n == 0 || n > 3) {
            return -1;
        }
        bits = 0;
        for (size_t i = 0; i < n; i++) {
            char d = slash[1 + i];
            if (d < '0' || d > '9') {
                return -1;
            }
            bits = bits * 10 + (unsigned)(d - '0');
        }
        if (bits > max) {
            return -1;
        }
    }
    if (fam == 6 && bits >= 96 && v4_mapped(a)) {
        /* ::ffff:10.0.0.0/104 is 10.0.0.0/8: values are compared as IPv4 */
        memmove(a, a + 12, 4);
        fam = 4;
        bits -= 96;
    }
    c->family = (uint8_t)fam;
    c->bits = (uint8_t)bits;
    /* clear the host bits: 10.1.2.3/8 is 10.0.0.0/8 */
    size_t nbytes = fam == 4 ? 4 : 16;
    for (size_t i = 0; i < nbytes; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * (unsigned)i : 0;
        c->addr[i] = (uint8_t)(a[i] & (uint8_t)(0xff00u >> keep));
    }
    return 0;
}

int cidr_match(const struct cidr *c, size_t n, struct kt_str s)
{
    uint8_t a[16];
    int fam = cidr_addr_parse(s.ptr, s.len, a);
    if (fam == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (c[i].family != fam) {
            continue;
        }
        unsigned whole = c[i].bits / 8, rest = c[i].bits % 8;
        if (memcmp(a, c[i].addr, whole) != 0) {
            continue;
        }
        if (rest == 0 || (a[whole] & (uint8_t)(0xff00u >> rest)) == c[i].addr[whole]) {
            return 1;
        }
    }
    return 0;
}
