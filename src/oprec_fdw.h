/*-------------------------------------------------------------------------
 *
 * oprec_fdw.h
 *		  Shared definitions for oprec_fdw: operation-history APIs as tables.
 *
 * The extension is one engine and several API dialects.  The engine owns
 * options, the classification of WHERE conditions, request chains (key
 * batches x time windows), paging, HTTP and JSON-to-tuple conversion.  An
 * API unit (in src/api/) fills in an OprecApi: its options, its columns,
 * how a request is written, how an answer is read, and how it authenticates.
 *
 * Externs are grouped by the file that defines them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef OPREC_FDW_H
#define OPREC_FDW_H

#include "postgres.h"

#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "utils/timestamp.h"

/* PostgreSQL 13's pull_varnos takes no PlannerInfo. */
#if PG_VERSION_NUM < 140000
#define pull_varnos(root, node) pull_varnos(node)
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
	int			max_retries;	/* attempts after the first */
	size_t		max_response_bytes; /* after decompression */
	const char *ca_file;		/* CA certificates for TLS, or NULL */
	int			max_id_range;	/* most keys a range of keys may span */
	bool		always_windows; /* time_windows 'always': never a walk */
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

/* Operators a pushed condition can have (stored in the plan). */
typedef enum OprecCondOp
{
	OPREC_COND_EQ,
	OPREC_COND_ANY,				/* = ANY (array), also IN (...) */
	OPREC_COND_LT,
	OPREC_COND_LE,
	OPREC_COND_GE,
	OPREC_COND_GT
} OprecCondOp;

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
#define OPREC_MAX_RATE_WINDOW 64	/* at most 64: in_flight is a bit mask */

/*
 * Recent requests of one credential, for pacing (pace.c): the send time of
 * each request in flight, the completion time of the others, and the rate
 * after the API throttled.  In shared memory when the library is preloaded.
 */
typedef struct OprecPaceWindow
{
	TimestampTz times[OPREC_MAX_RATE_WINDOW];	/* 0: unused */
	uint64		in_flight;		/* bit i: times[i] is a send time */
	int			limit;			/* requests_per_second last asked for */
	int			lowered_rate;	/* rate set by the last throttling... */
	TimestampTz lowered_at;		/* ...at this time; 0: none */
} OprecPaceWindow;

typedef struct OprecSession
{
	Oid			user_mapping_id;	/* hash key */
	bool		valid;			/* false after the mapping or server changed */
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
	char	   *token;			/* cached credential, in TopMemoryContext */
	TimestampTz token_renew_at; /* renew the token from this time on */
	OprecPaceWindow pace;		/* used when pacing is not shared */
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
} OprecPage;

/* ----------------------------------------------------------------
 *		Execution state of one scan (scan.c)
 * ----------------------------------------------------------------
 */
typedef struct OprecScanCounters
{
	int64		http_requests;	/* every request sent, tokens included */
	int64		retries;		/* requests sent again after a failure */
	int64		pages;			/* answers with records read */
	int64		records;		/* records received */
	int64		bytes_received; /* answer bodies, after decompression */
	int64		wait_us;		/* in oprec_http_send: pacing, transfers,
								 * pauses between retries */
	int64		rows;			/* rows produced */
	int			key_batches;	/* from the most recent (re)scan */
	int			time_windows;
} OprecScanCounters;

typedef struct OprecScan
{
	MemoryContext scan_cxt;		/* lives as long as the scan */
	MemoryContext run_cxt;		/* filters and chains; reset per rescan */
	MemoryContext chain_cxt;	/* cursors of the current chain */
	MemoryContext page_cxt;		/* reset before every page */
	OprecOptions *options;
	const struct OprecApi *api;
	void	   *api_state;		/* the API unit's resolved options */
	OprecSession *session;
	uint64		pace_key;		/* the credential requests count against */
	TimestampTz history_start;	/* earliest time the API serves, or 0 */

	/* filters and chains, built when the scan starts */
	OprecFilters *filters;
	const char *scope;			/* value of the scope (project) */
	json_t	   *scope_json;		/* the same as a JSON string, or NULL */
	json_t	   *chain_key_json; /* the key of a one-key chain, for APIs whose
								 * records do not carry it; else NULL */
	OprecChain *chains;
	int			nchains;
	int			chain_index;	/* chain being fetched */

	/* paging within the current chain */
	bool		chain_started;
	bool		chain_done;
	int			chain_pages;
	char	   *cursor;			/* continuation for the next page */
	struct HTAB *seen_cursors;	/* hashes of its cursors, or NULL */
	int			empty_pages_in_a_row;
	OprecPage	page;
	int64	   *missing_keys;	/* keys the API said do not exist */
	int			nmissing;
	bool		missing_reported;
	size_t		record_index;
	int			row_in_record;
	int			rows_in_record;

	OprecScanCounters counters;
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

	const char *import_schema;	/* IMPORT FOREIGN SCHEMA name... */
	const char *import_table;	/* ...and the table it creates */
} OprecApi;

/* Milliseconds from now until t, rounded up; 0 if t has passed. */
static inline long
oprec_ms_until(TimestampTz t)
{
	TimestampTz now = GetCurrentTimestamp();

	return t <= now ? 0 : (long) Min((t - now + 999) / 1000, (TimestampTz) INT_MAX);
}

/*
 * What one attribute of a foreign table reads: an API column, or a path
 * into the record (column.c).
 */
typedef struct OprecColumnMap
{
	bool		dropped;
	int			api_column;		/* -1: read through path */
	const char *field;			/* the field option, or the column name */
	char	  **path;			/* steps of the path */
	int			npath;
} OprecColumnMap;

/*
 * Positions in the fdw_private list of a ForeignScan plan: pushdown.c's
 * description of the pushed conditions, then what the handler adds.
 */
enum OprecPrivateIndex
{
	OPREC_PRIVATE_COLUMNS,		/* IntList: API column of each condition */
	OPREC_PRIVATE_OPS,			/* IntList: OprecCondOp of each condition */
	OPREC_PRIVATE_TEXT,			/* List of String: conditions as written */
	OPREC_PRIVATE_RETRIEVED,	/* IntList: attributes the query reads */
	OPREC_PRIVATE_KEY_SOURCE,	/* NIL, or a batched join's key source (join.c) */
	OPREC_PRIVATE_PARAMETERIZED /* Integer: a parameterized path's plan */
};

/* ----------------------------------------------------------------
 *		Plan-time state, kept in baserel->fdw_private
 * ----------------------------------------------------------------
 */
typedef struct OprecPlanState
{
	OprecOptions *options;
	OprecColumnMap *columns;	/* per attribute, by attnum - 1 */
	List	   *pushed_columns; /* API column index per pushed condition */
	List	   *pushed_ops;		/* OprecCondOp per pushed condition */
	List	   *pushed_exprs;	/* right-hand side expression */
	List	   *pushed_text;	/* the condition as written, for EXPLAIN */
	bool		has_key_list;	/* key = ..., IN, = ANY */
	bool		has_key_lower;	/* key >= ..., key > ... */
	bool		has_key_upper;	/* key <= ..., key < ... */
	Bitmapset  *attrs_used;

	/* estimates (estimate.c), from the conditions known at plan time */
	double		keys_estimate;	/* keys the conditions name, or a guess */
	double		windows_estimate;	/* time windows per key batch */
	double		time_fraction;	/* of a key's history the time range holds */
	Selectivity local_selectivity;	/* of the conditions on other columns */
	QualCost	local_cost;		/* of evaluating every condition per row */
} OprecPlanState;

/* ----------------------------------------------------------------
 *		Externs, grouped by file
 * ----------------------------------------------------------------
 */

/* in oprec_fdw.c */
extern void _PG_init(void);

/* in column.c */
extern int	oprec_api_column(const OprecApi *api, const char *name);
extern bool oprec_field_path_valid(const char *path);
extern OprecColumnMap *oprec_map_columns(Relation rel, const OprecApi *api);
extern json_t *oprec_column_json(OprecScan *scan, const OprecChain *chain,
								 json_t *record, int row, const OprecColumnMap *map);

/* in option.c */
extern char *oprec_allowed_hosts;
extern const OprecApi *oprec_find_api(const char *name);
extern bool oprec_is_table_option(const OprecApi *api, const char *name);
extern char *oprec_table_option_names(const OprecApi *api);
extern OprecOptions *oprec_get_options(Oid foreigntableid, Oid userid);
extern const char *oprec_option_value(const OprecOptions *options, const char *name);
extern const char *oprec_defelem_value(List *options, const char *name);
extern char *oprec_url_base(const char *url);
extern int	oprec_option_int(const OprecOptions *options, const char *name, int fallback);
extern TimestampTz oprec_parse_timestamptz(const char *text, const char *option_name);
extern bool oprec_try_parse_timestamptz(const char *text, TimestampTz *result);

/* in pushdown.c */
extern void oprec_classify_conditions(PlannerInfo *root, RelOptInfo *baserel,
									  OprecPlanState *plan);
extern List *oprec_pushdown_private(OprecPlanState *plan);
extern List *oprec_pushdown_exprs(OprecPlanState *plan);
extern char *oprec_deparse_in_query(PlannerInfo *root, Node *expr);
extern void oprec_classify_join_clauses(PlannerInfo *root, RelOptInfo *baserel,
										OprecPlanState *plan, List *clauses);
extern bool oprec_is_key_join_clause(PlannerInfo *root, RelOptInfo *baserel,
									 const OprecPlanState *plan, RestrictInfo *rinfo,
									 Expr **value);
extern OprecFilters *oprec_evaluate_filters(const OprecApi *api, List *fdw_private,
											List *expr_states, ExprContext *econtext,
											int max_key_range,
											const OprecColumnFilter *extra_keys);
extern void oprec_intersect_filter(OprecColumnFilter *target,
								   const OprecColumnFilter *next, bool is_int);
extern bool oprec_pushed_key_condition(const OprecApi *api, List *fdw_private);
extern bool oprec_pushed_key_range(const OprecApi *api, List *fdw_private);
extern void oprec_keys_from_datums(Datum *values, int n, Oid value_type,
								   OprecColumnFilter *keys);

/* in estimate.c */
extern void oprec_estimate_relation(PlannerInfo *root, RelOptInfo *baserel,
									OprecPlanState *plan);
extern double oprec_estimate_rows(const OprecPlanState *plan, double keys);
extern void oprec_estimate_cost(const OprecPlanState *plan, double keys,
								Cost extra_startup, double *rows,
								Cost *startup_cost, Cost *total_cost);

/* in cache.c */
typedef struct OprecRowCache OprecRowCache;

extern OprecRowCache *oprec_cache_create(MemoryContext parent);
extern char *oprec_filters_signature(const OprecApi *api, const OprecFilters *filters);
extern bool oprec_cache_start(OprecRowCache *cache, const char *signature);
extern bool oprec_cache_next(OprecRowCache *cache, TupleTableSlot *slot);
extern void oprec_cache_add(OprecRowCache *cache, TupleTableSlot *slot);
extern void oprec_cache_complete(OprecRowCache *cache);
extern void oprec_cache_abandon(OprecRowCache *cache);
extern int64 oprec_cache_hits(const OprecRowCache *cache);

/* in join.c */
typedef struct OprecKeySource
{
	Oid			relid;			/* the local table */
	Oid			value_type;		/* int8, numeric or float8 */
	int16		value_len;
	bool		value_byval;
	ExprState  *value;			/* the key, from a row of the table */
	ExprState  *quals;			/* the table's conditions */
	ExprContext *econtext;
	Snapshot	snapshot;		/* the query's */
} OprecKeySource;

extern void oprec_add_join_paths(PlannerInfo *root, RelOptInfo *baserel,
								 OprecPlanState *plan);
extern List *oprec_key_source_private(ForeignPath *path, List **fdw_exprs);
extern int	oprec_key_source_position(List *key_source, const char **description);
extern OprecKeySource *oprec_key_source_begin(EState *estate, Expr *value, List *quals);
extern void oprec_key_source_read(OprecKeySource *source, OprecColumnFilter *keys);
extern bool oprec_exprs_need_execution(List *fdw_exprs);
extern List *oprec_pushed_descriptions(List *fdw_private);
extern List *oprec_pushed_columns(List *fdw_private);

/* in chain.c */
extern OprecChain *oprec_build_chains(const OprecApi *api, const OprecFilters *filters,
									  TimestampTz history_start, int page_size,
									  bool always_windows, TimestampTz now, int *nchains,
									  int *nbatches, int *nwindows);
extern OprecChain *oprec_window_chains(const OprecApi *api, const OprecChain *walk,
									   int *nwindows);
extern int64 oprec_timestamptz_to_ms_floor(TimestampTz ts);
extern int64 oprec_timestamptz_to_ms_ceil(TimestampTz ts);
extern bool oprec_ms_to_timestamptz(int64 ms, TimestampTz *result);

/* in scan.c */
extern OprecScan *oprec_scan_create(MemoryContext parent, OprecOptions *options);
extern TimestampTz oprec_history_start(const OprecOptions *options);
extern const char *oprec_scope_value(const OprecOptions *options,
									 const OprecFilters *filters);
extern void oprec_scan_start(OprecScan *scan, OprecFilters *filters);
extern bool oprec_scan_next_row(OprecScan *scan, json_t **record, int *row,
								const OprecChain **chain);
extern void oprec_scan_end(OprecScan *scan);

/* in convert.c */
typedef struct OprecColumnConverter
{
	const OprecColumnMap *map;	/* NULL: not read, always NULL */
	OprecValueKind kind;		/* of the API column; JSON for a path */
	Oid			typid;
	int32		typmod;
	Oid			typioparam;
	FmgrInfo	input;
	/* arrays (text[], ...) are built from JSON arrays, element by element */
	Oid			elemtype;		/* InvalidOid: not an array type */
	Oid			elem_ioparam;
	FmgrInfo	elem_input;
	int16		elemlen;
	bool		elembyval;
	char		elemalign;
} OprecColumnConverter;

extern void oprec_prepare_converter(OprecColumnConverter *conv, const OprecApi *api,
									const OprecColumnMap *map, Oid typid, int32 typmod);
extern Datum oprec_json_to_datum(OprecColumnConverter *conv, json_t *value, bool *isnull);
extern char *oprec_json_shown(json_t *value);
extern bool oprec_json_epoch_ms(json_t *value, int64 *ms);
extern json_t *oprec_json_load_owned(OprecScan *scan, const StringInfo body);
extern json_t *oprec_json_answer(OprecScan *scan, OprecRequest *req, OprecResponse *resp);
extern json_t *oprec_json_owned(json_t *value);
extern json_t *oprec_json_new_object(void);
extern void oprec_request_set_json_body(OprecRequest *req, json_t *body);

/* in session.c */
extern OprecSession *oprec_get_session(Oid user_mapping_id);
extern void oprec_session_set_token(OprecSession *session, const char *token,
									TimestampTz expires, int renew_margin_sec);
extern void oprec_session_forget_token(OprecSession *session);
extern bool oprec_session_token_usable(OprecSession *session);

/* in pace.c */
extern void oprec_pace_init(void);
extern uint64 oprec_pace_key(const OprecOptions *options);
extern void oprec_pace_wait(OprecSession *session, uint64 pace_key,
							int requests_per_second);
extern void oprec_pace_done(OprecSession *session, uint64 pace_key,
							bool throttled);

/* in http.c */
extern void oprec_http_init(void);
extern void oprec_request_init(OprecRequest *req, const char *method);
extern void oprec_request_add_header(OprecRequest *req, const char *name,
									 const char *value);
extern bool oprec_has_control_char(const char *value);
extern char *oprec_api_text(const char *text, size_t len);
extern void oprec_http_send(OprecScan *scan, OprecRequest *req, OprecResponse *resp);
extern void oprec_api_error(OprecScan *scan, OprecRequest *req, OprecResponse *resp,
							const char *code, const char *message,
							const char *hint) pg_attribute_noreturn();
extern void oprec_bad_answer(OprecScan *scan, OprecRequest *req, OprecResponse *resp,
							 const char *what) pg_attribute_noreturn();

/* in api/feishu.c */
extern const OprecApi oprec_feishu_api;

/* in api/huawei.c */
extern const OprecApi oprec_huawei_api;

#endif							/* OPREC_FDW_H */
