/*-------------------------------------------------------------------------
 *
 * feishu.c
 *		  The Feishu Project (Meegle) dialect: work item operation records
 *		  from POST /open_api/op_record/work_item/list.
 *
 * What is specific to Feishu lives here: its options and columns, the JSON
 * body of a list request, the answer and error shapes, and the plugin
 * token (exchanged from plugin_id and plugin_secret, cached per user
 * mapping and renewed shortly before it lapses, or once when the API says
 * it expired).  Paging, windows, HTTP and conversion are the engine's.
 *
 * A second table, feishu_users (table option resource 'users'), reads
 * people from POST /open_api/user/query, 100 user keys a request, so that
 * an operator's user key can be joined to a name.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <jansson.h>

#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_type.h"
#include "catalog/pg_user_mapping.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "oprec_api.h"

extern const OprecService oprec_feishu_service;

#define LIST_PATH "/open_api/op_record/work_item/list"
#define USER_QUERY_PATH "/open_api/user/query"
#define FILTER_PATH "/open_api/%s/work_item/filter"
#define TYPES_PATH "/open_api/%s/work_item/all-types"

/* Work items listed per request (the filter call's largest page). */
#define FILTER_PAGE_SIZE 200

/*
 * The filter call leaves terminated items out unless their state is named:
 * the listing is two, the items it lists by default and the terminated
 * ones.  Deleted items are never listed (nor are their records served).
 */
enum FeishuListing
{
	LIST_DEFAULT,
	LIST_TERMINATED,
	NUM_FEISHU_LISTINGS
};
#define TOKEN_PATH "/open_api/authen/plugin_token"

/* Renew a plugin token this long before it lapses, as the SDKs do. */
#define TOKEN_RENEW_MARGIN_SEC 180
#define DEFAULT_TOKEN_LIFETIME_SEC 7200

/*
 * Error codes with a meaning of their own.  An error may come with any
 * HTTP status, as err_code or as error.code; quota (10429) and server
 * (50006) errors pass when the request is sent again.
 */
#define FEISHU_NO_TOKEN 10021
#define FEISHU_TOKEN_EXPIRED 10022
#define FEISHU_TOKEN_INVALID 10211
#define FEISHU_NO_PERMISSION_TOKEN 10301
#define FEISHU_NO_PERMISSION 10001
#define FEISHU_QUOTA 10429
#define FEISHU_WORK_ITEM_NOT_FOUND 30005
#define FEISHU_SERVER_ERROR 50006
#define FEISHU_BODY_MISMATCH 9999
#define FEISHU_PAGE_SIZE_TOO_LARGE 20002
#define FEISHU_MISSING_PARAM 20005
#define FEISHU_INVALID_PARAM 20006
#define FEISHU_INVALID_TIME_INTERVAL 20013
#define FEISHU_TOO_MANY_IDS 20028

enum FeishuColumn
{
	COL_PROJECT_KEY,
	COL_WORK_ITEM_ID,
	COL_WORK_ITEM_TYPE_KEY,
	COL_OPERATION_TIME,
	COL_OPERATOR,
	COL_OPERATOR_TYPE,
	COL_OPERATION_TYPE,
	COL_OP_RECORD_MODULE,
	COL_SOURCE_TYPE,
	COL_SOURCE,
	COL_RECORD_CONTENTS,
	NUM_FEISHU_COLUMNS
};

/*
 * Column names are the record's field names (read by the engine's default
 * column_value; a record belongs to the project asked for, even if it does
 * not say) and the list filters' names.
 */
static const OprecColumnDef feishu_columns[NUM_FEISHU_COLUMNS] = {
	[COL_PROJECT_KEY] = {"project_key", OPREC_VALUE_TEXT, "text", OPREC_PUSH_SCOPE, TEXTOID, "project_key", "project_key"},
	[COL_WORK_ITEM_ID] = {"work_item_id", OPREC_VALUE_INT64, "bigint", OPREC_PUSH_KEY, INT8OID, "work_item_ids", NULL},
	[COL_WORK_ITEM_TYPE_KEY] = {"work_item_type_key", OPREC_VALUE_TEXT, "text", OPREC_PUSH_NONE, InvalidOid, NULL, NULL},
	[COL_OPERATION_TIME] = {"operation_time", OPREC_VALUE_EPOCH_MS, "timestamptz", OPREC_PUSH_TIME, TIMESTAMPTZOID, "start/end", NULL},
	[COL_OPERATOR] = {"operator", OPREC_VALUE_TEXT, "text", OPREC_PUSH_LIST, TEXTOID, "operator", NULL},
	[COL_OPERATOR_TYPE] = {"operator_type", OPREC_VALUE_TEXT, "text", OPREC_PUSH_LIST, TEXTOID, "operator_type", NULL},
	[COL_OPERATION_TYPE] = {"operation_type", OPREC_VALUE_TEXT, "text", OPREC_PUSH_LIST, TEXTOID, "operation_type", NULL},
	[COL_OP_RECORD_MODULE] = {"op_record_module", OPREC_VALUE_TEXT, "text", OPREC_PUSH_LIST, TEXTOID, "op_record_module", NULL},
	[COL_SOURCE_TYPE] = {"source_type", OPREC_VALUE_TEXT, "text", OPREC_PUSH_LIST, TEXTOID, "source_type", NULL},
	[COL_SOURCE] = {"source", OPREC_VALUE_TEXT, "text", OPREC_PUSH_LIST, TEXTOID, "source", NULL},
	[COL_RECORD_CONTENTS] = {"record_contents", OPREC_VALUE_JSON, "jsonb", OPREC_PUSH_NONE, InvalidOid, NULL, NULL},
};

static const char *const resource_choices[] = {"op_records", "users", NULL};

static const OprecOptionDef feishu_options[] = {
	{"resource", ForeignTableRelationId, OPREC_OPT_CHOICE, 0, 0, false, resource_choices},
	{"project_key", ForeignServerRelationId, OPREC_OPT_STRING, 0, 0, false},
	{"history_start", ForeignServerRelationId, OPREC_OPT_TIMESTAMPTZ, 0, 0, false},
	{"plugin_id", UserMappingRelationId, OPREC_OPT_STRING, 0, 0, false},
	{"plugin_secret", UserMappingRelationId, OPREC_OPT_STRING, 0, 0, true},
	{"plugin_token", UserMappingRelationId, OPREC_OPT_STRING, 0, 0, true},
	{"user_key", UserMappingRelationId, OPREC_OPT_STRING, 0, 0, false},
	{"project_key", ForeignTableRelationId, OPREC_OPT_STRING, 0, 0, false},
	{NULL}
};

/* What a scan needs beyond the engine's options. */
typedef struct FeishuState
{
	const char *user_key;
	const char *plugin_id;
	const char *plugin_secret;
	const char *plugin_token;	/* given as is: never renewed */
	json_t	   *type_keys;		/* the space's work item types, once listed */
} FeishuState;

/* A user mapping holds exactly one complete way to get a token. */
static void
feishu_check_user_mapping(List *options)
{
	bool		has_id = oprec_defelem_value(options, "plugin_id") != NULL;
	bool		has_secret = oprec_defelem_value(options, "plugin_secret") != NULL;
	bool		has_token = oprec_defelem_value(options, "plugin_token") != NULL;
	const char *ways = "Give either plugin_token, or plugin_id and plugin_secret, and user_key.";

	if (has_token && (has_id || has_secret))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("a user mapping takes either plugin_token or plugin_id and plugin_secret, not both"),
				 errhint("%s", ways)));
	if (has_id != has_secret)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("option \"%s\" needs option \"%s\"",
						has_id ? "plugin_id" : "plugin_secret",
						has_id ? "plugin_secret" : "plugin_id"),
				 errhint("%s", ways)));
	if (!has_token && !has_id)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("a user mapping for an api 'feishu' server needs credentials"),
				 errhint("%s", ways)));
	if (oprec_defelem_value(options, "user_key") == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("a user mapping for an api 'feishu' server needs option \"user_key\""),
				 errdetail("A plugin token acts on behalf of a user, sent as X-USER-KEY."),
				 errhint("%s", ways)));
}

static void *
feishu_begin_scan(OprecScan *scan)
{
	FeishuState *st = palloc0(sizeof(FeishuState));
	List	   *um = scan->options->user_options;

	st->user_key = oprec_defelem_value(um, "user_key");
	st->plugin_id = oprec_defelem_value(um, "plugin_id");
	st->plugin_secret = oprec_defelem_value(um, "plugin_secret");
	st->plugin_token = oprec_defelem_value(um, "plugin_token");
	if (st->user_key == NULL || (st->plugin_token == NULL &&
								 (st->plugin_id == NULL || st->plugin_secret == NULL)))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("the user mapping for this Feishu Project server has no complete credentials"),
				 errhint("ALTER USER MAPPING ... OPTIONS (ADD plugin_id '...', ADD plugin_secret '...', ADD user_key '...'), or give plugin_token instead of plugin_id and plugin_secret.")));
	/* a given plugin_token is used as is; plugin_id and secret get tokens */
	scan->renews_token = st->plugin_token == NULL;
	return st;
}

/* Read {"err_code", "err_msg"} or {"error": {"code", "msg"}} from an answer. */
static bool
feishu_error_of(json_t *root, OprecApiError *error)
{
	json_t	   *value;
	json_t	   *err;
	int64		code = 0;

	error->message = NULL;
	if (!json_is_object(root))
		return false;
	value = json_object_get(root, "err_code");
	if (json_is_integer(value) && json_integer_value(value) != 0)
	{
		code = json_integer_value(value);
		error->message = json_string_value(json_object_get(root, "err_msg"));
	}
	err = json_object_get(root, "err");
	if (!json_is_object(err))
		err = json_object_get(root, "error");
	if (json_is_object(err))
	{
		value = json_object_get(err, "code");
		if (code == 0 && json_is_integer(value) && json_integer_value(value) != 0)
			code = json_integer_value(value);
		if ((error->message == NULL || error->message[0] == '\0') &&
			json_is_string(json_object_get(err, "msg")))
			error->message = json_string_value(json_object_get(err, "msg"));
	}
	error->code = code != 0 ? psprintf(INT64_FORMAT, code) : NULL;
	return code != 0;
}

static const char *
feishu_hint(OprecScan *scan, const char *code_text)
{
	FeishuState *st = scan->api_state;
	int64		code = strtoll(code_text, NULL, 10);

	switch (code)
	{
		case FEISHU_NO_TOKEN:
		case FEISHU_TOKEN_EXPIRED:
		case FEISHU_TOKEN_INVALID:
			if (st->plugin_token)
				return "The plugin_token of the user mapping was refused; set a fresh one, or give plugin_id and plugin_secret so that tokens are renewed. Check user_key too.";
			return "Check plugin_id, plugin_secret and user_key in the user mapping.";
		case FEISHU_NO_PERMISSION_TOKEN:
		case FEISHU_NO_PERMISSION:
			return "The plugin or user lacks permission for this space or API; grant it in Feishu Project.";
		case FEISHU_QUOTA:
			return "The API's request quota was exceeded; lower the server's requests_per_second option or retry later.";
		case FEISHU_SERVER_ERROR:
			return "The API failed on its side; retry later.";
		case FEISHU_INVALID_PARAM:
			return "The API refused a value of the request; if it comes from a condition of the query (such as operator_type = '...'), use a value the API knows.";
		case FEISHU_BODY_MISMATCH:
		case FEISHU_PAGE_SIZE_TOO_LARGE:
		case FEISHU_MISSING_PARAM:
		case FEISHU_INVALID_TIME_INTERVAL:
		case FEISHU_TOO_MANY_IDS:
			return "The API refused the shape of the request; its rules may have changed: report the request above.";
	}
	return NULL;
}

/* Exchange plugin_id and plugin_secret for a plugin token. */
static void
feishu_get_token(OprecScan *scan)
{
	FeishuState *st = scan->api_state;
	OprecRequest req;
	OprecAnswer answer;
	json_t	   *body;
	json_t	   *data;
	json_t	   *token;
	json_t	   *lifetime;
	int64		seconds = DEFAULT_TOKEN_LIFETIME_SEC;

	oprec_request_init(&req, "POST");
	req.secret_answer = true;
	appendStringInfo(&req.url, "%s%s", scan->options->base_url, TOKEN_PATH);
	oprec_request_add_header(&req, "Content-Type", "application/json");
	body = oprec_json_owned(oprec_json_new_object());
	json_object_set_new(body, "plugin_id", json_string(st->plugin_id));
	json_object_set_new(body, "plugin_secret", json_string(st->plugin_secret));
	json_object_set_new(body, "type", json_integer(0));
	oprec_request_set_json_body(&req, body);
	appendStringInfo(&req.summary, "POST %s for plugin_id \"%s\"", TOKEN_PATH, st->plugin_id);

	oprec_send(scan, &req, &answer);
	if (answer.root == NULL)
		oprec_bad_answer(&answer, "the token answer is not JSON");
	oprec_raise_error_of(scan, &answer);
	if (answer.resp.status < 200 || answer.resp.status > 299)
		oprec_api_error(&answer, NULL, "the plugin token was not issued",
						"Check plugin_id and plugin_secret in the user mapping.");
	data = json_object_get(answer.root, "data");
	token = json_object_get(data, "token");
	if (!json_is_string(token) || json_string_length(token) == 0)
		oprec_bad_answer(&answer, "no data.token in the token answer");
	lifetime = json_object_get(data, "expire_time");
	if (json_is_integer(lifetime) && json_integer_value(lifetime) > 0)
		seconds = Min(json_integer_value(lifetime), OPREC_MAX_TOKEN_LIFETIME_SEC);

	oprec_session_set_token(scan->session, json_string_value(token),
							TimestampTzPlusMilliseconds(GetCurrentTimestamp(), seconds * 1000),
							TOKEN_RENEW_MARGIN_SEC);
}

/* The plugin token expired (10022) or is not valid (10211). */
static bool
feishu_token_refused(const OprecApiError *error)
{
	int64		code = strtoll(error->code, NULL, 10);

	return code == FEISHU_TOKEN_EXPIRED || code == FEISHU_TOKEN_INVALID;
}

/*
 * Address a request to path on the server, as the plugin's user, with a
 * JSON body (NULL: none); the summary shows it as sent (no secret in it).
 */
static void
feishu_request(OprecScan *scan, OprecRequest *req, const char *method, const char *path,
			   json_t *body)
{
	FeishuState *st = scan->api_state;

	req->method = method;
	appendStringInfo(&req->url, "%s%s", scan->options->base_url, path);
	oprec_request_add_header(req, "X-PLUGIN-TOKEN",
							 st->plugin_token ? st->plugin_token : scan->session->token);
	oprec_request_add_header(req, "X-USER-KEY", st->user_key);
	if (body)
	{
		oprec_request_add_header(req, "Content-Type", "application/json");
		oprec_request_set_json_body(req, body);
		appendStringInfo(&req->summary, "%s %s %s", method, path, req->body.data);
	}
	else
		appendStringInfo(&req->summary, "%s %s", method, path);
}

static json_t *
string_array(const OprecColumnFilter *filter)
{
	json_t	   *array = json_array();

	for (int i = 0; i < filter->nvalues; i++)
		json_array_append_new(array, json_string(filter->strs[i]));
	return array;
}

static void
feishu_build_page_request(OprecScan *scan, const OprecChain *chain, const char *cursor,
						  OprecRequest *req)
{
	const OprecFilters *filters = scan->filters;
	json_t	   *body = oprec_json_owned(oprec_json_new_object());
	json_t	   *ids = json_array();

	json_object_set_new(body, "project_key", json_string(scan->scope));
	for (int i = 0; i < chain->nkeys; i++)
		json_array_append_new(ids, json_integer(chain->keys[i]));
	json_object_set_new(body, "work_item_ids", ids);
	if (chain->windowed)
	{
		json_object_set_new(body, "start", json_integer(chain->window_start_ms));
		json_object_set_new(body, "end", json_integer(chain->window_end_ms));
	}
	for (int col = 0; col < NUM_FEISHU_COLUMNS; col++)
	{
		if (feishu_columns[col].push == OPREC_PUSH_LIST && filters->columns[col].active)
			json_object_set_new(body, feishu_columns[col].request_name,
								string_array(&filters->columns[col]));
	}
	json_object_set_new(body, "page_size", json_integer(scan->options->page_size));
	if (cursor)
		json_object_set_new(body, "start_from", json_string(cursor));
	feishu_request(scan, req, "POST", LIST_PATH, body);
}

static void
feishu_read_page(OprecScan *scan, const OprecChain *chain, const char *cursor,
				 OprecAnswer *answer, OprecPage *page)
{
	json_t	   *data = json_object_get(answer->root, "data");
	json_t	   *records;
	json_t	   *has_more;
	json_t	   *next;
	json_t	   *total;

	if (!json_is_object(data))
		oprec_bad_answer(answer, "no data object");
	records = json_object_get(data, "op_records");
	if (records == NULL || json_is_null(records))
		records = oprec_json_owned(json_array());	/* a page without records */
	else if (!json_is_array(records))
		oprec_bad_answer(answer, "data.op_records is not an array");
	has_more = json_object_get(data, "has_more");
	if (has_more != NULL && !json_is_boolean(has_more))
		oprec_bad_answer(answer, "data.has_more is not a boolean");
	next = json_object_get(data, "start_from");

	page->records = records;
	page->has_more = json_is_true(has_more);
	page->next_cursor = json_is_string(next) ? pstrdup(json_string_value(next)) : NULL;
	/* no source says how exact total is: it only guides a choice of cost */
	total = json_object_get(data, "total");
	page->has_total = json_is_integer(total) && json_integer_value(total) >= 0;
	page->total = page->has_total ? json_integer_value(total) : 0;
}

/* A listing request: what oprec_call writes on each attempt. */
typedef struct ListingRequest
{
	const char *method;
	const char *path;
	json_t	   *body;			/* NULL: none */
} ListingRequest;

static void
build_listing_request(OprecScan *scan, OprecRequest *req, void *arg)
{
	ListingRequest *listing = arg;

	feishu_request(scan, req, listing->method, listing->path, listing->body);
}

/* Send a request of the listing calls; the answer's JSON, its errors raised. */
static json_t *
send_listing_request(OprecScan *scan, OprecAnswer *answer, const char *method,
					 const char *path, json_t *body)
{
	ListingRequest listing = {method, path, body};

	return oprec_call(scan, answer, build_listing_request, &listing);
}

/* The space's work item types, listed once per scan: the filter needs them. */
static json_t *
space_type_keys(OprecScan *scan)
{
	FeishuState *st = scan->api_state;
	OprecAnswer answer;
	json_t	   *root;
	json_t	   *data;
	json_t	   *type;
	json_t	   *types;
	MemoryContext oldcxt;
	size_t		i;

	if (st->type_keys)
		return st->type_keys;
	root = send_listing_request(scan, &answer, "GET",
								psprintf(TYPES_PATH, oprec_url_escape(scan->scope)), NULL);
	data = json_object_get(root, "data");
	if (!json_is_array(data) || json_array_size(data) == 0)
		oprec_bad_answer(&answer, "no work item types in data");
	types = json_array();
	json_array_foreach(data, i, type)
	{
		json_t	   *key = json_object_get(type, "type_key");

		if (!json_is_string(key) || json_string_length(key) == 0)
		{
			json_decref(types);
			oprec_bad_answer(&answer, "a work item type without type_key");
		}
		/* disabled types too: their items keep their history */
		json_array_append_new(types, json_stringn(json_string_value(key),
												  json_string_length(key)));
	}
	/* kept as long as the scan's state; copies: the answer goes with its page */
	oldcxt = MemoryContextSwitchTo(GetMemoryChunkContext(st));
	st->type_keys = oprec_json_owned(types);
	MemoryContextSwitchTo(oldcxt);
	return st->type_keys;
}

/* A {"start", "end"} interval of the filter call; start is required. */
static json_t *
filter_interval(bool has_start, int64 start_ms, bool has_end, int64 end_ms)
{
	json_t	   *interval = oprec_json_new_object();

	/* the API wants a 13-digit start */
	json_object_set_new(interval, "start",
						json_integer(has_start ? start_ms : OPREC_LISTING_FLOOR_MS));
	if (has_end)
		json_object_set_new(interval, "end", json_integer(end_ms));
	return interval;
}

/*
 * One page of a slice of the space's work items (POST .../work_item/filter),
 * by update time and creation time as the slice says; the page number
 * counts from 1.
 */
static void
feishu_list_keys(OprecScan *scan, const OprecKeySlice *slice, OprecKeyPage *page)
{
	OprecAnswer answer;
	json_t	   *types = space_type_keys(scan);
	json_t	   *body = oprec_json_owned(oprec_json_new_object());
	json_t	   *root;
	json_t	   *pagination;
	json_t	   *total;

	json_object_set(body, "work_item_type_keys", types);
	/* terminated items are listed only when asked for by their state */
	if (slice->variant == LIST_TERMINATED)
		json_object_set_new(body, "work_item_status",
							json_pack("[{s:s}]", "state_key", "terminated"));
	if (slice->has_updated_from || slice->has_updated_to)
		json_object_set_new(body, "updated_at",
							filter_interval(slice->has_updated_from, slice->updated_from_ms,
											slice->has_updated_to, slice->updated_to_ms));
	if (slice->has_created_to)
		json_object_set_new(body, "created_at",
							filter_interval(false, 0, true, slice->created_to_ms));
	json_object_set_new(body, "page_num", json_integer(slice->page + 1));
	json_object_set_new(body, "page_size", json_integer(FILTER_PAGE_SIZE));
	root = send_listing_request(scan, &answer, "POST",
								psprintf(FILTER_PATH, oprec_url_escape(scan->scope)), body);

	oprec_read_listed_keys(&answer, json_object_get(root, "data"),
						   "data is not an array of work items",
						   "a work item without an integer id", page);
	pagination = json_object_get(root, "pagination");
	total = json_object_get(pagination, "total");
	page->has_total = json_is_integer(total);
	page->total = page->has_total ? json_integer_value(total) : 0;
}

static const char *const feishu_log_id_headers[] = {"X-Tt-Logid", "X-Request-Id", NULL};

/* ----------------------------------------------------------------
 *		feishu_users: people by user key
 * ----------------------------------------------------------------
 */
enum FeishuUserColumn
{
	UCOL_USER_KEY,
	UCOL_USERNAME,
	UCOL_NAME_CN,
	UCOL_NAME_EN,
	UCOL_EMAIL,
	UCOL_STATUS,
	UCOL_NAME,
	NUM_USER_COLUMNS
};

/* User keys are text (decimal digits) in every answer that names a person. */
static const OprecColumnDef feishu_user_columns[NUM_USER_COLUMNS] = {
	[UCOL_USER_KEY] = {"user_key", OPREC_VALUE_TEXT, "text", OPREC_PUSH_KEY, TEXTOID, "user_keys", NULL},
	[UCOL_USERNAME] = {"username", OPREC_VALUE_TEXT, "text"},
	[UCOL_NAME_CN] = {"name_cn", OPREC_VALUE_TEXT, "text"},
	[UCOL_NAME_EN] = {"name_en", OPREC_VALUE_TEXT, "text"},
	[UCOL_EMAIL] = {"email", OPREC_VALUE_TEXT, "text"},
	[UCOL_STATUS] = {"status", OPREC_VALUE_TEXT, "text"},
	[UCOL_NAME] = {"name", OPREC_VALUE_JSON, "jsonb"},
};

static void
feishu_users_build_request(OprecScan *scan, const OprecChain *chain, const char *cursor,
						   OprecRequest *req)
{
	json_t	   *body = oprec_json_owned(oprec_json_new_object());
	json_t	   *keys = json_array();

	for (int i = 0; i < chain->nkeys; i++)
		json_array_append_new(keys, json_string(psprintf(INT64_FORMAT, chain->keys[i])));
	json_object_set_new(body, "user_keys", keys);
	feishu_request(scan, req, "POST", USER_QUERY_PATH, body);
}

/* One answer holds every user asked for that exists: no paging. */
static void
feishu_users_read_page(OprecScan *scan, const OprecChain *chain, const char *cursor,
					   OprecAnswer *answer, OprecPage *page)
{
	json_t	   *data = json_object_get(answer->root, "data");

	if (data == NULL || json_is_null(data))
		data = oprec_json_owned(json_array());
	else if (!json_is_array(data))
		oprec_bad_answer(answer, "data is not an array of users");
	page->records = data;
	page->has_more = false;
}

static const char *const feishu_throttled_codes[] = {CppAsString2(FEISHU_QUOTA), NULL};
static const char *const feishu_transient_codes[] = {CppAsString2(FEISHU_SERVER_ERROR), NULL};

static const OprecResource oprec_feishu_records = {
	.service = &oprec_feishu_service,
	.name = "op_records",
	.table_name = "feishu_op_records",
	.call = "POST " LIST_PATH,
	.max_page_size = 200,
	.default_page_size = 200,
	.columns = feishu_columns,
	.ncolumns = NUM_FEISHU_COLUMNS,
	.key_column = COL_WORK_ITEM_ID,
	.time_column = COL_OPERATION_TIME,
	.scope_column = COL_PROJECT_KEY,
	.min_key = 1,
	.max_keys_per_request = 50,
	.max_window_ms = INT64CONST(7) * 24 * 3600 * 1000,
	.history_start_option = "history_start",
	.default_history_start = "2024-07-02 00:00:00+08",
	.key_not_found_code = CppAsString2(FEISHU_WORK_ITEM_NOT_FOUND),
	.build_page_request = feishu_build_page_request,
	.read_page = feishu_read_page,
	.list_keys = feishu_list_keys,
	.list_call = "POST /open_api/:project_key/work_item/filter",
	.list_page_size = FILTER_PAGE_SIZE,
	.list_variants = NUM_FEISHU_LISTINGS,
};

static const OprecResource oprec_feishu_users = {
	.service = &oprec_feishu_service,
	.name = "users",
	.table_name = "feishu_users",
	.call = "POST " USER_QUERY_PATH,
	.max_page_size = 200,
	.default_page_size = 200,
	.columns = feishu_user_columns,
	.ncolumns = NUM_USER_COLUMNS,
	.key_column = UCOL_USER_KEY,
	.time_column = -1,
	.scope_column = -1,
	.min_key = 1,
	.max_keys_per_request = 100,
	.build_page_request = feishu_users_build_request,
	.read_page = feishu_users_read_page,
};

static const OprecResource *const feishu_resources[] = {
	&oprec_feishu_records, &oprec_feishu_users, NULL
};

const OprecService oprec_feishu_service = {
	.name = "feishu",
	.title = "Feishu Project",
	.default_base_url = "https://project.feishu.cn",
	.default_requests_per_second = 15,
	.options = feishu_options,
	.resources = feishu_resources,
	.import_schema = "feishu",
	.log_id_headers = feishu_log_id_headers,
	.check_user_mapping = feishu_check_user_mapping,
	.begin_scan = feishu_begin_scan,
	.get_token = feishu_get_token,
	.token_refused = feishu_token_refused,
	.error_of = feishu_error_of,
	.hint = feishu_hint,
	.throttled_codes = feishu_throttled_codes,
	.transient_codes = feishu_transient_codes,
};
