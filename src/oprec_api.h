/*-------------------------------------------------------------------------
 *
 * oprec_api.h
 *		  The contract between the engine and an API unit (src/api/).
 *
 * An API unit provides an OprecApi: its options, its columns and how each
 * can be pushed down, how a request is written, how an answer is read, and
 * how it authenticates.  It may use what this header declares and nothing
 * of the engine's internals (oprec_fdw.h): the scan's resolved options and
 * filters, the chain a request is for, requests and answers, errors that
 * quote the API safely, JSON owned by memory contexts, and the session's
 * cached token.  A new API is a new file in src/api/ and a line in the
 * list of APIs in option.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef OPREC_API_H
#define OPREC_API_H

#include "postgres.h"

#include <limits.h>

#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/timestamp.h"

/*
 * PostgreSQL 18 marks functions that do not return with a leading
 * pg_noreturn, and no longer has the trailing pg_attribute_noreturn().
 */
#if PG_VERSION_NUM < 180000
#define pg_noreturn pg_attribute_noreturn()
#endif

/*
 * jansson's value type.  jansson.h itself is included only where JSON is
 * handled: some of its names (json_object, json_typeof) are also SQL
 * functions declared by utils/builtins.h.
 */
typedef struct json_t json_t;

struct OprecApi;

/* ----------------------------------------------------------------
 *		Column and option descriptions, supplied by API units
 * ----------------------------------------------------------------
 */

/* What kind of JSON value a column carries, which drives conversion. */
typedef enum OprecValueKind
{
	OPREC_VALUE_TEXT,			/* string (numbers are shown as text) */
	OPREC_VALUE_INT64,			/* exact 64-bit integer */
	OPREC_VALUE_EPOCH_MS,		/* milliseconds since 1970, number or string */
	OPREC_VALUE_JSON			/* any JSON value, kept as JSON */
} OprecValueKind;

/* How conditions on a column can be turned into request parameters. */
typedef enum OprecPushKind
{
	OPREC_PUSH_NONE,			/* always checked locally only */
	OPREC_PUSH_KEY,				/* the required key list: =, IN, = ANY */
	OPREC_PUSH_LIST,			/* an optional list filter: =, IN, = ANY */
	OPREC_PUSH_SCOPE,			/* the request scope (a project): = only */
	OPREC_PUSH_TIME				/* a time range: <, <=, =, >=, > */
} OprecPushKind;

typedef struct OprecColumnDef
{
	const char *name;			/* column name, matched against the table */
	OprecValueKind kind;
	const char *sql_type;		/* its type in the documented table */
	OprecPushKind push;
	Oid			push_type;		/* declared type needed for pushdown */
	const char *request_name;	/* the request parameter it becomes */
	const char *scope_option;	/* OPREC_PUSH_SCOPE: default from this
								 * table or server option */
} OprecColumnDef;

typedef enum OprecOptionType
{
	OPREC_OPT_STRING,			/* any non-empty string */
	OPREC_OPT_URL,				/* http:// or https:// URL */
	OPREC_OPT_INT,				/* integer within [min, max] */
	OPREC_OPT_TIMESTAMPTZ,		/* a timestamp with time zone literal */
	OPREC_OPT_HOST_LABEL,		/* lowercase letters, digits and '-', as a
								 * part of a host name (a region) */
	OPREC_OPT_FILE,				/* a server file path: superusers only */
	OPREC_OPT_REAL,				/* a number within [min, max] */
	OPREC_OPT_CHOICE,			/* one of choices */
	OPREC_OPT_FIELD_PATH		/* a column's field: name.name... */
} OprecOptionType;

typedef struct OprecOptionDef
{
	const char *name;
	Oid			context;		/* ForeignServerRelationId, ... */
	OprecOptionType type;
	int			min_value;		/* OPREC_OPT_INT only */
	int			max_value;
	bool		secret;			/* never echoed in messages */
	const char *const *choices; /* OPREC_OPT_CHOICE: NULL terminated */
} OprecOptionDef;

/* ----------------------------------------------------------------
 *		Resolved options for one foreign table
 * ----------------------------------------------------------------
 */
typedef struct OprecOptions
{
	const struct OprecApi *api;
	char	   *base_url;		/* without a trailing slash */
	int			page_size;
	int			connect_timeout_ms;
	int			request_timeout_ms;
	int			requests_per_second;	/* 0: no client-side limit */
	int			max_concurrency;	/* requests a scan has in flight at once */
	int			max_retries;	/* attempts after the first */
	size_t		max_response_bytes; /* after decompression */
	const char *ca_file;		/* CA certificates for TLS, or NULL */
	int			max_id_range;	/* most keys a range of keys may span */
	bool		always_windows; /* time_windows 'always': never a walk */
	int			max_requests;	/* the most requests one scan may send */
	bool		list_every_key; /* list_items 'all': not only items updated
								 * in the time range */
	bool		allow_whole_history;	/* whole_history 'allow': a scan with
										 * no ids and no time range */
	/* the planner's cost model (estimate.c) */
	double		fdw_startup_cost;
	double		fdw_tuple_cost;
	double		request_cost;
	double		records_per_id;
	List	   *server_options; /* DefElem lists, for the API unit */
	List	   *table_options;
	List	   *user_options;	/* NIL at plan time */
	Oid			user_mapping_id;	/* InvalidOid at plan time */
} OprecOptions;

/* ----------------------------------------------------------------
 *		Conditions pushed down, and their values at scan start
 * ----------------------------------------------------------------
 */

/* Values of a key, list or scope filter, after evaluation. */
typedef struct OprecColumnFilter
{
	bool		active;			/* some condition restricts this column */
	int			nvalues;
	int64	   *ints;			/* OPREC_PUSH_KEY: sorted, distinct */
	char	  **strs;			/* LIST and SCOPE: sorted, distinct, UTF-8 */
} OprecColumnFilter;

typedef struct OprecFilters
{
	bool		empty;			/* the conditions contradict: no request */
	OprecColumnFilter *columns; /* one per API column */
	bool		has_key_lower;	/* range of keys, inclusive */
	bool		has_key_upper;
	int64		key_lower;
	int64		key_upper;
	bool		has_lower;		/* operation time range, inclusive ms */
	bool		has_upper;
	int64		lower_ms;
	int64		upper_ms;
} OprecFilters;

/*
 * A request chain: one key batch over one time window, fetched page by page.
 */
typedef struct OprecChain
{
	const int64 *keys;			/* the keys it asks for (a slice of the key
								 * filter's values) */
	int			nkeys;
	bool		windowed;		/* false: no time parameters are sent */
	int64		window_start_ms;	/* [start, end) when windowed */
	int64		window_end_ms;
	bool		probe;			/* a walk whose first page decides between
								 * going on and the windows of its range */
	int64		range_lower_ms; /* the time range asked for, inclusive */
	int64		range_upper_ms;
	const char *first_cursor;	/* where it starts; NULL: the first page */
	bool		one_page;		/* a page of another chain, asked for on its
								 * own (OprecPage.later_cursors) */
} OprecChain;

/* ----------------------------------------------------------------
 *		HTTP requests and answers (http.c)
 * ----------------------------------------------------------------
 */
#define OPREC_MAX_CAPTURED_HEADERS 4

typedef struct OprecRequest
{
	const char *method;			/* "GET" or "POST" */
	StringInfoData url;
	List	   *headers;		/* "Name: value" strings */
	StringInfoData body;		/* empty for GET */
	StringInfoData summary;		/* what was asked, safe to show a user */
	const char *capture[OPREC_MAX_CAPTURED_HEADERS];	/* headers to keep */
	int			ncapture;
	bool		secret_answer;	/* the answer holds a credential: never
								 * quote it in a message */
} OprecRequest;

typedef struct OprecResponse
{
	long		status;			/* HTTP status */
	StringInfoData body;
	char	   *captured[OPREC_MAX_CAPTURED_HEADERS];	/* as in capture[] */
	char	   *log_id;			/* one of the API's log_id_headers, if any */
	int			retries;		/* attempts before this answer */
} OprecResponse;

/* Memory budget for reading a short (error) answer. */
#define OPREC_ERROR_ANSWER_BUDGET (4 * 1024 * 1024)

/* A token said to last longer than this is renewed after this. */
#define OPREC_MAX_TOKEN_LIFETIME_SEC (30 * 24 * 3600)

/* ----------------------------------------------------------------
 *		Per-backend sessions: cached tokens and request pacing
 * ----------------------------------------------------------------
 */
struct OprecPaceWindow;			/* pace.c's, kept in the engine */

typedef struct OprecSession
{
	Oid			user_mapping_id;	/* hash key */
	bool		valid;			/* false after the mapping or server changed */
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
	char	   *token;			/* cached credential, in TopMemoryContext */
	TimestampTz token_renew_at; /* renew the token from this time on */
	uint64		token_generation;	/* counts the tokens set */
	bool		credential_accepted;	/* the API answered a page: until then
										 * scans send one request at a time */
	struct OprecPaceWindow *pace;	/* used when pacing is not shared */
} OprecSession;

/* ----------------------------------------------------------------
 *		One page of an answer, as an API unit reads it
 * ----------------------------------------------------------------
 */
typedef enum OprecPageOutcome
{
	OPREC_PAGE_OK,
	OPREC_PAGE_TOKEN_REJECTED,	/* the token is expired or invalid */
	OPREC_PAGE_KEY_NOT_FOUND	/* a key the chain names does not exist */
} OprecPageOutcome;

typedef struct OprecPage
{
	json_t	   *root;			/* owns everything below; freed per page */
	json_t	   *records;		/* JSON array of records */
	bool		has_more;
	char	   *next_cursor;	/* opaque continuation when has_more */
	bool		has_missing_key;	/* OPREC_PAGE_KEY_NOT_FOUND: the API */
	int64		missing_key;	/* named the key that does not exist */
	bool		has_total;		/* the answer says how many records the */
	int64		total;			/* chain has in all (an estimate) */
	/*
	 * Optional, on a chain's first page: the cursors of all its later pages,
	 * when the answer tells them (offset paging with a total).  They are
	 * then asked for together, in any order, instead of one after another.
	 */
	char	  **later_cursors;
	int			nlater_cursors;
} OprecPage;

/* No item was updated or created before 2001-09-09 (the first 13-digit ms). */
#define OPREC_LISTING_FLOOR_MS INT64CONST(1000000000000)

/*
 * A slice of the keys an API lists when a query names none (list_keys):
 * the items of the scope updated within [updated_from, updated_to] (an end
 * not set is open) and, if set, created no later than created_to, read
 * page by page (page counts from 0).  The engine (listing.c) chooses the
 * slices so that each is read in one page wherever it can.
 */
typedef struct OprecKeySlice
{
	bool		has_updated_from;
	int64		updated_from_ms;
	bool		has_updated_to;
	int64		updated_to_ms;
	bool		has_created_to;
	int64		created_to_ms;
	int			page;
} OprecKeySlice;

/*
 * One page of a slice of keys, as an API unit reads it.  Whether the slice
 * holds more is the engine's to tell, from the total or a full page.
 */
typedef struct OprecKeyPage
{
	int64	   *keys;
	int			nkeys;
	bool		has_total;		/* the answer says how many the slice holds */
	int64		total;
} OprecKeyPage;

/* ----------------------------------------------------------------
 *		One scan, as an API unit sees it
 * ----------------------------------------------------------------
 */
typedef struct OprecScan
{
	const struct OprecApi *api;
	OprecOptions *options;		/* the table's resolved options */
	void	   *api_state;		/* the API unit's own, from begin_scan */
	OprecSession *session;		/* the credential's cached token */

	/* set when the scan (re)starts */
	OprecFilters *filters;		/* values of the pushed conditions */
	const char *scope;			/* value of the scope (project), UTF-8 */
	json_t	   *scope_json;		/* the same as a JSON string, or NULL */
	json_t	   *chain_key_json; /* the key of a one-key chain, for APIs whose
								 * records do not carry it; else NULL */

	struct OprecScanEngine *engine; /* the engine's own state: not for API
									 * units */
} OprecScan;

/* ----------------------------------------------------------------
 *		The API unit contract
 * ----------------------------------------------------------------
 */
typedef struct OprecApi
{
	const char *name;			/* value of the server's api option */
	const char *title;			/* human name, e.g. "Feishu Project" */
	const char *default_base_url;
	/* optional: a default base URL that depends on other options */
	const char *(*default_base_url_for) (const OprecOptions *options);
	int			max_page_size;
	int			default_page_size;
	int			default_requests_per_second;
	const char *call;			/* e.g. "POST /open_api/..." (EXPLAIN) */
	const char *const *log_id_headers;	/* answer headers naming a request
										 * for the provider's support, NULL
										 * terminated */

	const OprecOptionDef *options;	/* terminated by a NULL name */
	const OprecColumnDef *columns;
	int			ncolumns;
	int			key_column;		/* index of the OPREC_PUSH_KEY column */
	int64		min_key;		/* keys outside [min_key, max_key] cannot */
	int64		max_key;		/* exist: they are not asked for */
	int			time_column;	/* OPREC_PUSH_TIME column, or -1 */
	int			scope_column;	/* OPREC_PUSH_SCOPE column, or -1 */
	int			max_keys_per_request;
	int64		max_window_ms;	/* 0: the API takes no time range */
	const char *history_start_option;	/* option naming earliest history */
	const char *default_history_start;

	/* Validator: check a user mapping's option set as a whole. */
	void		(*check_user_mapping) (List *options);

	/* Scan start: resolve API-specific options into api_state. */
	void	   *(*begin_scan) (OprecScan *scan);

	/*
	 * Make sure the session holds a usable token; renew it when it is
	 * missing, expiring or force_renew.  May send requests through
	 * oprec_http_send.  APIs that sign each request do nothing here.
	 */
	void		(*ensure_token) (OprecScan *scan, bool force_renew);

	/*
	 * Optional: why an answer (a non-2xx status, or a short body, parsed
	 * by the engine) is a transient failure worth sending again, or NULL;
	 * set *throttled for a quota error.  Called before read_page with JSON
	 * of any shape.
	 */
	const char *(*transient_error) (OprecScan *scan, json_t *root,
									bool *throttled);

	/* Whether a rejected token may be renewed and the page asked again. */
	bool		(*can_renew_token) (OprecScan *scan);
	/* Whether an answer (of any shape) refuses the request's token. */
	bool		(*token_refused) (OprecScan *scan, json_t *root);

	/* Write the request for the next page of a chain (cursor may be NULL). */
	void		(*build_page_request) (OprecScan *scan, const OprecChain *chain,
									   const char *cursor, OprecRequest *req);

	/*
	 * Read an answer: fill page, or raise an error through oprec_api_error.
	 * A refused token returns OPREC_PAGE_TOKEN_REJECTED when may_renew; an
	 * answer refusing the whole request because one of its keys does not
	 * exist returns OPREC_PAGE_KEY_NOT_FOUND.
	 */
	OprecPageOutcome (*read_page) (OprecScan *scan, const OprecChain *chain,
								   const char *cursor, bool may_renew,
								   OprecRequest *req, OprecResponse *resp,
								   OprecPage *page);

	/* How many rows one record gives (at least 1). */
	int			(*rows_in_record) (json_t *record);

	/* The JSON value of a column for one row of a record; NULL if absent. */
	json_t	   *(*column_value) (OprecScan *scan, const OprecChain *chain,
								 json_t *record, int row, int column);

	/*
	 * Optional: the first step of a field path for one row of a record (by
	 * default the record's member of that name).
	 */
	json_t	   *(*record_field) (OprecScan *scan, json_t *record, int row,
								 const char *name);

	/*
	 * Optional: list one page of a slice of the scope's keys (by update
	 * time), for a query that names none.  Sends its requests through
	 * oprec_send_with_token.  list_call names the call for EXPLAIN.
	 */
	const char *list_call;
	int			list_page_size; /* keys a listing request asks for: a page that
								 * full may have more after it */
	void		(*list_keys) (OprecScan *scan, const OprecKeySlice *slice,
							  OprecKeyPage *page);
	const char *import_schema;	/* IMPORT FOREIGN SCHEMA name... */
	const char *import_table;	/* ...and the table it creates */

	/*
	 * Optional: other tables a server of this API serves, chosen by the
	 * table option resource (NULL terminated); resource names this one.
	 * IMPORT FOREIGN SCHEMA creates them all.
	 */
	const char *resource;
	const struct OprecApi *const *resources;
} OprecApi;

/* Milliseconds from now until t, rounded up; 0 if t has passed. */
static inline long
oprec_ms_until(TimestampTz t)
{
	TimestampTz now = GetCurrentTimestamp();

	return t <= now ? 0 : (long) Min((t - now + 999) / 1000, (TimestampTz) INT_MAX);
}

/* ----------------------------------------------------------------
 *		What an API unit may call
 * ----------------------------------------------------------------
 */

/* options (option.c) */
extern const char *oprec_option_value(const OprecOptions *options, const char *name);
extern const char *oprec_defelem_value(List *options, const char *name);
extern char *oprec_url_base(const char *url);
extern bool oprec_try_parse_timestamptz(const char *text, TimestampTz *result);

/* requests, answers and errors (http.c) */
extern void oprec_request_init(OprecRequest *req, const char *method);
extern char *oprec_url_escape(const char *value);
extern void oprec_request_add_header(OprecRequest *req, const char *name,
									 const char *value);
extern char *oprec_api_text(const char *text, size_t len);
extern void oprec_http_send(OprecScan *scan, OprecRequest *req, OprecResponse *resp);
extern json_t *oprec_send_with_token(OprecScan *scan, OprecRequest *req, OprecResponse *resp,
									 void (*build) (OprecScan *scan, OprecRequest *req,
													void *arg),
									 void *arg);
pg_noreturn extern void oprec_api_error(OprecScan *scan, OprecRequest *req,
										OprecResponse *resp, const char *code,
										const char *message, const char *hint);
pg_noreturn extern void oprec_bad_answer(OprecScan *scan, OprecRequest *req,
										 OprecResponse *resp, const char *what);

/* JSON owned by memory contexts (convert.c) */
extern json_t *oprec_json_load_owned(OprecScan *scan, const StringInfo body);
extern json_t *oprec_json_answer(OprecScan *scan, OprecRequest *req, OprecResponse *resp);
extern json_t *oprec_json_owned(json_t *value);
extern json_t *oprec_json_new_object(void);
extern void oprec_request_set_json_body(OprecRequest *req, json_t *body);

/* tokens (session.c) */
extern void oprec_session_set_token(OprecSession *session, const char *token,
									TimestampTz expires, int renew_margin_sec);
extern void oprec_session_forget_token(OprecSession *session);
extern bool oprec_session_token_usable(OprecSession *session);

/* the API units */
extern const OprecApi oprec_feishu_api;
extern const OprecApi oprec_feishu_users_api;
extern const OprecApi oprec_huawei_api;

#endif							/* OPREC_API_H */
