/*
 * jwt.h: verifying the OIDC tokens Google signs for Pub/Sub push subscriptions.
 *
 * A push subscription with authentication sends "Authorization: Bearer <JWT>", a compact JWS
 * signed RS256 by one of Google's keys, with the audience the subscription was configured
 * with. ktrail has no network: the keys come from a JWKS file (Google's published
 * https://www.googleapis.com/oauth2/v3/certs, fetched by the operator), loaded at start.
 * The signature is checked with GnuTLS; the claims with a clock given by the caller.
 */
#ifndef KT_INGEST_JWT_H
#define KT_INGEST_JWT_H

#include "kt.h"

struct kt_jwks;

/* Load the RSA keys ("kty":"RSA", with "kid", "n", "e") of the JWKS file at path. 0, or
 * KT_EINVAL / KT_EIO / KT_ENOMEM with a one-line message in errstr (path: what). */
int kt_jwks_load(const char *path, struct kt_jwks **out, char *errstr, size_t errlen);
void kt_jwks_destroy(struct kt_jwks *k);

/* What a verified token says. */
struct kt_jwt_claims {
    char email[256];    /* "email" claim (the push subscription's service account), or "" */
    char sub[256];      /* "sub" claim, or "" */
    int email_verified; /* "email_verified" is true */
};

/*
 * Verify the compact JWS token[0, len) (borrowed): header alg RS256 and a kid found in k,
 * a valid signature, "aud" equal to audience, "iss" https://accounts.google.com or
 * accounts.google.com, "exp" after now_s and "iat"/"nbf" not after now_s, each with 60 s of
 * skew. 0 and claims filled (when not NULL), or KT_EPARSE with the reason in why (one line).
 */
int kt_jwt_verify(const struct kt_jwks *k, const char *token, size_t len, const char *audience,
                  int64_t now_s, struct kt_jwt_claims *claims, char *why, size_t whylen);

#endif
