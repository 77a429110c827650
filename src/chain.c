/*-------------------------------------------------------------------------
 *
 * chain.c
 *		  Turn the filters of a scan into request chains: batches of keys
 *		  crossed with time windows.  Each chain is then fetched page by
 *		  page (scan.c).
 *
 * Time windows are half-open, [start, end), consecutive and never longer
 * than the API allows, so a record exactly on an edge belongs to exactly one
 * window.  A window is asked for with start = its start and end = its end;
 * whether the API reads end as inclusive or exclusive is not documented, so
 * the scan also drops every record outside its chain's window.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"
#include "datatype/timestamp.h"

#include "oprec_fdw.h"

/* Milliseconds between the Unix epoch and the PostgreSQL epoch. */
#define EPOCH_OFFSET_MS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000)

/*
 * Records carry no time after the API's now; allow for clocks that
 * disagree by this much when an upper bound is implied or clamped.
 */
#define CLOCK_SKEW_ALLOWANCE_MS ((int64) 3600 * 1000)

/*
 * When only one bound of the time range is given, the scan may either send
 * windows over the implied range or no time parameters at all.  The second
 * pages through the whole history of a batch of keys; we assume a work item
 * has about this many records when comparing the two.
 */
#define ASSUMED_RECORDS_PER_KEY 50

/* Floor division for a possibly negative dividend. */
static int64
floor_div(int64 a, int64 b)
{
	int64		q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

int64
oprec_timestamptz_to_ms_floor(TimestampTz ts)
{
	return floor_div(ts, 1000) + EPOCH_OFFSET_MS;
}

int64
oprec_timestamptz_to_ms_ceil(TimestampTz ts)
{
	return -floor_div(-ts, 1000) + EPOCH_OFFSET_MS;
}

/* Exact conversion of epoch milliseconds; false if out of range. */
bool
oprec_ms_to_timestamptz(int64 ms, TimestampTz *result)
{
	int64		us;

	if (pg_sub_s64_overflow(ms, EPOCH_OFFSET_MS, &us) ||
		pg_mul_s64_overflow(us, 1000, &us) ||
		!IS_VALID_TIMESTAMP(us))
		return false;
	*result = us;
	return true;
}

static int64
ceil_div(int64 a, int64 b)
{
	return -floor_div(-a, b);
}

/*
 * Build the chains for a scan, in scan_cxt-independent palloc'd memory.
 * Returns NULL with *nchains = 0 when nothing needs to be asked.
 */
OprecChain *
oprec_build_chains(const OprecApi *api, const OprecFilters *filters,
				   TimestampTz history_start, int page_size, bool always_windows,
				   TimestampTz now,
				   int *nchains, int *nbatches, int *nwindows)
{
	const OprecColumnFilter *keys = &filters->columns[api->key_column];
	int			first_valid = 0;
	int			nvalid;
	int			batches;
	int			windows = 0;
	int64		lower = 0,
				upper = 0;
	bool		use_windows = false;
	bool		probe = false;
	OprecChain *chains;
	int			n = 0;

	*nchains = *nbatches = *nwindows = 0;
	if (filters->empty || !keys->active)
		return NULL;

	/* keys are sorted: skip those that cannot exist at either end */
	nvalid = keys->nvalues;
	while (first_valid < nvalid && keys->ints[first_valid] < api->min_key)
		first_valid++;
	while (nvalid > first_valid && keys->ints[nvalid - 1] > api->max_key)
		nvalid--;
	nvalid -= first_valid;
	if (nvalid == 0)
		return NULL;

	batches = (nvalid + api->max_keys_per_request - 1) / api->max_keys_per_request;

	if (api->max_window_ms > 0 && (filters->has_lower || filters->has_upper))
	{
		int64		now_ms = oprec_timestamptz_to_ms_floor(now) + CLOCK_SKEW_ALLOWANCE_MS;
		int64		history_ms = history_start ? oprec_timestamptz_to_ms_ceil(history_start) : 0;
		int64		span;
		int64		needed;

		/* The API serves nothing before its history starts nor after now. */
		lower = filters->has_lower ? Max(filters->lower_ms, history_ms) : history_ms;
		upper = filters->has_upper ? Min(filters->upper_ms, now_ms) : now_ms;
		if (lower > upper)
			return NULL;

		span = upper - lower + 1;
		needed = ceil_div(span, api->max_window_ms);

		{
			/*
			 * Windows cost at least one request each; leaving the time out
			 * costs one request per page of the batch's whole history, with
			 * the bounds checked locally.  "The last 3 days" is one window.
			 * When the range needs more windows than a typical history has
			 * pages ("since 2024", "2024-07 to 2026-12"), the chain starts
			 * as a walk without time range whose first page tells how much
			 * history there is: a history longer than the windows turns the
			 * chain into its windows (see scan.c).
			 */
			int64		per_batch = Min(nvalid, api->max_keys_per_request);
			int64		history_pages = ceil_div(per_batch * ASSUMED_RECORDS_PER_KEY,
												 Max(page_size, 1));

			use_windows = (always_windows && filters->has_lower && filters->has_upper) ||
				needed <= Max(history_pages, 1);
			probe = !use_windows;
		}
		if (use_windows)
		{
			if (needed > INT_MAX / Max(batches, 1))
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("the time range would need %lld requests", (long long) needed),
						 errhint("Narrow the condition on the time column.")));
			windows = (int) needed;
		}
	}

	chains = palloc0(sizeof(OprecChain) * batches * Max(windows, 1));
	for (int b = 0; b < batches; b++)
	{
		int			first = first_valid + b * api->max_keys_per_request;
		int			count = Min(api->max_keys_per_request, first_valid + nvalid - first);

		if (!use_windows)
		{
			chains[n].keys = &keys->ints[first];
			chains[n].nkeys = count;
			chains[n].windowed = false;
			chains[n].window_start_ms = chains[n].window_end_ms = 0;
			chains[n].probe = probe;
			chains[n].range_lower_ms = lower;
			chains[n].range_upper_ms = upper;
			n++;
			continue;
		}
		for (int w = 0; w < windows; w++)
		{
			int64		start = lower + (int64) w * api->max_window_ms;

			chains[n].keys = &keys->ints[first];
			chains[n].nkeys = count;
			chains[n].windowed = true;
			chains[n].window_start_ms = start;
			/* the last window ends just after the inclusive upper bound */
			chains[n].window_end_ms = Min(start + api->max_window_ms, upper + 1);
			chains[n].probe = false;
			chains[n].range_lower_ms = lower;
			chains[n].range_upper_ms = upper;
			n++;
		}
	}
	*nchains = n;
	*nbatches = batches;
	*nwindows = windows;
	return chains;
}

/* How many windows the time range of a chain spans. */
int64
oprec_window_count(const OprecApi *api, const OprecChain *chain)
{
	return ceil_div(chain->range_upper_ms - chain->range_lower_ms + 1, api->max_window_ms);
}

/*
 * The windows of a probing walk's time range, for its keys: what the walk
 * turns into when its history is longer than they are (scan.c).
 */
OprecChain *
oprec_window_chains(const OprecApi *api, const OprecChain *walk, int *nwindows)
{
	int64		needed = oprec_window_count(api, walk);
	OprecChain *chains;

	if (needed > INT_MAX / (int64) sizeof(OprecChain))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the time range would need %lld requests", (long long) needed),
				 errhint("Narrow the condition on the time column.")));
	chains = palloc0(sizeof(OprecChain) * needed);
	for (int w = 0; w < needed; w++)
	{
		int64		start = walk->range_lower_ms + (int64) w * api->max_window_ms;

		chains[w] = *walk;
		chains[w].probe = false;
		chains[w].windowed = true;
		chains[w].window_start_ms = start;
		chains[w].window_end_ms = Min(start + api->max_window_ms, walk->range_upper_ms + 1);
	}
	*nwindows = (int) needed;
	return chains;
}
