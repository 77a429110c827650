/*-------------------------------------------------------------------------
 *
 * oprec_fdw.c
 *		  The foreign-data wrapper handler: planner and executor callbacks.
 *
 * This file is where PostgreSQL meets the engine.  Planning checks the
 * table's columns against its API and classifies the WHERE conditions
 * (pushdown.c); the executor insists on a condition on the API's key
 * column when the first row is asked for, evaluates the pushed values, and
 * turns the rows of the scan engine (scan.c) into tuples (convert.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/table.h"
#include "commands/explain.h"
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
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "oprec_fdw.h"
#include "json_read.h"

PG_MODULE_MAGIC;

/* fdw_private of a ForeignScan: pushdown.c's three lists, then this. */
#define PRIVATE_RETRIEVED_ATTRS 3

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
	bool		started;		/* filters evaluated for this (re)scan */
	int			natts;
	OprecColumnConverter *converters;	/* one per attribute */
} OprecExecState;

PG_FUNCTION_INFO_V1(oprec_fdw_handler);

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
}

/* The API column a table column maps to, by name; -1 if none. */
int
oprec_api_column(const OprecApi *api, const char *name)
{
	for (int i = 0; i < api->ncolumns; i++)
		if (strcmp(api->columns[i].name, name) == 0)
			return i;
	return -1;
}

static char *
api_column_names(const OprecApi *api)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < api->ncolumns; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", api->columns[i].name);
	return buf.data;
}

/* Every column of the table must be one the API has. */
static void
check_table_columns(Oid relid, const OprecApi *api)
{
	Relation	rel = table_open(relid, NoLock);
	TupleDesc	tupdesc = RelationGetDescr(rel);

	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);

		if (attr->attisdropped)
			continue;
		if (oprec_api_column(api, NameStr(attr->attname)) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_COLUMN_NAME),
					 errmsg("column \"%s\" of foreign table \"%s\" is not a field of the %s API",
							NameStr(attr->attname), RelationGetRelationName(rel), api->title),
					 errhint("Columns of an api '%s' table may be: %s.",
							 api->name, api_column_names(api))));
	}
	table_close(rel, NoLock);
}

/* How many keys the pushed conditions name, if known at plan time. */
static double
estimate_keys(OprecPlanState *plan, const OprecApi *api)
{
	ListCell   *lc_col,
			   *lc_expr;

	forboth(lc_col, plan->pushed_columns, lc_expr, plan->pushed_exprs)
	{
		Node	   *expr = lfirst(lc_expr);

		if (lfirst_int(lc_col) != api->key_column)
			continue;
		if (IsA(expr, Const) && !((Const *) expr)->constisnull)
		{
			Const	   *c = (Const *) expr;

			if (type_is_array(c->consttype))
				return Max(1, ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(c->constvalue)),
											 ARR_DIMS(DatumGetArrayTypeP(c->constvalue))));
			return 1;
		}
		if (IsA(expr, ArrayExpr))
			return Max(1, list_length(((ArrayExpr *) expr)->elements));
	}
	return KEYS_ESTIMATE_UNKNOWN;
}

static void
oprecGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	OprecPlanState *plan = palloc0(sizeof(OprecPlanState));
	ListCell   *lc;

	plan->options = oprec_get_options(foreigntableid, InvalidOid);
	check_table_columns(foreigntableid, plan->options->api);
	oprec_classify_conditions(root, baserel, plan);

	/* the columns the query reads: output and local conditions */
	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &plan->attrs_used);
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		pull_varattnos((Node *) rinfo->clause, baserel->relid, &plan->attrs_used);
	}

	plan->keys_estimate = estimate_keys(plan, plan->options->api);
	baserel->rows = clamp_row_est(plan->keys_estimate * ROWS_PER_KEY_ESTIMATE);
	baserel->fdw_private = plan;
}

static void
oprecGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	OprecPlanState *plan = baserel->fdw_private;
	const OprecApi *api = plan->options->api;
	double		requests = ceil(plan->keys_estimate / api->max_keys_per_request) +
		baserel->rows / Max(plan->options->page_size, 1);
	Cost		startup_cost = REQUEST_COST;
	Cost		total_cost = startup_cost + requests * REQUEST_COST +
		baserel->rows * cpu_tuple_cost;

	/*
	 * Without a key condition the scan cannot run; it says so when the
	 * first row is asked for.  Keep the path (it is the only one) but never
	 * prefer it.
	 */
	if (!plan->has_key_condition)
		total_cost += disable_cost;

	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
									 startup_cost, total_cost,
									 NIL, NULL, NULL,
#if PG_VERSION_NUM >= 170000
									 NIL,
#endif
									 NIL));
}

/*
 * Refuse a scan without the API's key, or without a scope, before any
 * request.  This runs when the first row is asked for, never at plan time,
 * so that EXPLAIN and metadata probes such as LIMIT 0 work on any query.
 * What to do goes into the message and DETAIL: some drivers (psqlODBC)
 * drop the HINT.
 */
static void
require_key_condition(const OprecOptions *options, List *pushed_columns, Oid relid)
{
	const OprecApi *api = options->api;
	const char *key = api->columns[api->key_column].name;

	if (!list_member_int(pushed_columns, api->key_column))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
				 errmsg("a condition on %s is required to scan foreign table \"%s\": add WHERE %s = ..., %s IN (...) or %s = ANY (...)",
						key, get_rel_name(relid), key, key, key),
				 errdetail("The %s API returns records only for listed %s values. To take them from a local table, write %s = ANY (ARRAY(SELECT id FROM my_items)); %s must be declared bigint.",
						   api->title, key, key, key)));

	if (api->scope_column >= 0 && oprec_scope_value(options, NULL) == NULL &&
		!list_member_int(pushed_columns, api->scope_column))
	{
		const OprecColumnDef *scope = &api->columns[api->scope_column];

		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
				 errmsg("no %s for foreign table \"%s\": add WHERE %s = '...' or set OPTIONS (%s '...') on the table or its server",
						scope->name, get_rel_name(relid), scope->name, scope->scope_option)));
	}
}

static ForeignScan *
oprecGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
					ForeignPath *best_path, List *tlist, List *scan_clauses,
					Plan *outer_plan)
{
	OprecPlanState *plan = baserel->fdw_private;
	List	   *fdw_private;
	List	   *retrieved = NIL;
	int			attno = -1;

	/* every condition is checked locally too, pushed or not */
	scan_clauses = extract_actual_clauses(scan_clauses, false);

	while ((attno = bms_next_member(plan->attrs_used, attno)) >= 0)
		retrieved = lappend_int(retrieved, attno + FirstLowInvalidHeapAttributeNumber);

	fdw_private = oprec_pushdown_private(plan);
	fdw_private = lappend(fdw_private, retrieved);

	return make_foreignscan(tlist, scan_clauses, baserel->relid,
							oprec_pushdown_exprs(plan), fdw_private,
							NIL, NIL, outer_plan);
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

	node->fdw_state = state;
	state->fdw_private = fsplan->fdw_private;
	state->expr_states = ExecInitExprList(fsplan->fdw_exprs, (PlanState *) node);
	retrieved = (List *) list_nth(fsplan->fdw_private, PRIVATE_RETRIEVED_ATTRS);

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

	state->natts = tupdesc->natts;
	state->converters = palloc0(sizeof(OprecColumnConverter) * tupdesc->natts);
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		int			column = -1;

		if (!attr->attisdropped && attribute_retrieved(retrieved, attr->attnum))
			column = oprec_api_column(api, NameStr(attr->attname));
		if (column >= 0)
			oprec_prepare_converter(&state->converters[i], column,
									attr->atttypid, attr->atttypmod);
		else
			state->converters[i].column = -1;
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

	require_key_condition(state->options, oprec_pushed_columns(state->fdw_private),
						  RelationGetRelid(node->ss.ss_currentRelation));
	MemoryContextReset(scan->run_cxt);
	oldcxt = MemoryContextSwitchTo(scan->run_cxt);
	filters = oprec_evaluate_filters(scan->api, state->fdw_private, state->expr_states,
									 econtext);
	MemoryContextSwitchTo(oldcxt);
	oprec_scan_start(scan, filters);
	state->started = true;
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

	if (!state->started)
		start_scan(node, state);

	ExecClearTuple(slot);
	if (!oprec_scan_next_row(scan, &record, &row, &chain))
		return slot;

	/* values are built in the per-tuple context the executor resets */
	for (int i = 0; i < state->natts; i++)
	{
		OprecColumnConverter *conv = &state->converters[i];

		if (conv->column < 0)
		{
			slot->tts_isnull[i] = true;
			slot->tts_values[i] = (Datum) 0;
			continue;
		}
		slot->tts_values[i] =
			oprec_json_to_datum(conv, scan->api->columns[conv->column].kind,
								scan->api->column_value(scan, chain, record, row,
														conv->column),
								&slot->tts_isnull[i]);
	}
	ExecStoreVirtualTuple(slot);
	return slot;
}

static void
oprecReScanForeignScan(ForeignScanState *node)
{
	OprecExecState *state = node->fdw_state;

	/* parameters may have changed: evaluate them again on the next row */
	state->started = false;
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
 * Show what the scan asks for.  Without ANALYZE, the batches and windows
 * are computed from the pushed values when they can be known without
 * running anything (constants, parameters, now()).
 */
static void
oprecExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	OprecExecState *state = node->fdw_state;
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	OprecOptions *options = state->options;
	const OprecApi *api = options->api;
	List	   *pushed = oprec_pushed_descriptions(state->fdw_private);

	if (!es->verbose && !es->analyze)
		return;

	if (es->verbose)
	{
		ExplainPropertyText("API Call", api->call, es);
		ExplainPropertyList("Pushed Conditions", pushed, es);

		if (es->analyze && state->scan)
		{
			ExplainPropertyInteger("Id Batches", NULL, state->scan->counters.key_batches, es);
			if (api->max_window_ms > 0)
				ExplainPropertyInteger("Time Windows", NULL, state->scan->counters.time_windows, es);
		}
		else if (!oprec_exprs_need_execution(fsplan->fdw_exprs))
		{
			MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "oprec_fdw explain",
													  ALLOCSET_DEFAULT_SIZES);
			MemoryContext oldcxt = MemoryContextSwitchTo(tmp);
			OprecFilters *filters = oprec_evaluate_filters(api, state->fdw_private,
														   state->expr_states,
														   node->ss.ps.ps_ExprContext);
			int			nchains,
						nbatches,
						nwindows;

			(void) oprec_build_chains(api, filters, oprec_history_start(options),
									  options->page_size, GetCurrentTimestamp(),
									  &nchains, &nbatches, &nwindows);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextDelete(tmp);
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
		ExplainPropertyInteger("HTTP Requests", NULL, state->scan->counters.http_requests, es);
		if (state->scan->counters.retries > 0 || es->format != EXPLAIN_FORMAT_TEXT)
			ExplainPropertyInteger("HTTP Retries", NULL, state->scan->counters.retries, es);
		ExplainPropertyInteger("Pages", NULL, state->scan->counters.pages, es);
		ExplainPropertyInteger("Records", NULL, state->scan->counters.records, es);
	}
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

	PG_RETURN_POINTER(routine);
}
