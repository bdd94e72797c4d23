/*
 * test_jwt.c: Pub/Sub push tokens are accepted only when Google's key signed them for our
 * audience and they are in date; everything else is refused with a precise one-line reason.
 *
 * The group setup generates an RSA key with GnuTLS and writes a JWKS file holding it twice
 * (its modulus without and with the leading zero byte) among entries the loader must skip.
 * Tokens are built and signed here, with a base64url encoder of the test's own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "jwt.h"

#define AUD "https://ktrail.example.com/pubsub"
#define EMAIL "push@proj.iam.gserviceaccount.com"
#define NOW INT64_C(1715490781)

/* What every case shares: the signing key, the temporary directory, the loaded key set. */
struct fx {
    gnutls_x509_privkey_t x509; /* the generated key */
    gnutls_privkey_t priv;      /* the same, for signing */
    char dir[64];               /* temporary directory */
    char jwks[128];             /* the JWKS file in it */
    struct kt_jwks *k;          /* the JWKS loaded */
};

static struct fx fx;

/* ---- helpers ---- */

/* Base64url without padding of p[0, n) into a new string (owned). */
static char *b64url(const void *p, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *s = p;
    char *out = malloc(n / 3 * 4 + 5);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | s[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = abc[(acc >> bits) & 63];
        }
    }
    if (bits > 0) {
        out[o++] = abc[(acc << (6 - bits)) & 63];
    }
    out[o] = '\0';
    return out;
}

static char *b64url_str(const char *s)
{
    return b64url(s, strlen(s));
}

/* The token header.payload signed with the test key, the signature part replaced by sig64
 * when not NULL (owned). */
static char *token_with(const char *header, const char *payload, const char *sig64)
{
    char *h = b64url_str(header);
    char *p = b64url_str(payload);
    size_t len = strlen(h) + 1 + strlen(p);
    char *signed_part = malloc(len + 1);
    gnutls_datum_t sig = {NULL, 0};
    char *s = NULL;

    assert_non_null(signed_part);
    snprintf(signed_part, len + 1, "%s.%s", h, p);
    if (sig64 == NULL) {
        gnutls_datum_t data = {(unsigned char *)signed_part, (unsigned int)len};
        assert_int_equal(gnutls_privkey_sign_data(fx.priv, GNUTLS_DIG_SHA256, 0, &data, &sig), 0);
        s = b64url(sig.data, sig.size);
        gnutls_free(sig.data);
    } else {
        s = strdup(sig64);
    }
    char *tok = malloc(len + 1 + strlen(s) + 1);
    assert_non_null(tok);
    sprintf(tok, "%s.%s", signed_part, s);
    free(s);
    free(signed_part);
    free(p);
    free(h);
    return tok;
}

static char *token(const char *header, const char *payload)
{
    return token_with(header, payload, NULL);
}

/* A Google-shaped claim set; extra is inserted as more members (may be ""). */
static char *claims_json(const char *aud_json, const char *iss, int64_t exp, const char *extra)
{
    char *s = malloc(1024);
    assert_non_null(s);
    snprintf(s, 1024,
             "{\"aud\":%s,\"azp\":\"1234567890\",\"email\":\"" EMAIL "\",\"email_verified\":true,"
             "\"exp\":%lld,\"iat\":%lld,\"iss\":\"%s\",\"sub\":\"1234567890\"%s}",
             aud_json, (long long)exp, (long long)(NOW - 10), iss, extra);
    return s;
}

#define HDR_K1 "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}"

/* Verify tok; returns the code and leaves the reason in why (checked to be one line). */
static int verify(const char *tok, char *why, struct kt_jwt_claims *c)
{
    why[0] = '\0';
    int rc = kt_jwt_verify(fx.k, tok, strlen(tok), AUD, NOW, c, why, 128);
    assert_null(strchr(why, '\n'));
    if (rc != 0) {
        assert_int_equal(rc, KT_EPARSE);
        assert_true(why[0] != '\0');
    }
    return rc;
}

/* Verify a token with header HDR_K1 and payload; assert the outcome (reason NULL: accepted). */
static void expect(const char *payload, const char *reason)
{
    char why[128];
    char *tok = token(HDR_K1, payload);
    int rc = verify(tok, why, NULL);
    if (reason == NULL) {
        if (rc != 0) {
            fail_msg("refused (%s): %s", why, payload);
        }
    } else {
        assert_int_equal(rc, KT_EPARSE);
        if (strstr(why, reason) == NULL) {
            fail_msg("reason \"%s\", expected \"%s\"", why, reason);
        }
    }
    free(tok);
}

static void expect_claims(const char *aud, const char *iss, int64_t exp, const char *extra,
                          const char *reason)
{
    char *c = claims_json(aud, iss, exp, extra);
    expect(c, reason);
    free(c);
}

/* Write text to dir/name; the path goes to path (128 bytes). */
static void write_file(const char *name, const char *text, char *path)
{
    snprintf(path, 128, "%s/%s", fx.dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- setup: a key, a JWKS file ---- */

static int setup(void **state)
{
    gnutls_datum_t m = {NULL, 0}, e = {NULL, 0}, d = {NULL, 0}, p = {NULL, 0}, q = {NULL, 0},
                   u = {NULL, 0};
    char text[4096];

    if (gnutls_x509_privkey_init(&fx.x509) != 0 ||
        gnutls_x509_privkey_generate(fx.x509, GNUTLS_PK_RSA, 2048, 0) != 0 ||
        gnutls_privkey_init(&fx.priv) != 0 ||
        gnutls_privkey_import_x509(fx.priv, fx.x509, 0) != 0 ||
        gnutls_x509_privkey_export_rsa_raw(fx.x509, &m, &e, &d, &p, &q, &u) != 0) {
        return -1;
    }
    /* JWK wants unsigned big-endian without leading zeros; GnuTLS may add one */
    size_t mz = 0, ez = 0;
    while (mz < m.size - 1 && m.data[mz] == 0) {
        mz++;
    }
    while (ez < e.size - 1 && e.data[ez] == 0) {
        ez++;
    }
    char *n64 = b64url(m.data + mz, m.size - mz);
    char *e64 = b64url(e.data + ez, e.size - ez);
    unsigned char *mlz = calloc(1, m.size - mz + 1); /* with one leading zero */
    memcpy(mlz + 1, m.data + mz, m.size - mz);
    char *nlz64 = b64url(mlz, m.size - mz + 1);
    snprintf(
        text, sizeof(text),
        "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"ec\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":"
        "\"AA\"},{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"},{\"kty\":\"RSA\",\"alg\":"
        "\"RSA-OAEP\",\"kid\":\"enc\",\"n\":\"%s\",\"e\":\"%s\"},\"junk\",{\"kty\":\"RSA\","
        "\"alg\":\"RS256\",\"use\":\"sig\",\"kid\":\"k1\",\"n\":\"%s\",\"e\":\"%s\"},{\"kty\":"
        "\"RSA\",\"alg\":\"RS256\",\"use\":\"sig\",\"kid\":\"k0\",\"n\":\"%s\",\"e\":\"%s\"}]}",
        n64, e64, n64, e64, n64, e64, nlz64, e64);
    free(nlz64);
    free(mlz);
    free(e64);
    free(n64);
    gnutls_free(m.data);
    gnutls_free(e.data);
    gnutls_free(d.data);
    gnutls_free(p.data);
    gnutls_free(q.data);
    gnutls_free(u.data);

    snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_jwt.XXXXXX");
    if (mkdtemp(fx.dir) == NULL) {
        return -1;
    }
    write_file("certs.json", text, fx.jwks);
    char err[256];
    if (kt_jwks_load(fx.jwks, &fx.k, err, sizeof(err)) != 0) {
        fprintf(stderr, "kt_jwks_load: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    static const char *const files[] = {"certs.json", "bad.json",    "empty.json", "ec.json",
                                        "badn.json",  "nokeys.json", "padded.json"};
    char path[128];
    kt_jwks_destroy(fx.k);
    gnutls_privkey_deinit(fx.priv);
    gnutls_x509_privkey_deinit(fx.x509);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", fx.dir, files[i]);
        unlink(path);
    }
    rmdir(fx.dir);
    return 0;
}

/* ---- accepted ---- */

static void test_jwt_good_token_is_accepted_with_email_and_sub(void **state)
{
    char why[128];
    struct kt_jwt_claims c;
    char *pl = claims_json("\"" AUD "\"", "https://accounts.google.com", NOW + 3600, "");
    char *tok = token(HDR_K1, pl);

    assert_int_equal(verify(tok, why, &c), 0);
    assert_string_equal(c.email, EMAIL);
    assert_string_equal(c.sub, "1234567890");
    assert_int_equal(c.email_verified, 1);
    assert_string_equal(why, "");
    /* claims may be NULL, and the other spelling of the issuer is Google's too */
    assert_int_equal(kt_jwt_verify(fx.k, tok, strlen(tok), AUD, NOW, NULL, why, sizeof(why)), 0);
    expect_claims("\"" AUD "\"", "accounts.google.com", NOW + 3600, "", NULL);
    free(tok);
    free(pl);
}

static void test_jwt_key_with_leading_zero_in_modulus_is_accepted(void **state)
{
    char why[128];
    char *pl = claims_json("\"" AUD "\"", "https://accounts.google.com", NOW + 3600, "");
    char *tok = token("{\"alg\":\"RS256\",\"kid\":\"k0\"}", pl);
    assert_int_equal(verify(tok, why, NULL), 0);
    free(tok);
    free(pl);
}

static void test_jwt_audience_in_an_array_is_accepted(void **state)
{
    expect_claims("[\"other\",\"" AUD "\"]", "https://accounts.google.com", NOW + 60, "", NULL);
    expect_claims("[\"other\",1,null]", "https://accounts.google.com", NOW + 60, "",
                  "wrong audience");
    expect_claims("[]", "https://accounts.google.com", NOW + 60, "", "wrong audience");
}

/* ---- refused claims ---- */

static void test_jwt_wrong_audience_is_rejected(void **state)
{
    expect_claims("\"https://other.example.com\"", "https://accounts.google.com", NOW + 60, "",
                  "wrong audience");
    expect_claims("\"" AUD "/\"", "https://accounts.google.com", NOW + 60, "", "wrong audience");
    expect_claims("{\"a\":\"" AUD "\"}", "https://accounts.google.com", NOW + 60, "",
                  "wrong audience");
    expect("{\"iss\":\"https://accounts.google.com\",\"exp\":1999999999}", "no audience");
}

static void test_jwt_expired_token_is_rejected(void **state)
{
    expect_claims("\"" AUD "\"", "https://accounts.google.com", NOW - 3600, "", "token expired");
    expect_claims("\"" AUD "\"", "https://accounts.google.com", NOW - 60, "", "token expired");
    /* within the skew */
    expect_claims("\"" AUD "\"", "https://accounts.google.com", NOW - 59, "", NULL);
    expect("{\"aud\":\"" AUD "\",\"iss\":\"accounts.google.com\"}", "no exp");
    expect("{\"aud\":\"" AUD "\",\"iss\":\"accounts.google.com\",\"exp\":\"soon\"}",
           "not a number");
    /* a NumericDate may have a fraction */
    expect("{\"aud\":\"" AUD "\",\"iss\":\"accounts.google.com\",\"exp\":1715494381.5}", NULL);
    expect("{\"aud\":\"" AUD "\",\"iss\":\"accounts.google.com\",\"exp\":-9223372036854775807}",
           "token expired");
}

static void test_jwt_token_not_yet_valid_is_rejected(void **state)
{
    char *pl = malloc(512);
    assert_non_null(pl);
    snprintf(pl, 512,
             "{\"aud\":\"" AUD "\",\"iss\":\"accounts.google.com\",\"exp\":%lld,\"iat\":%lld}",
             (long long)(NOW + 3600), (long long)(NOW + 61));
    expect(pl, "iat in the future");
    snprintf(pl, 512,
             "{\"aud\":\"" AUD "\",\"iss\":\"accounts.google.com\",\"exp\":%lld,\"nbf\":%lld}",
             (long long)(NOW + 3600), (long long)(NOW + 600));
    expect(pl, "nbf in the future");
    /* within the skew */
    snprintf(pl, 512,
             "{\"aud\":\"" AUD "\",\"iss\":\"accounts.google.com\",\"exp\":%lld,\"iat\":%lld,"
             "\"nbf\":%lld}",
             (long long)(NOW + 3600), (long long)(NOW + 60), (long long)(NOW + 60));
    expect(pl, NULL);
    snprintf(pl, 512,
             "{\"aud\":\"" AUD "\",\"iss\":\"accounts.google.com\",\"exp\":%lld,\"iat\":true}",
             (long long)(NOW + 3600));
    expect(pl, "not a number");
    free(pl);
}

static void test_jwt_wrong_issuer_is_rejected(void **state)
{
    expect_claims("\"" AUD "\"", "https://evil.example.com", NOW + 60, "", "wrong issuer");
    expect_claims("\"" AUD "\"", "http://accounts.google.com", NOW + 60, "", "wrong issuer");
    expect_claims("\"" AUD "\"", "https://accounts.google.com/", NOW + 60, "", "wrong issuer");
    expect("{\"aud\":\"" AUD "\",\"exp\":1999999999}", "no issuer");
}

/* ---- refused headers and signatures ---- */

static void test_jwt_unknown_kid_is_rejected(void **state)
{
    char why[128];
    char *pl = claims_json("\"" AUD "\"", "https://accounts.google.com", NOW + 60, "");
    char *tok = token("{\"alg\":\"RS256\",\"kid\":\"k9\"}", pl);
    assert_int_equal(verify(tok, why, NULL), KT_EPARSE);
    assert_non_null(strstr(why, "unknown key id"));
    free(tok);
    /* keys skipped at load are unknown too */
    tok = token("{\"alg\":\"RS256\",\"kid\":\"enc\"}", pl);
    assert_int_equal(verify(tok, why, NULL), KT_EPARSE);
    assert_non_null(strstr(why, "unknown key id"));
    free(tok);
    tok = token("{\"alg\":\"RS256\"}", pl);
    assert_int_equal(verify(tok, why, NULL), KT_EPARSE);
    assert_non_null(strstr(why, "no key id"));
    free(tok);
    free(pl);
}

static void test_jwt_tampered_payload_has_bad_signature(void **state)
{
    char why[128];
    char *pl = claims_json("\"" AUD "\"", "https://accounts.google.com", NOW + 60, "");
    char *tok = token(HDR_K1, pl);
    char *evil =
        claims_json("\"" AUD "\"", "https://accounts.google.com", NOW + 60, ",\"admin\":true");
    char *forged = token(HDR_K1, evil);

    /* the good signature on another payload */
    char *sig = strrchr(tok, '.') + 1;
    char *mixed = token_with(HDR_K1, evil, sig);
    assert_int_equal(verify(mixed, why, NULL), KT_EPARSE);
    assert_string_equal(why, "bad signature");
    /* one bit of the payload flipped */
    char *dot = strchr(tok, '.');
    char was = dot[5];
    dot[5] = was == 'A' ? 'B' : 'A';
    assert_int_equal(verify(tok, why, NULL), KT_EPARSE);
    assert_string_equal(why, "bad signature");
    dot[5] = was;
    assert_int_equal(verify(tok, why, NULL), 0);
    /* a short signature */
    char *shortsig = token_with(HDR_K1, pl, "AAAA");
    assert_int_equal(verify(shortsig, why, NULL), KT_EPARSE);
    assert_string_equal(why, "bad signature");
    assert_int_equal(verify(forged, why, NULL), 0); /* signed for real, it is fine */
    free(shortsig);
    free(mixed);
    free(forged);
    free(evil);
    free(tok);
    free(pl);
}

static void test_jwt_alg_none_and_hs256_are_rejected(void **state)
{
    static const char *const headers[] = {
        "{\"alg\":\"none\",\"kid\":\"k1\"}",
        "{\"alg\":\"HS256\",\"kid\":\"k1\"}",
        "{\"alg\":\"RS512\",\"kid\":\"k1\"}",
        "{\"alg\":\"rs256\",\"kid\":\"k1\"}",
        "{\"kid\":\"k1\"}",
        "{\"alg\":256,\"kid\":\"k1\"}",
    };
    char why[128];
    char *pl = claims_json("\"" AUD "\"", "https://accounts.google.com", NOW + 60, "");
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *tok = token(headers[i], pl); /* even with a valid RS256 signature */
        assert_int_equal(verify(tok, why, NULL), KT_EPARSE);
        if (strstr(why, "unsupported alg") == NULL) {
            fail_msg("%s: %s", headers[i], why);
        }
        free(tok);
    }
    /* alg none with the empty signature its spec gives */
    char *tok = token_with("{\"alg\":\"none\"}", pl, "");
    assert_int_equal(verify(tok, why, NULL), KT_EPARSE);
    free(tok);
    tok = token("{\"alg\":\"RS256\",\"kid\":\"k1\",\"crit\":[\"exp\"]}", pl);
    assert_int_equal(verify(tok, why, NULL), KT_EPARSE);
    assert_non_null(strstr(why, "crit"));
    free(tok);
    free(pl);
}

static void test_jwt_garbage_tokens_are_rejected(void **state)
{
    static const struct {
        const char *tok;
        const char *reason;
    } cases[] = {
        {"", "empty"},
        {"abc", "three"},
        {"abc.def", "three"},
        {"a.b.c.d", "three"},
        {"..", "empty part"},
        {".eyJ9.c2ln", "empty part"},
        {"eyJ9..c2ln", "empty part"},
        {"eyJ9.eyJ9.", "empty part"},
        {"eyJ9.eyJ9.c2ln=", "base64url"},
        {"eyJ9=.eyJ9.c2ln", "base64url"},
        {"eyJ+.eyJ9.c2ln", "base64url"},
        {"ey/9.eyJ9.c2ln", "base64url"},
        {"eyJ9 .eyJ9.c2ln", "base64url"},
        {"eyJ9A.eyJ9.c2ln", "base64url"}, /* 5 characters: a lone 6-bit group */
        {"e31.eyJ9.c2ln", "base64url"},   /* "{}" with non-zero unused bits */
        {"bm90IGpzb24.eyJ9.c2ln", "header is not a JSON object"},
        {"WzFd.eyJ9.c2ln", "header is not a JSON object"}, /* [1] */
        {"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0", "three"},
    };
    char why[128];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(verify(cases[i].tok, why, NULL), KT_EPARSE);
        if (strstr(why, cases[i].reason) == NULL) {
            fail_msg("case %zu \"%s\": reason \"%s\", expected \"%s\"", i, cases[i].tok, why,
                     cases[i].reason);
        }
    }
    /* a NUL inside the token, and one inside the decoded header */
    assert_int_equal(kt_jwt_verify(fx.k, "eyJ9\0.eyJ9.c2ln", 15, AUD, NOW, NULL, why, 128),
                     KT_EPARSE);
    assert_int_equal(verify("e30A.eyJ9.c2ln", why, NULL), KT_EPARSE); /* "{}\0" */
    assert_non_null(strstr(why, "JSON"));
    /* huge */
    size_t big = 16 * 1024 + 1;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, 'A', big);
    huge[100] = '.';
    huge[200] = '.';
    huge[big] = '\0';
    assert_int_equal(verify(huge, why, NULL), KT_EPARSE);
    assert_non_null(strstr(why, "too long"));
    free(huge);
    /* a tiny why buffer, or none, is fine */
    assert_int_equal(kt_jwt_verify(fx.k, "abc", 3, AUD, NOW, NULL, why, 1), KT_EPARSE);
    assert_string_equal(why, "");
    assert_int_equal(kt_jwt_verify(fx.k, "abc", 3, AUD, NOW, NULL, NULL, 0), KT_EPARSE);
}

static void test_jwt_random_bytes_never_verify(void **state)
{
    static const char abc[] = "..AZaz09-_+/= {}\"\x80\xff";
    char tok[512];
    char why[128];
    unsigned seed = 7;
    for (int iter = 0; iter < 5000; iter++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = 1 + (seed >> 8) % (sizeof(tok) - 1);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            tok[i] = abc[(seed >> 8) % (sizeof(abc) - 1)];
        }
        assert_int_equal(kt_jwt_verify(fx.k, tok, len, AUD, NOW, NULL, why, sizeof(why)),
                         KT_EPARSE);
    }
}

/* ---- the key file ---- */

static void test_jwt_jwks_file_errors_are_one_line_messages(void **state)
{
    static const struct {
        const char *name; /* file written, or NULL for a missing file */
        const char *text;
        const char *reason;
    } cases[] = {
        {NULL, NULL, "cannot read"},
        {"bad.json", "{\"keys\":[", "not JSON"},
        {"empty.json", "", "not JSON"},
        {"nokeys.json", "{\"kty\":\"RSA\"}", "no \"keys\" array"},
        {"ec.json", "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"a\",\"x\":\"AA\"},{\"kty\":\"RSA\"}]}",
         "no usable RSA key"},
        {"badn.json", "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"a+b\",\"e\":\"AQAB\"}]}",
         "n and e"},
    };
    char path[128];
    char err[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kt_jwks *k = (struct kt_jwks *)&fx; /* must be reset to NULL */
        if (cases[i].name != NULL) {
            write_file(cases[i].name, cases[i].text, path);
        } else {
            snprintf(path, sizeof(path), "%s/missing.json", fx.dir);
        }
        err[0] = '\0';
        int rc = kt_jwks_load(path, &k, err, sizeof(err));
        assert_true(rc == KT_EINVAL || rc == KT_EIO);
        assert_null(k);
        assert_null(strchr(err, '\n'));
        assert_true(strncmp(err, path, strlen(path)) == 0);
        if (strstr(err, cases[i].reason) == NULL) {
            fail_msg("%s: \"%s\", expected \"%s\"", path, err, cases[i].reason);
        }
    }
    kt_jwks_destroy(NULL);
}

static void test_jwt_jwks_padded_base64_is_accepted(void **state)
{
    char path[128];
    char err[256];
    struct kt_jwks *k = NULL;
    /* a 2048-bit modulus of 0xff bytes is not a real key, but GnuTLS imports it */
    unsigned char mod[256];
    memset(mod, 0xff, sizeof(mod));
    char *n64 = b64url(mod, sizeof(mod)); /* 342 characters: two '=' in padded form */
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"p\",\"n\":\"%s==\",\"e\":\"AQAB\"}]}", n64);
    write_file("padded.json", text, path);
    assert_int_equal(kt_jwks_load(path, &k, err, sizeof(err)), 0);
    kt_jwks_destroy(k);
    free(n64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwt_good_token_is_accepted_with_email_and_sub),
        cmocka_unit_test(test_jwt_key_with_leading_zero_in_modulus_is_accepted),
        cmocka_unit_test(test_jwt_audience_in_an_array_is_accepted),
        cmocka_unit_test(test_jwt_wrong_audience_is_rejected),
        cmocka_unit_test(test_jwt_expired_token_is_rejected),
        cmocka_unit_test(test_jwt_token_not_yet_valid_is_rejected),
        cmocka_unit_test(test_jwt_wrong_issuer_is_rejected),
        cmocka_unit_test(test_jwt_unknown_kid_is_rejected),
        cmocka_unit_test(test_jwt_tampered_payload_has_bad_signature),
        cmocka_unit_test(test_jwt_alg_none_and_hs256_are_rejected),
        cmocka_unit_test(test_jwt_garbage_tokens_are_rejected),
        cmocka_unit_test(test_jwt_random_bytes_never_verify),
        cmocka_unit_test(test_jwt_jwks_file_errors_are_one_line_messages),
        cmocka_unit_test(test_jwt_jwks_padded_base64_is_accepted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
