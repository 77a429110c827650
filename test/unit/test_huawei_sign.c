/*-------------------------------------------------------------------------
 *
 * test_huawei_sign.c
 *		  Unit test of the SDK-HMAC-SHA256 signer (src/api/huawei_sign.c)
 *		  against the test vector of Huawei's Go SDK, and of the canonical
 *		  forms it builds.  Built and run by test/run-tests.sh; prints
 *		  "N passed, M failed" and exits non-zero on a failure.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "api/huawei_sign.h"

static int	passed = 0;
static int	failed = 0;

static void
expect_equal(const char *what, const char *got, const char *expected)
{
	if (strcmp(got, expected) == 0)
	{
		passed++;
		printf("ok - %s\n", what);
	}
	else
	{
		failed++;
		printf("not ok - %s\n  got:      %s\n  expected: %s\n", what, got, expected);
	}
}

/* The published vector: GET /path?limit=1 signed with x-sdk-date only. */
static void
test_sdk_vector(void)
{
	HuaweiSignPair query[] = {{"limit", "1"}};
	HuaweiSignPair headers[] = {{"X-Sdk-Date", "20060102T150405Z"}};
	HuaweiSignRequest req = {
		.method = "GET",
		.path = "/path",
		.query = query,
		.nquery = 1,
		.headers = headers,
		.nheaders = 1,
		.body = "",
		.body_len = 0,
		.sdk_date = "20060102T150405Z",
		.access_key = "AccessKey",
		.secret_key = "SecretKey",
	};
	StringInfoData auth;
	const char *error = NULL;

	initStringInfo(&auth);
	if (!huawei_sign(&req, &auth, &error))
		appendStringInfo(&auth, "signing failed: %s", error);
	expect_equal("Go SDK test vector",
				 auth.data,
				 "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, "
				 "Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624");
}

/* Query names and values are encoded, then sorted by name and value. */
static void
test_canonical_query(void)
{
	HuaweiSignPair query[] = {
		{"type", "scrum"}, {"b", "x y"}, {"a", "2"}, {"a", "10"}, {"c", "~ok-_.*"}, {"d", "中"},
	};
	HuaweiSignRequest req = {.query = query, .nquery = lengthof(query)};
	StringInfoData buf;

	initStringInfo(&buf);
	huawei_canonical_query(&req, &buf);
	expect_equal("canonical query", buf.data,
				 "a=10&a=2&b=x%20y&c=~ok-_.%2A&d=%E4%B8%AD&type=scrum");
}

/* The signature changes with every input that is signed. */
static void
test_signature_covers_inputs(void)
{
	HuaweiSignPair query[] = {{"issue_id", "9175005"}, {"limit", "100"}};
	HuaweiSignPair headers[] = {{"Host", "example.com"}, {"X-Sdk-Date", "20261122T010203Z"}};
	HuaweiSignRequest req = {
		.method = "GET", .path = "/v2/issues/get-record", .query = query, .nquery = 2,
		.headers = headers, .nheaders = 2, .body = "", .body_len = 0,
		.sdk_date = "20261122T010203Z", .access_key = "AK", .secret_key = "SK",
	};
	StringInfoData a,
				b;
	const char *error;

	initStringInfo(&a);
	initStringInfo(&b);
	huawei_sign(&req, &a, &error);
	query[0].value = "9175006";
	huawei_sign(&req, &b, &error);
	expect_equal("signed headers are sorted and lowercase",
				 strstr(a.data, "SignedHeaders=host;x-sdk-date,") ? "yes" : a.data, "yes");
	expect_equal("another issue id gives another signature",
				 strcmp(a.data, b.data) != 0 ? "differs" : "same", "differs");
}

int
main(void)
{
	test_sdk_vector();
	test_canonical_query();
	test_signature_covers_inputs();
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
