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

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "funcapi.h"
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


/* Execution state of one foreign scan node. */
typedef struct OprecExecState
{
	OprecScan  *scan;			/* NULL when only explaining */
	OprecOptions *options;
	OprecScanPlan plan;			/* what the planner handed over */
	List	   *expr_states;	/* pushed right-hand sides */
	bool		need_execution; /* they depend on other plan nodes */
	OprecKeySource *key_source; /* batched join: the local table of keys */
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
	/* the mirror workers' settings, and the launcher when preloaded */
	oprec_mirror_worker_init();
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("oprec_fdw");
#else
	EmitWarningsOnPlaceholders("oprec_fdw");
#endif

	/* before any jansson value exists: its allocations are counted */
	oprec_json_install_allocator();
	oprec_http_init();
	oprec_pace_init();
	oprec_credentials_init();
	oprec_jit_init();

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
	plan->columns = oprec_map_columns(rel, plan->options->resource);
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

/* The table's column that reads the API's key (for messages). */
static const char *
column_name_of(Relation rel, const OprecColumnMap *columns, const OprecResource *res,
			   int api_column)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);

	for (int i = 0; i < tupdesc->natts; i++)
		if (!columns[i].dropped && columns[i].api_column == api_column)
			return NameStr(TupleDescAttr(tupdesc, i)->attname);
	return res->columns[api_column].name;
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
	const OprecResource *res = options->resource;
	const char *key = column_name_of(rel, state->columns, res, res->key_column);

	if (!state->plan.names_keys && state->key_source == NULL && res->list_keys != NULL)
	{
		/* the API lists the ids: a whole history needs a LIMIT or consent */
		if (!state->plan.has_time_lower && !options->allow_whole_history &&
			!state->plan.limited)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
					 errmsg("scanning foreign table \"%s\" without a condition on %s or a lower bound on %s would read the whole history of every item",
							RelationGetRelationName(rel), key,
							column_name_of(rel, state->columns, res, res->time_column)),
					 errdetail("Add WHERE %s >= ... (then only the items updated since are listed); or name the ids (%s = ..., IN, BETWEEN, or a join with a table of ids; %s declared bigint); or add a LIMIT; or set the server's option whole_history 'allow'. Without ids the %s API's items are listed first (%s).",
							   column_name_of(rel, state->columns, res, res->time_column),
							   key, key, res->service->title, res->list_call)));
	}
	else if (!state->plan.names_keys && state->key_source == NULL)
	{
		/* a range names ids only when they are integers */
		bool		int_key = res->columns[res->key_column].push_type == INT8OID;

		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
				 errmsg("a condition on %s is required to scan foreign table \"%s\": add WHERE %s = ..., %s IN (...)%s%s, or join on %s with a table of them",
						key, RelationGetRelationName(rel), key, key,
						int_key ? " or BETWEEN ... AND ... on " : "", int_key ? key : "", key),
				 errdetail("The %s API returns records only for listed %s values. A join such as JOIN my_items m ON m.id = %s works, as does %s = ANY (ARRAY(SELECT id FROM my_items)); %s must be declared %s.",
						   res->service->title, res->columns[res->key_column].name, key, key, key,
						   res->columns[res->key_column].sql_type)));
	}

	if (res->scope_column >= 0 && oprec_scope_value(options, NULL) == NULL &&
		!list_member_int(state->plan.pushed_columns, res->scope_column))
	{
		const OprecColumnDef *scope = &res->columns[res->scope_column];

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
	OprecScanPlan scan_plan;
	List	   *fdw_exprs;
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

	/* a batched join's path brings its key source */
	oprec_scan_plan_read(best_path->fdw_private, &scan_plan);
	oprec_pushdown_plan(&path_plan, scan_clauses, &scan_plan);
	while ((attno = bms_next_member(plan->attrs_used, attno)) >= 0)
		scan_plan.retrieved = lappend_int(scan_plan.retrieved,
										  attno + FirstLowInvalidHeapAttributeNumber);
	scan_plan.parameterized = best_path->path.param_info != NULL;
	scan_plan.limited = limit_bounds_scan(root, baserel);
	fdw_exprs = list_copy(path_plan.pushed_exprs);
	oprec_key_source_to_exprs(&scan_plan, &fdw_exprs);

	return make_foreignscan(tlist, scan_clauses, baserel->relid, fdw_exprs,
							oprec_scan_plan_write(&scan_plan), NIL, NIL, outer_plan);
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
	int			source = -1;
	const OprecResource *res;
	OprecOptions *options;
	List	   *pushed_exprs = fsplan->fdw_exprs;

	node->fdw_state = state;
	oprec_scan_plan_read(fsplan->fdw_private, &state->plan);

	/* a batched join's key source follows the pushed values in fdw_exprs */
	source = state->plan.key_source;
	if (source >= 0)
	{
		pushed_exprs = list_truncate(list_copy(fsplan->fdw_exprs), source);
		if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
			state->key_source =
				oprec_key_source_begin(estate, list_nth(fsplan->fdw_exprs, source),
									   list_nth(fsplan->fdw_exprs, source + 1));
	}
	state->expr_states = ExecInitExprList(pushed_exprs, (PlanState *) node);
	state->expect_rescans = (eflags & EXEC_FLAG_REWIND) || state->plan.parameterized;

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
	res = options->resource;

	/* a range of keys is listed when the scan starts, or refused */
	state->need_execution = source >= 0 ||
		oprec_contains_exec_param((Node *) pushed_exprs) || state->plan.has_key_range;

	state->natts = tupdesc->natts;
	state->columns = oprec_map_columns(rel, res);
	state->converters = palloc0(sizeof(OprecColumnConverter) * tupdesc->natts);
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);

		if (!attr->attisdropped && attribute_retrieved(state->plan.retrieved, attr->attnum))
			oprec_prepare_converter(&state->converters[i], res, &state->columns[i],
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
	filters = oprec_evaluate_filters(scan->resource, &state->plan, state->expr_states,
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
		signature = oprec_filters_signature(scan->resource, filters);
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
	const OprecResource *res = state->scan->resource;
	json_t	   *key = oprec_column_value(state->scan, state->converting_chain,
										 state->converting_record, state->converting_row,
										 res->key_column);
	json_t	   *time = res->time_column < 0 ? NULL :
		oprec_column_value(state->scan, state->converting_chain, state->converting_record,
						   state->converting_row, res->time_column);
	char	   *record = psprintf("the record of %s %s%s%s%s",
								  res->columns[res->key_column].name,
								  key ? oprec_json_shown(key) : "(none)",
								  time ? " at " : "",
								  time ? res->columns[res->time_column].name : "",
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
	const OprecResource *res = options->resource;
	MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "oprec_fdw explain",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(tmp);
	OprecFilters *filters = oprec_evaluate_filters(res, &state->plan, state->expr_states,
												   node->ss.ps.ps_ExprContext,
												   options->max_id_range, NULL);
	int64		key = 1;

	if (one_key)
	{
		filters->columns[res->key_column].active = true;
		filters->columns[res->key_column].ints = &key;
		filters->columns[res->key_column].nvalues = 1;
	}
	(void) oprec_build_chains(res, options, filters, oprec_history_start(options),
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
	const OprecResource *res = state->options->resource;
	int			batches = (res->list_page_size + res->max_keys_per_request - 1) /
		res->max_keys_per_request;
	int			nchains,
				nbatches,
				nwindows;

	explain_chains(node, state, true, &nchains, &nbatches, &nwindows);
	ExplainPropertyText("Requests",
						psprintf("%d per %d ids listed (1 listing + %d batches x %d), more for busy ids",
								 1 + batches * Max(nchains, 1), res->list_page_size, batches,
								 Max(nchains, 1)), es);
}

/*
 * What a scan that lists its ids shows: the listing call, what it lists,
 * and the budget of requests that bounds it.
 */
static void
explain_listing(OprecExecState *state, ExplainState *es)
{
	const OprecResource *res = state->options->resource;

	ExplainPropertyText("Ids Listed By", res->list_call, es);
	ExplainPropertyText("Listing", state->options->list_every_key ? "every item"
						: state->plan.has_time_lower
						? "items updated since the time range starts" : "every item", es);
	ExplainPropertyInteger("Max Requests", NULL, state->options->max_requests, es);
}

/*
 * The batches of ids and the time windows: counted by ANALYZE, else
 * computed from the pushed values when they can be known without running
 * anything (constants, parameters, now()).
 */
static void
explain_batches(ForeignScanState *node, OprecExecState *state, bool listing,
				ExplainState *es)
{
	bool		windows = state->options->resource->max_window_ms > 0;
	const char *when = listing ? "computed as ids are listed" : "computed when the scan starts";
	int			nchains,
				nbatches,
				nwindows;

	if (es->analyze && state->scan)
	{
		ExplainPropertyInteger("Id Batches", NULL, state->scan->engine->counters.key_batches, es);
		if (windows)
			ExplainPropertyInteger("Time Windows", NULL,
								   state->scan->engine->counters.time_windows, es);
		return;
	}
	if (listing || state->need_execution)
	{
		ExplainPropertyText("Id Batches", when, es);
		if (windows)
			ExplainPropertyText("Time Windows", when, es);
		if (listing && !state->need_execution)
			explain_listing_requests(node, state, es);
		return;
	}
	explain_chains(node, state, false, &nchains, &nbatches, &nwindows);
	ExplainPropertyInteger("Id Batches", NULL, nbatches, es);
	if (windows)
		ExplainPropertyInteger("Time Windows", NULL, nwindows, es);
}

/* What EXPLAIN ANALYZE counted: requests, pages, records, bytes, waits. */
static void
explain_counters(OprecExecState *state, ExplainState *es)
{
	const OprecScanCounters *counters = &state->scan->engine->counters;

	ExplainPropertyInteger("HTTP Requests", NULL, counters->http.requests, es);
	if (state->scan->engine->listing)
		ExplainPropertyInteger("Ids Listed", NULL, counters->listed_keys, es);
	if (counters->http.retries > 0 || es->format != EXPLAIN_FORMAT_TEXT)
		ExplainPropertyInteger("HTTP Retries", NULL, counters->http.retries, es);
	ExplainPropertyInteger("Pages", NULL, counters->pages, es);
	ExplainPropertyInteger("Records", NULL, counters->records, es);
	ExplainPropertyInteger("Bytes Received", "bytes", counters->http.bytes_received, es);
	/*
	 * A time, like the node's own, shown only with TIMING; so are the
	 * connections, which depend on what the backend did before.
	 */
	if (es->timing)
	{
		ExplainPropertyFloat("API Wait Time", "ms", counters->http.wait_us / 1000.0, 3, es);
		ExplainPropertyInteger("Connections Opened", NULL, counters->http.connections, es);
		if (counters->http.connect_restarts > 0 || es->format != EXPLAIN_FORMAT_TEXT)
			ExplainPropertyInteger("Stalled Connects Restarted", NULL,
								   counters->http.connect_restarts, es);
	}
	if (state->cache)
		ExplainPropertyInteger("Rescans From Cache", NULL, oprec_cache_hits(state->cache), es);
}

/*
 * Show what the scan asks for.  What was pushed is shown from the finished
 * plan, deparsed in es->deparse_cxt: EXPLAIN has just shown this node's
 * Filter (the pushed conditions are among its quals), which set that
 * context to this plan and its ancestors, so that a Param is shown as the
 * initplan or outer column it comes from.  ruleutils needs them:
 * PostgreSQL 17 looks a PARAM_EXEC up in the plan tree.
 */
static void
oprecExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	OprecExecState *state = node->fdw_state;
	const OprecResource *res = state->options->resource;
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;

	if (es->verbose)
	{
		bool		listing = res->list_keys != NULL && state->plan.key_source < 0 &&
			!state->plan.names_keys;

		ExplainPropertyText("API Call", res->call, es);
		ExplainPropertyList("Pushed Conditions",
							oprec_pushed_descriptions(&state->plan, fsplan->scan.plan.qual,
													  es->deparse_cxt), es);
		if (state->plan.key_source >= 0)
			ExplainPropertyText("Ids From",
								oprec_key_source_description(fsplan->fdw_exprs,
															 state->plan.key_source,
															 node->ss.ps.state,
															 es->deparse_cxt), es);
		/* a scan without ids: the listing is the cost to see first */
		if (listing)
			explain_listing(state, es);
		explain_batches(node, state, listing, es);
	}
	if (es->analyze && state->scan)
		explain_counters(state, es);
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

PG_FUNCTION_INFO_V1(oprec_fdw_pace);

/*
 * oprec_fdw_pace(foreign_table): the pace of the credential the current
 * user's requests to that table count against -- whether it is shared by
 * the cluster's backends, the rate asked for and the rate in effect, the
 * requests in flight and those completed within the last second.  For
 * DBAs (why does a query wait?) and for the tests.
 */
Datum
oprec_fdw_pace(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	OprecOptions *options;
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false};
	OprecPaceCounts counts;

	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a foreign table",
						quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												   get_rel_name(relid))),
				 errhint("Name a foreign table of an oprec_fdw server.")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "oprec_fdw_pace must return a record");
	options = oprec_get_options(relid, GetUserId());
	oprec_pace_counts(options, &counts);

	values[0] = BoolGetDatum(counts.shared);
	values[1] = Int32GetDatum(options->requests_per_second);
	values[2] = Int32GetDatum(counts.rate);
	values[3] = Int32GetDatum(counts.in_flight);
	values[4] = Int32GetDatum(counts.recent);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

Datum
oprec_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	/* the executor's JIT choice looks for scans of this handler */
	oprec_jit_note_handler(fcinfo->flinfo->fn_oid);
	routine->GetForeignRelSize = oprecGetForeignRelSize;
	routine->GetForeignPaths = oprecGetForeignPaths;
	routine->GetForeignPlan = oprecGetForeignPlan;
	routine->BeginForeignScan = oprecBeginForeignScan;
	routine->IterateForeignScan = oprecIterateForeignScan;
	routine->ReScanForeignScan = oprecReScanForeignScan;
	routine->EndForeignScan = oprecEndForeignScan;
	routine->ExplainForeignScan = oprecExplainForeignScan;
	routine->AnalyzeForeignTable = oprecAnalyzeForeignTable;
	routine->ImportForeignSchema = oprec_import_foreign_schema;

	PG_RETURN_POINTER(routine);
}
