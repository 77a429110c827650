/*-------------------------------------------------------------------------
 *
 * huawei.c
 *		  The Huawei Cloud CodeArts Req (ProjectMan) dialect: issue history
 *		  from GET /v2/issues/get-record.
 *
 * What is specific to Huawei lives here: its options and columns, the
 * query string of a request, offset/limit paging with the API's offset cap,
 * the error shapes, and three ways to authenticate: a given X-Auth-Token,
 * an IAM token got with a password (cached per user mapping until shortly
 * before it expires, renewed once when refused), or AK/SK signing of every
 * request (huawei_sign.c).  One row is one detail of a history entry; an
 * entry without details still gives one row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>
#include <jansson.h>

#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_type.h"
#include "catalog/pg_user_mapping.h"
#include "pgtime.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "oprec_api.h"
#include "huawei_sign.h"

extern const OprecService oprec_huawei_service;

#define RECORD_PATH "/v2/issues/get-record"
#define ISSUES_PATH "/v4/projects/%s/issues"

/* Issues listed per request (ListIssuesV4's largest limit). */
#define ISSUES_PAGE_SIZE 100
#define IAM_TOKEN_PATH "/v3/auth/tokens"

/* The API answers nothing for an offset past this. */
#define MAX_OFFSET 10000

/* Issue ids have 1 to 10 digits. */
#define MAX_ISSUE_ID INT64CONST(9999999999)

/* Renew an IAM token this long before it expires; tokens last 24 h. */
#define TOKEN_RENEW_MARGIN_SEC 600
#define DEFAULT_TOKEN_LIFETIME_SEC (23 * 3600)

#define HUAWEI_INVALID_TOKEN "PM.10001002"
#define HUAWEI_RATE_TOO_HIGH "PM.02153001"
#define HUAWEI_SYSTEM_BUSY "PM.02175000"
#define HUAWEI_GATEWAY_THROTTLED "APIGW.0308"

enum HuaweiColumn
{
	COL_PROJECT_ID,
	COL_ISSUE_ID,
	COL_JOURNAL_ID,
	COL_CREATED_ON,
	COL_NOTES,
	COL_USER_ID,
	COL_USER_NAME,
	COL_USER_NICK_NAME,
	COL_USER_FIRST_NAME,
	COL_USER_IDENTIFIER,
	COL_DETAIL_ID,
	COL_PROPERTY,
	COL_FIELD_NAME,
	COL_OPERATION,
	COL_OLD_VALUE,
	COL_NEW_VALUE,
	NUM_HUAWEI_COLUMNS
};

static const OprecColumnDef huawei_columns[NUM_HUAWEI_COLUMNS] = {
	[COL_PROJECT_ID] = {"project_id", OPREC_VALUE_TEXT, "text", OPREC_PUSH_SCOPE, TEXTOID, "project_id", "project_id"},
	[COL_ISSUE_ID] = {"issue_id", OPREC_VALUE_INT64, "bigint", OPREC_PUSH_KEY, INT8OID, "issue_id", NULL},
	[COL_JOURNAL_ID] = {"journal_id", OPREC_VALUE_INT64, "bigint"},
	/* get-record takes no time: the range only narrows the issues listed */
	[COL_CREATED_ON] = {"created_on", OPREC_VALUE_EPOCH_MS, "timestamptz", OPREC_PUSH_TIME, TIMESTAMPTZOID, "updated_time_interval", NULL},
	[COL_NOTES] = {"notes", OPREC_VALUE_TEXT, "text"},
	[COL_USER_ID] = {"user_id", OPREC_VALUE_INT64, "bigint"},
	[COL_USER_NAME] = {"user_name", OPREC_VALUE_TEXT, "text"},
	[COL_USER_NICK_NAME] = {"user_nick_name", OPREC_VALUE_TEXT, "text"},
	[COL_USER_FIRST_NAME] = {"user_first_name", OPREC_VALUE_TEXT, "text"},
	[COL_USER_IDENTIFIER] = {"user_identifier", OPREC_VALUE_TEXT, "text"},
	[COL_DETAIL_ID] = {"detail_id", OPREC_VALUE_INT64, "bigint"},
	[COL_PROPERTY] = {"property", OPREC_VALUE_TEXT, "text"},
	[COL_FIELD_NAME] = {"field_name", OPREC_VALUE_TEXT, "text"},
	[COL_OPERATION] = {"operation", OPREC_VALUE_TEXT, "text"},
	[COL_OLD_VALUE] = {"old_value", OPREC_VALUE_TEXT, "text"},
	[COL_NEW_VALUE] = {"new_value", OPREC_VALUE_TEXT, "text"},
};

/* Where each column's value is found in a history entry. */
typedef enum HuaweiSource
{
	FROM_SCOPE,					/* the project asked for */
	FROM_CHAIN,					/* the issue asked for (one per chain) */
	FROM_ENTRY,
	FROM_USER,					/* entry.user */
	FROM_DETAIL					/* entry.details[row] */
} HuaweiSource;

static const struct
{
	HuaweiSource source;
	const char *field;
}			huawei_sources[NUM_HUAWEI_COLUMNS] = {
	[COL_PROJECT_ID] = {FROM_SCOPE, NULL},
	[COL_ISSUE_ID] = {FROM_CHAIN, NULL},
	[COL_JOURNAL_ID] = {FROM_ENTRY, "id"},
	[COL_CREATED_ON] = {FROM_ENTRY, "created_on"},
	[COL_NOTES] = {FROM_ENTRY, "notes"},
	[COL_USER_ID] = {FROM_USER, "id"},
	[COL_USER_NAME] = {FROM_USER, "name"},
	[COL_USER_NICK_NAME] = {FROM_USER, "nick_name"},
	[COL_USER_FIRST_NAME] = {FROM_USER, "first_name"},
	[COL_USER_IDENTIFIER] = {FROM_USER, "identifier"},
	[COL_DETAIL_ID] = {FROM_DETAIL, "id"},
	[COL_PROPERTY] = {FROM_DETAIL, "property"},
	[COL_FIELD_NAME] = {FROM_DETAIL, "name"},
	[COL_OPERATION] = {FROM_DETAIL, "operation"},
	[COL_OLD_VALUE] = {FROM_DETAIL, "old_value"},
	[COL_NEW_VALUE] = {FROM_DETAIL, "new_value"},
};

static const OprecOptionDef huawei_options[] = {
	{"project_id", ForeignServerRelationId, OPREC_OPT_STRING, 0, 0, false},
	{"project_type", ForeignServerRelationId, OPREC_OPT_STRING, 0, 0, false},
	{"iam_url", ForeignServerRelationId, OPREC_OPT_URL, 0, 0, false},
	{"region", ForeignServerRelationId, OPREC_OPT_HOST_LABEL, 0, 0, false},
	{"auth_token", UserMappingRelationId, OPREC_OPT_STRING, 0, 0, true},
	{"user_name", UserMappingRelationId, OPREC_OPT_STRING, 0, 0, false},
	{"password", UserMappingRelationId, OPREC_OPT_STRING, 0, 0, true},
	{"domain_name", UserMappingRelationId, OPREC_OPT_STRING, 0, 0, false},
	{"access_key", UserMappingRelationId, OPREC_OPT_STRING, 0, 0, false},
	{"secret_key", UserMappingRelationId, OPREC_OPT_STRING, 0, 0, true},
	{"security_token", UserMappingRelationId, OPREC_OPT_STRING, 0, 0, true},
	{"project_id", ForeignTableRelationId, OPREC_OPT_STRING, 0, 0, false},
	{NULL}
};

#define DEFAULT_REGION "cn-north-4"
#define DEFAULT_PROJECT_TYPE "scrum"

typedef enum HuaweiAuth
{
	AUTH_GIVEN_TOKEN,			/* auth_token */
	AUTH_PASSWORD,				/* user_name, password, domain_name */
	AUTH_AKSK					/* access_key, secret_key [, security_token] */
} HuaweiAuth;

typedef struct HuaweiState
{
	HuaweiAuth auth;
	List	   *um;				/* user mapping options */
	const char *project_type;
	const char *region;
	char	   *iam_url;
	char	   *host;			/* host[:port] of base_url, signed */
	char	   *path_prefix;	/* path of base_url, "" if none */
} HuaweiState;

#define AUTH_WAYS "Give exactly one of: auth_token; user_name, password and domain_name; access_key and secret_key (with security_token for temporary credentials)."

/* A user mapping holds exactly one complete set of credentials. */
static void
huawei_check_user_mapping(List *options)
{
	bool		token = oprec_defelem_value(options, "auth_token") != NULL;
	int			npassword = (oprec_defelem_value(options, "user_name") != NULL) +
		(oprec_defelem_value(options, "password") != NULL) +
		(oprec_defelem_value(options, "domain_name") != NULL);
	int			naksk = (oprec_defelem_value(options, "access_key") != NULL) +
		(oprec_defelem_value(options, "secret_key") != NULL);
	bool		security_token = oprec_defelem_value(options, "security_token") != NULL;
	int			nsets = token + (npassword > 0) + (naksk > 0 || security_token);

	if (nsets > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("a user mapping for an api 'huawei' server takes one set of credentials, not %d", nsets),
				 errhint(AUTH_WAYS)));
	if (npassword > 0 && npassword < 3)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("options user_name, password and domain_name go together"),
				 errhint(AUTH_WAYS)));
	if ((naksk > 0 || security_token) && naksk < 2)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("options access_key and secret_key go together"),
				 errhint(AUTH_WAYS)));
	if (nsets == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("a user mapping for an api 'huawei' server needs credentials"),
				 errhint(AUTH_WAYS)));
}

/* https://projectman-ext.<region>.myhuaweicloud.com, from the region option */
static const char *
huawei_default_base_url(const OprecOptions *options)
{
	const char *region = oprec_option_value(options, "region");

	return psprintf("https://projectman-ext.%s.myhuaweicloud.com",
					region ? region : DEFAULT_REGION);
}

/* Split base_url into the host[:port] and path prefix that are signed. */
static void
split_base_url(const char *base_url, char **host, char **path_prefix)
{
	const char *start = strstr(base_url, "://");
	const char *slash;

	start = start ? start + 3 : base_url;
	slash = strchr(start, '/');
	if (slash)
	{
		*host = pnstrdup(start, slash - start);
		*path_prefix = pstrdup(slash);
	}
	else
	{
		*host = pstrdup(start);
		*path_prefix = pstrdup("");
	}
}

static void *
huawei_begin_scan(OprecScan *scan)
{
	HuaweiState *st = palloc0(sizeof(HuaweiState));
	const OprecOptions *options = scan->options;
	const char *iam_url;

	st->um = options->user_options;
	if (oprec_defelem_value(st->um, "auth_token"))
		st->auth = AUTH_GIVEN_TOKEN;
	else if (oprec_defelem_value(st->um, "user_name") && oprec_defelem_value(st->um, "password") &&
			 oprec_defelem_value(st->um, "domain_name"))
		st->auth = AUTH_PASSWORD;
	else if (oprec_defelem_value(st->um, "access_key") && oprec_defelem_value(st->um, "secret_key"))
		st->auth = AUTH_AKSK;
	else
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("the user mapping for this Huawei CodeArts Req server has no complete credentials"),
				 errhint(AUTH_WAYS)));

	st->project_type = oprec_option_value(options, "project_type");
	if (st->project_type == NULL)
		st->project_type = DEFAULT_PROJECT_TYPE;
	st->region = oprec_option_value(options, "region");
	if (st->region == NULL)
		st->region = DEFAULT_REGION;
	iam_url = oprec_option_value(options, "iam_url");
	st->iam_url = oprec_url_base(iam_url ? iam_url
								 : psprintf("https://iam.%s.myhuaweicloud.com", st->region));
	split_base_url(options->base_url, &st->host, &st->path_prefix);
	/* passwords get IAM tokens; a given token and signatures are used as is */
	scan->renews_token = st->auth == AUTH_PASSWORD;
	return st;
}

/* ----------------------------------------------------------------
 *		Errors
 * ----------------------------------------------------------------
 */

static const char *
huawei_hint(OprecScan *scan, const char *code)
{
	HuaweiState *st = scan->api_state;

	if (strcmp(code, HUAWEI_INVALID_TOKEN) == 0)
		return st->auth == AUTH_GIVEN_TOKEN
			? "The auth_token of the user mapping was refused; set a fresh one, or give user_name, password and domain_name so that tokens are renewed."
			: "Check the credentials in the user mapping.";
	if (strncmp(code, "APIG.03", 7) == 0)
		return "Check access_key and secret_key (and security_token for temporary credentials). Five failed signatures in a row lock the key pair for 5 minutes, so correct them before retrying.";
	if (strcmp(code, HUAWEI_RATE_TOO_HIGH) == 0 || strcmp(code, HUAWEI_GATEWAY_THROTTLED) == 0)
		return "The API's request rate limit was reached; lower the server's requests_per_second option or retry in a few seconds.";
	if (strcmp(code, "PM.02152005") == 0)
		return "Check the project_id: the project is missing or was deleted.";
	if (strcmp(code, "PM.02175006") == 0 || strcmp(code, "PM.02152001") == 0)
		return "The API refused a parameter; check project_id (32 hexadecimal characters), project_type and the issue ids.";
	if (strcmp(code, "PM.02174103") == 0)
		return "The API refused the paging parameters; lower the server's page_size option (100 is accepted).";
	if (strcmp(code, HUAWEI_SYSTEM_BUSY) == 0)
		return "The API is busy; retry later.";
	return NULL;
}

/* Read {"error_code", "error_msg"} from an answer. */
static bool
huawei_error_of(json_t *root, OprecApiError *error)
{
	json_t	   *value = json_object_get(root, "error_code");

	error->code = NULL;
	error->message = json_string_value(json_object_get(root, "error_msg"));
	if (json_is_string(value) && json_string_length(value) > 0)
		error->code = json_string_value(value);
	else if (json_is_integer(value))
		error->code = psprintf("%lld", (long long) json_integer_value(value));
	return error->code != NULL;
}

/* The IAM token was refused (PM.10001002). */
static bool
huawei_token_refused(const OprecApiError *error)
{
	return strcmp(error->code, HUAWEI_INVALID_TOKEN) == 0;
}

/* ----------------------------------------------------------------
 *		Authentication
 * ----------------------------------------------------------------
 */

/* Get an IAM token with the user mapping's password. */
static void
huawei_get_token(OprecScan *scan)
{
	HuaweiState *st = scan->api_state;
	OprecRequest req;
	OprecAnswer answer;
	json_t	   *body;
	TimestampTz expires = 0;
	const char *expires_at;
	const char *subject_token;

	oprec_request_init(&req, "POST");
	req.secret_answer = true;
	req.capture[req.ncapture++] = "X-Subject-Token";
	appendStringInfo(&req.url, "%s%s", st->iam_url, IAM_TOKEN_PATH);
	oprec_request_add_header(&req, "Content-Type", "application/json;charset=utf8");
	body = oprec_json_owned(json_pack("{s:{s:{s:[s],s:{s:{s:s,s:s,s:{s:s}}}},s:{s:{s:s}}}}",
									  "auth", "identity", "methods", "password",
									  "password", "user",
									  "name", oprec_defelem_value(st->um, "user_name"),
									  "password", oprec_defelem_value(st->um, "password"),
									  "domain", "name", oprec_defelem_value(st->um, "domain_name"),
									  "scope", "project", "name", st->region));
	oprec_request_set_json_body(&req, body);
	appendStringInfo(&req.summary, "POST %s for user \"%s\" of domain \"%s\", project scope \"%s\"",
					 IAM_TOKEN_PATH, oprec_defelem_value(st->um, "user_name"),
					 oprec_defelem_value(st->um, "domain_name"), st->region);

	oprec_send(scan, &req, &answer);
	if (answer.resp.status < 200 || answer.resp.status > 299)
	{
		/* IAM's errors have a shape of their own */
		json_t	   *error = json_object_get(answer.root, "error");
		const char *message = json_string_value(json_object_get(error, "message"));
		json_t	   *code = json_object_get(error, "code");

		oprec_api_error(&answer,
						json_is_string(code) ? json_string_value(code)
						: psprintf("%ld", answer.resp.status),
						message ? message : "the IAM token was not issued",
						"Check user_name, password and domain_name in the user mapping, and that the server's region option names a project of that account.");
	}
	subject_token = answer.resp.captured[0];
	if (subject_token == NULL || subject_token[0] == '\0')
		oprec_bad_answer(&answer, "no X-Subject-Token header in the IAM answer");

	expires_at = json_string_value(json_object_get(json_object_get(answer.root, "token"),
												   "expires_at"));
	if (expires_at == NULL || !oprec_try_parse_timestamptz(expires_at, &expires))
		expires = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											  (int64) DEFAULT_TOKEN_LIFETIME_SEC * 1000);
	expires = Min(expires, TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   (int64) OPREC_MAX_TOKEN_LIFETIME_SEC * 1000));
	oprec_session_set_token(scan->session, subject_token, expires, TOKEN_RENEW_MARGIN_SEC);
}

/* X-Sdk-Date for now: YYYYMMDDTHHMMSSZ in UTC. */
static char *
sdk_date_now(void)
{
	pg_time_t	now = (pg_time_t) time(NULL);
	struct pg_tm *tm = pg_gmtime(&now);

	return psprintf("%04d%02d%02dT%02d%02d%02dZ",
					tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday,
					tm->tm_hour, tm->tm_min, tm->tm_sec);
}

/* Add the auth headers; with AK/SK, sign the request as it will be sent. */
static void
authorize(OprecScan *scan, OprecRequest *req, const char *path,
		  const HuaweiSignPair *query, int nquery)
{
	HuaweiState *st = scan->api_state;
	HuaweiSignPair headers[3];
	int			nheaders = 0;
	HuaweiSignRequest sign = {0};
	StringInfoData authorization;
	const char *error = NULL;
	const char *security_token;

	switch (st->auth)
	{
		case AUTH_GIVEN_TOKEN:
			oprec_request_add_header(req, "X-Auth-Token", oprec_defelem_value(st->um, "auth_token"));
			return;
		case AUTH_PASSWORD:
			oprec_request_add_header(req, "X-Auth-Token", scan->session->token);
			return;
		case AUTH_AKSK:
			break;
	}

	headers[nheaders++] = (HuaweiSignPair) {"Host", st->host};
	headers[nheaders++] = (HuaweiSignPair) {"X-Sdk-Date", sdk_date_now()};
	security_token = oprec_defelem_value(st->um, "security_token");
	if (security_token)
		headers[nheaders++] = (HuaweiSignPair) {"X-Security-Token", security_token};

	sign.method = req->method;
	sign.path = path;
	sign.query = query;
	sign.nquery = nquery;
	sign.headers = headers;
	sign.nheaders = nheaders;
	sign.body = req->body.data;
	sign.body_len = req->body.len;
	sign.sdk_date = headers[1].value;
	sign.access_key = oprec_defelem_value(st->um, "access_key");
	sign.secret_key = oprec_defelem_value(st->um, "secret_key");

	initStringInfo(&authorization);
	if (!huawei_sign(&sign, &authorization, &error))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not sign the request: %s", error)));
	for (int i = 0; i < nheaders; i++)
		oprec_request_add_header(req, headers[i].name, headers[i].value);
	oprec_request_add_header(req, "Authorization", authorization.data);
}

/* ----------------------------------------------------------------
 *		Requests and answers
 * ----------------------------------------------------------------
 */

static int64
issue_of_chain(OprecScan *scan, const OprecChain *chain)
{
	return chain->keys[0];
}

static int64
offset_of_cursor(const char *cursor)
{
	return cursor ? strtoll(cursor, NULL, 10) : 0;
}

static void
huawei_build_page_request(OprecScan *scan, const OprecChain *chain, const char *cursor,
						  OprecRequest *req)
{
	HuaweiState *st = scan->api_state;
	int64		issue = issue_of_chain(scan, chain);
	HuaweiSignPair query[5];
	char	   *path = psprintf("%s%s", st->path_prefix, RECORD_PATH);
	StringInfoData canonical;

	query[0] = (HuaweiSignPair) {"project_id", scan->scope};
	query[1] = (HuaweiSignPair) {"issue_id", psprintf(INT64_FORMAT, issue)};
	query[2] = (HuaweiSignPair) {"limit", psprintf("%d", scan->options->page_size)};
	query[3] = (HuaweiSignPair) {"offset", psprintf(INT64_FORMAT, offset_of_cursor(cursor))};
	query[4] = (HuaweiSignPair) {"type", st->project_type};

	/* the query is sent exactly as it is signed */
	initStringInfo(&canonical);
	{
		HuaweiSignRequest sign = {.query = query, .nquery = lengthof(query)};

		huawei_canonical_query(&sign, &canonical);
	}
	req->method = "GET";
	appendStringInfo(&req->url, "%s%s?%s", scan->options->base_url, RECORD_PATH, canonical.data);
	oprec_request_add_header(req, "Accept", "application/json");
	authorize(scan, req, path, query, lengthof(query));
	appendStringInfo(&req->summary, "GET %s?%s", RECORD_PATH, canonical.data);
}

/*
 * Past offset 10000 the API answers nothing: say how much of the history
 * could not be read, once per issue.
 */
static void
warn_offset_cap(OprecScan *scan, const OprecChain *chain, int64 total, int64 readable)
{
	ereport(WARNING,
			(errcode(ERRCODE_WARNING),
			 errmsg("issue " INT64_FORMAT " has " INT64_FORMAT " history entries; " INT64_FORMAT " could not be read",
					issue_of_chain(scan, chain), total, total - readable),
			 errdetail("The %s API serves no offset past %d; with page_size %d that is the first " INT64_FORMAT " entries.",
					   scan->service->title, MAX_OFFSET, scan->options->page_size, readable),
			 errhint("A larger page_size reaches a little further, if the API accepts it.")));
}

static void
huawei_read_page(OprecScan *scan, const OprecChain *chain, const char *cursor,
				 OprecAnswer *answer, OprecPage *page)
{
	json_t	   *status = json_object_get(answer->root, "status");
	json_t	   *result;
	json_t	   *records;
	json_t	   *total_json;
	int64		offset = offset_of_cursor(cursor);
	int64		next_offset;
	int64		total;

	if (!json_is_string(status) || strcmp(json_string_value(status), "success") != 0)
		oprec_api_error(answer, NULL, "the answer's status is not \"success\"",
						"The API reported a failure without an error code; retry later.");

	result = json_object_get(answer->root, "result");
	if (!json_is_object(result))
		oprec_bad_answer(answer, "no result object");
	records = json_object_get(result, "record");
	if (records == NULL || json_is_null(records))
		records = oprec_json_owned(json_array());
	else if (!json_is_array(records))
		oprec_bad_answer(answer, "result.record is not an array");
	total_json = json_object_get(result, "journals_total");
	if (!json_is_integer(total_json))
		oprec_bad_answer(answer, "result.journals_total is not an integer");
	total = json_integer_value(total_json);

	page->records = records;
	page->has_more = false;
	page->next_cursor = NULL;

	/* the next page, unless this one was the last or came back empty */
	next_offset = offset + scan->options->page_size;
	if (next_offset < total && next_offset <= MAX_OFFSET && json_array_size(records) > 0)
	{
		page->has_more = true;
		page->next_cursor = psprintf(INT64_FORMAT, next_offset);
	}

	/*
	 * The first page tells how many entries the issue has: every later
	 * page's offset is known, and they may all be asked for at once.  Past
	 * the offset cap nothing can be read: a warning says how much.
	 */
	if (cursor == NULL && page->has_more)
	{
		int64		last = Min(total - 1, (int64) MAX_OFFSET);
		int64		npages = (last - next_offset) / scan->options->page_size + 1;
		int64		beyond = next_offset + npages * scan->options->page_size;

		page->later_cursors = palloc(sizeof(char *) * npages);
		for (int64 o = next_offset; o <= last; o += scan->options->page_size)
			page->later_cursors[page->nlater_cursors++] = psprintf(INT64_FORMAT, o);
		if (beyond < total)
			warn_offset_cap(scan, chain, total, beyond);
	}
}

/* The issue listing request with its body (arg), signed as sent. */
static void
build_issues_request(OprecScan *scan, OprecRequest *req, void *arg)
{
	HuaweiState *st = scan->api_state;
	char	   *path = psprintf(ISSUES_PATH, oprec_url_escape(scan->scope));

	req->method = "POST";
	oprec_request_set_json_body(req, (json_t *) arg);
	appendStringInfo(&req->url, "%s%s", scan->options->base_url, path);
	oprec_request_add_header(req, "Accept", "application/json");
	oprec_request_add_header(req, "Content-Type", "application/json");
	authorize(scan, req, psprintf("%s%s", st->path_prefix, path), NULL, 0);
	appendStringInfo(&req->summary, "POST %s %s", path, req->body.data);
}

/* A "startMs,endMs" interval of the issue listing; either side may be empty. */
static char *
issues_interval(bool has_start, int64 start_ms, bool has_end, int64 end_ms)
{
	return psprintf("%s,%s",
					has_start ? psprintf(INT64_FORMAT, Max(start_ms, 1)) : "",
					has_end ? psprintf(INT64_FORMAT, Max(end_ms, 1)) : "");
}

/*
 * One page of a slice of the project's issues (POST /v4/projects/{id}/issues),
 * by update time and creation time as the slice says.  Their history is
 * then read with get-record, so that rows keep the shape of the table
 * (entries with their details).
 */
static void
huawei_list_keys(OprecScan *scan, const OprecKeySlice *slice, OprecKeyPage *page)
{
	int64		offset = (int64) slice->page * ISSUES_PAGE_SIZE;
	json_t	   *body = oprec_json_owned(oprec_json_new_object());
	OprecAnswer answer;
	json_t	   *root;
	json_t	   *total;

	json_object_set_new(body, "offset", json_integer(offset));
	json_object_set_new(body, "limit", json_integer(ISSUES_PAGE_SIZE));
	/* a deleted issue keeps its history, which get-record still serves */
	json_object_set_new(body, "include_deleted", json_true());
	if (slice->has_updated_from || slice->has_updated_to)
		json_object_set_new(body, "updated_time_interval",
							json_string(issues_interval(slice->has_updated_from,
														slice->updated_from_ms,
														slice->has_updated_to,
														slice->updated_to_ms)));
	if (slice->has_created_to)
		json_object_set_new(body, "created_time_interval",
							json_string(issues_interval(false, 0, true, slice->created_to_ms)));
	root = oprec_call(scan, &answer, build_issues_request, body);

	oprec_read_listed_keys(&answer, json_object_get(root, "issues"), "issues is not an array",
						   "an issue without an integer id", page);
	total = json_object_get(root, "total");
	page->has_total = json_is_integer(total);
	page->total = page->has_total ? json_integer_value(total) : 0;
}

static json_t *
details_of(json_t *entry)
{
	json_t	   *details = json_object_get(entry, "details");

	return json_is_array(details) ? details : NULL;
}

static int
huawei_rows_in_record(json_t *entry)
{
	json_t	   *details = details_of(entry);

	return details ? Max(1, (int) json_array_size(details)) : 1;
}

static json_t *
huawei_column_value(OprecScan *scan, const OprecChain *chain, json_t *entry,
					int row, int column)
{
	const char *field = huawei_sources[column].field;

	switch (huawei_sources[column].source)
	{
		case FROM_SCOPE:
			return scan->scope_json;
		case FROM_CHAIN:
			return scan->chain_key_json;
		case FROM_ENTRY:
			return json_object_get(entry, field);
		case FROM_USER:
			return json_object_get(json_object_get(entry, "user"), field);
		case FROM_DETAIL:
			/* an entry without details gives one row with NULL details */
			return json_object_get(json_array_get(details_of(entry), row), field);
	}
	return NULL;
}

/*
 * The first step of a field path: an entry's member, except that details
 * is the row's own detail (each detail is a row).
 */
static json_t *
huawei_record_field(OprecScan *scan, json_t *entry, int row, const char *name)
{
	if (strcmp(name, "details") == 0)
		return json_array_get(details_of(entry), row);
	return json_object_get(entry, name);
}

static const char *const huawei_log_id_headers[] = {"X-Request-Id", NULL};

static const char *const huawei_throttled_codes[] = {
	HUAWEI_RATE_TOO_HIGH, HUAWEI_GATEWAY_THROTTLED, NULL
};
static const char *const huawei_transient_codes[] = {HUAWEI_SYSTEM_BUSY, NULL};

static const OprecResource oprec_huawei_records = {
	.service = &oprec_huawei_service,
	.name = "issue_records",
	.table_name = "huawei_issue_records",
	.call = "GET " RECORD_PATH,
	.max_page_size = 1000,
	.default_page_size = 100,
	.columns = huawei_columns,
	.ncolumns = NUM_HUAWEI_COLUMNS,
	.key_column = COL_ISSUE_ID,
	.time_column = COL_CREATED_ON,
	.scope_column = COL_PROJECT_ID,
	.min_key = 1,
	.max_key = MAX_ISSUE_ID,
	.max_keys_per_request = 1,
	.build_page_request = huawei_build_page_request,
	.read_page = huawei_read_page,
	.column_value = huawei_column_value,
	.rows_in_record = huawei_rows_in_record,
	.record_field = huawei_record_field,
	.list_keys = huawei_list_keys,
	.list_call = "POST /v4/projects/{project_id}/issues",
	.list_page_size = ISSUES_PAGE_SIZE,
};

static const OprecResource *const huawei_resources[] = {&oprec_huawei_records, NULL};

/* An IAM token is scoped to a region's project, and comes from iam_url. */
static const char *const huawei_credential_server_options[] = {"region", "iam_url", NULL};

const OprecService oprec_huawei_service = {
	.name = "huawei",
	.title = "Huawei CodeArts Req",
	.default_base_url = "https://projectman-ext." DEFAULT_REGION ".myhuaweicloud.com",
	.default_requests_per_second = 10,
	.options = huawei_options,
	.resources = huawei_resources,
	.import_schema = "huawei",
	.default_base_url_for = huawei_default_base_url,
	.log_id_headers = huawei_log_id_headers,
	.check_user_mapping = huawei_check_user_mapping,
	.begin_scan = huawei_begin_scan,
	.get_token = huawei_get_token,
	.token_refused = huawei_token_refused,
	.credential_server_options = huawei_credential_server_options,
	.error_of = huawei_error_of,
	.hint = huawei_hint,
	.throttled_codes = huawei_throttled_codes,
	.transient_codes = huawei_transient_codes,
};
