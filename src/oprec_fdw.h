/*-------------------------------------------------------------------------
 *
 * oprec_fdw.h
 *		  The engine's definitions: operation-history APIs as tables.
 *
 * The extension is one engine and several API dialects.  The engine owns
 * options, the classification of WHERE conditions, joins and estimates,
 * request chains (key batches x time windows), paging, HTTP and
 * JSON-to-tuple conversion.  An API unit (in src/api/) fills in an
 * OprecResource and sees only oprec_api.h; this header adds what the engine
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

/* The largest key a resource may have (max_key 0: no upper end). */
static inline int64
oprec_max_key(const OprecResource *res)
{
	return res->max_key > 0 ? res->max_key : PG_INT64_MAX;
}

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
 *		HTTP transport (http.c), as a scan's service sets it up
 * ----------------------------------------------------------------
 */

/* One request from its first attempt to its answer (http.c). */
typedef struct OprecCall OprecCall;

typedef struct OprecHttpCounters
{
	int64		requests;		/* every request sent, tokens included */
	int64		retries;		/* requests sent again after a failure */
	int64		bytes_received; /* answer bodies, after decompression */
	int64		connections;	/* new connections the requests opened */
	int64		connect_restarts;	/* requests started again, their connect
									 * stalled */
	int64		wait_us;		/* waiting for answers: transfers, pacing,
								 * pauses between retries (overlapping
								 * requests counted once) */
} OprecHttpCounters;

/*
 * What the transport needs of its caller: settings, pacing, counters, and
 * two callbacks, both optional: before_attempt may refuse to send (raise),
 * and transient_answer says why an answer the transport would not send
 * again is worth sending again (NULL if it is not).  It lives at least as
 * long as the calls made with it.
 */
typedef struct OprecTransport
{
	const OprecOptions *options;	/* timeouts, limits, TLS, retries, rate */
	const char *title;			/* the API's, for messages */
	const char *const *log_id_headers;
	OprecSession *session;		/* the credential's pace */
	uint64		pace_key;
	OprecHttpCounters *counters;
	void		(*before_attempt) (void *arg, const OprecRequest *req);
	const char *(*transient_answer) (void *arg, const OprecResponse *resp,
									 bool *throttled);
	void	   *arg;
} OprecTransport;

/* ----------------------------------------------------------------
 *		The engine's state of one scan (OprecScan.engine; scan.c)
 * ----------------------------------------------------------------
 */

/* The listing of a scan that names no keys (listing.c). */
typedef struct OprecListing OprecListing;

/* A chain being fetched, and a page received (scan.c's own). */
struct OprecLane;
struct OprecReadyPage;

typedef struct OprecScanCounters
{
	OprecHttpCounters http;
	int64		pages;			/* answers with records read */
	int64		records;		/* records received */
	int64		rows;			/* rows produced */
	int64		listed_keys;	/* keys a scan naming none listed */
	int			key_batches;	/* from the most recent (re)scan */
	int			time_windows;
} OprecScanCounters;

typedef struct OprecScanEngine
{
	MemoryContext scan_cxt;		/* lives as long as the scan */
	MemoryContext run_cxt;		/* filters, chains, lanes and pages; reset
								 * per rescan */
	OprecTransport transport;	/* of every request of the scan */
	TimestampTz history_start;	/* earliest time the API serves, or 0 */

	/* chains, built when the scan starts, and those that replace some */
	OprecChain *chains;
	int			nchains;
	int			next_chain;		/* first of chains not yet started */
	List	   *redo_chains;	/* OprecChain *, started before next_chain */

	/* chains in progress: at most max_concurrency, each a lane */
	struct OprecLane *lanes;
	int			nlanes;
	int			in_flight;		/* lanes with a request in flight */

	/* pages received: a queue, and the one rows come from */
	struct OprecReadyPage *ready_head;
	struct OprecReadyPage *ready_tail;
	int			nready;
	struct OprecReadyPage *current;
	size_t		record_index;
	int			row_in_record;
	int			rows_in_record;

	/* a scan that names no keys lists them (listing.c); else NULL */
	OprecListing *listing;
	bool		listing_done;

	TimestampTz progress_at;	/* when the scan last said how far it is */

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
 * What the planner hands the executor of a foreign scan, kept in the plan's
 * fdw_private (scan_plan.c writes and reads it).
 */
typedef struct OprecScanPlan
{
	List	   *pushed_columns; /* IntList: API column of each pushed
								 * condition */
	List	   *pushed_ops;		/* IntList: OprecCondOp of each */
	List	   *qual_positions; /* IntList: each condition's place in the
								 * plan's quals (for EXPLAIN) */
	int			own_conditions; /* conditions of the relation itself; those
								 * after are a join's */
	List	   *retrieved;		/* IntList: attributes the query reads */
	int			key_source;		/* a batched join's key source: where its
								 * value and quals stand in fdw_exprs; -1 */
	Expr	   *key_source_value;	/* a batched path's, until the plan moves */
	List	   *key_source_quals;	/* them into fdw_exprs (join.c) */
	bool		parameterized;	/* a parameterized path's plan */
	bool		limited;		/* a LIMIT bounds the rows read */
	bool		names_keys;		/* the pushed conditions name the keys: a
								 * list, or a range with both ends */
	bool		has_key_range;	/* a pushed condition bounds the key */
	bool		has_time_lower; /* one gives the time range a lower end */
} OprecScanPlan;

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
	bool		has_time_lower; /* time >= ..., time > ..., =, IN */
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

/* in mirror.c */
extern bool oprec_mirror_extension(char **schema, Oid *owner);

/* in mirror_worker.c */
extern void oprec_mirror_worker_init(void);

/* in import.c */
extern List *oprec_import_foreign_schema(ImportForeignSchemaStmt *stmt, Oid serverOid);

/* in column.c */
extern int	oprec_api_column(const OprecResource *res, const char *name);
extern bool oprec_field_path_valid(const char *path);
extern OprecColumnMap *oprec_map_columns(Relation rel, const OprecResource *res);
extern json_t *oprec_column_value(OprecScan *scan, const OprecChain *chain, json_t *record,
								  int row, int column);
extern json_t *oprec_column_json(OprecScan *scan, const OprecChain *chain,
								 json_t *record, int row, const OprecColumnMap *map);

/* in option.c */
extern char *oprec_allowed_hosts;
extern bool oprec_is_table_option(const OprecService *service, const char *name);
extern char *oprec_table_option_names(const OprecService *service);
extern OprecOptions *oprec_get_options(Oid foreigntableid, Oid userid);

/* in option_value.c */
extern TimestampTz oprec_parse_timestamptz(const char *text, const char *option_name);

/* in api/apis.c */
extern const OprecService *const oprec_services[];
extern const OprecService *oprec_find_service(const char *name);
extern const OprecResource *oprec_find_resource(const OprecService *service,
												const char *name);

/* in scan_plan.c */
extern void oprec_scan_plan_init(OprecScanPlan *plan);
extern List *oprec_scan_plan_write(const OprecScanPlan *plan);
extern void oprec_scan_plan_read(List *fdw_private, OprecScanPlan *plan);

/* in pushdown.c */
extern void oprec_classify_conditions(PlannerInfo *root, RelOptInfo *baserel,
									  OprecPlanState *plan);
extern void oprec_classify_join_clauses(PlannerInfo *root, RelOptInfo *baserel,
										OprecPlanState *plan, List *clauses);
extern bool oprec_is_key_join_clause(PlannerInfo *root, RelOptInfo *baserel,
									 const OprecPlanState *plan, RestrictInfo *rinfo,
									 Expr **value);
extern void oprec_pushdown_plan(const OprecPlanState *plan, List *quals,
								OprecScanPlan *scan_plan);
extern bool oprec_contains_exec_param(Node *node);
extern List *oprec_pushed_descriptions(const OprecScanPlan *plan, List *quals,
									   List *dpcontext);

/* in filters.c */
extern OprecFilters *oprec_evaluate_filters(const OprecResource *res,
											const OprecScanPlan *plan,
											List *expr_states, ExprContext *econtext,
											int max_key_range,
											const OprecColumnFilter *extra_keys);
extern void oprec_keys_from_datums(Datum *values, int n, Oid value_type,
								   OprecColumnFilter *keys);
extern int	oprec_sort_unique_keys(int64 *values, int n);

/* in estimate.c */
extern void oprec_estimate_relation(PlannerInfo *root, RelOptInfo *baserel,
									OprecPlanState *plan);
extern double oprec_estimate_rows(const OprecPlanState *plan, double keys);
extern void oprec_add_path(PlannerInfo *root, RelOptInfo *baserel, double rows,
						   Cost startup_cost, Cost total_cost, Relids required_outer,
						   List *fdw_private);
extern void oprec_estimate_cost(const OprecPlanState *plan, double keys,
								Cost extra_startup, double *rows,
								Cost *startup_cost, Cost *total_cost);

/* in cache.c */
typedef struct OprecRowCache OprecRowCache;

extern OprecRowCache *oprec_cache_create(MemoryContext parent);
extern char *oprec_filters_signature(const OprecResource *res, const OprecFilters *filters);
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
extern void oprec_key_source_to_exprs(OprecScanPlan *plan, List **fdw_exprs);
extern char *oprec_key_source_description(List *fdw_exprs, int position, EState *estate,
										  List *dpcontext);
extern OprecKeySource *oprec_key_source_begin(EState *estate, Expr *value, List *quals);
extern void oprec_key_source_read(OprecKeySource *source, OprecColumnFilter *keys);

/* in chain.c */

/*
 * Records carry no time after the API's now; allow for clocks that
 * disagree by this much when an upper bound is implied or clamped.
 */
#define OPREC_CLOCK_SKEW_ALLOWANCE_MS ((int64) 3600 * 1000)

/*
 * How long an API is assumed to take to answer, to weigh requests that
 * must follow each other against more requests that can go together.
 */
#define ASSUMED_ANSWER_MS 200.0

extern int64 oprec_history_pages(const OprecOptions *options, double keys_per_batch);
extern bool oprec_windows_sooner(const OprecOptions *options, double batches, double windows,
								 double walk_pages);
extern OprecChain *oprec_build_chains(const OprecResource *res, const OprecOptions *options,
									  const OprecFilters *filters, TimestampTz history_start,
									  TimestampTz now, int *nchains, int *nbatches,
									  int *nwindows);
extern int64 oprec_window_count(const OprecResource *res, const OprecChain *chain);
extern OprecChain *oprec_window_chains(const OprecResource *res, const OprecChain *walk,
									   int *nwindows);
extern int64 oprec_timestamptz_to_ms_floor(TimestampTz ts);
extern int64 oprec_timestamptz_to_ms_ceil(TimestampTz ts);
extern bool oprec_ms_to_timestamptz(int64 ms, TimestampTz *result);

/* in listing.c */
extern OprecListing *oprec_listing_begin(MemoryContext cxt, const OprecFilters *filters,
										 bool every_key, int nvariants);
extern bool oprec_listing_next(OprecScan *scan, OprecListing *listing, int64 **keys,
							   int *nkeys);
extern int64 oprec_listing_count(const OprecListing *listing);

/* in scan.c */

/* The most requests one scan has in flight at once (max_concurrency). */
#define OPREC_MAX_CONCURRENCY 64

extern int	oprec_scan_progress_ms;

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

extern void oprec_prepare_converter(OprecColumnConverter *conv, const OprecResource *res,
									const OprecColumnMap *map, Oid typid, int32 typmod);
extern Datum oprec_json_to_datum(OprecColumnConverter *conv, json_t *value, bool *isnull);
extern char *oprec_json_shown(json_t *value);
extern bool oprec_json_epoch_ms(json_t *value, int64 *ms);

/* in session.c */
extern OprecSession *oprec_get_session(const OprecOptions *options);
extern bool oprec_session_token_usable(OprecSession *session);
extern void oprec_session_token_refused(OprecSession *session, uint64 generation);
extern void oprec_session_ensure_token(OprecSession *session,
									   void (*get_token) (void *arg), void *arg);
extern bool oprec_session_credential_accepted(OprecSession *session);
extern void oprec_session_set_credential_accepted(OprecSession *session);

/* in jit_choice.c */
extern void oprec_jit_init(void);
extern void oprec_jit_note_handler(Oid oid);

/* in credentials.c: shared by the cluster's backends when preloaded */
extern void oprec_credentials_init(void);
extern bool oprec_credentials_shared(void);
extern bool oprec_credential_newer_token(const uint8 *digest, uint64 have_generation,
										 char **token, uint64 *generation,
										 TimestampTz *renew_at);
extern bool oprec_credential_claim_renewal(const uint8 *digest);
extern void oprec_credential_await_renewal(const uint8 *digest);
extern uint64 oprec_credential_publish(const uint8 *digest, const char *token,
									   TimestampTz renew_at);
extern void oprec_credential_end_renewal(void);
extern void oprec_credential_withdraw(const uint8 *digest, uint64 generation);
extern void oprec_credential_set_accepted(const uint8 *digest);
extern bool oprec_credential_accepted(const uint8 *digest);
extern void oprec_credential_forget(const uint8 *digest);

/* in pace.c */

/* The highest requests_per_second. */
#define OPREC_MAX_REQUESTS_PER_SECOND 1000

/* A request's place in its credential's window, from reserve to done. */
typedef struct OprecPaceTicket
{
	int			index;			/* in pace.c's list of requests in flight */
	uint64		serial;			/* 0: no ticket */
	TimestampTz sent;			/* when it was reserved */
} OprecPaceTicket;

extern void oprec_pace_init(void);
extern uint64 oprec_pace_key(const OprecSession *session);
extern long oprec_pace_reserve(OprecSession *session, uint64 pace_key,
							   int requests_per_second, OprecPaceTicket *ticket);
extern void oprec_pace_complete(OprecPaceTicket *ticket);
extern void oprec_pace_withdraw(OprecPaceTicket *ticket);
extern void oprec_pace_throttled(OprecSession *session, uint64 pace_key, TimestampTz sent);

/* The pace of a credential now (the SQL function oprec_fdw_pace). */
typedef struct OprecPaceCounts
{
	bool		shared;			/* by the cluster's backends */
	int			rate;			/* in effect: lowered after throttling */
	int			in_flight;
	int			recent;			/* completed within the last second */
} OprecPaceCounts;

extern void oprec_pace_counts(const OprecOptions *options, OprecPaceCounts *counts);

/* in http.c */
extern void oprec_http_init(void);
extern OprecCall *oprec_http_start(const OprecTransport *transport, OprecRequest *req);
extern bool oprec_http_done(OprecCall *call);
extern int	oprec_http_wait_any(const OprecTransport *transport, OprecCall *const *calls,
								int ncalls);
extern void oprec_http_result(OprecCall *call, OprecResponse *resp);
extern void oprec_http_free(OprecCall *call);
extern void oprec_http_suspend(void);
extern int64 oprec_http_requests_sent(void);

/* in request.c */
extern bool oprec_has_control_char(const char *value);

/* in json_memory.c */
extern char *oprec_jansson_text(char *text);
extern json_t *oprec_json_load_owned(const StringInfo body, const OprecOptions *options);

/* in service.c */

/* What the answer to a page request says before its records are read. */
typedef enum OprecAnswerOutcome
{
	OPREC_ANSWER_RECORDS,		/* records to read */
	OPREC_ANSWER_TOKEN_REFUSED, /* the token is expired or invalid */
	OPREC_ANSWER_KEY_NOT_FOUND	/* a key the chain names does not exist */
} OprecAnswerOutcome;

extern void oprec_service_transport(OprecScan *scan, uint64 pace_key,
									OprecTransport *transport);
extern void oprec_ensure_token(OprecScan *scan);
extern void oprec_answer_of(OprecScan *scan, OprecCall *call, OprecRequest *req,
							OprecAnswer *answer);
extern OprecAnswerOutcome oprec_page_answer_outcome(OprecScan *scan, const OprecChain *chain,
													bool may_renew, OprecAnswer *answer,
													bool *has_missing_key,
													int64 *missing_key);

#endif							/* OPREC_FDW_H */
