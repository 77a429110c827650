/*-------------------------------------------------------------------------
 *
 * join.c
 *		  Joins of a foreign table with other relations on its key column:
 *		  parameterized paths, and batched paths that read the keys of a
 *		  local table when the scan starts.
 *
 * A join clause key = <expression of other relations> gives two kinds of
 * path, and the planner chooses by cost:
 *
 * - A parameterized path: in a nested loop, each outer row's value is sent
 *   as the key (a LATERAL subquery or a semi-join plans the same way).
 *   Memoize can keep the rows of repeated values.
 *
 * - A batched path, when the other side reads one plain local table: the
 *   scan first reads that table's values (with the table's own conditions)
 *   and asks for all of them at once, as key = ANY (ARRAY(SELECT ...))
 *   would, in batches of as many keys as a request takes.  The path is not
 *   parameterized: the join above it still applies the clause, so the extra
 *   rows of keys that other joins or conditions drop never reach the
 *   result.  This is sound only where the clause may restrict this table
 *   (join_clause_is_movable_to): never for the preserved side of an outer
 *   join.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "oprec_fdw.h"

/* Whether an equivalence class member is a column mapped to the key. */
static bool
key_member_matches(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
				   EquivalenceMember *em, void *arg)
{
	const OprecPlanState *plan = arg;
	Var		   *var = (Var *) strip_implicit_coercions((Node *) em->em_expr);

	if (!IsA(var, Var) || var->varno != rel->relid || var->varlevelsup != 0 ||
		var->varattno <= 0)
		return false;
	return plan->columns[var->varattno - 1].api_column == plan->options->resource->key_column;
}

/*
 * Join clauses that can push the key from other relations' columns: the
 * relation's own movable join clauses and those implied by equivalence
 * classes.  Their values are returned alongside, in values.
 */
static List *
key_join_clauses(PlannerInfo *root, RelOptInfo *baserel, const OprecPlanState *plan,
				 List **values)
{
	List	   *clauses = NIL;
	List	   *candidates = NIL;
	ListCell   *lc;

	*values = NIL;
	foreach(lc, baserel->joininfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (join_clause_is_movable_to(rinfo, baserel))
			candidates = lappend(candidates, rinfo);
	}
	if (baserel->has_eclass_joins)
		candidates = list_concat(candidates,
								 generate_implied_equalities_for_column(root, baserel,
																		key_member_matches,
																		(void *) plan,
																		baserel->lateral_referencers));
	foreach(lc, candidates)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		Expr	   *value;

		if (oprec_is_key_join_clause(root, baserel, plan, rinfo, &value))
		{
			clauses = lappend(clauses, rinfo);
			*values = lappend(*values, value);
		}
	}
	return clauses;
}

/*
 * The conditions of a local table the scan can apply itself when it reads
 * the table's keys: those computed from the row alone.  Leaving one out
 * only reads more keys.
 */
static List *
local_table_quals(RelOptInfo *rel)
{
	List	   *quals = NIL;
	ListCell   *lc;

	foreach(lc, rel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (rinfo->pseudoconstant ||
			contain_volatile_functions((Node *) rinfo->clause) ||
			contain_subplans((Node *) rinfo->clause) ||
			oprec_contains_exec_param((Node *) rinfo->clause))
			continue;
		quals = lappend(quals, rinfo->clause);
	}
	return quals;
}

/*
 * The plain local table a key expression reads, or NULL: one heap table
 * (or materialized view) without inheritance and without row-level
 * security, whose columns alone make the value.
 */
static RelOptInfo *
key_source_table(PlannerInfo *root, RelOptInfo *baserel, Expr *value)
{
	Relids		relids = pull_varnos(root, (Node *) value);
	int			relid;
	RangeTblEntry *rte;
	RelOptInfo *rel;
	ListCell   *lc;

	if (bms_membership(relids) != BMS_SINGLETON)
		return NULL;
	relid = bms_singleton_member(relids);
	if (relid == baserel->relid || relid >= root->simple_rel_array_size)
		return NULL;
	rel = root->simple_rel_array[relid];
	rte = root->simple_rte_array[relid];
	if (rel == NULL || rel->reloptkind != RELOPT_BASEREL || rte->rtekind != RTE_RELATION ||
		rte->inh || rte->tablesample != NULL ||
		(rte->relkind != RELKIND_RELATION && rte->relkind != RELKIND_MATVIEW))
		return NULL;
	if (contain_volatile_functions((Node *) value) ||
		oprec_contains_exec_param((Node *) value))
		return NULL;
	/* its Vars must be plain columns of this table (no placeholders) */
	foreach(lc, pull_var_clause((Node *) value, PVC_INCLUDE_PLACEHOLDERS))
	{
		Var		   *var = lfirst(lc);

		if (!IsA(var, Var) || var->varlevelsup != 0 || var->varattno <= 0)
			return NULL;
	}
	/* the table's rows a user may see depend on policies: not read here */
	foreach(lc, rel->baserestrictinfo)
		if (lfirst_node(RestrictInfo, lc)->security_level > 0)
			return NULL;
	return rel;
}

/*
 * Add the parameterized and batched paths of the relation's key join
 * clauses.
 */
void
oprec_add_join_paths(PlannerInfo *root, RelOptInfo *baserel, OprecPlanState *plan)
{
	List	   *values;
	List	   *clauses = key_join_clauses(root, baserel, plan, &values);
	List	   *param_infos = NIL;
	RelOptInfo *best_source = NULL;
	Expr	   *best_value = NULL;
	ListCell   *lc_clause,
			   *lc_value,
			   *lc;

	forboth(lc_clause, clauses, lc_value, values)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc_clause);
		Expr	   *value = lfirst(lc_value);
		Relids		required_outer;
		RelOptInfo *source;

		required_outer = bms_union(rinfo->clause_relids, baserel->lateral_relids);
		required_outer = bms_del_member(required_outer, baserel->relid);
		if (bms_is_empty(required_outer))
			continue;
		param_infos = list_append_unique_ptr(param_infos,
											 get_baserel_parampathinfo(root, baserel,
																	   required_outer));

		source = key_source_table(root, baserel, value);
		if (source && (best_source == NULL || source->rows < best_source->rows))
		{
			best_source = source;
			best_value = value;
		}
	}

	/* one path per set of outer relations: one key per outer row */
	foreach(lc, param_infos)
	{
		ParamPathInfo *param_info = lfirst(lc);
		double		rows;
		Cost		startup_cost,
					total_cost;

		oprec_estimate_cost(plan, 1, 0, &rows, &startup_cost, &total_cost);
		oprec_add_path(root, baserel, rows, startup_cost, total_cost,
					   param_info->ppi_req_outer, NIL);
	}

	/* one batched path, over the smallest local table */
	if (best_source)
	{
		double		keys = Max(best_source->rows, 1);
		Cost		read_keys = best_source->pages * seq_page_cost +
			best_source->tuples * cpu_tuple_cost;
		double		rows;
		Cost		startup_cost,
					total_cost;
		OprecScanPlan source;
		QualCost	qual_cost;

		oprec_scan_plan_init(&source);
		source.key_source_value = best_value;
		source.key_source_quals = local_table_quals(best_source);
		cost_qual_eval_node(&qual_cost, (Node *) source.key_source_quals, root);
		read_keys += qual_cost.startup + best_source->tuples * qual_cost.per_tuple;
		if (plan->has_key_list)
			keys = Min(keys, plan->keys_estimate);
		oprec_estimate_cost(plan, keys, read_keys, &rows, &startup_cost, &total_cost);

		oprec_add_path(root, baserel, rows, startup_cost, total_cost,
					   baserel->lateral_relids, oprec_scan_plan_write(&source));
	}
}

/*
 * Move the key source of a batched path's plan into fdw_exprs, where
 * PostgreSQL fixes its Vars as it finishes the plan: its value, then its
 * quals, and key_source says where they stand.
 */
void
oprec_key_source_to_exprs(OprecScanPlan *plan, List **fdw_exprs)
{
	if (plan->key_source_value == NULL)
		return;
	plan->key_source = list_length(*fdw_exprs);
	*fdw_exprs = lappend(*fdw_exprs, plan->key_source_value);
	*fdw_exprs = lappend(*fdw_exprs, plan->key_source_quals);
	plan->key_source_value = NULL;
	plan->key_source_quals = NIL;
}

/* The first Var of an expression, to learn its range table index. */
static bool
first_var(Node *node, Var **var)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		*var = (Var *) node;
		return true;
	}
	return expression_tree_walker(node, first_var, var);
}

/*
 * How a plan's key source appears in EXPLAIN: "m.id, from the rows of
 * table my_items that meet its conditions", the value deparsed from the
 * finished plan in dpcontext.
 */
char *
oprec_key_source_description(List *fdw_exprs, int position, EState *estate, List *dpcontext)
{
	Node	   *value = list_nth(fdw_exprs, position);
	Var		   *var = NULL;

	(void) first_var(value, &var);
	Assert(var != NULL);
	return psprintf("%s, from the rows of table %s that meet its conditions",
					deparse_expression(value, dpcontext, true, false),
					get_rel_name(exec_rt_fetch(var->varno, estate)->relid));
}

/* Prepare to read the keys of a plan's local table (at executor start). */
OprecKeySource *
oprec_key_source_begin(EState *estate, Expr *value, List *quals)
{
	OprecKeySource *source = palloc0(sizeof(OprecKeySource));
	Var		   *var = NULL;

	(void) first_var((Node *) value, &var);
	Assert(var != NULL);
	source->relid = exec_rt_fetch(var->varno, estate)->relid;
	source->value_type = exprType((Node *) value);
	get_typlenbyval(source->value_type, &source->value_len, &source->value_byval);
	/* no parent: the row comes from a slot of the table, not of the plan */
	source->value = ExecInitExpr(value, NULL);
	source->quals = ExecInitQual(quals, NULL);
	source->econtext = CreateExprContext(estate);
	source->snapshot = estate->es_snapshot;
	return source;
}

/*
 * Read the keys of the local table's rows that meet its conditions into
 * keys, in the current memory context: sorted and distinct.
 */
void
oprec_key_source_read(OprecKeySource *source, OprecColumnFilter *keys)
{
	Relation	rel = table_open(source->relid, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	TableScanDesc scan = table_beginscan(rel, source->snapshot, 0, NULL);
	ExprContext *econtext = source->econtext;
	int			capacity = 64;
	Datum	   *values = palloc(sizeof(Datum) * capacity);
	int			n = 0;

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		Datum		value;
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		ResetExprContext(econtext);
		econtext->ecxt_scantuple = slot;
		if (!ExecQual(source->quals, econtext))
			continue;
		value = ExecEvalExprSwitchContext(source->value, econtext, &isnull);
		if (isnull)
			continue;			/* = NULL never holds */
		if (n == capacity)
		{
			capacity *= 2;
			values = repalloc_huge(values, sizeof(Datum) * capacity);
		}
		/* numeric keys are copied out of the per-row memory */
		values[n++] = datumCopy(value, source->value_byval, source->value_len);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
	ResetExprContext(econtext);

	oprec_keys_from_datums(values, n, source->value_type, keys);
}
