/*-------------------------------------------------------------------------
 *
 * huawei_sign.c
 *		  SDK-HMAC-SHA256 signing of Huawei Cloud API requests (AK/SK).
 *
 * The algorithm, as the Huawei SDKs implement it:
 *   canonical request = METHOD \n URI \n QUERY \n HEADERS \n SIGNED \n hex(sha256(body))
 *   string to sign    = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(sha256(canonical request))
 *   signature         = hex(HMAC-SHA256(secret key, string to sign))
 * with URI segments and query names and values percent-encoded except
 * A-Za-z0-9-_.~, the URI ending in '/', the query sorted by name then value,
 * and headers as "lowercase-name:trimmed-value\n" sorted by name.
 *
 * Hashes and HMACs come from PostgreSQL's common/cryptohash.h and
 * common/hmac.h.  No backend facility is used, so the unit test can link
 * this file with libpgcommon alone.
 *
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

/* common/cryptohash.h and common/hmac.h came with PostgreSQL 14 */
#if PG_VERSION_NUM >= 140000
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#define HAVE_PG_HMAC 1
#endif

#include "huawei_sign.h"

#define SIGN_ALGORITHM "SDK-HMAC-SHA256"

static bool
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
}

static void
append_encoded(StringInfo buf, const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (is_unreserved(*p))
			appendStringInfoChar(buf, (char) *p);
		else
			appendStringInfo(buf, "%%%02X", *p);
	}
}

#ifdef HAVE_PG_HMAC

static void
append_hex(StringInfo buf, const uint8 *bytes, size_t len)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++)
	{
		appendStringInfoChar(buf, digits[bytes[i] >> 4]);
		appendStringInfoChar(buf, digits[bytes[i] & 0x0F]);
	}
}

/* The SHA-256 of data, into digest: NULL, or why it could not be computed. */
static const char *
sha256(const char *data, size_t len, uint8 *digest)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	const char *failure = NULL;

	if (ctx == NULL)
		return "out of memory";
	if (pg_cryptohash_init(ctx) != 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) != 0 ||
		pg_cryptohash_final(ctx, digest, PG_SHA256_DIGEST_LENGTH) != 0)
		failure = pg_cryptohash_error(ctx);
	pg_cryptohash_free(ctx);
	return failure;
}

/* The HMAC-SHA256 of data with key, into digest: NULL, or why not. */
static const char *
hmac_sha256(const char *key, const char *data, size_t len, uint8 *digest)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	const char *failure = NULL;

	if (ctx == NULL)
		return "out of memory";
	if (pg_hmac_init(ctx, (const uint8 *) key, strlen(key)) != 0 ||
		pg_hmac_update(ctx, (const uint8 *) data, len) != 0 ||
		pg_hmac_final(ctx, digest, PG_SHA256_DIGEST_LENGTH) != 0)
		failure = pg_hmac_error(ctx);
	pg_hmac_free(ctx);
	return failure;
}

/*
 * Append the lowercase hex SHA-256 of data, or with a key its HMAC-SHA256;
 * false, with why in *error, if it could not be computed.
 */
static bool
append_digest_hex(StringInfo buf, const char *key, const char *data, size_t len,
				  const char **error)
{
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	const char *failure;

	failure = key ? hmac_sha256(key, data, len, digest) : sha256(data, len, digest);
	if (failure)
	{
		*error = failure;
		return false;
	}
	append_hex(buf, digest, sizeof(digest));
	return true;
}

#else							/* !HAVE_PG_HMAC */

static bool
append_digest_hex(StringInfo buf, const char *key, const char *data, size_t len,
				  const char **error)
{
	*error = "AK/SK signing needs PostgreSQL 14 or later";
	return false;
}

#endif							/* HAVE_PG_HMAC */

/* Pairs encoded once, for sorting. */
typedef struct EncodedPair
{
	char	   *name;
	char	   *value;
} EncodedPair;

static int
cmp_encoded_pair(const void *a, const void *b)
{
	const EncodedPair *x = a;
	const EncodedPair *y = b;
	int			c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

static char *
encoded(const char *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_encoded(&buf, s);
	return buf.data;
}

void
huawei_canonical_query(const HuaweiSignRequest *req, StringInfo buf)
{
	EncodedPair *pairs;

	if (req->nquery == 0)
		return;
	pairs = palloc(sizeof(EncodedPair) * req->nquery);
	for (int i = 0; i < req->nquery; i++)
	{
		pairs[i].name = encoded(req->query[i].name);
		pairs[i].value = encoded(req->query[i].value);
	}
	qsort(pairs, req->nquery, sizeof(EncodedPair), cmp_encoded_pair);
	for (int i = 0; i < req->nquery; i++)
		appendStringInfo(buf, "%s%s=%s", i > 0 ? "&" : "", pairs[i].name, pairs[i].value);
}

static char *
lowercase(const char *s)
{
	char	   *result = pstrdup(s);

	for (char *p = result; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p += 'a' - 'A';
	return result;
}

/* A header value without leading and trailing blanks. */
static char *
trimmed(const char *s)
{
	const char *end = s + strlen(s);

	while (*s == ' ' || *s == '\t')
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return pnstrdup(s, end - s);
}

bool
huawei_sign(const HuaweiSignRequest *req, StringInfo authorization, const char **error)
{
	StringInfoData canonical;
	StringInfoData signed_headers;
	StringInfoData to_sign;
	StringInfoData signature;
	EncodedPair *headers = palloc(sizeof(EncodedPair) * Max(req->nheaders, 1));
	char	   *segment_start;
	char	   *path = pstrdup(req->path);

	initStringInfo(&canonical);
	initStringInfo(&signed_headers);
	initStringInfo(&to_sign);
	initStringInfo(&signature);

	/* method, then the URI: every segment encoded, always ending in '/' */
	appendStringInfo(&canonical, "%s\n", req->method);
	segment_start = path;
	while (*segment_start == '/')
		segment_start++;
	appendStringInfoChar(&canonical, '/');
	while (*segment_start)
	{
		char	   *slash = strchr(segment_start, '/');

		if (slash)
			*slash = '\0';
		if (*segment_start)
		{
			append_encoded(&canonical, segment_start);
			appendStringInfoChar(&canonical, '/');
		}
		if (!slash)
			break;
		segment_start = slash + 1;
	}
	appendStringInfoChar(&canonical, '\n');

	huawei_canonical_query(req, &canonical);
	appendStringInfoChar(&canonical, '\n');

	for (int i = 0; i < req->nheaders; i++)
	{
		headers[i].name = lowercase(req->headers[i].name);
		headers[i].value = trimmed(req->headers[i].value);
	}
	qsort(headers, req->nheaders, sizeof(EncodedPair), cmp_encoded_pair);
	for (int i = 0; i < req->nheaders; i++)
	{
		appendStringInfo(&canonical, "%s:%s\n", headers[i].name, headers[i].value);
		appendStringInfo(&signed_headers, "%s%s", i > 0 ? ";" : "", headers[i].name);
	}
	appendStringInfo(&canonical, "\n%s\n", signed_headers.data);
	if (!append_digest_hex(&canonical, NULL, req->body ? req->body : "", req->body_len, error))
		return false;

	appendStringInfo(&to_sign, "%s\n%s\n", SIGN_ALGORITHM, req->sdk_date);
	if (!append_digest_hex(&to_sign, NULL, canonical.data, canonical.len, error))
		return false;

	if (!append_digest_hex(&signature, req->secret_key, to_sign.data, to_sign.len, error))
		return false;

	appendStringInfo(authorization, "%s Access=%s, SignedHeaders=%s, Signature=%s",
					 SIGN_ALGORITHM, req->access_key, signed_headers.data, signature.data);
	return true;
}
