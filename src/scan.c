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
	OprecScanEngine *engine = palloc0(sizeof(OprecScanEngine));
	const OprecApi *api = options->api;

	scan->engine = engine;
	engine->scan_cxt = scan_cxt;
	engine->run_cxt = AllocSetContextCreate(scan_cxt, "oprec_fdw run",
											ALLOCSET_DEFAULT_SIZES);
	engine->chain_cxt = AllocSetContextCreate(scan_cxt, "oprec_fdw chain",
											  ALLOCSET_SMALL_SIZES);
	engine->page_cxt = AllocSetContextCreate(scan_cxt, "oprec_fdw page",
											 ALLOCSET_DEFAULT_SIZES);
	scan->options = options;
	scan->api = api;
	scan->session = oprec_get_session(options->user_mapping_id);
	engine->pace_key = oprec_pace_key(options);
	engine->history_start = oprec_history_start(options);
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
 * (Re)start the scan with filters evaluated in the engine's run_cxt.
 * Nothing is sent yet: the first page is asked for by the first row wanted.
 */
void
oprec_scan_start(OprecScan *scan, OprecFilters *filters)
{
	OprecScanEngine *engine = scan->engine;
	MemoryContext oldcxt = MemoryContextSwitchTo(engine->run_cxt);
	int			nbatches,
				nwindows;

	MemoryContextReset(engine->page_cxt);
	MemoryContextReset(engine->chain_cxt);
	memset(&engine->page, 0, sizeof(OprecPage));

	scan->filters = filters;
	scan->scope = oprec_scope_value(scan->options, filters);
	scan->scope_json = scan->scope ? oprec_json_owned(json_string(scan->scope)) : NULL;
	engine->chains = oprec_build_chains(scan->api, filters, engine->history_start,
										scan->options->page_size,
										scan->options->always_windows, GetCurrentTimestamp(),
										&engine->nchains, &nbatches, &nwindows);
	engine->counters.key_batches = nbatches;
	engine->counters.time_windows = nwindows;
	engine->chain_index = 0;
	engine->missing_keys = NULL;
	engine->nmissing = 0;
	engine->missing_reported = false;
	engine->chain_started = false;
	engine->chain_done = false;
	engine->record_index = 0;
	engine->row_in_record = 0;
	engine->rows_in_record = 0;

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
	OprecScanEngine *engine = scan->engine;
	uint64		hash = hash_bytes_extended((const unsigned char *) cursor, strlen(cursor), 0);
	bool		found;

	if (engine->seen_cursors == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(uint64);
		ctl.hcxt = engine->chain_cxt;
		engine->seen_cursors = hash_create("oprec_fdw cursors", 64, &ctl,
										   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	(void) hash_search(engine->seen_cursors, &hash, HASH_ENTER, &found);
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
	OprecScanEngine *engine = scan->engine;
	OprecChain *chain = &engine->chains[engine->chain_index];
	int64	   *kept;
	int			nkept = 0;

	if (engine->nmissing == 0)
		return true;
	kept = MemoryContextAlloc(engine->run_cxt, sizeof(int64) * chain->nkeys);
	for (int i = 0; i < chain->nkeys; i++)
	{
		bool		missing = false;

		for (int m = 0; m < engine->nmissing && !missing; m++)
			missing = (engine->missing_keys[m] == chain->keys[i]);
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
	OprecScanEngine *engine = scan->engine;
	MemoryContext oldcxt = MemoryContextSwitchTo(engine->run_cxt);

	engine->missing_keys = engine->missing_keys
		? repalloc(engine->missing_keys, sizeof(int64) * (engine->nmissing + 1))
		: palloc(sizeof(int64));
	engine->missing_keys[engine->nmissing++] = key;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Put n chains in the place of the current one, which is asked for again
 * from its first page: the engine's list of chains grows in run_cxt.
 */
static void
replace_current_chain(OprecScan *scan, const OprecChain *with, int n)
{
	OprecScanEngine *engine = scan->engine;
	int			i = engine->chain_index;
	int			after = engine->nchains - i - 1;
	OprecChain *chains = MemoryContextAlloc(engine->run_cxt,
											sizeof(OprecChain) * (i + n + after));

	memcpy(chains, engine->chains, sizeof(OprecChain) * i);
	memcpy(&chains[i], with, sizeof(OprecChain) * n);
	memcpy(&chains[i + n], &engine->chains[i + 1], sizeof(OprecChain) * after);
	engine->chains = chains;
	engine->nchains += n - 1;
	memset(&engine->page, 0, sizeof(OprecPage));
	engine->chain_started = false;
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
	OprecScanEngine *engine = scan->engine;
	OprecChain *chain = &engine->chains[engine->chain_index];
	OprecChain	halves[2];

	if (engine->chain_pages > 0)
		oprec_bad_answer(scan, req, resp,
						 psprintf("a %s was reported not to exist after %d pages of its records",
								  scan->api->columns[scan->api->key_column].name,
								  engine->chain_pages));
	if (engine->page.has_missing_key || chain->nkeys == 1)
	{
		remember_missing_key(scan, engine->page.has_missing_key
							 ? engine->page.missing_key : chain->keys[0]);
		memset(&engine->page, 0, sizeof(OprecPage));
		engine->chain_started = false;	/* asked again without it */
		return;
	}
	halves[0] = halves[1] = *chain;
	halves[0].nkeys = chain->nkeys / 2;
	halves[1].keys += halves[0].nkeys;
	halves[1].nkeys -= halves[0].nkeys;
	replace_current_chain(scan, halves, 2);
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
	OprecScanEngine *engine = scan->engine;
	const OprecChain *chain = &engine->chains[engine->chain_index];
	int64		windows = oprec_window_count(scan->api, chain);
	int64		walk_pages;

	if (!engine->page.has_more)
		return false;
	if (!engine->page.has_total)
		return true;
	walk_pages = (engine->page.total + scan->options->page_size - 1) /
		Max(scan->options->page_size, 1);
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
	OprecScanEngine *engine = scan->engine;
	MemoryContext oldcxt = MemoryContextSwitchTo(engine->run_cxt);
	int			nwindows;
	OprecChain *windows = oprec_window_chains(scan->api,
											  &engine->chains[engine->chain_index],
											  &nwindows);

	MemoryContextSwitchTo(oldcxt);
	replace_current_chain(scan, windows, nwindows);
	engine->counters.time_windows = Max(engine->counters.time_windows, nwindows);
}

/* Say once, when a scan ends, which keys the API said do not exist. */
static void
report_missing_keys(OprecScan *scan)
{
	OprecScanEngine *engine = scan->engine;
	StringInfoData list;
	int			shown = Min(engine->nmissing, 10);

	engine->missing_reported = true;
	if (engine->nmissing == 0)
		return;
	initStringInfo(&list);
	for (int i = 0; i < shown; i++)
		appendStringInfo(&list, "%s" INT64_FORMAT, i > 0 ? ", " : "", engine->missing_keys[i]);
	if (engine->nmissing > shown)
		appendStringInfo(&list, " and %d more", engine->nmissing - shown);
	ereport(NOTICE,
			(errmsg("the %s API does not know %s %s%s%s: no records for %s",
					scan->api->title, scan->api->columns[scan->api->key_column].name,
					list.data, scan->scope ? " in " : "",
					scan->scope ? oprec_api_text(scan->scope, strlen(scan->scope)) : "",
					engine->nmissing > 1 ? "them" : "it")));
}

/* Fetch the next page of the current chain into the engine's page. */
static void
fetch_page(OprecScan *scan)
{
	OprecScanEngine *engine = scan->engine;
	const OprecApi *api = scan->api;
	const OprecChain *chain = &engine->chains[engine->chain_index];
	MemoryContext oldcxt;
	OprecRequest req;
	OprecResponse resp;
	OprecPageOutcome outcome = OPREC_PAGE_OK;

	/* the previous page, its JSON and its transfer go away here */
	MemoryContextReset(engine->page_cxt);
	memset(&engine->page, 0, sizeof(OprecPage));
	if (!engine->chain_started && !skip_missing_keys(scan))
	{
		/* every key of the chain is known not to exist */
		engine->chain_started = true;
		engine->chain_done = true;
		return;
	}
	if (!engine->chain_started)
	{
		MemoryContextReset(engine->chain_cxt);
		engine->chain_started = true;
		engine->chain_done = false;
		engine->chain_pages = 0;
		engine->cursor = NULL;
		engine->seen_cursors = NULL;
		engine->empty_pages_in_a_row = 0;
		scan->chain_key_json = NULL;
		if (chain->nkeys == 1)
		{
			int64		key = chain->keys[0];

			oldcxt = MemoryContextSwitchTo(engine->chain_cxt);
			scan->chain_key_json = oprec_json_owned(json_integer(key));
			MemoryContextSwitchTo(oldcxt);
		}
	}

	oldcxt = MemoryContextSwitchTo(engine->page_cxt);
	for (int attempt = 0; attempt < 2; attempt++)
	{
		bool		may_renew = (attempt == 0 && api->can_renew_token(scan));

		api->ensure_token(scan, attempt > 0);
		oprec_request_init(&req, "GET");
		api->build_page_request(scan, chain, engine->cursor, &req);
		oprec_http_send(scan, &req, &resp);
		outcome = api->read_page(scan, chain, engine->cursor, may_renew, &req, &resp,
								 &engine->page);
		if (outcome != OPREC_PAGE_TOKEN_REJECTED)
			break;
		/* the token was refused: forget it, get a new one, ask again once */
		oprec_session_forget_token(scan->session);
		memset(&engine->page, 0, sizeof(OprecPage));
	}
	MemoryContextSwitchTo(oldcxt);

	if (outcome == OPREC_PAGE_KEY_NOT_FOUND)
	{
		split_chain(scan, &req, &resp);
		return;
	}
	if (chain->probe && engine->chain_pages == 0)
	{
		bool		use_windows = windows_are_cheaper(scan);

		engine->chains[engine->chain_index].probe = false;	/* decided */
		if (use_windows)
		{
			engine->counters.pages++;
			engine->counters.records += json_array_size(engine->page.records);
			replace_walk_with_windows(scan);
			return;
		}
	}

	engine->chain_pages++;
	engine->counters.pages++;
	engine->counters.records += json_array_size(engine->page.records);
	engine->record_index = 0;
	engine->row_in_record = 0;
	engine->rows_in_record = 0;

	if (!engine->page.has_more)
	{
		engine->chain_done = true;
		return;
	}
	if (engine->page.next_cursor == NULL || engine->page.next_cursor[0] == '\0')
		oprec_bad_answer(scan, &req, &resp, "more records announced without a cursor to fetch them");
	if (strlen(engine->page.next_cursor) > MAX_CURSOR_BYTES)
		oprec_bad_answer(scan, &req, &resp,
						 psprintf("a paging cursor longer than %d bytes", MAX_CURSOR_BYTES));

	engine->empty_pages_in_a_row = json_array_size(engine->page.records) > 0
		? 0 : engine->empty_pages_in_a_row + 1;
	if (engine->empty_pages_in_a_row >= MAX_EMPTY_PAGES_IN_A_ROW)
		report_no_progress(scan, &req,
						   psprintf("%d pages in a row without records, each announcing more",
									engine->empty_pages_in_a_row));
	if (engine->chain_pages >= MAX_PAGES_PER_CHAIN)
		report_no_progress(scan, &req,
						   psprintf("more than %d pages for one request chain", MAX_PAGES_PER_CHAIN));

	oldcxt = MemoryContextSwitchTo(engine->chain_cxt);
	if (!remember_cursor(scan, engine->page.next_cursor))
	{
		const char *cursor = oprec_api_text(engine->page.next_cursor,
											strlen(engine->page.next_cursor));

		report_no_progress(scan, &req,
						   psprintf("cursor \"%s\" came back after %d pages",
									cursor, engine->chain_pages));
	}
	engine->cursor = pstrdup(engine->page.next_cursor);
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
	OprecScanEngine *engine = scan->engine;
	for (;;)
	{
		if (engine->page.records && engine->record_index < json_array_size(engine->page.records))
		{
			json_t	   *current = json_array_get(engine->page.records, engine->record_index);
			const OprecChain *current_chain = &engine->chains[engine->chain_index];

			if (engine->row_in_record == 0 && engine->rows_in_record == 0)
			{
				if (!json_is_object(current) ||
					!record_in_window(scan, current_chain, current))
				{
					engine->record_index++;
					continue;
				}
				engine->rows_in_record = scan->api->rows_in_record(current);
			}
			if (engine->row_in_record < engine->rows_in_record)
			{
				*record = current;
				*row = engine->row_in_record++;
				*chain = current_chain;
				engine->counters.rows++;
				return true;
			}
			engine->record_index++;
			engine->row_in_record = 0;
			engine->rows_in_record = 0;
			continue;
		}

		if (engine->chain_index >= engine->nchains)
		{
			if (!engine->missing_reported)
				report_missing_keys(scan);
			return false;
		}
		if (engine->chain_started && engine->chain_done)
		{
			engine->chain_index++;
			engine->chain_started = false;
			engine->page.records = NULL;
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
