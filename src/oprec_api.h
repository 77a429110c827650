/*-------------------------------------------------------------------------
 *
 * oprec_api.h
 *		  The contract between the engine and an API unit (src/api/).
 *
 * An API unit describes one service and the tables (resources) it serves,
 * and provides only what is specific to it.  It sees this header and
 * nothing of the engine's internals (oprec_fdw.h).
 *
 * A service (OprecService) is how an API's server is reached: its name and
 * title, base URL, default request rate, options and their checks,
 * credentials and tokens, and what its answers say about errors.  A
 * resource (OprecResource) is one table of it: its columns and how each is
 * pushed down, how a page is asked for, how records and the cursor are
 * taken out of an answer, how a record gives rows, and optionally how the
 * keys are listed when a query names none.
 *
 * A new API unit must provide:
 *	- an OprecService with name, title, default_base_url, options (those of
 *	  its servers, user mappings and tables), resources, and error_of (is
 *	  this answer an error, and which);
 *	- for each table an OprecResource with service, name, table_name,
 *	  call, page sizes, columns (one OPREC_PUSH_KEY column; time_column and
 *	  scope_column, -1 if none), max_keys_per_request, build_page_request
 *	  and read_page (column_value too, unless each column is the record's
 *	  member of its name);
 *	- its line in the table of APIs (src/api/apis.c) and its object in the
 *	  Makefile's OBJS, and a module of the API simulator (test/simulator/)
 *	  for its tests.
 * Everything else is optional: NULL (or 0) means "not needed".  Requests
 * are written with the helpers at the end of this header; the engine
 * sends them, paces and retries them, renews refused tokens, parses each
 * answer and raises the API's errors with the service's hints before
 * read_page sees it.
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

struct OprecService;
struct OprecResource;

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
	const struct OprecResource *resource;	/* the table's */
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
 *		Requests and answers
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

/* An answer to a request, its body read as JSON once. */
typedef struct OprecAnswer
{
	const struct OprecService *service; /* whose: named in messages */
	OprecRequest *req;
	OprecResponse resp;
	json_t	   *root;			/* owned by a memory context; NULL if the
								 * body is not JSON */
} OprecAnswer;

/* An error an answer reports, as the service's error_of reads it. */
typedef struct OprecApiError
{
	const char *code;			/* the API's error code, as text */
	const char *message;		/* its message, or NULL */
} OprecApiError;

/* A token said to last longer than this is renewed after this. */
#define OPREC_MAX_TOKEN_LIFETIME_SEC (30 * 24 * 3600)

/* ----------------------------------------------------------------
 *		Per-backend sessions: cached tokens
 * ----------------------------------------------------------------
 */

/* A credential is named by the SHA-256 of its parts (session.c). */
#define OPREC_CREDENTIAL_DIGEST_LEN 32
struct OprecPaceWindow;			/* pace.c's own */

typedef struct OprecSession
{
	Oid			user_mapping_id;	/* hash key */
	bool		valid;			/* false after the mapping or server changed */
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
	char	   *token;			/* cached credential, in TopMemoryContext */
	TimestampTz token_renew_at; /* renew the token from this time on */
	uint64		token_generation;	/* of the token (cluster-wide when
									 * shared) */
	bool		credential_accepted;	/* the API answered a page or issued a
										 * token: until then scans send one
										 * request at a time */
	bool		has_credential;
	uint8		credential[OPREC_CREDENTIAL_DIGEST_LEN];	/* names it */
	struct OprecPaceWindow *pace;	/* used when pacing is not shared */
} OprecSession;

/* ----------------------------------------------------------------
 *		One page of an answer, as a resource reads it
 * ----------------------------------------------------------------
 */
typedef struct OprecPage
{
	json_t	   *records;		/* JSON array of records */
	bool		has_more;
	char	   *next_cursor;	/* opaque continuation when has_more */
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
 * A slice of the keys a resource lists when a query names none (list_keys):
 * the items of the scope updated within [updated_from, updated_to] (an end
 * not set is open) and, if set, created no later than created_to, read
 * page by page (page counts from 0).  The engine (listing.c) chooses the
 * slices so that each is read in one page wherever it can.  A resource
 * whose items are listed by several calls (the items an API's listing
 * leaves out by default, asked for apart) has list_variants of them: each
 * slice is of one.
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
	int			variant;		/* which of the resource's list_variants */
} OprecKeySlice;

/*
 * One page of a slice of keys, as a resource reads it.  Whether the slice
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
	const struct OprecService *service;
	const struct OprecResource *resource;
	OprecOptions *options;		/* the table's resolved options */
	void	   *api_state;		/* the unit's own, from begin_scan */
	bool		renews_token;	/* begin_scan: these credentials get tokens
								 * from the service (get_token), and a
								 * refused one is renewed once */
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
 *		The service
 * ----------------------------------------------------------------
 */
typedef struct OprecService
{
	const char *name;			/* value of the server's api option */
	const char *title;			/* human name, e.g. "Feishu Project" */
	const char *default_base_url;
	int			default_requests_per_second;	/* 0: the engine's default */
	const OprecOptionDef *options;	/* terminated by a NULL name */
	/* its tables, the server's default first (NULL terminated) */
	const struct OprecResource *const *resources;
	const char *import_schema;	/* IMPORT FOREIGN SCHEMA name, or NULL */

	/* Optional: a default base URL that depends on other options. */
	const char *(*default_base_url_for) (const OprecOptions *options);
	/* Optional: answer headers naming a request for the provider's support. */
	const char *const *log_id_headers;
	/* Optional: check a user mapping's option set as a whole (validator). */
	void		(*check_user_mapping) (List *options);

	/*
	 * Optional: at scan start, the unit's own state (credentials, ...) for
	 * scan->api_state; set scan->renews_token for credentials exchanged
	 * for tokens.
	 */
	void	   *(*begin_scan) (OprecScan *scan);

	/*
	 * Optional, with renews_token: get a new token with oprec_send and
	 * give it to oprec_session_set_token.  The engine calls it only when
	 * the session has no token it may send, and in one backend of the
	 * cluster at a time per credential (the others use its token).
	 * token_refused tells an answer refusing the token; it is then
	 * forgotten and the request sent again once with a new one.
	 */
	void		(*get_token) (OprecScan *scan);
	bool		(*token_refused) (const OprecApiError *error);

	/*
	 * Optional: server options that, with the base URL and the user
	 * mapping's options, name a credential (NULL terminated): backends
	 * share a token only if all of these are the same.
	 */
	const char *const *credential_server_options;

	/*
	 * Whether an answer (JSON of any shape) reports an error, and which.
	 * Errors raise, with hint(code) if given; codes in throttled_codes or
	 * transient_codes (NULL terminated, optional) are retried, the first
	 * also slowing the pace.
	 */
	bool		(*error_of) (json_t *root, OprecApiError *error);
	const char *(*hint) (OprecScan *scan, const char *code);
	const char *const *throttled_codes;
	const char *const *transient_codes;
} OprecService;

/* ----------------------------------------------------------------
 *		A resource: one table of a service
 * ----------------------------------------------------------------
 */
typedef struct OprecResource
{
	const OprecService *service;
	const char *name;			/* value of the table option resource */
	const char *table_name;		/* the table IMPORT FOREIGN SCHEMA creates */
	const char *call;			/* e.g. "POST /open_api/..." (EXPLAIN) */
	int			max_page_size;
	int			default_page_size;

	const OprecColumnDef *columns;
	int			ncolumns;
	int			key_column;		/* index of the OPREC_PUSH_KEY column */
	int			time_column;	/* OPREC_PUSH_TIME column, or -1 */
	int			scope_column;	/* OPREC_PUSH_SCOPE column, or -1 */
	int64		min_key;		/* keys outside [min_key, max_key] cannot */
	int64		max_key;		/* exist (max_key 0: no upper end) */
	int			max_keys_per_request;
	int64		max_window_ms;	/* 0: the API takes no time range */
	const char *history_start_option;	/* option naming earliest history */
	const char *default_history_start;

	/*
	 * Optional: the error code of an answer refusing a whole request
	 * because one of its keys does not exist.  The engine then asks
	 * without it (the key named in the message, or found by halving).
	 */
	const char *key_not_found_code;

	/* Write the request for a page of a chain (cursor NULL: the first). */
	void		(*build_page_request) (OprecScan *scan, const OprecChain *chain,
									   const char *cursor, OprecRequest *req);

	/*
	 * Take the records and the paging out of an answer whose errors the
	 * engine has already raised; an answer of the wrong shape raises with
	 * oprec_bad_answer.
	 */
	void		(*read_page) (OprecScan *scan, const OprecChain *chain,
							  const char *cursor, OprecAnswer *answer, OprecPage *page);

	/*
	 * Optional: the JSON value of a column for one row of a record, NULL if
	 * absent.  By default the record's member of the column's name; a
	 * record without its scope or (in a chain of one key) its key belongs
	 * to those asked for.
	 */
	json_t	   *(*column_value) (OprecScan *scan, const OprecChain *chain,
								 json_t *record, int row, int column);

	/* Optional: how many rows one record gives (at least 1; default 1). */
	int			(*rows_in_record) (json_t *record);

	/*
	 * Optional: the first step of a field path for one row of a record (by
	 * default the record's member of that name).
	 */
	json_t	   *(*record_field) (OprecScan *scan, json_t *record, int row,
								 const char *name);

	/*
	 * Optional: list one page of a slice of the scope's keys (by update
	 * time), for a query that names none, sending with oprec_call.
	 * list_call names the call for EXPLAIN; list_page_size is the keys a
	 * listing request asks for (a page that full may have more after it).
	 */
	void		(*list_keys) (OprecScan *scan, const OprecKeySlice *slice,
							  OprecKeyPage *page);
	const char *list_call;
	int			list_page_size;
	int			list_variants;	/* listings that together hold every item
								 * (0: one) */
} OprecResource;

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

/* option values (option_value.c) */
extern const char *oprec_option_value(const OprecOptions *options, const char *name);
extern const char *oprec_defelem_value(List *options, const char *name);
extern char *oprec_url_base(const char *url);
extern bool oprec_try_parse_timestamptz(const char *text, TimestampTz *result);

/* writing requests (request.c) */
extern void oprec_request_init(OprecRequest *req, const char *method);
extern char *oprec_url_escape(const char *value);
extern void oprec_request_add_header(OprecRequest *req, const char *name,
									 const char *value);
extern void oprec_request_set_json_body(OprecRequest *req, json_t *body);

/* sending them (service.c) */
extern void oprec_send(OprecScan *scan, OprecRequest *req, OprecAnswer *answer);
extern void oprec_raise_error_of(OprecScan *scan, OprecAnswer *answer);
extern json_t *oprec_call(OprecScan *scan, OprecAnswer *answer,
						  void (*build) (OprecScan *scan, OprecRequest *req, void *arg),
						  void *arg);
extern void oprec_read_listed_keys(OprecAnswer *answer, json_t *items,
								   const char *not_array, const char *without_id,
								   OprecKeyPage *page);

/* errors that quote the API safely (report.c) */
extern char *oprec_api_text(const char *text, size_t len);
pg_noreturn extern void oprec_api_error(const OprecAnswer *answer, const char *code,
										const char *message, const char *hint);
pg_noreturn extern void oprec_bad_answer(const OprecAnswer *answer, const char *what);

/* JSON owned by memory contexts (json_memory.c) */
extern json_t *oprec_json_owned(json_t *value);
extern json_t *oprec_json_new_object(void);

/* tokens (session.c) */
extern void oprec_session_set_token(OprecSession *session, const char *token,
									TimestampTz expires, int renew_margin_sec);

#endif							/* OPREC_API_H */
