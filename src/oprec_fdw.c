/*-------------------------------------------------------------------------
 *
 * oprec_fdw.c
 *		  The foreign-data wrapper handler: planner and executor callbacks.
 *
 * This file is where PostgreSQL meets the engine.  Planning maps the
 * table's columns to its API's fields (column.c), classifies the WHERE
 * conditions (pushdown.c), estimates (estimate.c) and offers the paths of
 * joins on the key (join.c); the executor insists on a condition on the
 * API's key column when the first row is asked for, evaluates the pushed
 * values, and turns the rows of the scan engine (scan.c) into tuples
 * (convert.c), keeping them for repeated parameter values (cache.c).
 * IMPORT FOREIGN SCHEMA and ANALYZE are answered here too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"

#include <math.h>

#include "access/table.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/lsyscache.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "oprec_fdw.h"
#include "json_read.h"

PG_MODULE_MAGIC;


/*
 * Cost model: a request costs far more than a row.  Without a statistic of
 * history sizes, assume a work item or issue has this many records.
 */
#define REQUEST_COST 1000.0
#define ROWS_PER_KEY_ESTIMATE 20.0
#define KEYS_ESTIMATE_UNKNOWN 10.0

/* Execution state of one foreign scan node. */
typedef struct OprecExecState
{
	OprecScan  *scan;			/* NULL when only explaining */
	OprecOptions *options;
	List	   *fdw_private;
	List	   *expr_states;	/* pushed right-hand sides */
	bool		need_execution; /* they depend on other plan nodes */
	OprecKeySource *key_source; /* batched join: the local table of keys */
	bool		has_key_source; /* a batched join's plan */
	OprecColumnFilter *source_keys; /* its keys, once read */
	bool		expect_rescans; /* parameterized, or asked to rewind */
	int			scans_started;
	OprecRowCache *cache;		/* rows of earlier (re)scans, or NULL */
	bool		from_cache;		/* this (re)scan is served by the cache */
	bool		started;		/* filters evaluated for this (re)scan */
	int			natts;
	OprecColumnMap *columns;	/* per attribute */
	OprecColumnConverter *converters;	/* one per attribute */
	int			converting;		/* attribute being converted, for errors */
	json_t	   *converting_value;
	json_t	   *converting_record;	/* ...and the row it is of */
	int			converting_row;
	const OprecChain *converting_chain;
} OprecExecState;

PG_FUNCTION_INFO_V1(oprec_fdw_handler);

static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static int	executor_run_depth = 0;

/*
 * When the outermost ExecutorRun returns, the executor has stopped asking
 * for rows: the query is over, or a cursor's portal is suspended and the
 * backend may stay idle for any time.  Requests in flight are then taken
 * out of the pace (oprec_http_suspend), so that an open cursor does not
 * hold the quota other backends share.
 */
static void
oprec_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count
#if PG_VERSION_NUM < 180000
				  ,bool execute_once
#endif
)
{
	executor_run_depth++;
	PG_TRY();
	{
#if PG_VERSION_NUM < 180000
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
#else
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count);
		else
			standard_ExecutorRun(queryDesc, direction, count);
#endif
	}
	PG_FINALLY();
	{
		executor_run_depth--;
	}
	PG_END_TRY();
	if (executor_run_depth == 0)
		oprec_http_suspend();
}

void
_PG_init(void)
{
	DefineCustomStringVariable("oprec_fdw.allowed_hosts",
							   "Origins (scheme://host[:port]) that servers owned by non-superusers may send requests to.",
							   "A comma-separated list.  Servers owned by superusers may name any host; others only the API's default hosts and these.",
							   &oprec_allowed_hosts,
							   "",
							   PGC_SUSET,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("oprec_fdw");
#else
	EmitWarningsOnPlaceholders("oprec_fdw");
#endif

	/* before any jansson value exists: its allocations are counted */
	oprec_json_install_allocator();
	oprec_http_init();
	oprec_pace_init();

	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = oprec_ExecutorRun;
}

static void
oprecGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	OprecPlanState *plan = palloc0(sizeof(OprecPlanState));
	Relation	rel;
	ListCell   *lc;

	plan->options = oprec_get_options(foreigntableid, InvalidOid);
	rel = table_open(foreigntableid, NoLock);
	plan->columns = oprec_map_columns(rel, plan->options->api);
	table_close(rel, NoLock);
	oprec_classify_conditions(root, baserel, plan);

	/* the columns the query reads: output and local conditions */
	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &plan->attrs_used);
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		pull_varattnos((Node *) rinfo->clause, baserel->relid, &plan->attrs_used);
	}

	oprec_estimate_relation(root, baserel, plan);
	baserel->fdw_private = plan;
}

/*
 * The plain scan, whose own conditions name the keys; then the paths that
 * take the keys from a join (join.c).
 */
static void
oprecGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	OprecPlanState *plan = baserel->fdw_private;
	double		rows;
	Cost		startup_cost,
				total_cost;

	oprec_estimate_cost(plan, plan->keys_estimate, 0, &rows, &startup_cost, &total_cost);

	/*
	 * Without a key condition the scan cannot run; it says so when the
	 * first row is asked for.  Keep the path (it may be the only one) but
	 * never prefer it.
	 */
	if (!plan->has_key_list && !(plan->has_key_lower && plan->has_key_upper))
		total_cost += disable_cost;

	oprec_add_path(root, baserel, rows, startup_cost, total_cost, baserel->lateral_relids, NIL);
	oprec_add_join_paths(root, baserel, plan);
}

/* Add a foreign scan path of the relation (for every kind of path). */
void
oprec_add_path(PlannerInfo *root, RelOptInfo *baserel, double rows, Cost startup_cost,
			   Cost total_cost, Relids required_outer, List *fdw_private)
{
	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, rows,
#if PG_VERSION_NUM >= 180000
									 0, /* disabled_nodes: costs say it all */
#endif
									 startup_cost, total_cost,
									 NIL, required_outer, NULL,
#if PG_VERSION_NUM >= 170000
									 NIL,
#endif
									 fdw_private));
}

/* The table's column that reads the API's key (for messages). */
static const char *
column_name_of(Relation rel, const OprecColumnMap *columns, const OprecApi *api,
			   int api_column)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);

	for (int i = 0; i < tupdesc->natts; i++)
		if (!columns[i].dropped && columns[i].api_column == api_column)
			return NameStr(TupleDescAttr(tupdesc, i)->attname);
	return api->columns[api_column].name;
}

/*
 * Refuse a scan without the API's key, or without a scope, before any
 * request.  This runs when the first row is asked for, never at plan time,
 * so that EXPLAIN and metadata probes such as LIMIT 0 work on any query.
 * What to do goes into the message and DETAIL: some drivers (psqlODBC)
 * drop the HINT.
 */
static void
require_key_condition(OprecExecState *state, Relation rel)
{
	const OprecOptions *options = state->options;
	const OprecApi *api = options->api;
	List	   *pushed_columns = oprec_pushed_columns(state->fdw_private);
	const char *key = column_name_of(rel, state->columns, api, api->key_column);

	if (!oprec_pushed_key_condition(api, state->fdw_private) && state->key_source == NULL &&
		api->list_keys != NULL)
	{
		/* the API lists the ids: a whole history needs a LIMIT or consent */
		if (!oprec_pushed_time_lower(api, state->fdw_private) && !options->allow_whole_history &&
			!intVal(list_nth(state->fdw_private, OPREC_PRIVATE_LIMITED)))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
					 errmsg("scanning foreign table \"%s\" without a condition on %s or a lower bound on %s would read the whole history of every item",
							RelationGetRelationName(rel), key,
							column_name_of(rel, state->columns, api, api->time_column)),
					 errdetail("Add WHERE %s >= ... (then only the items updated since are listed); or name the ids (%s = ..., IN, BETWEEN, or a join with a table of ids; %s declared bigint); or add a LIMIT; or set the server's option whole_history 'allow'. Without ids the %s API's items are listed first (%s).",
							   column_name_of(rel, state->columns, api, api->time_column),
							   key, key, api->title, api->list_call)));
	}
	else if (!oprec_pushed_key_condition(api, state->fdw_private) && state->key_source == NULL)
	{
		/* a range names ids only when they are integers */
		bool		int_key = api->columns[api->key_column].push_type == INT8OID;

		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
				 errmsg("a condition on %s is required to scan foreign table \"%s\": add WHERE %s = ..., %s IN (...)%s%s, or join on %s with a table of them",
						key, RelationGetRelationName(rel), key, key,
						int_key ? " or BETWEEN ... AND ... on " : "", int_key ? key : "", key),
				 errdetail("The %s API returns records only for listed %s values. A join such as JOIN my_items m ON m.id = %s works, as does %s = ANY (ARRAY(SELECT id FROM my_items)); %s must be declared %s.",
						   api->title, api->columns[api->key_column].name, key, key, key,
						   api->columns[api->key_column].sql_type)));
	}

	if (api->scope_column >= 0 && oprec_scope_value(options, NULL) == NULL &&
		!list_member_int(pushed_columns, api->scope_column))
	{
		const OprecColumnDef *scope = &api->columns[api->scope_column];

		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
				 errmsg("no %s for foreign table \"%s\": add WHERE %s = '...' or set OPTIONS (%s '...') on the table or its server",
						scope->name, RelationGetRelationName(rel), scope->name,
						scope->scope_option)));
	}
}

/*
 * Whether the query's LIMIT bounds the rows this scan reads: a query of
 * this table alone, with nothing between the scan and the LIMIT that needs
 * every row (a sort, grouping, aggregates, DISTINCT, window functions).
 */
static bool
limit_bounds_scan(PlannerInfo *root, RelOptInfo *baserel)
{
	Query	   *parse = root->parse;

	return root->tuple_fraction >= 1.0 && parse->limitCount != NULL &&
		bms_membership(root->all_baserels) == BMS_SINGLETON &&
		parse->sortClause == NIL && parse->groupClause == NIL && !parse->hasAggs &&
		parse->distinctClause == NIL && !parse->hasWindowFuncs &&
		parse->havingQual == NULL;
}

static ForeignScan *
oprecGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
					ForeignPath *best_path, List *tlist, List *scan_clauses,
					Plan *outer_plan)
{
	OprecPlanState *plan = baserel->fdw_private;
	OprecPlanState path_plan = *plan;
	List	   *fdw_private;
	List	   *fdw_exprs;
	List	   *retrieved = NIL;
	int			attno = -1;

	/* a parameterized path pushes its join clauses too */
	if (best_path->path.param_info)
	{
		path_plan.pushed_columns = list_copy(plan->pushed_columns);
		path_plan.pushed_ops = list_copy(plan->pushed_ops);
		path_plan.pushed_exprs = list_copy(plan->pushed_exprs);
		path_plan.pushed_clauses = list_copy(plan->pushed_clauses);
		oprec_classify_join_clauses(root, baserel, &path_plan,
									best_path->path.param_info->ppi_clauses);
	}

	/* every condition is checked locally too, pushed or not */
	scan_clauses = extract_actual_clauses(scan_clauses, false);

	while ((attno = bms_next_member(plan->attrs_used, attno)) >= 0)
		retrieved = lappend_int(retrieved, attno + FirstLowInvalidHeapAttributeNumber);

	fdw_exprs = oprec_pushdown_exprs(&path_plan);
	fdw_private = oprec_pushdown_private(&path_plan, scan_clauses);
	fdw_private = lappend(fdw_private, retrieved);
	fdw_private = lappend(fdw_private, oprec_key_source_private(best_path, &fdw_exprs));
	fdw_private = lappend(fdw_private, makeInteger(best_path->path.param_info != NULL));
	fdw_private = lappend(fdw_private, makeInteger(limit_bounds_scan(root, baserel)));

	return make_foreignscan(tlist, scan_clauses, baserel->relid,
							fdw_exprs, fdw_private, NIL, NIL, outer_plan);
}

/* Whether the query reads the column at attno (0: the whole row). */
static bool
attribute_retrieved(List *retrieved, int attno)
{
	return list_member_int(retrieved, attno) || list_member_int(retrieved, 0);
}

static void
oprecBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	Relation	rel = node->ss.ss_currentRelation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	Oid			relid = RelationGetRelid(rel);
	OprecExecState *state = palloc0(sizeof(OprecExecState));
	List	   *retrieved;
	const OprecApi *api;
	OprecOptions *options;

	List	   *pushed_exprs = fsplan->fdw_exprs;
	int			source_position;

	node->fdw_state = state;
	state->fdw_private = fsplan->fdw_private;
	retrieved = (List *) list_nth(fsplan->fdw_private, OPREC_PRIVATE_RETRIEVED);

	/* a batched join's key source follows the pushed values in fdw_exprs */
	source_position = oprec_key_source_position(list_nth(fsplan->fdw_private,
														 OPREC_PRIVATE_KEY_SOURCE));
	state->has_key_source = source_position >= 0;
	if (source_position >= 0)
	{
		pushed_exprs = list_truncate(list_copy(fsplan->fdw_exprs), source_position);
		if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
			state->key_source =
				oprec_key_source_begin(estate, list_nth(fsplan->fdw_exprs, source_position),
									   list_nth(fsplan->fdw_exprs, source_position + 1));
	}
	state->expr_states = ExecInitExprList(pushed_exprs, (PlanState *) node);
	state->expect_rescans = (eflags & EXEC_FLAG_REWIND) ||
		intVal(list_nth(fsplan->fdw_private, OPREC_PRIVATE_PARAMETERIZED));

	/* credentials are needed only to run the scan, not to explain it */
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		options = oprec_get_options(relid, InvalidOid);
	else
	{
#if PG_VERSION_NUM >= 160000
		Oid			userid = OidIsValid(fsplan->checkAsUser) ? fsplan->checkAsUser : GetUserId();
#else
		RangeTblEntry *rte = exec_rt_fetch(fsplan->scan.scanrelid, estate);
		Oid			userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
#endif

		options = oprec_get_options(relid, userid);
		state->scan = oprec_scan_create(estate->es_query_cxt, options);
	}
	state->options = options;
	api = options->api;

	/* a range of keys is listed when the scan starts, or refused */
	state->need_execution = source_position >= 0 ||
		oprec_exprs_need_execution(pushed_exprs) ||
		oprec_pushed_key_range(api, state->fdw_private);

	state->natts = tupdesc->natts;
	state->columns = oprec_map_columns(rel, api);
	state->converters = palloc0(sizeof(OprecColumnConverter) * tupdesc->natts);
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);

		if (!attr->attisdropped && attribute_retrieved(retrieved, attr->attnum))
			oprec_prepare_converter(&state->converters[i], api, &state->columns[i],
									attr->atttypid, attr->atttypmod);
	}
}

/* Evaluate the pushed values and plan the chains of this (re)scan. */
static void
start_scan(ForeignScanState *node, OprecExecState *state)
{
	OprecScan  *scan = state->scan;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	MemoryContext oldcxt;
	OprecFilters *filters;

	require_key_condition(state, node->ss.ss_currentRelation);

	/* a batched join's keys are read once: rescans ask for the same */
	if (state->key_source && state->source_keys == NULL)
	{
		OprecColumnFilter *keys;

		oldcxt = MemoryContextSwitchTo(scan->engine->scan_cxt);
		keys = palloc0(sizeof(OprecColumnFilter));
		oprec_key_source_read(state->key_source, keys);
		state->source_keys = keys;
		MemoryContextSwitchTo(oldcxt);
	}

	MemoryContextReset(scan->engine->run_cxt);
	oldcxt = MemoryContextSwitchTo(scan->engine->run_cxt);
	filters = oprec_evaluate_filters(scan->api, state->fdw_private, state->expr_states,
									 econtext, state->options->max_id_range,
									 state->source_keys);
	MemoryContextSwitchTo(oldcxt);

	/* a scan that is run again keeps its rows for repeated values */
	state->started = true;
	state->from_cache = false;
	if (state->cache == NULL && (state->expect_rescans || state->scans_started > 0))
		state->cache = oprec_cache_create(scan->engine->scan_cxt);
	state->scans_started++;
	if (state->cache)
	{
		char	   *signature;

		oldcxt = MemoryContextSwitchTo(scan->engine->run_cxt);
		signature = oprec_filters_signature(scan->api, filters);
		MemoryContextSwitchTo(oldcxt);
		if (oprec_cache_start(state->cache, signature))
		{
			state->from_cache = true;
			return;
		}
	}
	oprec_scan_start(scan, filters);
}

/*
 * Name the column, its field and the value in an error converting a value
 * of the API answer (errors from a type's input function say only what
 * the value is not).
 */
static void
conversion_error_callback(void *arg)
{
	ForeignScanState *node = arg;
	OprecExecState *state = node->fdw_state;
	Relation	rel = node->ss.ss_currentRelation;
	Form_pg_attribute attr = TupleDescAttr(RelationGetDescr(rel), state->converting);
	const OprecApi *api = state->scan->api;
	json_t	   *key = api->column_value(state->scan, state->converting_chain,
										state->converting_record, state->converting_row,
										api->key_column);
	json_t	   *time = api->time_column < 0 ? NULL :
		api->column_value(state->scan, state->converting_chain, state->converting_record,
						  state->converting_row, api->time_column);
	char	   *record = psprintf("the record of %s %s%s%s%s",
								  api->columns[api->key_column].name,
								  key ? oprec_json_shown(key) : "(none)",
								  time ? " at " : "",
								  time ? api->columns[api->time_column].name : "",
								  time ? psprintf(" %s", oprec_json_shown(time)) : "");

	if (state->converting_value == NULL)
		errcontext("column \"%s\" of foreign table \"%s\", field \"%s\", in %s",
				   NameStr(attr->attname), RelationGetRelationName(rel),
				   state->columns[state->converting].field, record);
	else
		errcontext("column \"%s\" of foreign table \"%s\", field \"%s\", value %s, in %s",
				   NameStr(attr->attname), RelationGetRelationName(rel),
				   state->columns[state->converting].field,
				   oprec_json_shown(state->converting_value), record);
}

static TupleTableSlot *
oprecIterateForeignScan(ForeignScanState *node)
{
	OprecExecState *state = node->fdw_state;
	OprecScan  *scan = state->scan;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	json_t	   *record;
	int			row;
	const OprecChain *chain;
	ErrorContextCallback errcallback;

	if (!state->started)
		start_scan(node, state);

	ExecClearTuple(slot);
	if (state->from_cache)
	{
		(void) oprec_cache_next(state->cache, slot);
		return slot;
	}
	if (!oprec_scan_next_row(scan, &record, &row, &chain))
	{
		if (state->cache)
			oprec_cache_complete(state->cache);
		return slot;
	}

	state->converting_record = record;
	state->converting_row = row;
	state->converting_chain = chain;
	errcallback.callback = conversion_error_callback;
	errcallback.arg = node;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	/* values are built in the per-tuple context the executor resets */
	for (int i = 0; i < state->natts; i++)
	{
		OprecColumnConverter *conv = &state->converters[i];
		json_t	   *value;

		if (conv->map == NULL)
		{
			slot->tts_isnull[i] = true;
			slot->tts_values[i] = (Datum) 0;
			continue;
		}
		state->converting = i;
		state->converting_value = NULL;	/* an error finding it names the column */
		value = oprec_column_json(scan, chain, record, row, conv->map);
		state->converting_value = value;
		slot->tts_values[i] = oprec_json_to_datum(conv, value, &slot->tts_isnull[i]);
	}
	error_context_stack = errcallback.previous;

	ExecStoreVirtualTuple(slot);
	if (state->cache)
		oprec_cache_add(state->cache, slot);
	return slot;
}

static void
oprecReScanForeignScan(ForeignScanState *node)
{
	OprecExecState *state = node->fdw_state;

	/* parameters may have changed: evaluate them again on the next row */
	state->started = false;
	if (state->cache)
		oprec_cache_abandon(state->cache);	/* unless it was complete */
}

static void
oprecEndForeignScan(ForeignScanState *node)
{
	OprecExecState *state = node->fdw_state;

	if (state && state->scan)
	{
		oprec_scan_end(state->scan);
		state->scan = NULL;
	}
}

/*
 * The chains a scan would run, from the pushed values as EXPLAIN can know
 * them; with one_key, as if the query named one id (a listing scan: the
 * windows are the same for each batch of listed ids).
 */
static void
explain_chains(ForeignScanState *node, OprecExecState *state, bool one_key,
			   int *nchains, int *nbatches, int *nwindows)
{
	OprecOptions *options = state->options;
	const OprecApi *api = options->api;
	MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "oprec_fdw explain",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(tmp);
	OprecFilters *filters = oprec_evaluate_filters(api, state->fdw_private, state->expr_states,
												   node->ss.ps.ps_ExprContext,
												   options->max_id_range, NULL);
	int64		key = 1;

	if (one_key)
	{
		filters->columns[api->key_column].active = true;
		filters->columns[api->key_column].ints = &key;
		filters->columns[api->key_column].nvalues = 1;
	}
	(void) oprec_build_chains(api, filters, oprec_history_start(options),
							  options->page_size, options->always_windows,
							  GetCurrentTimestamp(), nchains, nbatches, nwindows);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(tmp);
}

/*
 * What a scan that lists its ids costs per page of ids listed: the listing
 * request, and the history chains of that page's ids.  Busy ids cost a
 * request more per page of their history.
 */
static void
explain_listing_requests(ForeignScanState *node, OprecExecState *state, ExplainState *es)
{
	const OprecApi *api = state->options->api;
	int			batches = (api->list_page_size + api->max_keys_per_request - 1) /
		api->max_keys_per_request;
	int			nchains,
				nbatches,
				nwindows;

	explain_chains(node, state, true, &nchains, &nbatches, &nwindows);
	ExplainPropertyText("Requests",
						psprintf("%d per %d ids listed (1 listing + %d batches x %d), more for busy ids",
								 1 + batches * Max(nchains, 1), api->list_page_size, batches,
								 Max(nchains, 1)), es);
}

/*
 * Show what the scan asks for.  Without ANALYZE, the batches and windows
 * are computed from the pushed values when they can be known without
 * running anything (constants, parameters, now()).
 */
static void
oprecExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	OprecExecState *state = node->fdw_state;
	OprecOptions *options = state->options;
	const OprecApi *api = options->api;
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;

	if (!es->verbose && !es->analyze)
		return;

	if (es->verbose)
	{
		bool		listing = api->list_keys != NULL && !state->has_key_source &&
			!oprec_pushed_key_condition(api, state->fdw_private);
		int			source_position;

		/*
		 * What was pushed is shown from the finished plan, deparsed in
		 * es->deparse_cxt: EXPLAIN has just shown this node's Filter (the
		 * pushed conditions are among its quals), which set that context to
		 * this plan and its ancestors, so that a Param is shown as the
		 * initplan or outer column it comes from.  ruleutils needs them:
		 * PostgreSQL 17 looks a PARAM_EXEC up in the plan tree.
		 */
		ExplainPropertyText("API Call", api->call, es);
		ExplainPropertyList("Pushed Conditions",
							oprec_pushed_descriptions(state->fdw_private, fsplan->scan.plan.qual,
													  es->deparse_cxt), es);
		source_position = oprec_key_source_position(list_nth(state->fdw_private,
															 OPREC_PRIVATE_KEY_SOURCE));
		if (source_position >= 0)
			ExplainPropertyText("Ids From",
								oprec_key_source_description(fsplan->fdw_exprs, source_position,
															 node->ss.ps.state, es->deparse_cxt),
								es);
		if (listing)
		{
			/* a scan without ids: the listing is the cost to see first */
			ExplainPropertyText("Ids Listed By", api->list_call, es);
			ExplainPropertyText("Listing", options->list_every_key ? "every item"
								: oprec_pushed_time_lower(api, state->fdw_private)
								? "items updated since the time range starts" : "every item", es);
			ExplainPropertyInteger("Max Requests", NULL, options->max_requests, es);
		}

		if (es->analyze && state->scan)
		{
			ExplainPropertyInteger("Id Batches", NULL, state->scan->engine->counters.key_batches, es);
			if (api->max_window_ms > 0)
				ExplainPropertyInteger("Time Windows", NULL, state->scan->engine->counters.time_windows, es);
		}
		else if (listing)
		{
			ExplainPropertyText("Id Batches", "computed as ids are listed", es);
			if (api->max_window_ms > 0)
				ExplainPropertyText("Time Windows", "computed as ids are listed", es);
			if (!state->need_execution)
				explain_listing_requests(node, state, es);
		}
		else if (!state->need_execution)
		{
			int			nchains,
						nbatches,
						nwindows;

			explain_chains(node, state, false, &nchains, &nbatches, &nwindows);
			ExplainPropertyInteger("Id Batches", NULL, nbatches, es);
			if (api->max_window_ms > 0)
				ExplainPropertyInteger("Time Windows", NULL, nwindows, es);
		}
		else
		{
			ExplainPropertyText("Id Batches", "computed when the scan starts", es);
			if (api->max_window_ms > 0)
				ExplainPropertyText("Time Windows", "computed when the scan starts", es);
		}
	}

	if (es->analyze && state->scan)
	{
		ExplainPropertyInteger("HTTP Requests", NULL, state->scan->engine->counters.http_requests, es);
		if (state->scan->engine->listing)
			ExplainPropertyInteger("Ids Listed", NULL, state->scan->engine->counters.listed_keys, es);
		if (state->scan->engine->counters.retries > 0 || es->format != EXPLAIN_FORMAT_TEXT)
			ExplainPropertyInteger("HTTP Retries", NULL, state->scan->engine->counters.retries, es);
		ExplainPropertyInteger("Pages", NULL, state->scan->engine->counters.pages, es);
		ExplainPropertyInteger("Records", NULL, state->scan->engine->counters.records, es);
		ExplainPropertyInteger("Bytes Received", "bytes", state->scan->engine->counters.bytes_received, es);
		/* a time, like the node's own: shown only with TIMING */
		if (es->timing)
			ExplainPropertyFloat("API Wait Time", "ms",
								 state->scan->engine->counters.wait_us / 1000.0, 3, es);
		if (state->cache)
			ExplainPropertyInteger("Rescans From Cache", NULL,
								   oprec_cache_hits(state->cache), es);
	}
}

/*
 * ANALYZE would have to read the whole operation history of every work
 * item: say so, and let it skip the table.
 */
static bool
oprecAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func,
						 BlockNumber *totalpages)
{
	ereport(NOTICE,
			(errmsg("ANALYZE skips foreign table \"%s\": sampling it would read its whole history from the API",
					RelationGetRelationName(relation)),
			 errdetail("Row and cost estimates come from the query's conditions and the server options records_per_id, request_cost, fdw_startup_cost and fdw_tuple_cost.")));
	return false;
}

/* The names of the tables IMPORT FOREIGN SCHEMA creates, for messages. */
static char *
import_table_names(const OprecApi *api)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, api->import_table);
	for (int i = 0; api->resources && api->resources[i]; i++)
		appendStringInfo(&buf, ", %s", api->resources[i]->import_table);
	return buf.data;
}

/* The table options IMPORT takes: all but resource, which it sets itself. */
static char *
import_option_names(const OprecApi *api)
{
	char	   *names = oprec_table_option_names(api);
	StringInfoData buf;
	char	   *name;
	char	   *save = NULL;

	initStringInfo(&buf);
	for (name = strtok_r(names, ", ", &save); name; name = strtok_r(NULL, ", ", &save))
		if (strcmp(name, "resource") != 0)
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", name);
	return buf.data;
}

/* CREATE FOREIGN TABLE for one table of an API, with the given options. */
static char *
import_command(const OprecApi *table_api, ForeignServer *server, List *options,
			   bool name_resource)
{
	StringInfoData sql;
	ListCell   *lc;
	bool		first = true;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE FOREIGN TABLE %s (", quote_identifier(table_api->import_table));
	for (int i = 0; i < table_api->ncolumns; i++)
		appendStringInfo(&sql, "%s%s %s", i > 0 ? ", " : "",
						 quote_identifier(table_api->columns[i].name), table_api->columns[i].sql_type);
	appendStringInfo(&sql, ") SERVER %s", quote_identifier(server->servername));
	if (name_resource)
	{
		appendStringInfo(&sql, " OPTIONS (resource %s", quote_literal_cstr(table_api->resource));
		first = false;
	}
	foreach(lc, options)
	{
		DefElem    *opt = lfirst(lc);

		appendStringInfo(&sql, "%s%s %s", first ? " OPTIONS (" : ", ",
						 quote_identifier(opt->defname), quote_literal_cstr(defGetString(opt)));
		first = false;
	}
	if (!first)
		appendStringInfoChar(&sql, ')');
	return sql.data;
}

/*
 * IMPORT FOREIGN SCHEMA <api> FROM SERVER s INTO local_schema: the
 * documented tables of the server's API.  Its OPTIONS become the tables'.
 * PostgreSQL applies LIMIT TO and EXCEPT; a name that is no table of the
 * API is an error here.
 */
static List *
oprecImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	const char *api_name = oprec_defelem_value(server->options, "api");
	const OprecApi *api = api_name ? oprec_find_api(api_name) : NULL;
	List	   *commands = NIL;
	ListCell   *lc;

	if (api == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" has no valid \"api\" option", server->servername)));
	if (strcmp(stmt->remote_schema, api->import_schema) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("server \"%s\" (api '%s') has no schema \"%s\": its schema is \"%s\"",
						server->servername, api->name, stmt->remote_schema, api->import_schema),
				 errhint("IMPORT FOREIGN SCHEMA %s FROM SERVER %s INTO ...",
						 api->import_schema, quote_identifier(server->servername))));
	foreach(lc, stmt->table_list)
	{
		RangeVar   *rv = lfirst(lc);
		bool		known = strcmp(rv->relname, api->import_table) == 0;

		for (int i = 0; api->resources && api->resources[i] && !known; i++)
			known = strcmp(rv->relname, api->resources[i]->import_table) == 0;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
					 errmsg("schema \"%s\" has no table \"%s\"", api->import_schema, rv->relname),
					 errhint("Its tables: %s.", import_table_names(api))));
	}
	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst(lc);

		if (!oprec_is_table_option(api, opt->defname) || strcmp(opt->defname, "resource") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\" for IMPORT FOREIGN SCHEMA %s",
							opt->defname, api->import_schema),
					 errhint("Its options become the options of the imported tables: %s.",
							 import_option_names(api))));
	}

	/* the server's table, then the others it serves (LIMIT TO picks) */
	commands = lappend(commands, import_command(api, server, stmt->options, false));
	for (int i = 0; api->resources && api->resources[i]; i++)
		commands = lappend(commands, import_command(api->resources[i], server, stmt->options, true));
	return commands;
}

Datum
oprec_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = oprecGetForeignRelSize;
	routine->GetForeignPaths = oprecGetForeignPaths;
	routine->GetForeignPlan = oprecGetForeignPlan;
	routine->BeginForeignScan = oprecBeginForeignScan;
	routine->IterateForeignScan = oprecIterateForeignScan;
	routine->ReScanForeignScan = oprecReScanForeignScan;
	routine->EndForeignScan = oprecEndForeignScan;
	routine->ExplainForeignScan = oprecExplainForeignScan;
	routine->AnalyzeForeignTable = oprecAnalyzeForeignTable;
	routine->ImportForeignSchema = oprecImportForeignSchema;

	PG_RETURN_POINTER(routine);
}
