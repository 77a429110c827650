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

#include <math.h>

#include "common/int.h"
#include "datatype/timestamp.h"

#include "oprec_fdw.h"

/* Milliseconds between the Unix epoch and the PostgreSQL epoch. */
#define EPOCH_OFFSET_MS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000)


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
 * The pages a batch of keys' whole history is expected to take: each key
 * is assumed to have records_per_id records (the server option the
 * planner's estimates use too, so that both choose alike).
 */
int64
oprec_history_pages(const OprecOptions *options, double keys_per_batch)
{
	double		pages = ceil(keys_per_batch * options->records_per_id /
							 Max(options->page_size, 1));

	return (int64) Max(pages, 1.0);
}

/*
 * Whether a range is expected to be read sooner in windows than by
 * walking each batch's history: a walk's pages come one after another
 * (each asks from where the last answer ended), windows go out together,
 * max_concurrency at a time, and both within requests_per_second.  Times
 * are counted in answers of ASSUMED_ANSWER_MS.  Windows that are no more
 * than a walk's pages are sooner and fewer; with one request at a time,
 * or a low rate, the one of fewer requests is the sooner.
 */
bool
oprec_windows_sooner(const OprecOptions *options, double batches, double windows,
					 double walk_pages)
{
	double		in_flight = Max(options->max_concurrency, 1);
	double		window_requests = batches * windows;
	double		walk_requests = batches * walk_pages;
	double		windows_ms;
	double		walk_ms;

	if (windows <= walk_pages)
		return true;
	windows_ms = ceil(window_requests / in_flight) * ASSUMED_ANSWER_MS;
	walk_ms = Max(walk_pages, ceil(walk_requests / in_flight)) * ASSUMED_ANSWER_MS;
	if (options->requests_per_second > 0)
	{
		windows_ms = Max(windows_ms, window_requests * 1000.0 / options->requests_per_second);
		walk_ms = Max(walk_ms, walk_requests * 1000.0 / options->requests_per_second);
	}
	return windows_ms < walk_ms;
}

/*
 * The keys worth asking for, which are sorted: *first the first that may
 * exist, and the count of those from there on.
 */
static int
keys_in_range(const OprecResource *res, const OprecColumnFilter *keys, int *first)
{
	int			end = keys->nvalues;

	*first = 0;
	while (*first < end && keys->ints[*first] < res->min_key)
		(*first)++;
	while (end > *first && keys->ints[end - 1] > oprec_max_key(res))
		end--;
	return end - *first;
}

/*
 * The time range to ask for, inclusive: the API serves nothing before its
 * history starts nor after now.  False if it is empty.
 */
static bool
time_range(const OprecFilters *filters, TimestampTz history_start, TimestampTz now,
		   int64 *lower, int64 *upper)
{
	int64		now_ms = oprec_timestamptz_to_ms_floor(now) + OPREC_CLOCK_SKEW_ALLOWANCE_MS;
	int64		history_ms = history_start ? oprec_timestamptz_to_ms_ceil(history_start) : 0;

	*lower = filters->has_lower ? Max(filters->lower_ms, history_ms) : history_ms;
	*upper = filters->has_upper ? Min(filters->upper_ms, now_ms) : now_ms;
	return *lower <= *upper;
}

/* Refuse a time range that would take more requests than can be counted. */
static void
check_window_count(int64 windows, int64 per_window)
{
	if (windows > INT_MAX / Max(per_window, 1))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the time range would need %lld requests", (long long) windows),
				 errhint("Narrow the condition on the time column.")));
}

/*
 * The windows of [lower, upper] for one batch (base gives its keys),
 * written into out: consecutive, each at most the API's longest, the last
 * ending just after the inclusive upper bound.
 */
static void
fill_windows(const OprecResource *res, const OprecChain *base, int64 lower, int64 upper,
			 int nwindows, OprecChain *out)
{
	for (int w = 0; w < nwindows; w++)
	{
		int64		start = lower + (int64) w * res->max_window_ms;

		out[w] = *base;
		out[w].probe = false;
		out[w].windowed = true;
		out[w].window_start_ms = start;
		out[w].window_end_ms = Min(start + res->max_window_ms, upper + 1);
	}
}

/*
 * Build the chains for a scan, in the current memory context: for each
 * batch of keys, its windows, or one chain without time parameters.
 * Windows cost at least one request each; leaving the time out costs one
 * request per page of the batch's whole history, with the bounds checked
 * locally.  "The last 3 days" is one window.  When the windows are not
 * expected to be read sooner than a batch's history ("since 2024",
 * "2024-07 to 2026-12" with few requests in flight), the chain starts as
 * a walk without time range whose first page tells how much history there
 * is: a history that takes longer turns the chain into its windows
 * (scan.c).  Returns
 * NULL with *nchains = 0 when nothing needs to be asked.
 */
OprecChain *
oprec_build_chains(const OprecResource *res, const OprecOptions *options,
				   const OprecFilters *filters, TimestampTz history_start, TimestampTz now,
				   int *nchains, int *nbatches, int *nwindows)
{
	const OprecColumnFilter *keys = &filters->columns[res->key_column];
	int			first;
	int			nvalid;
	int			batches;
	int			windows = 0;
	int64		lower = 0,
				upper = 0;
	bool		use_windows = false;
	OprecChain *chains;
	OprecChain	base = {0};
	int			n = 0;

	*nchains = *nbatches = *nwindows = 0;
	if (filters->empty || !keys->active || (nvalid = keys_in_range(res, keys, &first)) == 0)
		return NULL;
	batches = (nvalid + res->max_keys_per_request - 1) / res->max_keys_per_request;

	if (res->max_window_ms > 0 && (filters->has_lower || filters->has_upper))
	{
		int64		needed;

		if (!time_range(filters, history_start, now, &lower, &upper))
			return NULL;
		needed = ceil_div(upper - lower + 1, res->max_window_ms);
		use_windows = (options->always_windows && filters->has_lower && filters->has_upper) ||
			oprec_windows_sooner(options, batches, (double) needed,
								 (double) oprec_history_pages(options,
															  Min(nvalid, res->max_keys_per_request)));
		base.probe = !use_windows;
		if (use_windows)
		{
			check_window_count(needed, batches);
			windows = (int) needed;
		}
	}
	base.range_lower_ms = lower;
	base.range_upper_ms = upper;

	chains = palloc0(sizeof(OprecChain) * batches * Max(windows, 1));
	for (int b = 0; b < batches; b++)
	{
		base.keys = &keys->ints[first + b * res->max_keys_per_request];
		base.nkeys = Min(res->max_keys_per_request, nvalid - b * res->max_keys_per_request);
		if (use_windows)
			fill_windows(res, &base, lower, upper, windows, &chains[n]);
		else
			chains[n] = base;
		n += Max(windows, 1);
	}
	*nchains = n;
	*nbatches = batches;
	*nwindows = windows;
	return chains;
}

/* How many windows the time range of a chain spans. */
int64
oprec_window_count(const OprecResource *res, const OprecChain *chain)
{
	return ceil_div(chain->range_upper_ms - chain->range_lower_ms + 1, res->max_window_ms);
}

/*
 * The windows of a probing walk's time range, for its keys: what the walk
 * turns into when its history is longer than they are (scan.c).
 */
OprecChain *
oprec_window_chains(const OprecResource *res, const OprecChain *walk, int *nwindows)
{
	int64		needed = oprec_window_count(res, walk);
	OprecChain *chains;

	check_window_count(needed, sizeof(OprecChain));
	chains = palloc0(sizeof(OprecChain) * needed);
	fill_windows(res, walk, walk->range_lower_ms, walk->range_upper_ms, (int) needed, chains);
	*nwindows = (int) needed;
	return chains;
}
