/*-------------------------------------------------------------------------
 *
 * estimate.c
 *		  Row and cost estimates of a scan, for the planner.
 *
 * Nothing can be sampled (ANALYZE would read the whole history), so the
 * estimates follow the conditions: how many keys they name, how long a
 * time range they span, how selective the other conditions are.  A key is
 * assumed to have records_per_id records over its whole history, spread
 * over ASSUMED_HISTORY_DAYS.  Each request costs request_cost, far more
 * than a row: the planner then prefers a plan that sends fewer requests,
 * which is what takes time.  The server options fdw_startup_cost,
 * fdw_tuple_cost, request_cost and records_per_id tune the model.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "utils/array.h"
#include "utils/lsyscache.h"

#include "oprec_fdw.h"

/* Keys assumed when the conditions name them in a way not known yet. */
#define KEYS_ESTIMATE_UNKNOWN 10.0

/* The records of a key are assumed to spread over this many days. */
#define ASSUMED_HISTORY_DAYS 365.0
#define MS_PER_DAY (24.0 * 3600.0 * 1000.0)

/*
 * Rows of the ARRAY(SELECT ...) an initplan computes into a parameter, or
 * -1 if the parameter is not set by such an initplan.
 */
static double
initplan_array_rows(PlannerInfo *root, Param *param)
{
	ListCell   *lc;

	if (param->paramkind != PARAM_EXEC)
		return -1;
	foreach(lc, root->init_plans)
	{
		SubPlan    *subplan = lfirst(lc);

		if (subplan->subLinkType == ARRAY_SUBLINK &&
			list_member_int(subplan->setParam, param->paramid))
			return planner_subplan_get_plan(root, subplan)->plan_rows;
	}
	return -1;
}

/* How many keys one pushed key condition names, if it can be told. */
static double
keys_of_condition(PlannerInfo *root, OprecCondOp op, Expr *expr)
{
	Node	   *value = estimate_expression_value(root, (Node *) expr);

	if (op == OPREC_COND_EQ)
		return 1;
	/* strip the casts of ARRAY(SELECT ...)::bigint[] and the like */
	while (IsA(value, ArrayCoerceExpr) || IsA(value, RelabelType) ||
		   IsA(value, CoerceViaIO))
	{
		if (IsA(value, ArrayCoerceExpr))
			value = (Node *) ((ArrayCoerceExpr *) value)->arg;
		else if (IsA(value, RelabelType))
			value = (Node *) ((RelabelType *) value)->arg;
		else
			value = (Node *) ((CoerceViaIO *) value)->arg;
	}
	if (IsA(value, Const) && !((Const *) value)->constisnull)
	{
		ArrayType  *array = DatumGetArrayTypeP(((Const *) value)->constvalue);

		return ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array));
	}
	if (IsA(value, ArrayExpr))
		return list_length(((ArrayExpr *) value)->elements);
	if (IsA(value, Param))
	{
		double		rows = initplan_array_rows(root, (Param *) value);

		if (rows >= 0)
			return rows;
	}
	return KEYS_ESTIMATE_UNKNOWN;
}

/* An int8 bound of the key known at plan time. */
static bool
int8_bound(PlannerInfo *root, Expr *expr, int64 *bound)
{
	Node	   *value = estimate_expression_value(root, (Node *) expr);

	if (!IsA(value, Const) || ((Const *) value)->constisnull ||
		((Const *) value)->consttype != INT8OID)
		return false;
	*bound = DatumGetInt64(((Const *) value)->constvalue);
	return true;
}

/* A time bound known at plan time (now() included), in epoch ms. */
static bool
time_bound(PlannerInfo *root, Expr *expr, double *ms)
{
	Node	   *value = estimate_expression_value(root, (Node *) expr);
	TimestampTz ts;

	if (!IsA(value, Const) || ((Const *) value)->constisnull ||
		((Const *) value)->consttype != TIMESTAMPTZOID)
		return false;
	ts = DatumGetTimestampTz(((Const *) value)->constvalue);
	if (TIMESTAMP_NOT_FINITE(ts))
		return false;
	*ms = (double) oprec_timestamptz_to_ms_floor(ts);
	return true;
}

/* Whether a clause reads a column mapped to the key or the time. */
static bool
is_key_or_time_clause(RelOptInfo *baserel, const OprecPlanState *plan, Expr *clause)
{
	const OprecResource *res = plan->options->resource;
	Bitmapset  *attrs = NULL;
	int			attno = -1;

	pull_varattnos((Node *) clause, baserel->relid, &attrs);
	while ((attno = bms_next_member(attrs, attno)) >= 0)
	{
		int			att = attno + FirstLowInvalidHeapAttributeNumber;
		int			column;

		if (att <= 0)
			continue;
		column = plan->columns[att - 1].api_column;
		if (column >= 0 && (column == res->key_column || column == res->time_column))
			return true;
	}
	return false;
}

/* What the pushed conditions on the key and on the time bound. */
typedef struct KeyTimeBounds
{
	double		keys;			/* keys named; -1: none named */
	int64		key_lower;		/* a range of keys, where has_key_lower */
	int64		key_upper;		/* and has_key_upper */
	bool		has_key_lower;
	bool		has_key_upper;
	double		time_lower;		/* epoch ms; -1: unbounded */
	double		time_upper;
} KeyTimeBounds;

/* Narrow the bounds by one pushed condition, if it bounds the key or time. */
static void
add_pushed_condition(PlannerInfo *root, const OprecResource *res, int column,
					 OprecCondOp op, Expr *expr, KeyTimeBounds *b)
{
	int64		bound;
	double		ms;

	if (column == res->key_column && (op == OPREC_COND_EQ || op == OPREC_COND_ANY))
	{
		double		n = keys_of_condition(root, op, expr);

		b->keys = b->keys < 0 ? n : Min(b->keys, n);
	}
	else if (column == res->key_column && int8_bound(root, expr, &bound))
	{
		if (op == OPREC_COND_GE || op == OPREC_COND_GT)
		{
			b->has_key_lower = true;
			b->key_lower = Max(b->key_lower, bound);
		}
		else
		{
			b->has_key_upper = true;
			b->key_upper = Min(b->key_upper, bound);
		}
	}
	else if (column == res->time_column && time_bound(root, expr, &ms))
	{
		if (op == OPREC_COND_GE || op == OPREC_COND_GT || op == OPREC_COND_EQ)
			b->time_lower = Max(b->time_lower, ms);
		if (op == OPREC_COND_LE || op == OPREC_COND_LT || op == OPREC_COND_EQ)
			b->time_upper = b->time_upper < 0 ? ms : Min(b->time_upper, ms);
	}
}

/*
 * The keys a scan asks for: those named, or fewer when a range of keys
 * (at most max_id_range of them) is bounded on both sides.
 */
static double
keys_estimate(const KeyTimeBounds *b, const OprecOptions *options)
{
	double		keys = b->keys;

	if (b->has_key_lower && b->has_key_upper)
	{
		double		span = Max((double) b->key_upper - (double) b->key_lower + 1, 0);

		span = Min(span, options->max_id_range);
		keys = keys < 0 ? span : Min(keys, span);
	}
	return keys < 0 ? KEYS_ESTIMATE_UNKNOWN : Max(keys, 1);
}

/* The time range: its share of a key's history, and its windows. */
static void
estimate_time_range(OprecPlanState *plan, double time_lower, double time_upper)
{
	const OprecResource *res = plan->options->resource;

	plan->time_fraction = 1.0;
	plan->windows_estimate = 1.0;
	if (time_lower >= 0 || time_upper >= 0)
	{
		double		now_ms = (double) oprec_timestamptz_to_ms_floor(GetCurrentTimestamp());
		double		lower = time_lower >= 0 ? time_lower : now_ms - ASSUMED_HISTORY_DAYS * MS_PER_DAY;
		double		upper = time_upper >= 0 ? Min(time_upper, now_ms) : now_ms;
		double		span = Max(upper - lower, 1.0);

		plan->time_fraction = Min(1.0, span / (ASSUMED_HISTORY_DAYS * MS_PER_DAY));
		plan->has_time_range = (time_lower >= 0 && time_upper >= 0);
		if (res->max_window_ms > 0)
			plan->windows_estimate = Max(1.0, ceil(span / (double) res->max_window_ms));
	}
}

/* The other conditions, pushed as list filters or checked here. */
static void
estimate_other_conditions(PlannerInfo *root, RelOptInfo *baserel, OprecPlanState *plan)
{
	List	   *other_clauses = NIL;
	ListCell   *lc;

	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (!is_key_or_time_clause(baserel, plan, rinfo->clause))
			other_clauses = lappend(other_clauses, rinfo);
	}
	plan->local_selectivity = clauselist_selectivity(root, other_clauses, baserel->relid,
													 JOIN_INNER, NULL);
	cost_qual_eval(&plan->local_cost, baserel->baserestrictinfo, root);
}

/*
 * Estimate what the relation's own conditions ask for, into plan, and set
 * baserel->rows for a scan that asks for them.
 */
void
oprec_estimate_relation(PlannerInfo *root, RelOptInfo *baserel, OprecPlanState *plan)
{
	KeyTimeBounds bounds;
	ListCell   *lc_col,
			   *lc_op,
			   *lc_expr;

	bounds.keys = -1;
	bounds.key_lower = PG_INT64_MIN;
	bounds.key_upper = PG_INT64_MAX;
	bounds.has_key_lower = false;
	bounds.has_key_upper = false;
	bounds.time_lower = -1;
	bounds.time_upper = -1;
	forthree(lc_col, plan->pushed_columns, lc_op, plan->pushed_ops, lc_expr, plan->pushed_exprs)
		add_pushed_condition(root, plan->options->resource, lfirst_int(lc_col),
							 (OprecCondOp) lfirst_int(lc_op), lfirst(lc_expr), &bounds);
	plan->keys_estimate = keys_estimate(&bounds, plan->options);

	estimate_time_range(plan, bounds.time_lower, bounds.time_upper);
	estimate_other_conditions(root, baserel, plan);

	baserel->rows = oprec_estimate_rows(plan, plan->keys_estimate);
}

/* Rows a scan for this many keys returns. */
double
oprec_estimate_rows(const OprecPlanState *plan, double keys)
{
	return clamp_row_est(keys * plan->options->records_per_id * plan->time_fraction *
						 plan->local_selectivity);
}

/*
 * Cost of a scan for this many keys (with the relation's other
 * conditions), plus extra_startup spent before its first request.
 */
void
oprec_estimate_cost(const OprecPlanState *plan, double keys, Cost extra_startup,
					double *rows, Cost *startup_cost, Cost *total_cost)
{
	const OprecOptions *options = plan->options;
	const OprecResource *res = options->resource;
	double		page_size = Max(options->page_size, 1);
	double		batches = ceil(keys / res->max_keys_per_request);
	double		records = keys * options->records_per_id * plan->time_fraction *
		plan->local_selectivity;
	double		received = records;
	double		history_pages = oprec_history_pages(options,
													Min(keys, res->max_keys_per_request));
	double		requests;

	if (!(options->always_windows && plan->has_time_range) &&
		!oprec_windows_sooner(options, batches, plan->windows_estimate, history_pages))
	{
		/*
		 * A range longer than a batch's history is walked without time
		 * range (chain.c): every record of the keys is received.
		 */
		received = keys * options->records_per_id * plan->local_selectivity;
		requests = batches * history_pages;
	}
	else
		requests = Max(batches * plan->windows_estimate, ceil(records / page_size));

	*rows = clamp_row_est(records);
	*startup_cost = options->fdw_startup_cost + extra_startup + options->request_cost;
	*total_cost = options->fdw_startup_cost + extra_startup +
		requests * options->request_cost +
		received * (options->fdw_tuple_cost + cpu_tuple_cost + plan->local_cost.per_tuple) +
		plan->local_cost.startup;
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
