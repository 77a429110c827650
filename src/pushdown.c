/*-------------------------------------------------------------------------
 *
 * pushdown.c
 *		  Which WHERE conditions become request parameters, and what their
 *		  values are when a scan starts.
 *
 * At plan time a condition is pushed when it compares a column the API can
 * filter on with an expression that does not depend on the scanned row and
 * is not volatile: a constant, a parameter, now() - interval '3 days', or
 * an uncorrelated ARRAY(SELECT ...).  Only the right-hand side is kept for
 * execution; the condition itself always stays in the plan's local quals,
 * so a difference in how an API reads a filter can never return a row the
 * query excludes.
 *
 * At scan start the right-hand sides are evaluated and merged per column:
 * equality and IN lists are intersected, time bounds narrowed, and a
 * contradiction (or a NULL) marks the scan empty so that no request is made.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/ruleutils.h"

#include "oprec_fdw.h"

/* Positions in the fdw_private list of a ForeignScan plan. */
enum OprecPrivateIndex
{
	PRIVATE_COLUMNS,			/* IntList: API column of each condition */
	PRIVATE_OPS,				/* IntList: OprecCondOp of each condition */
	PRIVATE_TEXT				/* List of String: conditions as written */
};

/* The API column a Var of the scanned relation stands for, or -1. */
static int
api_column_of_var(PlannerInfo *root, RelOptInfo *baserel, const OprecApi *api, Var *var)
{
	RangeTblEntry *rte;
	char	   *attname;

	if (var->varno != baserel->relid || var->varlevelsup != 0 || var->varattno <= 0)
		return -1;
	rte = planner_rt_fetch(baserel->relid, root);
	attname = get_attname(rte->relid, var->varattno, false);
	return oprec_api_column(api, attname);
}

/* True if an expression can be computed once, before the scan's first row. */
static bool
is_scan_constant(Node *expr)
{
	return !contain_var_clause(expr) &&
		!contain_volatile_functions(expr) &&
		!contain_subplans(expr);
}

/*
 * The btree strategy of an operator for a column type, with the type of
 * its right-hand side; 0 if the operator is not an ordinary comparison of
 * that type's default ordering (a custom operator stays local).
 */
static int
comparison_strategy(Oid opno, Oid column_type, Oid *righttype)
{
	Oid			opclass = GetDefaultOpClass(column_type, BTREE_AM_OID);
	Oid			opfamily;
	int			strategy;
	Oid			lefttype;

	if (!OidIsValid(opclass))
		return 0;
	opfamily = get_opclass_family(opclass);
	if (!op_in_opfamily(opno, opfamily))
		return 0;
	get_op_opfamily_properties(opno, opfamily, false, &strategy, &lefttype, righttype);
	if (lefttype != column_type)
		return 0;
	return strategy;
}

/* Text equality pushes only when it means byte equality. */
static bool
collation_is_pushable(Oid collid)
{
	return !OidIsValid(collid) || get_collation_isdeterministic(collid);
}

/* Convert a right-hand side to the column's type, or NULL if impossible. */
static Expr *
coerce_to_column_type(Expr *expr, Oid from_type, Oid to_type)
{
	Node	   *result;

	if (from_type == to_type)
		return expr;
	result = coerce_to_target_type(NULL, (Node *) expr, from_type, to_type, -1,
								   COERCION_IMPLICIT, COERCE_IMPLICIT_CAST, -1);
	return (Expr *) result;
}

static OprecCondOp
strategy_to_op(int strategy)
{
	switch (strategy)
	{
		case BTLessStrategyNumber:
			return OPREC_COND_LT;
		case BTLessEqualStrategyNumber:
			return OPREC_COND_LE;
		case BTGreaterEqualStrategyNumber:
			return OPREC_COND_GE;
		case BTGreaterStrategyNumber:
			return OPREC_COND_GT;
		default:
			return OPREC_COND_EQ;
	}
}

/* A condition as SQL text, for EXPLAIN. */
static char *
describe_clause(PlannerInfo *root, RelOptInfo *baserel, Expr *clause)
{
	RangeTblEntry *rte = planner_rt_fetch(baserel->relid, root);
	Node	   *copy = copyObject((Node *) clause);

	/* the deparse context knows the relation as range table entry 1 */
	ChangeVarNodes(copy, baserel->relid, 1, 0);
	return deparse_expression(copy,
							  deparse_context_for(get_rel_name(rte->relid), rte->relid),
							  false, false);
}

/*
 * Whether an operator is numeric equality: a key compared with 1001.0 or a
 * numeric is compared in numeric, the key cast to it, and the integral
 * values name keys exactly.  (float8 is not pushed: past 2^53 one float
 * value equals several keys cast to float8.)
 */
static bool
is_numeric_equality(Oid opno)
{
	Oid			lefttype,
				righttype,
				unused;

	op_input_types(opno, &lefttype, &righttype);
	if (lefttype != NUMERICOID || righttype != NUMERICOID)
		return false;
	return comparison_strategy(opno, NUMERICOID, &unused) == BTEqualStrategyNumber;
}

/*
 * Whether one comparison can be pushed down: a column the API filters on
 * against a value known before the scan.  Fills in the API column, the
 * operator and the value expression, in the column's type (or its array),
 * or numeric (or numeric[]) for a key compared in numeric: the scan keeps
 * its integral values (see key_from_numeric).
 */
static bool
pushable_comparison(PlannerInfo *root, RelOptInfo *baserel, const OprecApi *api,
					Expr *clause, int *column_out, OprecCondOp *op_out, Expr **value_out)
{
	Var		   *var = NULL;
	Expr	   *other = NULL;
	Oid			opno = InvalidOid;
	Oid			collid = InvalidOid;
	bool		is_array = false;
	int			column;
	const OprecColumnDef *def;
	Oid			righttype;
	int			strategy;
	Oid			value_type;

	if (IsA(clause, OpExpr))
	{
		OpExpr	   *opexpr = (OpExpr *) clause;
		Node	   *left,
				   *right;

		if (list_length(opexpr->args) != 2)
			return false;
		left = strip_implicit_coercions(linitial(opexpr->args));
		right = strip_implicit_coercions(lsecond(opexpr->args));
		if (IsA(left, Var))
		{
			var = (Var *) left;
			other = lsecond(opexpr->args);
			opno = opexpr->opno;
		}
		else if (IsA(right, Var))
		{
			var = (Var *) right;
			other = linitial(opexpr->args);
			opno = get_commutator(opexpr->opno);
		}
		collid = opexpr->inputcollid;
	}
	else if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) clause;
		Node	   *left;

		if (!saop->useOr || list_length(saop->args) != 2)
			return false;
		left = strip_implicit_coercions(linitial(saop->args));
		if (!IsA(left, Var))
			return false;
		var = (Var *) left;
		other = lsecond(saop->args);
		opno = saop->opno;
		collid = saop->inputcollid;
		is_array = true;
	}

	if (var == NULL || !OidIsValid(opno))
		return false;
	column = api_column_of_var(root, baserel, api, var);
	if (column < 0)
		return false;
	def = &api->columns[column];
	if (def->push == OPREC_PUSH_NONE || var->vartype != def->push_type)
		return false;
	if (!is_scan_constant((Node *) other) || !collation_is_pushable(collid))
		return false;

	strategy = comparison_strategy(opno, def->push_type, &righttype);
	value_type = def->push_type;
	if (strategy == 0 && def->push == OPREC_PUSH_KEY && is_numeric_equality(opno))
	{
		strategy = BTEqualStrategyNumber;
		value_type = NUMERICOID;
	}
	if (strategy == 0)
		return false;
	if (def->push != OPREC_PUSH_TIME && strategy != BTEqualStrategyNumber)
		return false;
	if (is_array && (strategy != BTEqualStrategyNumber || def->push == OPREC_PUSH_SCOPE))
		return false;

	if (is_array)
	{
		Oid			array_type = get_array_type(value_type);

		if (!OidIsValid(array_type))
			return false;
		other = coerce_to_column_type(other, exprType((Node *) other), array_type);
		*op_out = OPREC_COND_ANY;
	}
	else
	{
		other = coerce_to_column_type(other, exprType((Node *) other), value_type);
		*op_out = strategy_to_op(strategy);
	}
	if (other == NULL)
		return false;
	*column_out = column;
	*value_out = other;
	return true;
}

/*
 * col = a OR col = b OR ...: the values as one array expression, pushed
 * like col = ANY (ARRAY[a, b, ...]); NULL if the arms are not all
 * equalities on one list or key column.
 */
static Expr *
pushable_or_of_equalities(PlannerInfo *root, RelOptInfo *baserel, const OprecApi *api,
						  BoolExpr *or_clause, int *column_out)
{
	List	   *values = NIL;
	Oid			element_type = InvalidOid;
	int			column = -1;
	ListCell   *lc;
	ArrayExpr  *array;

	foreach(lc, or_clause->args)
	{
		int			arm_column;
		OprecCondOp arm_op;
		Expr	   *value;

		if (!pushable_comparison(root, baserel, api, lfirst(lc), &arm_column, &arm_op, &value) ||
			arm_op != OPREC_COND_EQ || (column >= 0 && arm_column != column) ||
			api->columns[arm_column].push == OPREC_PUSH_SCOPE ||
			api->columns[arm_column].push == OPREC_PUSH_TIME)
			return NULL;
		column = arm_column;
		/* a key compared in numeric in any arm is compared so in all */
		if (exprType((Node *) value) == NUMERICOID)
			element_type = NUMERICOID;
		values = lappend(values, value);
	}
	if (!OidIsValid(element_type))
		element_type = api->columns[column].push_type;
	foreach(lc, values)
	{
		Expr	   *value = lfirst(lc);

		value = coerce_to_column_type(value, exprType((Node *) value), element_type);
		if (value == NULL)
			return NULL;
		lfirst(lc) = value;
	}

	array = makeNode(ArrayExpr);
	array->array_typeid = get_array_type(element_type);
	array->element_typeid = element_type;
	array->elements = values;
	array->multidims = false;
	array->location = -1;
	*column_out = column;
	return (Expr *) array;
}

/*
 * Decide whether one restriction clause can be pushed down; if so, add it
 * to the plan state.
 */
static void
classify_clause(PlannerInfo *root, RelOptInfo *baserel, OprecPlanState *plan,
				Expr *clause)
{
	const OprecApi *api = plan->options->api;
	int			column;
	OprecCondOp op;
	Expr	   *value;

	if (is_orclause(clause))
	{
		value = pushable_or_of_equalities(root, baserel, api, (BoolExpr *) clause, &column);
		op = OPREC_COND_ANY;
		if (value == NULL)
			return;
	}
	else if (!pushable_comparison(root, baserel, api, clause, &column, &op, &value))
		return;

	plan->pushed_columns = lappend_int(plan->pushed_columns, column);
	plan->pushed_ops = lappend_int(plan->pushed_ops, op);
	plan->pushed_exprs = lappend(plan->pushed_exprs, value);
	plan->pushed_text = lappend(plan->pushed_text,
								makeString(describe_clause(root, baserel, clause)));
	if (api->columns[column].push == OPREC_PUSH_KEY)
		plan->has_key_condition = true;
}

void
oprec_classify_conditions(PlannerInfo *root, RelOptInfo *baserel, OprecPlanState *plan)
{
	ListCell   *lc;

	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		classify_clause(root, baserel, plan, rinfo->clause);
	}
}

/* The plan's fdw_private entries that describe the pushed conditions. */
List *
oprec_pushdown_private(OprecPlanState *plan)
{
	return list_make3(plan->pushed_columns, plan->pushed_ops, plan->pushed_text);
}

List *
oprec_pushdown_exprs(OprecPlanState *plan)
{
	return plan->pushed_exprs;
}

/* The API column of each pushed condition (an integer list). */
List *
oprec_pushed_columns(List *fdw_private)
{
	return (List *) list_nth(fdw_private, PRIVATE_COLUMNS);
}

/* The pushed conditions as written, as a list of C strings. */
List *
oprec_pushed_descriptions(List *fdw_private)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, (List *) list_nth(fdw_private, PRIVATE_TEXT))
		result = lappend(result, strVal(lfirst(lc)));
	return result;
}

static bool
contains_exec_param_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXEC)
		return true;
	return expression_tree_walker(node, contains_exec_param_walker, context);
}

/*
 * Whether the pushed values can only be known by running part of the plan
 * (an initplan such as ARRAY(SELECT ...), or a value from an outer row).
 */
bool
oprec_exprs_need_execution(List *fdw_exprs)
{
	return contains_exec_param_walker((Node *) fdw_exprs, NULL);
}

/* ----------------------------------------------------------------
 *		Evaluation at scan start
 * ----------------------------------------------------------------
 */

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

static int
cmp_cstring(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sort and drop duplicates; returns the new count. */
static int
unique_int64(int64 *values, int n)
{
	int			out = 0;

	if (n == 0)
		return 0;
	qsort(values, n, sizeof(int64), cmp_int64);
	for (int i = 1; i < n; i++)
		if (values[i] != values[out])
			values[++out] = values[i];
	return out + 1;
}

static int
unique_cstring(char **values, int n)
{
	int			out = 0;

	if (n == 0)
		return 0;
	qsort(values, n, sizeof(char *), cmp_cstring);
	for (int i = 1; i < n; i++)
		if (strcmp(values[i], values[out]) != 0)
			values[++out] = values[i];
	return out + 1;
}

/* Keep in target only what is also in the new value set. */
static void
intersect_filter(OprecColumnFilter *target, const OprecColumnFilter *next, bool is_int)
{
	int			out = 0;

	if (!target->active)
	{
		*target = *next;
		return;
	}
	for (int i = 0; i < target->nvalues; i++)
	{
		bool		found;

		if (is_int)
			found = bsearch(&target->ints[i], next->ints, next->nvalues,
							sizeof(int64), cmp_int64) != NULL;
		else
			found = bsearch(&target->strs[i], next->strs, next->nvalues,
							sizeof(char *), cmp_cstring) != NULL;
		if (!found)
			continue;
		if (is_int)
			target->ints[out++] = target->ints[i];
		else
			target->strs[out++] = target->strs[i];
	}
	target->nvalues = out;
}

/* A text value as UTF-8, the encoding both APIs speak. */
static char *
datum_to_utf8(Datum value)
{
	char	   *str = TextDatumGetCString(value);

	return pg_server_to_any(str, strlen(str), PG_UTF8);
}

/* The key a numeric value names: false if it is not an integral int64. */
static bool
key_from_numeric(Datum value, int64 *key)
{
	Datum		truncated;
	Datum		lowest = DirectFunctionCall1(int8_numeric, Int64GetDatum(PG_INT64_MIN));
	Datum		highest = DirectFunctionCall1(int8_numeric, Int64GetDatum(PG_INT64_MAX));

	if (numeric_is_nan(DatumGetNumeric(value)))
		return false;
#if PG_VERSION_NUM >= 140000
	if (numeric_is_inf(DatumGetNumeric(value)))
		return false;
#endif
	truncated = DirectFunctionCall2(numeric_trunc, value, Int32GetDatum(0));
	if (!DatumGetBool(DirectFunctionCall2(numeric_eq, value, truncated)) ||
		DatumGetBool(DirectFunctionCall2(numeric_lt, value, lowest)) ||
		DatumGetBool(DirectFunctionCall2(numeric_gt, value, highest)))
		return false;
	*key = DatumGetInt64(DirectFunctionCall1(numeric_int8, value));
	return true;
}

/*
 * Turn one evaluated right-hand side into a set of values.  value_type is
 * its type (or its elements' type): the column's, or numeric for a key
 * compared in numeric.
 */
static void
value_set_from_datum(const OprecColumnDef *def, OprecCondOp op, Datum value,
					 Oid value_type, OprecColumnFilter *set)
{
	bool		is_int = (def->push == OPREC_PUSH_KEY);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;

	set->active = true;
	if (op == OPREC_COND_ANY)
	{
		ArrayType  *array = DatumGetArrayTypeP(value);
		int16		typlen;
		bool		typbyval;
		char		typalign;

		get_typlenbyvalalign(ARR_ELEMTYPE(array), &typlen, &typbyval, &typalign);
		deconstruct_array(array, ARR_ELEMTYPE(array), typlen, typbyval, typalign,
						  &elems, &nulls, &nelems);
	}
	else
	{
		elems = &value;
		nulls = NULL;
		nelems = 1;
	}

	if (is_int)
		set->ints = palloc(sizeof(int64) * Max(nelems, 1));
	else
		set->strs = palloc(sizeof(char *) * Max(nelems, 1));
	set->nvalues = 0;
	for (int i = 0; i < nelems; i++)
	{
		if (nulls && nulls[i])
			continue;			/* = NULL is never true */
		if (is_int && value_type == NUMERICOID)
		{
			/* 1001.0 names key 1001; 1001.5 names none */
			if (key_from_numeric(elems[i], &set->ints[set->nvalues]))
				set->nvalues++;
		}
		else if (is_int)
			set->ints[set->nvalues++] = DatumGetInt64(elems[i]);
		else
			set->strs[set->nvalues++] = datum_to_utf8(elems[i]);
	}
	if (is_int)
		set->nvalues = unique_int64(set->ints, set->nvalues);
	else
		set->nvalues = unique_cstring(set->strs, set->nvalues);
}

/* Narrow the time range by one comparison with a timestamptz value. */
static void
narrow_time_range(OprecFilters *filters, OprecCondOp op, TimestampTz ts)
{
	int64		lower = PG_INT64_MIN;
	int64		upper = PG_INT64_MAX;
	bool		set_lower = false;
	bool		set_upper = false;

	/*
	 * Records carry whole milliseconds; turn each bound into an inclusive
	 * millisecond.  An infinite bound either restricts nothing or excludes
	 * everything.
	 */
	if (TIMESTAMP_IS_NOBEGIN(ts))
	{
		if (op == OPREC_COND_LT || op == OPREC_COND_LE || op == OPREC_COND_EQ)
			filters->empty = true;
		return;
	}
	if (TIMESTAMP_IS_NOEND(ts))
	{
		if (op == OPREC_COND_GT || op == OPREC_COND_GE || op == OPREC_COND_EQ)
			filters->empty = true;
		return;
	}

	switch (op)
	{
		case OPREC_COND_GE:
			lower = oprec_timestamptz_to_ms_ceil(ts);
			set_lower = true;
			break;
		case OPREC_COND_GT:
			lower = oprec_timestamptz_to_ms_floor(ts) + 1;
			set_lower = true;
			break;
		case OPREC_COND_LE:
			upper = oprec_timestamptz_to_ms_floor(ts);
			set_upper = true;
			break;
		case OPREC_COND_LT:
			upper = oprec_timestamptz_to_ms_ceil(ts) - 1;
			set_upper = true;
			break;
		case OPREC_COND_EQ:
			lower = oprec_timestamptz_to_ms_ceil(ts);
			upper = oprec_timestamptz_to_ms_floor(ts);
			set_lower = set_upper = true;
			break;
		case OPREC_COND_ANY:
			/* evaluate_time_array turns = ANY into the range of its values */
			elog(ERROR, "oprec_fdw: unexpected = ANY on a time column");
			break;
	}
	if (set_lower && (!filters->has_lower || lower > filters->lower_ms))
	{
		filters->has_lower = true;
		filters->lower_ms = lower;
	}
	if (set_upper && (!filters->has_upper || upper < filters->upper_ms))
	{
		filters->has_upper = true;
		filters->upper_ms = upper;
	}
}

/*
 * time = ANY (array): only the span from the earliest to the latest value
 * can be asked for; the condition itself is checked on each row.  An
 * array of NULLs only, or an empty one, matches nothing.
 */
static void
narrow_time_range_to_array(OprecFilters *filters, Datum value)
{
	ArrayType  *array = DatumGetArrayTypeP(value);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	bool		any = false;
	TimestampTz earliest = 0;
	TimestampTz latest = 0;

	deconstruct_array(array, TIMESTAMPTZOID, sizeof(TimestampTz), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &elems, &nulls, &nelems);
	for (int i = 0; i < nelems; i++)
	{
		TimestampTz ts;

		if (nulls[i])
			continue;
		ts = DatumGetTimestampTz(elems[i]);
		if (!any || ts < earliest)
			earliest = ts;
		if (!any || ts > latest)
			latest = ts;
		any = true;
	}
	if (!any)
	{
		filters->empty = true;
		return;
	}
	narrow_time_range(filters, OPREC_COND_GE, earliest);
	narrow_time_range(filters, OPREC_COND_LE, latest);
}

/*
 * Evaluate the pushed right-hand sides in the scan's expression context and
 * merge them into filters, allocated in the current memory context.
 */
OprecFilters *
oprec_evaluate_filters(const OprecApi *api, List *fdw_private, List *expr_states,
					   ExprContext *econtext)
{
	OprecFilters *filters = palloc0(sizeof(OprecFilters));
	List	   *columns = (List *) list_nth(fdw_private, PRIVATE_COLUMNS);
	List	   *ops = (List *) list_nth(fdw_private, PRIVATE_OPS);
	ListCell   *lc_col,
			   *lc_op,
			   *lc_state;

	filters->columns = palloc0(sizeof(OprecColumnFilter) * api->ncolumns);

	forthree(lc_col, columns, lc_op, ops, lc_state, expr_states)
	{
		int			column = lfirst_int(lc_col);
		OprecCondOp op = (OprecCondOp) lfirst_int(lc_op);
		ExprState  *state = (ExprState *) lfirst(lc_state);
		const OprecColumnDef *def = &api->columns[column];
		bool		isnull;
		Datum		value;

		value = ExecEvalExpr(state, econtext, &isnull);
		if (isnull)
		{
			/* a comparison with NULL, or = ANY(NULL), is never true */
			filters->empty = true;
			continue;
		}

		if (def->push == OPREC_PUSH_TIME && op == OPREC_COND_ANY)
			narrow_time_range_to_array(filters, value);
		else if (def->push == OPREC_PUSH_TIME)
			narrow_time_range(filters, op, DatumGetTimestampTz(value));
		else
		{
			OprecColumnFilter set = {0};
			Oid			value_type = exprType((Node *) state->expr);

			if (op == OPREC_COND_ANY)
				value_type = get_element_type(value_type);
			value_set_from_datum(def, op, value, value_type, &set);
			intersect_filter(&filters->columns[column], &set,
							 def->push == OPREC_PUSH_KEY);
		}
	}

	for (int i = 0; i < api->ncolumns; i++)
		if (filters->columns[i].active && filters->columns[i].nvalues == 0)
			filters->empty = true;
	if (filters->has_lower && filters->has_upper && filters->lower_ms > filters->upper_ms)
		filters->empty = true;
	return filters;
}
