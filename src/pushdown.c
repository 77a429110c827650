/*-------------------------------------------------------------------------
 *
 * pushdown.c
 *		  Which WHERE conditions become request parameters, and what their
 *		  values are when a scan starts.
 *
 * At plan time a condition is pushed when it compares a column the API can
 * filter on with an expression that does not depend on the scanned row and
 * is not volatile: a constant, a parameter, now() - interval '3 days', or
 * an uncorrelated ARRAY(SELECT ...).  A join clause of a parameterized path
 * may also use the columns of the other relations (the outer row's values,
 * which become parameters).  Only the right-hand side is kept for
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

#include <math.h>

#include "access/stratnum.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/ruleutils.h"

#include "oprec_fdw.h"

/*
 * The API column a Var of the scanned relation reads (through its field
 * option, if any), or -1.
 */
static int
api_column_of_var(RelOptInfo *baserel, const OprecPlanState *plan, Var *var)
{
	if (var->varno != baserel->relid || var->varlevelsup != 0 || var->varattno <= 0)
		return -1;
	return plan->columns[var->varattno - 1].api_column;
}

/* What a condition is classified for. */
typedef struct PushContext
{
	PlannerInfo *root;
	RelOptInfo *baserel;
	const OprecPlanState *plan;
	bool		join_clause;	/* other relations' columns are parameters */
} PushContext;

/*
 * True if an expression can be computed once per scan, before its first
 * row: it does not read the scanned row (nor, except in a join clause,
 * any other), and is neither volatile nor a subquery per row.
 */
static bool
is_scan_constant(const PushContext *cxt, Node *expr)
{
	if (contain_volatile_functions(expr) || contain_subplans(expr))
		return false;
	if (!cxt->join_clause)
		return !contain_var_clause(expr);
	return !bms_is_member(cxt->baserel->relid, pull_varnos(cxt->root, expr)) &&
		!contain_agg_clause(expr) && !contain_window_function(expr);
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

/*
 * The type a key is compared in when it is compared with a numeric or a
 * float8 value (1001.0, a driver's bound float), or InvalidOid: the key is
 * cast to that type, and the scan asks for the keys whose cast equals the
 * value (see oprec_keys_from_datums).
 */
static Oid
key_comparison_type(Oid opno)
{
	static const Oid types[] = {NUMERICOID, FLOAT8OID};
	Oid			lefttype,
				righttype,
				unused;

	op_input_types(opno, &lefttype, &righttype);
	for (int i = 0; i < lengthof(types); i++)
		if (lefttype == types[i] && righttype == types[i] &&
			comparison_strategy(opno, types[i], &unused) == BTEqualStrategyNumber)
			return types[i];
	return InvalidOid;
}

/* A comparison clause taken apart: a column against another expression. */
typedef struct ComparisonParts
{
	Var		   *var;			/* the column */
	Expr	   *other;			/* what it is compared with */
	Oid			opno;			/* the operator, the column on its left */
	Oid			collid;
	bool		is_array;		/* col op ANY (array) */
} ComparisonParts;

/*
 * Take a comparison apart: an operator with a Var of the scanned relation
 * on one side (commuted if it is on the right), or col op ANY (array).
 * False if the clause is neither, or its operator has no commutator.
 */
static bool
comparison_parts(const PushContext *cxt, Expr *clause, ComparisonParts *cmp)
{
	memset(cmp, 0, sizeof(ComparisonParts));
	if (IsA(clause, OpExpr))
	{
		OpExpr	   *opexpr = (OpExpr *) clause;
		Node	   *left,
				   *right;

		if (list_length(opexpr->args) != 2)
			return false;
		left = strip_implicit_coercions(linitial(opexpr->args));
		right = strip_implicit_coercions(lsecond(opexpr->args));
		if (IsA(left, Var) && ((Var *) left)->varno == cxt->baserel->relid)
		{
			cmp->var = (Var *) left;
			cmp->other = lsecond(opexpr->args);
			cmp->opno = opexpr->opno;
		}
		else if (IsA(right, Var) && ((Var *) right)->varno == cxt->baserel->relid)
		{
			cmp->var = (Var *) right;
			cmp->other = linitial(opexpr->args);
			cmp->opno = get_commutator(opexpr->opno);
		}
		cmp->collid = opexpr->inputcollid;
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
		cmp->var = (Var *) left;
		cmp->other = lsecond(saop->args);
		cmp->opno = saop->opno;
		cmp->collid = saop->inputcollid;
		cmp->is_array = true;
	}
	return cmp->var != NULL && OidIsValid(cmp->opno);
}

/*
 * The btree strategy a comparison on a column is pushed with, and the type
 * its value is compared in; 0 if it cannot be pushed.  A key compared with
 * a numeric or float8 value is an equality in that type.
 */
static int
pushable_strategy(const OprecColumnDef *def, const ComparisonParts *cmp, Oid *value_type)
{
	Oid			righttype;
	int			strategy = comparison_strategy(cmp->opno, def->push_type, &righttype);

	*value_type = def->push_type;
	if (strategy == 0 && def->push == OPREC_PUSH_KEY &&
		OidIsValid(key_comparison_type(cmp->opno)))
	{
		strategy = BTEqualStrategyNumber;
		*value_type = key_comparison_type(cmp->opno);
	}
	if (strategy == 0)
		return 0;
	/* bounds: on the time, or on an integer key (a range of ids, see below) */
	if (strategy != BTEqualStrategyNumber &&
		(def->push != OPREC_PUSH_TIME &&
		 (def->push != OPREC_PUSH_KEY || *value_type != def->push_type ||
		  def->push_type != INT8OID)))
		return 0;
	if (cmp->is_array && (strategy != BTEqualStrategyNumber || def->push == OPREC_PUSH_SCOPE))
		return 0;
	return strategy;
}

/*
 * Whether one comparison can be pushed down: a column the API filters on
 * against a value known before the scan.  Fills in the API column, the
 * operator and the value expression, in the column's type (or its array),
 * or numeric (or numeric[]) for a key compared in numeric: the scan keeps
 * its integral values (see key_from_numeric).
 */
static bool
pushable_comparison(const PushContext *cxt, Expr *clause, int *column_out,
					OprecCondOp *op_out, Expr **value_out)
{
	const OprecApi *api = cxt->plan->options->api;
	ComparisonParts cmp;
	Expr	   *other;
	int			column;
	const OprecColumnDef *def;
	int			strategy;
	Oid			value_type;

	if (!comparison_parts(cxt, clause, &cmp))
		return false;
	column = api_column_of_var(cxt->baserel, cxt->plan, cmp.var);
	if (column < 0)
		return false;
	def = &api->columns[column];
	if (def->push == OPREC_PUSH_NONE || cmp.var->vartype != def->push_type)
		return false;
	if (!is_scan_constant(cxt, (Node *) cmp.other) || !collation_is_pushable(cmp.collid))
		return false;
	strategy = pushable_strategy(def, &cmp, &value_type);
	if (strategy == 0)
		return false;

	other = cmp.other;
	if (cmp.is_array)
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
pushable_or_of_equalities(const PushContext *cxt, BoolExpr *or_clause, int *column_out)
{
	const OprecApi *api = cxt->plan->options->api;
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

		if (!pushable_comparison(cxt, lfirst(lc), &arm_column, &arm_op, &value) ||
			arm_op != OPREC_COND_EQ || (column >= 0 && arm_column != column) ||
			api->columns[arm_column].push == OPREC_PUSH_SCOPE ||
			api->columns[arm_column].push == OPREC_PUSH_TIME)
			return NULL;
		column = arm_column;
		/* a key compared in numeric in any arm is compared so in all */
		if (exprType((Node *) value) == NUMERICOID)
			element_type = NUMERICOID;
		else if (exprType((Node *) value) == FLOAT8OID && element_type != NUMERICOID)
			element_type = FLOAT8OID;
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
 * Decide whether one clause can be pushed down; if so, add it to the
 * plan state.  Returns whether it was.
 */
static bool
classify_clause(const PushContext *cxt, OprecPlanState *plan, Expr *clause)
{
	const OprecApi *api = plan->options->api;
	int			column;
	OprecCondOp op;
	Expr	   *value;

	if (is_orclause(clause))
	{
		value = pushable_or_of_equalities(cxt, (BoolExpr *) clause, &column);
		op = OPREC_COND_ANY;
		if (value == NULL)
			return false;
	}
	else if (!pushable_comparison(cxt, clause, &column, &op, &value))
		return false;

	plan->pushed_columns = lappend_int(plan->pushed_columns, column);
	plan->pushed_ops = lappend_int(plan->pushed_ops, op);
	plan->pushed_exprs = lappend(plan->pushed_exprs, value);
	plan->pushed_clauses = lappend(plan->pushed_clauses, clause);
	if (api->columns[column].push == OPREC_PUSH_KEY)
	{
		if (op == OPREC_COND_EQ || op == OPREC_COND_ANY)
			plan->has_key_list = true;
		else if (op == OPREC_COND_GE || op == OPREC_COND_GT)
			plan->has_key_lower = true;
		else
			plan->has_key_upper = true;
	}
	return true;
}

void
oprec_classify_conditions(PlannerInfo *root, RelOptInfo *baserel, OprecPlanState *plan)
{
	PushContext cxt = {root, baserel, plan, false};
	ListCell   *lc;

	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		classify_clause(&cxt, plan, rinfo->clause);
	}
	plan->own_conditions = list_length(plan->pushed_clauses);
}

/*
 * Push the join clauses of a parameterized path (those not among the
 * restrictions already classified) into plan, a copy of the relation's
 * plan state.
 */
void
oprec_classify_join_clauses(PlannerInfo *root, RelOptInfo *baserel, OprecPlanState *plan,
							List *clauses)
{
	PushContext cxt = {root, baserel, plan, true};
	ListCell   *lc;

	foreach(lc, clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (!list_member_ptr(baserel->baserestrictinfo, rinfo))
			classify_clause(&cxt, plan, rinfo->clause);
	}
}

/*
 * Whether a join clause would push a list of keys when the other
 * relations' columns are parameters: the clause of a parameterized path.
 * On success, *value is the expression of those columns it compares the
 * key with.
 */
bool
oprec_is_key_join_clause(PlannerInfo *root, RelOptInfo *baserel, const OprecPlanState *plan,
						 RestrictInfo *rinfo, Expr **value)
{
	PushContext cxt = {root, baserel, plan, true};
	int			column;
	OprecCondOp op;

	if (!pushable_comparison(&cxt, rinfo->clause, &column, &op, value))
		return false;
	return column == plan->options->api->key_column && op == OPREC_COND_EQ;
}

/*
 * The plan's fdw_private entries that describe the pushed conditions:
 * their columns and operators, and where each condition stands in the
 * plan's quals (every pushed condition is checked locally too), so that
 * EXPLAIN shows it from the plan as PostgreSQL finished it.  quals are the
 * clauses given to the plan, in order.
 */
List *
oprec_pushdown_private(OprecPlanState *plan, List *quals)
{
	List	   *positions = NIL;
	ListCell   *lc;

	foreach(lc, plan->pushed_clauses)
	{
		int			position = -1;
		ListCell   *lq;

		foreach(lq, quals)
			if (lfirst(lq) == lfirst(lc))
				position = foreach_current_index(lq);
		positions = lappend_int(positions, position);
	}
	return list_make4(plan->pushed_columns, plan->pushed_ops, positions,
					  makeInteger(plan->own_conditions));
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
	return (List *) list_nth(fdw_private, OPREC_PRIVATE_COLUMNS);
}

/*
 * The pushed conditions as written, for EXPLAIN: each deparsed from the
 * plan's quals in dpcontext, which must know the plan and its ancestors
 * (a Param of an initplan or of a nested loop's outer row is shown as
 * what it stands for).  Conditions of a join name every column with its
 * relation.
 */
List *
oprec_pushed_descriptions(List *fdw_private, List *quals, List *dpcontext)
{
	List	   *positions = (List *) list_nth(fdw_private, OPREC_PRIVATE_QUAL_POSITIONS);
	int			own = intVal(list_nth(fdw_private, OPREC_PRIVATE_OWN_CONDITIONS));
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, positions)
	{
		int			position = lfirst_int(lc);

		if (position < 0 || position >= list_length(quals))
			continue;			/* not in the plan's quals: nothing to show */
		result = lappend(result,
						 deparse_expression(list_nth(quals, position), dpcontext,
											foreach_current_index(lc) >= own, false));
	}
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

/* Sort keys and drop duplicates; returns the new count. */
int
oprec_sort_unique_keys(int64 *values, int n)
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
void
oprec_intersect_filter(OprecColumnFilter *target, const OprecColumnFilter *next, bool is_int)
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
	{
		Datum	   *keys = palloc(sizeof(Datum) * Max(nelems, 1));
		int			nkeys = 0;

		for (int i = 0; i < nelems; i++)
			if (!(nulls && nulls[i]))	/* = NULL is never true */
				keys[nkeys++] = elems[i];
		oprec_keys_from_datums(keys, nkeys, value_type, set);
		return;
	}
	set->strs = palloc(sizeof(char *) * Max(nelems, 1));
	set->nvalues = 0;
	for (int i = 0; i < nelems; i++)
		if (!(nulls && nulls[i]))
			set->strs[set->nvalues++] = datum_to_utf8(elems[i]);
	set->nvalues = unique_cstring(set->strs, set->nvalues);
}

/* A float8 at least this large in magnitude equals several keys cast to it. */
#define FLOAT8_EXACT_INT_LIMIT 9007199254740992.0	/* 2^53 */

/* Past 2^63 no int64 rounds to a float8; below it, at most this many. */
#define MAX_KEYS_PER_FLOAT8 2049

/*
 * The keys whose cast to float8 equals a float8 value, into keys: one key
 * below 2^53; past it, every integer that rounds to the value (those
 * within one unit in the last place of it).
 */
static int
keys_from_float8(double value, int64 keys[MAX_KEYS_PER_FLOAT8])
{
	double		ulp;
	int64		center;
	int			n = 0;

	if (isnan(value) || isinf(value) || value != floor(value) ||
		value < -9223372036854775808.0 || value >= 9223372036854775808.0)
		return 0;				/* names no key */
	if (fabs(value) < FLOAT8_EXACT_INT_LIMIT)
	{
		keys[0] = (int64) value;
		return 1;
	}
	ulp = nextafter(fabs(value), INFINITY) - fabs(value);	/* 2 .. 1024 */
	center = (int64) value;
	for (int64 d = -(int64) ulp; d <= (int64) ulp && n < MAX_KEYS_PER_FLOAT8; d++)
	{
		int64		key;

		if (!pg_add_s64_overflow(center, d, &key) && (double) key == value)
			keys[n++] = key;
	}
	return n;
}

/*
 * The key a text value names: keys kept as text by the API (Feishu's user
 * keys) are decimal digits within int64; any other text names no key.
 */
static bool
key_from_text(Datum value, int64 *key)
{
	char	   *digits = TextDatumGetCString(value);
	size_t		len = strlen(digits);
	uint64		result = 0;

	if (len == 0 || len > 19 || (len > 1 && digits[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++)
	{
		if (digits[i] < '0' || digits[i] > '9')
			return false;
		result = result * 10 + (digits[i] - '0');
	}
	if (result > (uint64) PG_INT64_MAX)
		return false;
	*key = (int64) result;
	return true;
}

/*
 * The set of keys that int8, numeric, float8 or text values name (1001.0
 * names key 1001; 1001.5 names none; a float8 past 2^53 names every key
 * that rounds to it; '1001' names 1001 of a text key), sorted and distinct.
 */
void
oprec_keys_from_datums(Datum *values, int n, Oid value_type, OprecColumnFilter *keys)
{
	int			capacity = Max(n, 1);

	keys->active = true;
	keys->ints = palloc(sizeof(int64) * capacity);
	keys->nvalues = 0;
	for (int i = 0; i < n; i++)
	{
		if (value_type == NUMERICOID)
		{
			if (key_from_numeric(values[i], &keys->ints[keys->nvalues]))
				keys->nvalues++;
		}
		else if (value_type == TEXTOID)
		{
			if (key_from_text(values[i], &keys->ints[keys->nvalues]))
				keys->nvalues++;
		}
		else if (value_type == FLOAT8OID)
		{
			int64		found[MAX_KEYS_PER_FLOAT8];
			int			nfound = keys_from_float8(DatumGetFloat8(values[i]), found);

			if (keys->nvalues + nfound > capacity)
			{
				capacity = Max(capacity * 2, keys->nvalues + nfound);
				keys->ints = repalloc_huge(keys->ints, sizeof(int64) * capacity);
			}
			memcpy(&keys->ints[keys->nvalues], found, sizeof(int64) * nfound);
			keys->nvalues += nfound;
		}
		else
			keys->ints[keys->nvalues++] = DatumGetInt64(values[i]);
	}
	keys->nvalues = oprec_sort_unique_keys(keys->ints, keys->nvalues);
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

/* Narrow the range of keys by one bound. */
static void
narrow_key_range(OprecFilters *filters, OprecCondOp op, int64 value)
{
	switch (op)
	{
		case OPREC_COND_GT:
			if (value == PG_INT64_MAX)
			{
				filters->empty = true;
				return;
			}
			value++;
			/* FALLTHROUGH */
		case OPREC_COND_GE:
			if (!filters->has_key_lower || value > filters->key_lower)
				filters->key_lower = value;
			filters->has_key_lower = true;
			break;
		case OPREC_COND_LT:
			if (value == PG_INT64_MIN)
			{
				filters->empty = true;
				return;
			}
			value--;
			/* FALLTHROUGH */
		case OPREC_COND_LE:
			if (!filters->has_key_upper || value < filters->key_upper)
				filters->key_upper = value;
			filters->has_key_upper = true;
			break;
		default:
			elog(ERROR, "oprec_fdw: unexpected operator %d for a range of keys", (int) op);
	}
}

/*
 * Apply the range of keys: keep the listed keys within it or, without a
 * list, list the keys it spans, up to max_key_range of them (only keys the
 * API can have count).
 */
static void
apply_key_range(const OprecApi *api, OprecFilters *filters, int max_key_range)
{
	OprecColumnFilter *keys = &filters->columns[api->key_column];
	int64		lower = filters->has_key_lower ? Max(filters->key_lower, api->min_key) : api->min_key;
	int64		upper = filters->has_key_upper ? Min(filters->key_upper, api->max_key) : api->max_key;
	int			out = 0;

	if (keys->active)
	{
		for (int i = 0; i < keys->nvalues; i++)
			if (keys->ints[i] >= lower && keys->ints[i] <= upper)
				keys->ints[out++] = keys->ints[i];
		keys->nvalues = out;
		return;
	}
	if (!filters->has_key_lower || !filters->has_key_upper)
		return;					/* not a key condition: refused before */
	keys->active = true;
	keys->nvalues = 0;
	if (lower > upper)
		return;
	if ((uint64) upper - (uint64) lower >= (uint64) max_key_range)
	{
		const char *key = api->columns[api->key_column].name;

		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
				 errmsg("the range of %s from " INT64_FORMAT " to " INT64_FORMAT " spans more than %d ids, the most a range may ask for: list the ids instead, or narrow the range",
						key, lower, upper, max_key_range),
				 errdetail("The %s API is asked for listed %s values only, so a range is sent as the ids it spans; the server option max_id_range sets how many it may span.",
						   api->title, key)));
	}
	keys->nvalues = (int) (upper - lower + 1);
	keys->ints = palloc(sizeof(int64) * keys->nvalues);
	for (int i = 0; i < keys->nvalues; i++)
		keys->ints[i] = lower + i;
}

/*
 * Evaluate the pushed right-hand sides in the scan's expression context and
 * merge them into filters, allocated in the current memory context, with
 * extra_keys (a batched join's), if given.
 */
OprecFilters *
oprec_evaluate_filters(const OprecApi *api, List *fdw_private, List *expr_states,
					   ExprContext *econtext, int max_key_range,
					   const OprecColumnFilter *extra_keys)
{
	OprecFilters *filters = palloc0(sizeof(OprecFilters));
	List	   *columns = (List *) list_nth(fdw_private, OPREC_PRIVATE_COLUMNS);
	List	   *ops = (List *) list_nth(fdw_private, OPREC_PRIVATE_OPS);
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
		else if (op != OPREC_COND_EQ && op != OPREC_COND_ANY)
			narrow_key_range(filters, op, DatumGetInt64(value));
		else
		{
			OprecColumnFilter set = {0};
			Oid			value_type = exprType((Node *) state->expr);

			if (op == OPREC_COND_ANY)
				value_type = get_element_type(value_type);
			value_set_from_datum(def, op, value, value_type, &set);
			oprec_intersect_filter(&filters->columns[column], &set,
								   def->push == OPREC_PUSH_KEY);
		}
	}
	if (extra_keys)
	{
		/* a copy: intersecting works in place */
		OprecColumnFilter copy = *extra_keys;

		copy.ints = palloc(sizeof(int64) * Max(copy.nvalues, 1));
		memcpy(copy.ints, extra_keys->ints, sizeof(int64) * copy.nvalues);
		oprec_intersect_filter(&filters->columns[api->key_column], &copy, true);
	}
	if (!filters->empty && (filters->has_key_lower || filters->has_key_upper))
		apply_key_range(api, filters, max_key_range);

	for (int i = 0; i < api->ncolumns; i++)
		if (filters->columns[i].active && filters->columns[i].nvalues == 0)
			filters->empty = true;
	if (filters->has_lower && filters->has_upper && filters->lower_ms > filters->upper_ms)
		filters->empty = true;
	return filters;
}

/*
 * Whether the pushed conditions name the keys to ask for: a list, or a
 * range with both ends.
 */
bool
oprec_pushed_key_condition(const OprecApi *api, List *fdw_private)
{
	List	   *columns = (List *) list_nth(fdw_private, OPREC_PRIVATE_COLUMNS);
	List	   *ops = (List *) list_nth(fdw_private, OPREC_PRIVATE_OPS);
	bool		lower = false,
				upper = false;
	ListCell   *lc_col,
			   *lc_op;

	forboth(lc_col, columns, lc_op, ops)
	{
		OprecCondOp op = (OprecCondOp) lfirst_int(lc_op);

		if (lfirst_int(lc_col) != api->key_column)
			continue;
		if (op == OPREC_COND_EQ || op == OPREC_COND_ANY)
			return true;
		if (op == OPREC_COND_GE || op == OPREC_COND_GT)
			lower = true;
		else
			upper = true;
	}
	return lower && upper;
}

/* Whether a pushed condition gives the time range a lower end. */
bool
oprec_pushed_time_lower(const OprecApi *api, List *fdw_private)
{
	List	   *columns = (List *) list_nth(fdw_private, OPREC_PRIVATE_COLUMNS);
	List	   *ops = (List *) list_nth(fdw_private, OPREC_PRIVATE_OPS);
	ListCell   *lc_col,
			   *lc_op;

	forboth(lc_col, columns, lc_op, ops)
	{
		OprecCondOp op = (OprecCondOp) lfirst_int(lc_op);

		if (lfirst_int(lc_col) == api->time_column &&
			(op == OPREC_COND_EQ || op == OPREC_COND_ANY ||
			 op == OPREC_COND_GE || op == OPREC_COND_GT))
			return true;
	}
	return false;
}

/* Whether a pushed condition is a bound on the key. */
bool
oprec_pushed_key_range(const OprecApi *api, List *fdw_private)
{
	List	   *columns = (List *) list_nth(fdw_private, OPREC_PRIVATE_COLUMNS);
	List	   *ops = (List *) list_nth(fdw_private, OPREC_PRIVATE_OPS);
	ListCell   *lc_col,
			   *lc_op;

	forboth(lc_col, columns, lc_op, ops)
	{
		OprecCondOp op = (OprecCondOp) lfirst_int(lc_op);

		if (lfirst_int(lc_col) == api->key_column &&
			op != OPREC_COND_EQ && op != OPREC_COND_ANY)
			return true;
	}
	return false;
}
