/*-------------------------------------------------------------------------
 *
 * scan.c
 *		  The scan engine: runs request chains page by page and hands out
 *		  rows as the executor asks for them.
 *
 * Only one page is held at a time: the page memory context (and with it
 * the parsed JSON of the page) is reset before the next page is fetched,
 * so a scan's memory stays about one page whatever the result size, and a
 * LIMIT that is satisfied stops the requests.  A chain ends only when the
 * API says there is nothing more, never on a short page.  A chain that
 * makes no progress is an error rather than an endless loop: a cursor that
 * comes back, too many empty pages in a row, or more pages than any real
 * history has.  A chain the API refuses because one of its keys does not
 * exist is asked for again without that key (or in halves, until it is
 * found); such keys have no rows, and a NOTICE names them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <jansson.h>

#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "oprec_fdw.h"

/* Limits on a chain that makes no progress (see fetch_page). */
#define MAX_EMPTY_PAGES_IN_A_ROW 20
#define MAX_PAGES_PER_CHAIN 100000
#define MAX_CURSOR_BYTES 4096

OprecScan *
oprec_scan_create(MemoryContext parent, OprecOptions *options)
{
	MemoryContext scan_cxt = AllocSetContextCreate(parent, "oprec_fdw scan",
												   ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(scan_cxt);
	OprecScan  *scan = palloc0(sizeof(OprecScan));
	const OprecApi *api = options->api;

	scan->engine = palloc0(sizeof(OprecScanEngine));

	scan->engine->scan_cxt = scan_cxt;
	scan->engine->run_cxt = AllocSetContextCreate(scan_cxt, "oprec_fdw run",
										  ALLOCSET_DEFAULT_SIZES);
	scan->engine->chain_cxt = AllocSetContextCreate(scan_cxt, "oprec_fdw chain",
											ALLOCSET_SMALL_SIZES);
	scan->engine->page_cxt = AllocSetContextCreate(scan_cxt, "oprec_fdw page",
										   ALLOCSET_DEFAULT_SIZES);
	scan->options = options;
	scan->api = api;
	scan->session = oprec_get_session(options->user_mapping_id);
	scan->engine->pace_key = oprec_pace_key(options);
	scan->engine->history_start = oprec_history_start(options);
	scan->api_state = api->begin_scan(scan);

	MemoryContextSwitchTo(oldcxt);
	return scan;
}

/* The earliest time the API serves, from its option or its default. */
TimestampTz
oprec_history_start(const OprecOptions *options)
{
	const OprecApi *api = options->api;
	const char *text;

	if (api->history_start_option == NULL)
		return 0;
	text = oprec_option_value(options, api->history_start_option);
	if (text == NULL)
		text = api->default_history_start;
	return oprec_parse_timestamptz(text, api->history_start_option);
}

/*
 * The request scope (project) of a scan, in UTF-8 like every value sent:
 * the value of an equality condition on the scope column, else the
 * table's or server's option.
 */
const char *
oprec_scope_value(const OprecOptions *options, const OprecFilters *filters)
{
	const OprecApi *api = options->api;
	const char *option;

	if (api->scope_column < 0)
		return NULL;
	if (filters && filters->columns[api->scope_column].active &&
		filters->columns[api->scope_column].nvalues == 1)
		return filters->columns[api->scope_column].strs[0];
	option = oprec_option_value(options, api->columns[api->scope_column].scope_option);
	return option ? pg_server_to_any(option, strlen(option), PG_UTF8) : NULL;
}

/*
 * (Re)start the scan with filters evaluated in scan->engine->run_cxt.  Nothing is
 * sent yet: the first page is asked for by the first row wanted.
 */
void
oprec_scan_start(OprecScan *scan, OprecFilters *filters)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(scan->engine->run_cxt);
	int			nbatches,
				nwindows;

	MemoryContextReset(scan->engine->page_cxt);
	MemoryContextReset(scan->engine->chain_cxt);
	memset(&scan->engine->page, 0, sizeof(OprecPage));

	scan->filters = filters;
	scan->scope = oprec_scope_value(scan->options, filters);
	scan->scope_json = scan->scope ? oprec_json_owned(json_string(scan->scope)) : NULL;
	scan->engine->chains = oprec_build_chains(scan->api, filters, scan->engine->history_start,
									  scan->options->page_size,
									  scan->options->always_windows, GetCurrentTimestamp(),
									  &scan->engine->nchains, &nbatches, &nwindows);
	scan->engine->counters.key_batches = nbatches;
	scan->engine->counters.time_windows = nwindows;
	scan->engine->chain_index = 0;
	scan->engine->missing_keys = NULL;
	scan->engine->nmissing = 0;
	scan->engine->missing_reported = false;
	scan->engine->chain_started = false;
	scan->engine->chain_done = false;
	scan->engine->record_index = 0;
	scan->engine->row_in_record = 0;
	scan->engine->rows_in_record = 0;

	MemoryContextSwitchTo(oldcxt);
}

/*
 * Remember a cursor of the current chain; false if it came before.  Only
 * a 64-bit hash of each is kept: a false repeat needs a hash collision
 * within one chain.
 */
static bool
remember_cursor(OprecScan *scan, const char *cursor)
{
	uint64		hash = hash_bytes_extended((const unsigned char *) cursor, strlen(cursor), 0);
	bool		found;

	if (scan->engine->seen_cursors == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(uint64);
		ctl.hcxt = scan->engine->chain_cxt;
		scan->engine->seen_cursors = hash_create("oprec_fdw cursors", 64, &ctl,
										 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	(void) hash_search(scan->engine->seen_cursors, &hash, HASH_ENTER, &found);
	return !found;
}

/* A chain that makes no progress: say so, with what was asked. */
static void
report_no_progress(OprecScan *scan, OprecRequest *req, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("the %s API is paging without progress: %s", scan->api->title, what),
			 errdetail("Request: %s.", req->summary.data),
			 errhint("The API is paging in a loop; retry later, and report it to the API provider if it persists.")));
}

/*
 * Leave out of the current chain, before its first request, the keys the
 * API already said do not exist (in another time window).  False if none
 * is left.
 */
static bool
skip_missing_keys(OprecScan *scan)
{
	OprecChain *chain = &scan->engine->chains[scan->engine->chain_index];
	int64	   *kept;
	int			nkept = 0;

	if (scan->engine->nmissing == 0)
		return true;
	kept = MemoryContextAlloc(scan->engine->run_cxt, sizeof(int64) * chain->nkeys);
	for (int i = 0; i < chain->nkeys; i++)
	{
		bool		missing = false;

		for (int m = 0; m < scan->engine->nmissing && !missing; m++)
			missing = (scan->engine->missing_keys[m] == chain->keys[i]);
		if (!missing)
			kept[nkept++] = chain->keys[i];
	}
	chain->keys = kept;
	chain->nkeys = nkept;
	return nkept > 0;
}

/* Remember a key the API said does not exist. */
static void
remember_missing_key(OprecScan *scan, int64 key)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(scan->engine->run_cxt);

	scan->engine->missing_keys = scan->engine->missing_keys
		? repalloc(scan->engine->missing_keys, sizeof(int64) * (scan->engine->nmissing + 1))
		: palloc(sizeof(int64));
	scan->engine->missing_keys[scan->engine->nmissing++] = key;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * The API refused the chain's first request because a key it names does
 * not exist (Feishu refuses a whole batch for one unknown work item).  If
 * the answer said which, or the chain has one key, that key has no
 * records: the chain is asked again without it.  Otherwise the chain is
 * split in two halves, each asked for in turn, until the unknown keys are
 * alone.
 */
static void
split_chain(OprecScan *scan, OprecRequest *req, OprecResponse *resp)
{
	OprecChain *chain = &scan->engine->chains[scan->engine->chain_index];
	OprecChain *chains;
	int			i = scan->engine->chain_index;
	MemoryContext oldcxt;
	int			half;

	if (scan->engine->chain_pages > 0)
		oprec_bad_answer(scan, req, resp,
						 psprintf("a %s was reported not to exist after %d pages of its records",
								  scan->api->columns[scan->api->key_column].name,
								  scan->engine->chain_pages));
	if (scan->engine->page.has_missing_key || chain->nkeys == 1)
	{
		remember_missing_key(scan, scan->engine->page.has_missing_key
							 ? scan->engine->page.missing_key : chain->keys[0]);
		memset(&scan->engine->page, 0, sizeof(OprecPage));
		scan->engine->chain_started = false;	/* asked again without it */
		return;
	}
	oldcxt = MemoryContextSwitchTo(scan->engine->run_cxt);
	chains = palloc(sizeof(OprecChain) * (scan->engine->nchains + 1));
	memcpy(chains, scan->engine->chains, sizeof(OprecChain) * (i + 1));
	memcpy(&chains[i + 2], &scan->engine->chains[i + 1], sizeof(OprecChain) * (scan->engine->nchains - i - 1));
	half = chains[i].nkeys / 2;
	chains[i + 1] = chains[i];
	chains[i + 1].keys += half;
	chains[i + 1].nkeys -= half;
	chains[i].nkeys = half;
	scan->engine->chains = chains;
	scan->engine->nchains++;
	scan->engine->chain_started = false;	/* ask again for the first half */
	MemoryContextSwitchTo(oldcxt);
	memset(&scan->engine->page, 0, sizeof(OprecPage));
}

/*
 * After the first page of a probing walk (a chain that leaves out a long
 * time range): whether asking for the range's windows is expected to cost
 * fewer requests than walking the rest of the history.  A walk that ends
 * on its first page is cheapest; an answer that does not say how much
 * history there is leaves the windows, whose cost is known.
 */
static bool
windows_are_cheaper(OprecScan *scan)
{
	OprecChain *chain = &scan->engine->chains[scan->engine->chain_index];
	int64		span = chain->range_upper_ms - chain->range_lower_ms + 1;
	int64		windows = (span + scan->api->max_window_ms - 1) / scan->api->max_window_ms;
	int64		walk_pages;

	chain->probe = false;
	if (!scan->engine->page.has_more)
		return false;
	if (!scan->engine->page.has_total)
		return true;
	walk_pages = (scan->engine->page.total + scan->options->page_size - 1) / Max(scan->options->page_size, 1);
	return walk_pages > windows;
}

/*
 * Replace the current chain, a walk whose first page showed a long
 * history, with the windows of its time range.  The page is dropped: no
 * row of it was returned yet.
 */
static void
replace_walk_with_windows(OprecScan *scan)
{
	int			i = scan->engine->chain_index;
	MemoryContext oldcxt = MemoryContextSwitchTo(scan->engine->run_cxt);
	int			nwindows;
	OprecChain *windows = oprec_window_chains(scan->api, &scan->engine->chains[i], &nwindows);
	OprecChain *chains = palloc(sizeof(OprecChain) * (scan->engine->nchains - 1 + nwindows));

	memcpy(chains, scan->engine->chains, sizeof(OprecChain) * i);
	memcpy(&chains[i], windows, sizeof(OprecChain) * nwindows);
	memcpy(&chains[i + nwindows], &scan->engine->chains[i + 1],
		   sizeof(OprecChain) * (scan->engine->nchains - i - 1));
	scan->engine->chains = chains;
	scan->engine->nchains += nwindows - 1;
	scan->engine->counters.time_windows = Max(scan->engine->counters.time_windows, nwindows);
	MemoryContextSwitchTo(oldcxt);

	memset(&scan->engine->page, 0, sizeof(OprecPage));
	scan->engine->chain_started = false;
}

/* Say once, when a scan ends, which keys the API said do not exist. */
static void
report_missing_keys(OprecScan *scan)
{
	StringInfoData list;
	int			shown = Min(scan->engine->nmissing, 10);

	scan->engine->missing_reported = true;
	if (scan->engine->nmissing == 0)
		return;
	initStringInfo(&list);
	for (int i = 0; i < shown; i++)
		appendStringInfo(&list, "%s" INT64_FORMAT, i > 0 ? ", " : "", scan->engine->missing_keys[i]);
	if (scan->engine->nmissing > shown)
		appendStringInfo(&list, " and %d more", scan->engine->nmissing - shown);
	ereport(NOTICE,
			(errmsg("the %s API does not know %s %s%s%s: no records for %s",
					scan->api->title, scan->api->columns[scan->api->key_column].name,
					list.data, scan->scope ? " in " : "",
					scan->scope ? oprec_api_text(scan->scope, strlen(scan->scope)) : "",
					scan->engine->nmissing > 1 ? "them" : "it")));
}

/* Fetch the next page of the current chain into scan->engine->page. */
static void
fetch_page(OprecScan *scan)
{
	const OprecApi *api = scan->api;
	const OprecChain *chain = &scan->engine->chains[scan->engine->chain_index];
	MemoryContext oldcxt;
	OprecRequest req;
	OprecResponse resp;
	OprecPageOutcome outcome = OPREC_PAGE_OK;

	/* the previous page, its JSON and its transfer go away here */
	MemoryContextReset(scan->engine->page_cxt);
	memset(&scan->engine->page, 0, sizeof(OprecPage));
	if (!scan->engine->chain_started && !skip_missing_keys(scan))
	{
		/* every key of the chain is known not to exist */
		scan->engine->chain_started = true;
		scan->engine->chain_done = true;
		return;
	}
	if (!scan->engine->chain_started)
	{
		MemoryContextReset(scan->engine->chain_cxt);
		scan->engine->chain_started = true;
		scan->engine->chain_done = false;
		scan->engine->chain_pages = 0;
		scan->engine->cursor = NULL;
		scan->engine->seen_cursors = NULL;
		scan->engine->empty_pages_in_a_row = 0;
		scan->chain_key_json = NULL;
		if (chain->nkeys == 1)
		{
			int64		key = chain->keys[0];

			oldcxt = MemoryContextSwitchTo(scan->engine->chain_cxt);
			scan->chain_key_json = oprec_json_owned(json_integer(key));
			MemoryContextSwitchTo(oldcxt);
		}
	}

	oldcxt = MemoryContextSwitchTo(scan->engine->page_cxt);
	for (int attempt = 0; attempt < 2; attempt++)
	{
		bool		may_renew = (attempt == 0 && api->can_renew_token(scan));

		api->ensure_token(scan, attempt > 0);
		oprec_request_init(&req, "GET");
		api->build_page_request(scan, chain, scan->engine->cursor, &req);
		oprec_http_send(scan, &req, &resp);
		outcome = api->read_page(scan, chain, scan->engine->cursor, may_renew, &req, &resp,
								 &scan->engine->page);
		if (outcome != OPREC_PAGE_TOKEN_REJECTED)
			break;
		/* the token was refused: forget it, get a new one, ask again once */
		oprec_session_forget_token(scan->session);
		memset(&scan->engine->page, 0, sizeof(OprecPage));
	}
	MemoryContextSwitchTo(oldcxt);

	if (outcome == OPREC_PAGE_KEY_NOT_FOUND)
	{
		split_chain(scan, &req, &resp);
		return;
	}
	if (chain->probe && scan->engine->chain_pages == 0 && windows_are_cheaper(scan))
	{
		scan->engine->counters.pages++;
		scan->engine->counters.records += json_array_size(scan->engine->page.records);
		replace_walk_with_windows(scan);
		return;
	}

	scan->engine->chain_pages++;
	scan->engine->counters.pages++;
	scan->engine->counters.records += json_array_size(scan->engine->page.records);
	scan->engine->record_index = 0;
	scan->engine->row_in_record = 0;
	scan->engine->rows_in_record = 0;

	if (!scan->engine->page.has_more)
	{
		scan->engine->chain_done = true;
		return;
	}
	if (scan->engine->page.next_cursor == NULL || scan->engine->page.next_cursor[0] == '\0')
		oprec_bad_answer(scan, &req, &resp, "more records announced without a cursor to fetch them");
	if (strlen(scan->engine->page.next_cursor) > MAX_CURSOR_BYTES)
		oprec_bad_answer(scan, &req, &resp,
						 psprintf("a paging cursor longer than %d bytes", MAX_CURSOR_BYTES));

	scan->engine->empty_pages_in_a_row = json_array_size(scan->engine->page.records) > 0
		? 0 : scan->engine->empty_pages_in_a_row + 1;
	if (scan->engine->empty_pages_in_a_row >= MAX_EMPTY_PAGES_IN_A_ROW)
		report_no_progress(scan, &req,
						   psprintf("%d pages in a row without records, each announcing more",
									scan->engine->empty_pages_in_a_row));
	if (scan->engine->chain_pages >= MAX_PAGES_PER_CHAIN)
		report_no_progress(scan, &req,
						   psprintf("more than %d pages for one request chain", MAX_PAGES_PER_CHAIN));

	oldcxt = MemoryContextSwitchTo(scan->engine->chain_cxt);
	if (!remember_cursor(scan, scan->engine->page.next_cursor))
	{
		const char *cursor = oprec_api_text(scan->engine->page.next_cursor,
											strlen(scan->engine->page.next_cursor));

		report_no_progress(scan, &req,
						   psprintf("cursor \"%s\" came back after %d pages",
									cursor, scan->engine->chain_pages));
	}
	scan->engine->cursor = pstrdup(scan->engine->page.next_cursor);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Whether a record lies in its chain's time window.  Windows share their
 * edges and the API may read the end of a window either way, so each
 * record is kept by exactly one window: the one whose [start, end) holds it.
 */
static bool
record_in_window(OprecScan *scan, const OprecChain *chain, json_t *record)
{
	json_t	   *value;
	int64		ms;

	if (!chain->windowed)
		return true;
	value = scan->api->column_value(scan, chain, record, 0, scan->api->time_column);
	if (value == NULL || !oprec_json_epoch_ms(value, &ms))
		return false;			/* no time: no condition on time can hold */
	return ms >= chain->window_start_ms && ms < chain->window_end_ms;
}

/*
 * The next row of the scan: a record of the current page and the index of
 * the row within it.  Returns false when every chain is exhausted.
 */
bool
oprec_scan_next_row(OprecScan *scan, json_t **record, int *row, const OprecChain **chain)
{
	for (;;)
	{
		if (scan->engine->page.records && scan->engine->record_index < json_array_size(scan->engine->page.records))
		{
			json_t	   *current = json_array_get(scan->engine->page.records, scan->engine->record_index);
			const OprecChain *current_chain = &scan->engine->chains[scan->engine->chain_index];

			if (scan->engine->row_in_record == 0 && scan->engine->rows_in_record == 0)
			{
				if (!json_is_object(current) ||
					!record_in_window(scan, current_chain, current))
				{
					scan->engine->record_index++;
					continue;
				}
				scan->engine->rows_in_record = scan->api->rows_in_record(current);
			}
			if (scan->engine->row_in_record < scan->engine->rows_in_record)
			{
				*record = current;
				*row = scan->engine->row_in_record++;
				*chain = current_chain;
				scan->engine->counters.rows++;
				return true;
			}
			scan->engine->record_index++;
			scan->engine->row_in_record = 0;
			scan->engine->rows_in_record = 0;
			continue;
		}

		if (scan->engine->chain_index >= scan->engine->nchains)
		{
			if (!scan->engine->missing_reported)
				report_missing_keys(scan);
			return false;
		}
		if (scan->engine->chain_started && scan->engine->chain_done)
		{
			scan->engine->chain_index++;
			scan->engine->chain_started = false;
			scan->engine->page.records = NULL;
			continue;
		}
		fetch_page(scan);
	}
}

/* Release everything the scan holds, curl and jansson objects included. */
void
oprec_scan_end(OprecScan *scan)
{
	MemoryContextDelete(scan->engine->scan_cxt);
}
