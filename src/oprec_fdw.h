/*-------------------------------------------------------------------------
 *
 * oprec_fdw.h
 *		  The engine's definitions: operation-history APIs as tables.
 *
 * The extension is one engine and several API dialects.  The engine owns
 * options, the classification of WHERE conditions, joins and estimates,
 * request chains (key batches x time windows), paging, HTTP and
 * JSON-to-tuple conversion.  An API unit (in src/api/) fills in an
 * OprecApi and sees only oprec_api.h; this header adds what the engine
 * keeps to itself.
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

#include "oprec_api.h"

/* PostgreSQL 13's pull_varnos takes no PlannerInfo. */
#if PG_VERSION_NUM < 140000
#define pull_varnos(root, node) pull_varnos(node)
#endif

/* ----------------------------------------------------------------
 *		Conditions pushed down (pushdown.c)
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

/* ----------------------------------------------------------------
 *		The engine's state of one scan (OprecScan.engine; scan.c)
 * ----------------------------------------------------------------
 */

/* One request from its first attempt to its answer (http.c). */
typedef struct OprecCall OprecCall;

/* The listing of a scan that names no keys (listing.c). */
typedef struct OprecListing OprecListing;

typedef struct OprecScanCounters
{
	int64		http_requests;	/* every request sent, tokens included */
	int64		retries;		/* requests sent again after a failure */
	int64		pages;			/* answers with records read */
	int64		records;		/* records received */
	int64		bytes_received; /* answer bodies, after decompression */
	int64		wait_us;		/* waiting for answers: transfers, pacing,
								 * pauses between retries (overlapping
								 * requests counted once) */
	int64		rows;			/* rows produced */
	int64		listed_keys;	/* keys a scan naming none listed */
	int			key_batches;	/* from the most recent (re)scan */
	int			time_windows;
} OprecScanCounters;

/*
 * A request chain being fetched: its own cursor and progress checks, and
 * the request for its next page while one is in flight.
 */
typedef struct OprecLane
{
	bool		active;			/* holds a chain with pages to come */
	OprecChain	chain;
	MemoryContext chain_cxt;	/* its cursors; reset per chain */
	int			pages;			/* pages received */
	char	   *cursor;			/* for the next page; NULL: the first */
	struct HTAB *seen_cursors;	/* hashes of its cursors, or NULL */
	int			empty_pages_in_a_row;
	bool		renewed_token;	/* the request in flight is the second try */
	uint64		token_generation;	/* of the session's token it was sent with */
	bool		next_held;		/* the next page waits until the last one is
								 * half read (a LIMIT may not need it) */
	MemoryContext page_cxt;		/* the request in flight and its page */
	OprecRequest *req;
	OprecCall  *call;			/* NULL: nothing in flight */
} OprecLane;

/* A page received, waiting for the executor (or being read by it). */
typedef struct OprecReadyPage
{
	MemoryContext cxt;			/* holds the page's JSON and this */
	OprecPage	page;
	OprecChain	chain;			/* the chain it came from */
	json_t	   *key_json;		/* the key of a one-key chain, or NULL */
	OprecLane  *holds;			/* a lane whose next page waits for this
								 * one to be half read, or NULL */
	OprecChain *later_chains;	/* its chain's later pages, waiting alike */
	int			nlater_chains;
	struct OprecReadyPage *next;
} OprecReadyPage;

typedef struct OprecScanEngine
{
	MemoryContext scan_cxt;		/* lives as long as the scan */
	MemoryContext run_cxt;		/* filters, chains, lanes and pages; reset
								 * per rescan */
	uint64		pace_key;		/* the credential requests count against */
	TimestampTz history_start;	/* earliest time the API serves, or 0 */

	/* chains, built when the scan starts, and those that replace some */
	OprecChain *chains;
	int			nchains;
	int			next_chain;		/* first of chains not yet started */
	List	   *redo_chains;	/* OprecChain *, started before next_chain */

	/* chains in progress: at most max_concurrency, each a lane */
	OprecLane  *lanes;
	int			nlanes;
	int			in_flight;		/* lanes with a request in flight */

	/* pages received: a queue, and the one rows come from */
	OprecReadyPage *ready_head;
	OprecReadyPage *ready_tail;
	int			nready;
	OprecReadyPage *current;
	size_t		record_index;
	int			row_in_record;
	int			rows_in_record;

	/* a scan that names no keys lists them (listing.c); else NULL */
	OprecListing *listing;
	bool		listing_done;

	int64	   *missing_keys;	/* keys the API said do not exist */
	int			nmissing;
	bool		missing_reported;

	OprecScanCounters counters;
} OprecScanEngine;

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
	OPREC_PRIVATE_QUAL_POSITIONS,	/* IntList: each condition's place in
									 * the plan's quals (for EXPLAIN) */
	OPREC_PRIVATE_OWN_CONDITIONS,	/* Integer: conditions of the relation
									 * itself; those after are a join's */
	OPREC_PRIVATE_RETRIEVED,	/* IntList: attributes the query reads */
	OPREC_PRIVATE_KEY_SOURCE,	/* NIL, or a batched join's key source (join.c) */
	OPREC_PRIVATE_PARAMETERIZED,	/* Integer: a parameterized path's plan */
	OPREC_PRIVATE_LIMITED		/* Integer: a LIMIT bounds the rows read */
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
	List	   *pushed_clauses; /* the condition itself (shown by EXPLAIN) */
	int			own_conditions; /* pushed from the relation's own quals;
								 * a parameterized path's join clauses
								 * follow */
	bool		has_key_list;	/* key = ..., IN, = ANY */
	bool		has_key_lower;	/* key >= ..., key > ... */
	bool		has_key_upper;	/* key <= ..., key < ... */
	Bitmapset  *attrs_used;

	/* estimates (estimate.c), from the conditions known at plan time */
	double		keys_estimate;	/* keys the conditions name, or a guess */
	double		windows_estimate;	/* time windows per key batch */
	double		time_fraction;	/* of a key's history the time range holds */
	bool		has_time_range; /* both ends of the time range are known */
	Selectivity local_selectivity;	/* of the conditions on other columns */
	QualCost	local_cost;		/* of evaluating every condition per row */
} OprecPlanState;

/* ----------------------------------------------------------------
 *		Externs, grouped by file
 * ----------------------------------------------------------------
 */

/* in oprec_fdw.c */
extern void _PG_init(void);
extern void oprec_add_path(PlannerInfo *root, RelOptInfo *baserel, double rows,
						   Cost startup_cost, Cost total_cost, Relids required_outer,
						   List *fdw_private);

/* in column.c */
extern int	oprec_api_column(const OprecApi *api, const char *name);
extern bool oprec_field_path_valid(const char *path);
extern OprecColumnMap *oprec_map_columns(Relation rel, const OprecApi *api);
extern json_t *oprec_column_json(OprecScan *scan, const OprecChain *chain,
								 json_t *record, int row, const OprecColumnMap *map);

/* in option.c */
extern char *oprec_allowed_hosts;
extern const OprecApi *oprec_find_api(const char *name);
extern const OprecApi *oprec_table_api(const OprecApi *api, const char *resource);
extern bool oprec_is_table_option(const OprecApi *api, const char *name);
extern char *oprec_table_option_names(const OprecApi *api);
extern OprecOptions *oprec_get_options(Oid foreigntableid, Oid userid);
extern int	oprec_option_int(const OprecOptions *options, const char *name, int fallback);
extern TimestampTz oprec_parse_timestamptz(const char *text, const char *option_name);

/* in pushdown.c */
extern void oprec_classify_conditions(PlannerInfo *root, RelOptInfo *baserel,
									  OprecPlanState *plan);
extern List *oprec_pushdown_private(OprecPlanState *plan, List *quals);
extern List *oprec_pushdown_exprs(OprecPlanState *plan);
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
extern bool oprec_pushed_time_lower(const OprecApi *api, List *fdw_private);
extern bool oprec_exprs_need_execution(List *fdw_exprs);
extern List *oprec_pushed_descriptions(List *fdw_private, List *quals, List *dpcontext);
extern List *oprec_pushed_columns(List *fdw_private);
extern void oprec_keys_from_datums(Datum *values, int n, Oid value_type,
								   OprecColumnFilter *keys);
extern int	oprec_sort_unique_keys(int64 *values, int n);

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
extern int	oprec_key_source_position(List *key_source);
extern char *oprec_key_source_description(List *fdw_exprs, int position, EState *estate,
										  List *dpcontext);
extern OprecKeySource *oprec_key_source_begin(EState *estate, Expr *value, List *quals);
extern void oprec_key_source_read(OprecKeySource *source, OprecColumnFilter *keys);

/* in chain.c */
extern OprecChain *oprec_build_chains(const OprecApi *api, const OprecFilters *filters,
									  TimestampTz history_start, int page_size,
									  bool always_windows, TimestampTz now, int *nchains,
									  int *nbatches, int *nwindows);
extern int64 oprec_window_count(const OprecApi *api, const OprecChain *chain);
extern OprecChain *oprec_window_chains(const OprecApi *api, const OprecChain *walk,
									   int *nwindows);
extern int64 oprec_timestamptz_to_ms_floor(TimestampTz ts);
extern int64 oprec_timestamptz_to_ms_ceil(TimestampTz ts);
extern bool oprec_ms_to_timestamptz(int64 ms, TimestampTz *result);

/* in listing.c */
extern OprecListing *oprec_listing_begin(MemoryContext cxt, const OprecFilters *filters,
										 bool every_key);
extern bool oprec_listing_next(OprecScan *scan, OprecListing *listing, int64 **keys,
							   int *nkeys);
extern int64 oprec_listing_count(const OprecListing *listing);

/* in scan.c */

/* The most requests one scan has in flight at once (max_concurrency). */
#define OPREC_MAX_CONCURRENCY 64

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
	/* jsonb: a number numeric cannot hold was kept as a string (and said) */
	bool		kept_number_as_string;
} OprecColumnConverter;

extern void oprec_prepare_converter(OprecColumnConverter *conv, const OprecApi *api,
									const OprecColumnMap *map, Oid typid, int32 typmod);
extern Datum oprec_json_to_datum(OprecColumnConverter *conv, json_t *value, bool *isnull);
extern char *oprec_json_shown(json_t *value);
extern bool oprec_json_epoch_ms(json_t *value, int64 *ms);

/* in session.c */
extern OprecSession *oprec_get_session(Oid user_mapping_id);

/* in pace.c */

/* The highest requests_per_second; a window has an entry per request. */
#define OPREC_MAX_REQUESTS_PER_SECOND 1000
#define OPREC_PACE_ENTRIES 1024

/*
 * Recent requests of one credential: the send time of each request in
 * flight, the completion time of the others, and the rate after the API
 * throttled.  In shared memory when the library is preloaded.
 */
typedef struct OprecPaceWindow
{
	TimestampTz times[OPREC_PACE_ENTRIES];	/* 0: unused */
	bool		sending[OPREC_PACE_ENTRIES];	/* times[i] is a send time */
	int			limit;			/* requests_per_second last asked for */
	int			lowered_rate;	/* rate set by the last throttling... */
	TimestampTz lowered_at;		/* ...at this time; 0: none */
} OprecPaceWindow;

/* A request's place in its credential's window, from reserve to done. */
typedef struct OprecPaceTicket
{
	int			index;			/* in pace.c's list of requests in flight */
	uint64		serial;			/* 0: no ticket */
	TimestampTz sent;			/* when it was reserved */
} OprecPaceTicket;

extern void oprec_pace_init(void);
extern uint64 oprec_pace_key(const OprecOptions *options);
extern long oprec_pace_reserve(OprecSession *session, uint64 pace_key,
							   int requests_per_second, OprecPaceTicket *ticket);
extern void oprec_pace_complete(OprecPaceTicket *ticket);
extern void oprec_pace_withdraw(OprecPaceTicket *ticket);
extern void oprec_pace_throttled(OprecSession *session, uint64 pace_key, TimestampTz sent);

/* in http.c */

extern void oprec_http_init(void);
extern bool oprec_has_control_char(const char *value);
extern OprecCall *oprec_http_start(OprecScan *scan, OprecRequest *req);
extern bool oprec_http_done(OprecCall *call);
extern int	oprec_http_wait_any(OprecScan *scan, OprecCall *const *calls, int ncalls);
extern void oprec_http_result(OprecCall *call, OprecResponse *resp);
extern void oprec_http_free(OprecCall *call);
extern void oprec_http_suspend(void);


#endif							/* OPREC_FDW_H */
