/*-------------------------------------------------------------------------
 *
 * scan_plan.c
 *		  What the planner hands the executor: an OprecScanPlan, written
 *		  to and read from a ForeignScan's fdw_private.
 *
 * fdw_private must be a List that copyObject can copy, so the plan's
 * fields are written in a fixed order, known to this file alone.  What
 * the planner knew is written rather than worked out again: which
 * conditions were pushed, and the flags that follow from them.  A batched
 * join's path carries its key source here too (join.c); the plan moves
 * its expressions into fdw_exprs, where PostgreSQL fixes their Vars.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/value.h"

#include "oprec_fdw.h"

/* Positions in the fdw_private list. */
enum ScanPlanIndex
{
	SCAN_PLAN_PUSHED_COLUMNS,	/* IntList */
	SCAN_PLAN_PUSHED_OPS,		/* IntList */
	SCAN_PLAN_QUAL_POSITIONS,	/* IntList */
	SCAN_PLAN_OWN_CONDITIONS,	/* Integer */
	SCAN_PLAN_RETRIEVED,		/* IntList */
	SCAN_PLAN_KEY_SOURCE,		/* Integer */
	SCAN_PLAN_KEY_SOURCE_VALUE, /* Expr, or NULL (a path's only) */
	SCAN_PLAN_KEY_SOURCE_QUALS, /* List of Expr (a path's only) */
	SCAN_PLAN_FLAGS,			/* Integer: SCAN_PLAN_* bits below */
	SCAN_PLAN_NUM_FIELDS
};

#define FLAG_PARAMETERIZED	(1 << 0)
#define FLAG_LIMITED		(1 << 1)
#define FLAG_NAMES_KEYS		(1 << 2)
#define FLAG_KEY_RANGE		(1 << 3)
#define FLAG_TIME_LOWER		(1 << 4)

/* A plan that pushes nothing and reads no key source. */
void
oprec_scan_plan_init(OprecScanPlan *plan)
{
	memset(plan, 0, sizeof(OprecScanPlan));
	plan->key_source = -1;
}

List *
oprec_scan_plan_write(const OprecScanPlan *plan)
{
	int			flags = 0;
	List	   *list = NIL;

	if (plan->parameterized)
		flags |= FLAG_PARAMETERIZED;
	if (plan->limited)
		flags |= FLAG_LIMITED;
	if (plan->names_keys)
		flags |= FLAG_NAMES_KEYS;
	if (plan->has_key_range)
		flags |= FLAG_KEY_RANGE;
	if (plan->has_time_lower)
		flags |= FLAG_TIME_LOWER;

	/* in the order of ScanPlanIndex */
	list = lappend(list, plan->pushed_columns);
	list = lappend(list, plan->pushed_ops);
	list = lappend(list, plan->qual_positions);
	list = lappend(list, makeInteger(plan->own_conditions));
	list = lappend(list, plan->retrieved);
	list = lappend(list, makeInteger(plan->key_source));
	list = lappend(list, plan->key_source_value);
	list = lappend(list, plan->key_source_quals);
	list = lappend(list, makeInteger(flags));
	Assert(list_length(list) == SCAN_PLAN_NUM_FIELDS);
	return list;
}

/* Read a plan written by oprec_scan_plan_write; NIL reads as nothing. */
void
oprec_scan_plan_read(List *fdw_private, OprecScanPlan *plan)
{
	int			flags;

	oprec_scan_plan_init(plan);
	if (fdw_private == NIL)
		return;
	Assert(list_length(fdw_private) == SCAN_PLAN_NUM_FIELDS);
	plan->pushed_columns = list_nth(fdw_private, SCAN_PLAN_PUSHED_COLUMNS);
	plan->pushed_ops = list_nth(fdw_private, SCAN_PLAN_PUSHED_OPS);
	plan->qual_positions = list_nth(fdw_private, SCAN_PLAN_QUAL_POSITIONS);
	plan->own_conditions = intVal(list_nth(fdw_private, SCAN_PLAN_OWN_CONDITIONS));
	plan->retrieved = list_nth(fdw_private, SCAN_PLAN_RETRIEVED);
	plan->key_source = intVal(list_nth(fdw_private, SCAN_PLAN_KEY_SOURCE));
	plan->key_source_value = list_nth(fdw_private, SCAN_PLAN_KEY_SOURCE_VALUE);
	plan->key_source_quals = list_nth(fdw_private, SCAN_PLAN_KEY_SOURCE_QUALS);
	flags = intVal(list_nth(fdw_private, SCAN_PLAN_FLAGS));
	plan->parameterized = (flags & FLAG_PARAMETERIZED) != 0;
	plan->limited = (flags & FLAG_LIMITED) != 0;
	plan->names_keys = (flags & FLAG_NAMES_KEYS) != 0;
	plan->has_key_range = (flags & FLAG_KEY_RANGE) != 0;
	plan->has_time_lower = (flags & FLAG_TIME_LOWER) != 0;
}
