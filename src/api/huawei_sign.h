/*-------------------------------------------------------------------------
 *
 * huawei_sign.h
 *		  SDK-HMAC-SHA256 request signing for Huawei Cloud AK/SK credentials.
 *
 * Kept apart from oprec_fdw.h because it depends on nothing of the backend:
 * the same file is compiled into the extension and into the unit test that
 * checks it against the published test vector (test/unit/).
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUAWEI_SIGN_H
#define HUAWEI_SIGN_H

#include "lib/stringinfo.h"

/* A query parameter or a signed header, before canonicalization. */
typedef struct HuaweiSignPair
{
	const char *name;
	const char *value;
} HuaweiSignPair;

typedef struct HuaweiSignRequest
{
	const char *method;			/* "GET" */
	const char *path;			/* "/v2/issues/get-record", not encoded */
	const HuaweiSignPair *query;	/* raw names and values */
	int			nquery;
	const HuaweiSignPair *headers;	/* headers to sign, any case */
	int			nheaders;
	const char *body;
	size_t		body_len;
	const char *sdk_date;		/* X-Sdk-Date, YYYYMMDDTHHMMSSZ */
	const char *access_key;
	const char *secret_key;
} HuaweiSignRequest;

/* Append "k=v&k=v" with the canonical encoding and order to buf. */
extern void huawei_canonical_query(const HuaweiSignRequest *req, StringInfo buf);

/*
 * Compute the Authorization header value into authorization.  Returns
 * false with *error set if hashing failed.
 */
extern bool huawei_sign(const HuaweiSignRequest *req, StringInfo authorization,
						const char **error);

#endif							/* HUAWEI_SIGN_H */
