/*-------------------------------------------------------------------------
 *
 * jit_choice.c
 *		  PostgreSQL's JIT decision for plans that read oprec tables: taken
 *		  on the plan's own work, without what the requests were charged.
 *
 * The planner compiles a query's expressions when the plan's total cost
 * exceeds jit_above_cost.  A scan here is charged request_cost per request
 * (estimate.c), and a scan without keys disable_cost, so that plans that
 * send fewer requests win; those charges stand for waiting on the network,
 * which compiled expressions do not shorten.  Left as they are, any scan
 * of more than about 100 requests would load the JIT compiler (some 50 MB
 * per backend, and its compile time) for nothing.
 *
 * So before the executor starts, the JIT flags of a plan holding oprec
 * scans are decided again as the planner does, on its total cost less the
 * scans' charges beyond their rows' CPU, times the times each scan runs.
 * The decision can only be taken back or lowered, never raised.  It is
 * taken in ExecutorStart, not in the planner, so that it holds also for
 * the query that loads the library (the first of a new connection when
 * the library is not preloaded).  The plan itself is not changed: the
 * executor gets a copy of its top node with the new flags.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/executor.h"
#include "foreign/foreign.h"
#include "jit/jit.h"
#include "miscadmin.h"
#include "nodes/plannodes.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"

#include "oprec_fdw.h"

static ExecutorStart_hook_type prev_ExecutorStart = NULL;

/* The handler's OID, known once it was called in this backend. */
static Oid	handler_oid = InvalidOid;

void
oprec_jit_note_handler(Oid oid)
{
	handler_oid = oid;
}

/* Whether a plan node is a scan of a table of this wrapper. */
static bool
is_oprec_scan(Plan *plan)
{
	ForeignServer *server;

	if (!IsA(plan, ForeignScan) || !OidIsValid(handler_oid))
		return false;
	server = GetForeignServerExtended(((ForeignScan *) plan)->fs_server, FSV_MISSING_OK);
	return server != NULL &&
		GetForeignDataWrapper(server->fdwid)->fdwhandler == handler_oid;
}

static double charges_of_list(List *plans, double loops);

/*
 * What the oprec scans under plan were charged beyond their rows' CPU,
 * each times the times it is expected to run.
 */
static double
charges_of(Plan *plan, double loops)
{
	double		charges = 0;

	if (plan == NULL)
		return 0;
	check_stack_depth();
	if (is_oprec_scan(plan))
		return loops * Max(plan->total_cost - plan->plan_rows * cpu_tuple_cost, 0);

	switch (nodeTag(plan))
	{
		case T_NestLoop:
			/* the inner side runs once per outer row */
			return charges_of(plan->lefttree, loops) +
				charges_of(plan->righttree, loops * Max(plan->lefttree->plan_rows, 1));
		case T_Append:
			charges = charges_of_list(((Append *) plan)->appendplans, loops);
			break;
		case T_MergeAppend:
			charges = charges_of_list(((MergeAppend *) plan)->mergeplans, loops);
			break;
		case T_SubqueryScan:
			charges = charges_of(((SubqueryScan *) plan)->subplan, loops);
			break;
		case T_CustomScan:
			charges = charges_of_list(((CustomScan *) plan)->custom_plans, loops);
			break;
		default:
			break;
	}
	return charges + charges_of(plan->lefttree, loops) + charges_of(plan->righttree, loops);
}

static double
charges_of_list(List *plans, double loops)
{
	double		charges = 0;
	ListCell   *lc;

	foreach(lc, plans)
		charges += charges_of(lfirst(lc), loops);
	return charges;
}

/*
 * The JIT flags PostgreSQL's planner gives a plan of this cost
 * (standard_planner's rule).
 */
static int
jit_flags_for_cost(double cost)
{
	int			flags = PGJIT_NONE;

	if (jit_enabled && jit_above_cost >= 0 && cost > jit_above_cost)
	{
		flags |= PGJIT_PERFORM;
		if (jit_optimize_above_cost >= 0 && cost > jit_optimize_above_cost)
			flags |= PGJIT_OPT3;
		if (jit_inline_above_cost >= 0 && cost > jit_inline_above_cost)
			flags |= PGJIT_INLINE;
		if (jit_expressions)
			flags |= PGJIT_EXPR;
		if (jit_tuple_deforming)
			flags |= PGJIT_DEFORM;
	}
	return flags;
}

/*
 * The JIT flags of a plan decided without its oprec scans' charges (the
 * initplans and subplans count once: correlated ones may be charged less
 * than they cost, which leaves JIT as the planner decided).
 */
static int
jit_flags_without_charges(PlannedStmt *stmt)
{
	double		charges = charges_of(stmt->planTree, 1);

	charges += charges_of_list(stmt->subplans, 1);
	if (charges <= 0)
		return stmt->jitFlags;
	/* never more than the planner chose */
	return stmt->jitFlags &
		jit_flags_for_cost(Max(stmt->planTree->total_cost - charges, 0));
}

static void
oprec_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	PlannedStmt *stmt = queryDesc->plannedstmt;

	if ((stmt->jitFlags & PGJIT_PERFORM) && OidIsValid(handler_oid))
	{
		int			flags = jit_flags_without_charges(stmt);

		if (flags != stmt->jitFlags)
		{
			/* the plan may be cached: the executor gets a copy */
			PlannedStmt *copy = palloc(sizeof(PlannedStmt));

			memcpy(copy, stmt, sizeof(PlannedStmt));
			copy->jitFlags = flags;
			queryDesc->plannedstmt = copy;
		}
	}
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/* From _PG_init. */
void
oprec_jit_init(void)
{
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = oprec_ExecutorStart;
}
