/*-------------------------------------------------------------------------
 *
 * filters.c
 *		  The values of the pushed conditions when a scan starts.
 *
 * The right-hand sides the planner pushed (pushdown.c) are evaluated in the
 * scan's expression context and merged per column: equality and IN lists
 * are intersected, time and key bounds narrowed, and a contradiction (or a
 * NULL) marks the scan empty so that no request is made.  A bounded range
 * of integer keys becomes the list of its keys.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "nodes/nodeFuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "oprec_fdw.h"

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
static void
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
apply_key_range(const OprecResource *res, OprecFilters *filters, int max_key_range)
{
	OprecColumnFilter *keys = &filters->columns[res->key_column];
	int64		lower = filters->has_key_lower ? Max(filters->key_lower, res->min_key) : res->min_key;
	int64		upper = filters->has_key_upper ? Min(filters->key_upper, oprec_max_key(res))
		: oprec_max_key(res);
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
		const char *key = res->columns[res->key_column].name;

		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
				 errmsg("the range of %s from " INT64_FORMAT " to " INT64_FORMAT " spans more than %d ids, the most a range may ask for: list the ids instead, or narrow the range",
						key, lower, upper, max_key_range),
				 errdetail("The %s API is asked for listed %s values only, so a range is sent as the ids it spans; the server option max_id_range sets how many it may span.",
						   res->service->title, key)));
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
oprec_evaluate_filters(const OprecResource *res, const OprecScanPlan *plan,
					   List *expr_states, ExprContext *econtext, int max_key_range,
					   const OprecColumnFilter *extra_keys)
{
	OprecFilters *filters = palloc0(sizeof(OprecFilters));
	List	   *columns = plan->pushed_columns;
	List	   *ops = plan->pushed_ops;
	ListCell   *lc_col,
			   *lc_op,
			   *lc_state;

	filters->columns = palloc0(sizeof(OprecColumnFilter) * res->ncolumns);

	forthree(lc_col, columns, lc_op, ops, lc_state, expr_states)
	{
		int			column = lfirst_int(lc_col);
		OprecCondOp op = (OprecCondOp) lfirst_int(lc_op);
		ExprState  *state = (ExprState *) lfirst(lc_state);
		const OprecColumnDef *def = &res->columns[column];
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
		oprec_intersect_filter(&filters->columns[res->key_column], &copy, true);
	}
	if (!filters->empty && (filters->has_key_lower || filters->has_key_upper))
		apply_key_range(res, filters, max_key_range);

	for (int i = 0; i < res->ncolumns; i++)
		if (filters->columns[i].active && filters->columns[i].nvalues == 0)
			filters->empty = true;
	if (filters->has_lower && filters->has_upper && filters->lower_ms > filters->upper_ms)
		filters->empty = true;
	return filters;
}
