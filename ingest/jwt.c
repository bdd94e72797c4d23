/*
 * jwt.c: verifying Google-signed OIDC tokens for Pub/Sub push (see jwt.h).
 *
 * The keys are imported into GnuTLS public keys once, at load; a token is checked in the order
 * that trusts nothing early: its shape and size, the header (alg RS256, a known kid), the
 * RS256 signature over the ASCII "header.payload", and only then the payload's claims. Every
 * input is bounded (token size, JWKS file size) and decoded strictly (base64url without
 * padding, canonical trailing bits), so hostile tokens get a precise one-line reason, never a
 * crash. JSON is small here (a header, a claim set, a key file read once), so yajl_tree is
 * simpler than the streaming callbacks the event decoder uses.
 */
#include "jwt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <yajl/yajl_tree.h>

enum {
    MAX_TOKEN = 16 * 1024,  /* longest token accepted (Google's are about 1 KiB) */
    MAX_JWKS = 1024 * 1024, /* largest JWKS file read (Google's is about 2 KiB) */
    MAX_KEYS = 64,          /* keys kept from one JWKS file */
    MAX_KID = 128,          /* longest key id kept, NUL included */
    MIN_RSA_BITS = 2048,    /* smaller RSA keys are not usable (Google's are 2048) */
    SKEW_S = 60,            /* clock skew allowed on exp, iat and nbf */
};

/* One RSA signing key. */
struct jwk {
    char kid[MAX_KID];   /* key id, as the token's header names it */
    gnutls_pubkey_t pub; /* the imported public key (owned) */
};

struct kt_jwks {
    struct jwk keys[MAX_KEYS]; /* the usable keys, in file order */
    size_t nkeys;              /* entries used */
};

/* The issuers Google's OIDC tokens carry. */
static const char *const ISSUERS[] = {"https://accounts.google.com", "accounts.google.com"};

/* ---- base64url ---- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

/*
 * Decode the unpadded base64url text s[0, len) into a new buffer (*out, owned, NUL-terminated
 * for JSON parsing; *outlen bytes without the NUL). 0, KT_EPARSE on a character outside the
 * alphabet (padding included), an impossible length or non-zero unused bits, KT_ENOMEM.
 */
static int b64url_decode(const char *s, size_t len, unsigned char **out, size_t *outlen)
{
    unsigned char *buf = NULL;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    int rc = 0;

    *out = NULL;
    *outlen = 0;
    if (len % 4 == 1) {
        rc = KT_EPARSE; /* 6 bits cannot end a byte */
        goto cleanup;
    }
    buf = malloc(len / 4 * 3 + 3 + 1);
    if (buf == NULL) {
        rc = KT_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0) {
            rc = KT_EPARSE;
            goto cleanup;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) {
        rc = KT_EPARSE; /* the unused low bits of the last character must be zero */
        goto cleanup;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    buf = NULL;

cleanup:
    free(buf);
    return rc;
}

/* ---- small helpers ---- */

/* printf into a message buffer that may be NULL or empty. */
static void say(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (buf == NULL || len == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* Copy at most 32 printable ASCII bytes of s into buf (64 bytes), for quoting hostile text. */
static const char *printable(const char *s, char *buf)
{
    size_t n = 0;
    for (; s[n] != '\0' && n < 32; n++) {
        buf[n] = (s[n] >= 0x20 && s[n] < 0x7f && s[n] != '"') ? s[n] : '?';
    }
    buf[n] = '\0';
    return buf;
}

/* The member k of object o, or NULL. */
static yajl_val member(yajl_val o, const char *k)
{
    const char *path[] = {k, NULL};
    return yajl_tree_get(o, path, yajl_t_any);
}

/* The string member k of object o, or NULL when absent or not a string. */
static const char *str_member(yajl_val o, const char *k)
{
    yajl_val v = member(o, k);
    return YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

/*
 * A NumericDate claim (seconds, integer or not) into *out. 1 when present and a number in
 * range, 0 when absent, -1 when present but not a usable number.
 */
static int time_member(yajl_val o, const char *k, int64_t *out)
{
    yajl_val v = member(o, k);
    if (v == NULL) {
        return 0;
    }
    if (YAJL_IS_INTEGER(v)) {
        *out = (int64_t)YAJL_GET_INTEGER(v);
        return 1;
    }
    if (YAJL_IS_DOUBLE(v)) {
        double d = YAJL_GET_DOUBLE(v);
        if (isfinite(d) && d > -9.2e18 && d < 9.2e18) {
            int64_t t = (int64_t)d; /* toward zero; down for negatives (no libm here) */
            *out = (double)t > d ? t - 1 : t;
            return 1;
        }
    }
    return -1;
}

/* Parse the JSON text s (NUL-terminated, len bytes) into an object tree (owned), or NULL when
 * it is not one (an embedded NUL counts as not JSON). */
static yajl_val parse_object(const unsigned char *s, size_t len)
{
    if (memchr(s, '\0', len) != NULL) {
        return NULL;
    }
    yajl_val v = yajl_tree_parse((const char *)s, NULL, 0);
    if (v != NULL && !YAJL_IS_OBJECT(v)) {
        yajl_tree_free(v);
        v = NULL;
    }
    return v;
}

/* ---- the key set ---- */

/* The length of s without trailing '=' padding: JWKs should have none, but a key file written
 * by another tool may, and the operator's file is trusted more than a token. */
static size_t unpadded(const char *s)
{
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '=') {
        len--;
    }
    return len;
}

/*
 * Import one JWKS entry o into k if it is a usable RSA signing key. 0 when kept or skipped
 * (not RSA, no kid, another alg or use, too small), KT_EINVAL with errstr when an RSA key with
 * a kid is malformed, KT_ENOMEM.
 */
static int add_key(struct kt_jwks *k, yajl_val o, const char *path, char *errstr, size_t errlen)
{
    const char *kty = str_member(o, "kty");
    const char *kid = str_member(o, "kid");
    const char *alg = str_member(o, "alg");
    const char *use = str_member(o, "use");
    const char *n64 = str_member(o, "n");
    const char *e64 = str_member(o, "e");
    unsigned char *n = NULL;
    unsigned char *e = NULL;
    size_t nlen = 0;
    size_t elen = 0;
    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t dn = {NULL, 0};
    gnutls_datum_t de = {NULL, 0};
    unsigned int bits = 0;
    char q[64];
    int rc = 0;

    if (kty == NULL || strcmp(kty, "RSA") != 0 || kid == NULL || kid[0] == '\0' ||
        (alg != NULL && strcmp(alg, "RS256") != 0) || (use != NULL && strcmp(use, "sig") != 0)) {
        goto cleanup; /* not a key RS256 tokens are signed with */
    }
    if (strlen(kid) >= MAX_KID) {
        say(errstr, errlen, "%s: key id too long (%zu bytes)", path, strlen(kid));
        rc = KT_EINVAL;
        goto cleanup;
    }
    if (n64 == NULL || e64 == NULL || b64url_decode(n64, unpadded(n64), &n, &nlen) != 0 ||
        b64url_decode(e64, unpadded(e64), &e, &elen) != 0 || nlen == 0 || elen == 0) {
        say(errstr, errlen, "%s: key \"%s\": n and e must be base64url strings", path,
            printable(kid, q));
        rc = KT_EINVAL;
        goto cleanup;
    }
    dn.data = n;
    dn.size = (unsigned int)nlen;
    de.data = e;
    de.size = (unsigned int)elen;
    if (gnutls_pubkey_init(&pub) != 0) {
        rc = KT_ENOMEM;
        goto cleanup;
    }
    if (gnutls_pubkey_import_rsa_raw(pub, &dn, &de) != 0) {
        say(errstr, errlen, "%s: key \"%s\": not a valid RSA public key", path, printable(kid, q));
        rc = KT_EINVAL;
        goto cleanup;
    }
    if (gnutls_pubkey_get_pk_algorithm(pub, &bits) != GNUTLS_PK_RSA || bits < MIN_RSA_BITS) {
        goto cleanup; /* too small to trust: skipped */
    }
    if (k->nkeys == MAX_KEYS) {
        goto cleanup; /* Google publishes two or three; more are ignored */
    }
    snprintf(k->keys[k->nkeys].kid, MAX_KID, "%s", kid);
    k->keys[k->nkeys].pub = pub;
    k->nkeys++;
    pub = NULL;

cleanup:
    if (pub != NULL) {
        gnutls_pubkey_deinit(pub);
    }
    free(e);
    free(n);
    return rc;
}

/* Read the whole file at path into a new NUL-terminated buffer (*out, owned). 0, KT_EIO (the
 * errno in *err), KT_EFULL when larger than MAX_JWKS, KT_ENOMEM. */
static int read_file(const char *path, char **out, int *err)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc = 0;

    *out = NULL;
    f = fopen(path, "rb");
    if (f == NULL) {
        *err = errno;
        rc = KT_EIO;
        goto cleanup;
    }
    buf = malloc(MAX_JWKS + 1);
    if (buf == NULL) {
        rc = KT_ENOMEM;
        goto cleanup;
    }
    len = fread(buf, 1, MAX_JWKS + 1, f);
    if (ferror(f)) {
        *err = errno;
        rc = KT_EIO;
        goto cleanup;
    }
    if (len > MAX_JWKS) {
        rc = KT_EFULL;
        goto cleanup;
    }
    buf[len] = '\0';
    *out = buf;
    buf = NULL;

cleanup:
    free(buf);
    if (f != NULL) {
        fclose(f);
    }
    return rc;
}

int kt_jwks_load(const char *path, struct kt_jwks **out, char *errstr, size_t errlen)
{
    struct kt_jwks *k = NULL;
    char *text = NULL;
    yajl_val root = NULL;
    yajl_val keys = NULL;
    char err[256];
    int ioerr = 0;
    int rc = 0;

    *out = NULL;
    rc = read_file(path, &text, &ioerr);
    if (rc == KT_EIO) {
        say(errstr, errlen, "%s: cannot read: %s", path, strerror(ioerr));
        goto cleanup;
    }
    if (rc == KT_EFULL) {
        say(errstr, errlen, "%s: larger than %d bytes, not a JWKS", path, MAX_JWKS);
        rc = KT_EINVAL;
        goto cleanup;
    }
    if (rc != 0) {
        say(errstr, errlen, "%s: %s", path, kt_strerror(rc));
        goto cleanup;
    }
    err[0] = '\0';
    root = yajl_tree_parse(text, err, sizeof(err));
    if (root == NULL) {
        err[strcspn(err, "\n")] = '\0'; /* yajl's message goes on to quote the text */
        say(errstr, errlen, "%s: not JSON: %s", path, err);
        rc = KT_EINVAL;
        goto cleanup;
    }
    keys = member(root, "keys");
    if (!YAJL_IS_OBJECT(root) || !YAJL_IS_ARRAY(keys)) {
        say(errstr, errlen, "%s: not a JWKS (no \"keys\" array)", path);
        rc = KT_EINVAL;
        goto cleanup;
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL) {
        say(errstr, errlen, "%s: %s", path, kt_strerror(KT_ENOMEM));
        rc = KT_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < YAJL_GET_ARRAY(keys)->len; i++) {
        yajl_val o = YAJL_GET_ARRAY(keys)->values[i];
        if (!YAJL_IS_OBJECT(o)) {
            continue;
        }
        rc = add_key(k, o, path, errstr, errlen);
        if (rc == KT_ENOMEM) {
            say(errstr, errlen, "%s: %s", path, kt_strerror(rc));
        }
        if (rc != 0) {
            goto cleanup;
        }
    }
    if (k->nkeys == 0) {
        say(errstr, errlen, "%s: no usable RSA key (RS256, with kid, n and e, %d bits or more)",
            path, MIN_RSA_BITS);
        rc = KT_EINVAL;
        goto cleanup;
    }
    *out = k;
    k = NULL;

cleanup:
    kt_jwks_destroy(k);
    yajl_tree_free(root);
    free(text);
    return rc;
}

void kt_jwks_destroy(struct kt_jwks *k)
{
    if (k == NULL) {
        return;
    }
    for (size_t i = 0; i < k->nkeys; i++) {
        gnutls_pubkey_deinit(k->keys[i].pub);
    }
    free(k);
}

/* ---- tokens ---- */

/* Whether v is the string s. */
static int string_is(yajl_val v, const char *s)
{
    const char *vs = YAJL_IS_STRING(v) ? v->u.string : NULL;
    return vs != NULL && strcmp(vs, s) == 0;
}

/* Whether the aud claim (a string or an array of strings) names audience. */
static int audience_ok(yajl_val aud, const char *audience)
{
    if (YAJL_IS_ARRAY(aud)) {
        for (size_t i = 0; i < YAJL_GET_ARRAY(aud)->len; i++) {
            if (string_is(YAJL_GET_ARRAY(aud)->values[i], audience)) {
                return 1;
            }
        }
        return 0;
    }
    return string_is(aud, audience);
}

/* Check the claims of the verified payload p against audience and now_s, and copy email and
 * sub into c (may be NULL). 0, or KT_EPARSE with the reason in why. */
static int check_claims(yajl_val p, const char *audience, int64_t now_s, struct kt_jwt_claims *c,
                        char *why, size_t whylen)
{
    const char *iss = str_member(p, "iss");
    const char *email = str_member(p, "email");
    const char *sub = str_member(p, "sub");
    yajl_val aud = member(p, "aud");
    int64_t exp = 0;
    int64_t iat = 0;
    int64_t nbf = 0;
    int has_exp = time_member(p, "exp", &exp);
    int has_iat = time_member(p, "iat", &iat);
    int has_nbf = time_member(p, "nbf", &nbf);
    int iss_ok = 0;

    if (aud == NULL) {
        say(why, whylen, "no audience claim");
        return KT_EPARSE;
    }
    if (!audience_ok(aud, audience)) {
        say(why, whylen, "wrong audience");
        return KT_EPARSE;
    }
    for (size_t i = 0; iss != NULL && i < sizeof(ISSUERS) / sizeof(ISSUERS[0]); i++) {
        iss_ok |= strcmp(iss, ISSUERS[i]) == 0;
    }
    if (!iss_ok) {
        say(why, whylen, iss == NULL ? "no issuer claim" : "wrong issuer");
        return KT_EPARSE;
    }
    if (has_exp <= 0 || has_iat < 0 || has_nbf < 0) {
        say(why, whylen, has_exp == 0 ? "no exp claim" : "exp, iat or nbf is not a number");
        return KT_EPARSE;
    }
    /* the bounds with skew, saturated so that hostile or odd clocks cannot overflow */
    int64_t earliest = now_s > INT64_MIN + SKEW_S ? now_s - SKEW_S : INT64_MIN;
    int64_t latest = now_s < INT64_MAX - SKEW_S ? now_s + SKEW_S : INT64_MAX;
    if (exp <= earliest) {
        say(why, whylen, "token expired");
        return KT_EPARSE;
    }
    if ((has_iat && iat > latest) || (has_nbf && nbf > latest)) {
        say(why, whylen, "token not yet valid (%s in the future)",
            has_nbf && nbf > latest ? "nbf" : "iat");
        return KT_EPARSE;
    }
    if ((email != NULL && strlen(email) >= sizeof(c->email)) ||
        (sub != NULL && strlen(sub) >= sizeof(c->sub))) {
        say(why, whylen, "email or sub claim too long");
        return KT_EPARSE;
    }
    if (c != NULL) {
        yajl_val ev = member(p, "email_verified");
        snprintf(c->email, sizeof(c->email), "%s", email != NULL ? email : "");
        snprintf(c->sub, sizeof(c->sub), "%s", sub != NULL ? sub : "");
        c->email_verified =
            ev != NULL &&
            (YAJL_IS_TRUE(ev) || (YAJL_IS_STRING(ev) && strcmp(ev->u.string, "true") == 0));
    }
    return 0;
}

int kt_jwt_verify(const struct kt_jwks *k, const char *token, size_t len, const char *audience,
                  int64_t now_s, struct kt_jwt_claims *claims, char *why, size_t whylen)
{
    const char *dot1 = NULL;
    const char *dot2 = NULL;
    unsigned char *hdr = NULL;
    unsigned char *pay = NULL;
    unsigned char *sig = NULL;
    size_t hlen = 0;
    size_t plen = 0;
    size_t slen = 0;
    yajl_val h = NULL;
    yajl_val p = NULL;
    const struct jwk *key = NULL;
    const char *alg = NULL;
    const char *kid = NULL;
    gnutls_datum_t signed_part = {NULL, 0};
    gnutls_datum_t signature = {NULL, 0};
    char q[64];
    int rc = KT_EPARSE;

    say(why, whylen, "invalid token");
    if (claims != NULL) {
        memset(claims, 0, sizeof(*claims));
    }
    if (k == NULL || audience == NULL || audience[0] == '\0') {
        say(why, whylen, "no keys or audience configured");
        goto cleanup;
    }
    if (token == NULL || len == 0) {
        say(why, whylen, "not a JWT (empty)");
        goto cleanup;
    }
    if (len > MAX_TOKEN) {
        say(why, whylen, "token too long (%zu bytes, at most %d)", len, MAX_TOKEN);
        goto cleanup;
    }
    dot1 = memchr(token, '.', len);
    dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL) {
        say(why, whylen, "not a JWT (not three dot-separated parts)");
        goto cleanup;
    }
    if (dot1 == token || dot2 == dot1 + 1 || dot2 + 1 == token + len) {
        say(why, whylen, "not a JWT (empty part)");
        goto cleanup;
    }
    rc = b64url_decode(token, (size_t)(dot1 - token), &hdr, &hlen);
    if (rc == 0) {
        rc = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &pay, &plen);
    }
    if (rc == 0) {
        rc = b64url_decode(dot2 + 1, (size_t)(token + len - dot2 - 1), &sig, &slen);
    }
    if (rc != 0) {
        say(why, whylen, rc == KT_ENOMEM ? "out of memory" : "not a JWT (invalid base64url)");
        goto cleanup;
    }
    rc = KT_EPARSE;
    h = parse_object(hdr, hlen);
    if (h == NULL) {
        say(why, whylen, "not a JWT (header is not a JSON object)");
        goto cleanup;
    }
    alg = str_member(h, "alg");
    if (alg == NULL || strcmp(alg, "RS256") != 0) {
        say(why, whylen, "unsupported alg \"%s\" (RS256 required)",
            alg != NULL ? printable(alg, q) : "");
        goto cleanup;
    }
    if (member(h, "crit") != NULL) {
        say(why, whylen, "unsupported crit header");
        goto cleanup;
    }
    kid = str_member(h, "kid");
    if (kid == NULL) {
        say(why, whylen, "no key id in header");
        goto cleanup;
    }
    for (size_t i = 0; i < k->nkeys && key == NULL; i++) {
        if (strcmp(k->keys[i].kid, kid) == 0) {
            key = &k->keys[i];
        }
    }
    if (key == NULL) {
        say(why, whylen, "unknown key id \"%s\"", printable(kid, q));
        goto cleanup;
    }
    signed_part.data = (unsigned char *)token;
    signed_part.size = (unsigned int)(dot2 - token);
    signature.data = sig;
    signature.size = (unsigned int)slen;
    if (gnutls_pubkey_verify_data2(key->pub, GNUTLS_SIGN_RSA_SHA256, 0, &signed_part, &signature) <
        0) {
        say(why, whylen, "bad signature");
        goto cleanup;
    }
    p = parse_object(pay, plen);
    if (p == NULL) {
        say(why, whylen, "payload is not a JSON object");
        goto cleanup;
    }
    rc = check_claims(p, audience, now_s, claims, why, whylen);
    if (rc == 0 && why != NULL && whylen > 0) {
        why[0] = '\0';
    }

cleanup:
    yajl_tree_free(p);
    yajl_tree_free(h);
    free(sig);
    free(pay);
    free(hdr);
    return rc;
}
