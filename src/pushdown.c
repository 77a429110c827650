/*-------------------------------------------------------------------------
 *
 * pushdown.c
 *		  Which WHERE conditions become request parameters, and how a
 *		  pushed condition is shown.
 *
 * At plan time a condition is pushed when it compares a column the API can
 * filter on with an expression that does not depend on the scanned row and
 * is not volatile: a constant, a parameter, now() - interval '3 days', or
 * an uncorrelated ARRAY(SELECT ...).  A join clause of a parameterized path
 * may also use the columns of the other relations (the outer row's values,
 * which become parameters).  Only the right-hand side is kept for
 * execution; the condition itself always stays in the plan's local quals,
 * so a difference in how an API reads a filter can never return a row the
 * query excludes.  Their values are known when the scan starts (filters.c).
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
	const OprecResource *res = cxt->plan->options->resource;
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
	def = &res->columns[column];
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
	const OprecResource *res = cxt->plan->options->resource;
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
			res->columns[arm_column].push == OPREC_PUSH_SCOPE ||
			res->columns[arm_column].push == OPREC_PUSH_TIME)
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
		element_type = res->columns[column].push_type;
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
	const OprecResource *res = plan->options->resource;
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
	if (res->columns[column].push == OPREC_PUSH_TIME &&
		op != OPREC_COND_LT && op != OPREC_COND_LE)
		plan->has_time_lower = true;
	if (res->columns[column].push == OPREC_PUSH_KEY)
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
	return column == plan->options->resource->key_column && op == OPREC_COND_EQ;
}

/*
 * Write the pushed conditions into a scan's plan: their columns and
 * operators, what follows from them, and where each condition stands in
 * the plan's quals (every pushed condition is checked locally too), so
 * that EXPLAIN shows it from the plan as PostgreSQL finished it.  quals
 * are the clauses given to the plan, in order.
 */
void
oprec_pushdown_plan(const OprecPlanState *plan, List *quals, OprecScanPlan *scan_plan)
{
	ListCell   *lc;

	scan_plan->pushed_columns = plan->pushed_columns;
	scan_plan->pushed_ops = plan->pushed_ops;
	scan_plan->own_conditions = plan->own_conditions;
	scan_plan->names_keys = plan->has_key_list || (plan->has_key_lower && plan->has_key_upper);
	scan_plan->has_key_range = plan->has_key_lower || plan->has_key_upper;
	scan_plan->has_time_lower = plan->has_time_lower;
	scan_plan->qual_positions = NIL;
	foreach(lc, plan->pushed_clauses)
	{
		int			position = -1;
		ListCell   *lq;

		foreach(lq, quals)
			if (lfirst(lq) == lfirst(lc))
				position = foreach_current_index(lq);
		scan_plan->qual_positions = lappend_int(scan_plan->qual_positions, position);
	}
}

/*
 * The pushed conditions as written, for EXPLAIN: each deparsed from the
 * plan's quals in dpcontext, which must know the plan and its ancestors
 * (a Param of an initplan or of a nested loop's outer row is shown as
 * what it stands for).  Conditions of a join name every column with its
 * relation.
 */
List *
oprec_pushed_descriptions(const OprecScanPlan *plan, List *quals, List *dpcontext)
{
	int			own = plan->own_conditions;
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, plan->qual_positions)
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
 * Whether an expression holds a value of another plan node (a PARAM_EXEC:
 * an initplan such as ARRAY(SELECT ...), or a value from an outer row),
 * which can only be known by running part of the plan.
 */
bool
oprec_contains_exec_param(Node *node)
{
	return contains_exec_param_walker(node, NULL);
}
