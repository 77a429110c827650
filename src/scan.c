/*-------------------------------------------------------------------------
 *
 * scan.c
 *		  The scan engine: runs request chains together, page by page, and
 *		  hands out rows as the executor asks for them.
 *
 * Chains are independent (key batches x time windows), so up to the
 * server's max_concurrency of them are fetched at once, each in a lane
 * with its own cursor: requests go out on the shared curl multi handle,
 * inside requests_per_second, and rows are handed out page by page in the
 * order pages arrive.  As soon as a page arrives, the next page of its
 * chain is asked for, so it is on its way while the executor reads this
 * one.  Memory is bounded whatever the result size: pages held (received
 * and waiting, or being read) and requests in flight together number at
 * most max_concurrency + 1, each in a memory context freed when its page
 * is read to the end; a LIMIT that is satisfied frees them all, requests
 * in flight included.
 *
 * A chain ends only when the API says there is nothing more, never on a
 * short page.  A chain that makes no progress is an error rather than an
 * endless loop: a cursor that comes back, too many empty pages in a row,
 * or more pages than any real history has.  A chain the API refuses
 * because one of its keys does not exist is asked for again without that
 * key (or in halves, until it is found); such keys have no rows, and a
 * NOTICE names them.  An error in any chain ends the scan, and with it
 * every request in flight.
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

/* Limits on a chain that makes no progress (see advance_cursor). */
#define MAX_EMPTY_PAGES_IN_A_ROW 20
#define MAX_PAGES_PER_CHAIN 100000
#define MAX_CURSOR_BYTES 4096

/* How often a long scan (a mirror's fill) says how far it is; 0: never. */
int			oprec_scan_progress_ms = 0;

/*
 * A lane: a request chain being fetched, with its own cursor and progress
 * checks, and the request for its next page while one is in flight.
 */
typedef struct OprecLane
{
	bool		active;			/* holds a chain with pages to come */
	OprecChain	chain;
	MemoryContext chain_cxt;	/* its cursors; reset per chain */
	int			pages;			/* pages received */
	char	   *cursor;			/* for the next page; NULL: the first */
	struct HTAB *seen_cursors;	/* hashes of its cursors, or NULL */
	int			empty_pages_in_a_row;
	bool		renewed_token;	/* the request in flight is the second try */
	uint64		token_generation;	/* of the session's token it was sent with */
	bool		next_held;		/* the next page waits until the last one is
								 * half read (a LIMIT may not need it) */
	MemoryContext page_cxt;		/* the request in flight and its page */
	OprecRequest *req;
	OprecCall  *call;			/* NULL: nothing in flight */
} OprecLane;

/* A page received, waiting for the executor (or being read by it). */
typedef struct OprecReadyPage
{
	MemoryContext cxt;			/* holds the page's JSON and this */
	OprecPage	page;
	OprecChain	chain;			/* the chain it came from */
	json_t	   *key_json;		/* the key of a one-key chain, or NULL */
	OprecLane  *holds;			/* a lane whose next page waits for this
								 * one to be half read, or NULL */
	OprecChain *later_chains;	/* its chain's later pages, waiting alike */
	int			nlater_chains;
	struct OprecReadyPage *next;
} OprecReadyPage;

OprecScan *
oprec_scan_create(MemoryContext parent, OprecOptions *options)
{
	MemoryContext scan_cxt = AllocSetContextCreate(parent, "oprec_fdw scan",
												   ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(scan_cxt);
	OprecScan  *scan = palloc0(sizeof(OprecScan));
	OprecScanEngine *engine = palloc0(sizeof(OprecScanEngine));
	const OprecResource *res = options->resource;

	scan->engine = engine;
	scan->service = res->service;
	engine->scan_cxt = scan_cxt;
	engine->run_cxt = AllocSetContextCreate(scan_cxt, "oprec_fdw run",
											ALLOCSET_DEFAULT_SIZES);
	scan->options = options;
	scan->resource = res;
	scan->session = oprec_get_session(options);
	oprec_service_transport(scan, oprec_pace_key(scan->session), &engine->transport);
	engine->history_start = oprec_history_start(options);
	if (res->service->begin_scan)
		scan->api_state = res->service->begin_scan(scan);

	MemoryContextSwitchTo(oldcxt);
	return scan;
}

/* The earliest time the API serves, from its option or its default. */
TimestampTz
oprec_history_start(const OprecOptions *options)
{
	const OprecResource *res = options->resource;
	const char *text;

	if (res->history_start_option == NULL)
		return 0;
	text = oprec_option_value(options, res->history_start_option);
	if (text == NULL)
		text = res->default_history_start;
	return oprec_parse_timestamptz(text, res->history_start_option);
}

/*
 * The request scope (project) of a scan, in UTF-8 like every value sent:
 * the value of an equality condition on the scope column, else the
 * table's or server's option.
 */
const char *
oprec_scope_value(const OprecOptions *options, const OprecFilters *filters)
{
	const OprecResource *res = options->resource;
	const char *option;

	if (res->scope_column < 0)
		return NULL;
	if (filters && filters->columns[res->scope_column].active &&
		filters->columns[res->scope_column].nvalues == 1)
		return filters->columns[res->scope_column].strs[0];
	option = oprec_option_value(options, res->columns[res->scope_column].scope_option);
	return option ? pg_server_to_any(option, strlen(option), PG_UTF8) : NULL;
}

/*
 * (Re)start the scan with filters evaluated in the engine's run_cxt, which
 * was reset since any earlier run: its lanes, pages and requests in flight
 * are gone.  Nothing is sent yet: the first pages are asked for by the
 * first row wanted.
 */
void
oprec_scan_start(OprecScan *scan, OprecFilters *filters)
{
	OprecScanEngine *engine = scan->engine;
	MemoryContext oldcxt = MemoryContextSwitchTo(engine->run_cxt);
	int			nbatches,
				nwindows;

	scan->filters = filters;
	scan->scope = oprec_scope_value(scan->options, filters);
	scan->scope_json = scan->scope ? oprec_json_owned(json_string(scan->scope)) : NULL;
	scan->chain_key_json = NULL;
	engine->listing = NULL;
	if (scan->resource->list_keys != NULL && !filters->empty &&
		!filters->columns[scan->resource->key_column].active)
		engine->listing = oprec_listing_begin(engine->run_cxt, filters,
											  scan->options->list_every_key,
											  scan->resource->list_variants);
	engine->listing_done = false;
	engine->counters.listed_keys = 0;
	engine->chains = oprec_build_chains(scan->resource, scan->options, filters,
										engine->history_start, GetCurrentTimestamp(),
										&engine->nchains, &nbatches, &nwindows);
	engine->counters.key_batches = nbatches;
	engine->counters.time_windows = nwindows;
	engine->next_chain = 0;
	engine->redo_chains = NIL;

	engine->nlanes = Max(Min(scan->options->max_concurrency, OPREC_MAX_CONCURRENCY), 1);
	engine->lanes = palloc0(sizeof(OprecLane) * engine->nlanes);
	for (int i = 0; i < engine->nlanes; i++)
		engine->lanes[i].chain_cxt = AllocSetContextCreate(engine->run_cxt, "oprec_fdw chain",
														   ALLOCSET_SMALL_SIZES);
	engine->in_flight = 0;
	engine->ready_head = engine->ready_tail = engine->current = NULL;
	engine->nready = 0;
	engine->record_index = 0;
	engine->row_in_record = 0;
	engine->rows_in_record = 0;
	engine->missing_keys = NULL;
	engine->nmissing = 0;
	engine->missing_reported = false;

	MemoryContextSwitchTo(oldcxt);
}

/* ----------------------------------------------------------------
 *		Chains
 * ----------------------------------------------------------------
 */

/* Put chains first in line, ahead of those not started yet, in order. */
static void
put_chains_first(OprecScan *scan, const OprecChain *chains, int n)
{
	OprecScanEngine *engine = scan->engine;
	MemoryContext oldcxt = MemoryContextSwitchTo(engine->run_cxt);

	for (int i = n - 1; i >= 0; i--)
	{
		OprecChain *copy = palloc(sizeof(OprecChain));

		*copy = chains[i];
		engine->redo_chains = lcons(copy, engine->redo_chains);
	}
	MemoryContextSwitchTo(oldcxt);
}

/* Whether the key is one the API said does not exist. */
static bool
key_is_missing(OprecScanEngine *engine, int64 key)
{
	for (int m = 0; m < engine->nmissing; m++)
		if (engine->missing_keys[m] == key)
			return true;
	return false;
}

/* Remember a key the API said does not exist. */
static void
remember_missing_key(OprecScan *scan, int64 key)
{
	OprecScanEngine *engine = scan->engine;
	MemoryContext oldcxt;

	if (key_is_missing(engine, key))
		return;
	oldcxt = MemoryContextSwitchTo(engine->run_cxt);
	engine->missing_keys = engine->missing_keys
		? repalloc(engine->missing_keys, sizeof(int64) * (engine->nmissing + 1))
		: palloc(sizeof(int64));
	engine->missing_keys[engine->nmissing++] = key;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Leave out of a chain, before its first request, the keys the API already
 * said do not exist (in another time window).  False if none is left.
 */
static bool
skip_missing_keys(OprecScan *scan, OprecChain *chain)
{
	OprecScanEngine *engine = scan->engine;
	int64	   *kept;
	int			nkept = 0;

	if (engine->nmissing == 0)
		return true;
	kept = MemoryContextAlloc(engine->run_cxt, sizeof(int64) * chain->nkeys);
	for (int i = 0; i < chain->nkeys; i++)
		if (!key_is_missing(engine, chain->keys[i]))
			kept[nkept++] = chain->keys[i];
	chain->keys = kept;
	chain->nkeys = nkept;
	return nkept > 0;
}

/*
 * A scan that names no keys: list the next keys of the scope (listing.c),
 * and make their chains the ones to start, as if the query had named them.
 * The listing request is waited for here; requests in flight go on.
 */
static void
list_more_keys(OprecScan *scan)
{
	OprecScanEngine *engine = scan->engine;
	MemoryContext oldcxt = MemoryContextSwitchTo(engine->run_cxt);
	OprecFilters *filters;
	OprecColumnFilter *keys;
	int64	   *listed;
	int			nlisted;
	int			nbatches,
				nwindows;

	engine->listing_done = !oprec_listing_next(scan, engine->listing, &listed, &nlisted);
	engine->counters.listed_keys = oprec_listing_count(engine->listing);

	/* the listed keys, sorted and distinct, as the key filter */
	filters = palloc(sizeof(OprecFilters));
	*filters = *scan->filters;
	filters->columns = palloc(sizeof(OprecColumnFilter) * scan->resource->ncolumns);
	memcpy(filters->columns, scan->filters->columns,
		   sizeof(OprecColumnFilter) * scan->resource->ncolumns);
	keys = &filters->columns[scan->resource->key_column];
	keys->active = true;
	keys->ints = listed;
	keys->nvalues = oprec_sort_unique_keys(listed, nlisted);

	engine->chains = oprec_build_chains(scan->resource, scan->options, filters,
										engine->history_start, GetCurrentTimestamp(),
										&engine->nchains, &nbatches, &nwindows);
	engine->next_chain = 0;
	engine->counters.key_batches += nbatches;
	engine->counters.time_windows = Max(engine->counters.time_windows, nwindows);
	MemoryContextSwitchTo(oldcxt);
}

/* The next chain to start, if any is left. */
static bool
take_next_chain(OprecScan *scan, OprecChain *chain)
{
	OprecScanEngine *engine = scan->engine;

	for (;;)
	{
		if (engine->redo_chains != NIL)
		{
			*chain = *(OprecChain *) linitial(engine->redo_chains);
			engine->redo_chains = list_delete_first(engine->redo_chains);
		}
		else if (engine->next_chain < engine->nchains)
			*chain = engine->chains[engine->next_chain++];
		else if (engine->listing && !engine->listing_done)
		{
			list_more_keys(scan);
			continue;
		}
		else
			return false;
		/* a chain whose every key is known not to exist has no rows */
		if (skip_missing_keys(scan, chain))
			return true;
	}
}

/* ----------------------------------------------------------------
 *		Lanes: one chain each, with its own cursor
 * ----------------------------------------------------------------
 */

/* Give an idle lane a chain, from its first page. */
static void
begin_chain(OprecLane *lane, const OprecChain *chain)
{
	MemoryContextReset(lane->chain_cxt);
	lane->active = true;
	lane->chain = *chain;
	lane->pages = 0;
	lane->cursor = chain->first_cursor ? MemoryContextStrdup(lane->chain_cxt, chain->first_cursor)
		: NULL;
	lane->seen_cursors = NULL;
	lane->empty_pages_in_a_row = 0;
	lane->renewed_token = false;
	lane->next_held = false;
}

/* Ask for the lane's next page. */
static void
send_page_request(OprecScan *scan, OprecLane *lane)
{
	OprecScanEngine *engine = scan->engine;
	MemoryContext oldcxt;

	Assert(lane->call == NULL);
	lane->page_cxt = AllocSetContextCreate(engine->run_cxt, "oprec_fdw page",
										   ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(lane->page_cxt);
	oprec_ensure_token(scan);
	lane->token_generation = scan->session->token_generation;
	lane->req = palloc(sizeof(OprecRequest));
	oprec_request_init(lane->req, "GET");
	scan->resource->build_page_request(scan, &lane->chain, lane->cursor, lane->req);
	lane->call = oprec_http_start(&engine->transport, lane->req);
	MemoryContextSwitchTo(oldcxt);
	engine->in_flight++;
}

/* The lane's request is over: free it, and its page unless kept. */
static void
end_request(OprecScan *scan, OprecLane *lane, bool keep_page)
{
	oprec_http_free(lane->call);
	lane->call = NULL;
	lane->req = NULL;
	scan->engine->in_flight--;
	if (!keep_page)
		MemoryContextDelete(lane->page_cxt);
	lane->page_cxt = NULL;
}

/*
 * Send what the budget allows: the next pages of chains in progress first
 * (the longest chain bounds the scan), then the first pages of chains not
 * started.  Pages held and requests in flight number at most
 * max_concurrency + 1: the page being read, and as many pages or requests
 * as there are lanes.
 */
static void
send_requests(OprecScan *scan)
{
	OprecScanEngine *engine = scan->engine;

	for (int pass = 0; pass < 2; pass++)
	{
		for (int i = 0; i < engine->nlanes; i++)
		{
			OprecLane  *lane = &engine->lanes[i];
			int			held = engine->nready + (engine->current ? 1 : 0);

			if (engine->in_flight >= engine->nlanes ||
				engine->in_flight + held >= engine->nlanes + 1)
				return;
			/* a wrong credential must not fail many requests at once */
			if (engine->in_flight > 0 && !oprec_session_credential_accepted(scan->session))
				return;
			if (lane->call != NULL)
				continue;
			if (pass == 0 && lane->active && !lane->next_held)
				send_page_request(scan, lane);
			else if (pass == 1 && !lane->active)
			{
				OprecChain	chain;

				if (!take_next_chain(scan, &chain))
					return;
				begin_chain(lane, &chain);
				send_page_request(scan, lane);
			}
		}
	}
}

/*
 * Remember a cursor of the lane's chain; false if it came before.  Only a
 * 64-bit hash of each is kept: a false repeat needs a hash collision
 * within one chain.
 */
static bool
remember_cursor(OprecLane *lane, const char *cursor)
{
	uint64		hash = hash_bytes_extended((const unsigned char *) cursor, strlen(cursor), 0);
	bool		found;

	if (lane->seen_cursors == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(uint64);
		ctl.hcxt = lane->chain_cxt;
		lane->seen_cursors = hash_create("oprec_fdw cursors", 64, &ctl,
										 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	(void) hash_search(lane->seen_cursors, &hash, HASH_ENTER, &found);
	return !found;
}

/* A chain that makes no progress: say so, with what was asked. */
static void
report_no_progress(OprecScan *scan, OprecRequest *req, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("the %s API is paging without progress: %s", scan->service->title, what),
			 errdetail("Request: %s.", req->summary.data),
			 errhint("The API is paging in a loop; retry later, and report it to the API provider if it persists.")));
}

/*
 * The API refused a chain's first request because a key it names does not
 * exist (Feishu refuses a whole batch for one unknown work item).  If the
 * answer said which, or the chain has one key, that key has no records:
 * the chain is asked again without it.  Otherwise the chain is split in two
 * halves, asked for first, until the unknown keys are alone.
 */
static void
split_chain(OprecScan *scan, OprecLane *lane, const OprecAnswer *answer,
			bool has_missing_key, int64 missing_key)
{
	OprecChain *chain = &lane->chain;
	OprecChain	halves[2];

	if (lane->pages > 0)
		oprec_bad_answer(answer,
						 psprintf("a %s was reported not to exist after %d pages of its records",
								  scan->resource->columns[scan->resource->key_column].name,
								  lane->pages));
	if (has_missing_key || chain->nkeys == 1)
	{
		remember_missing_key(scan, has_missing_key ? missing_key : chain->keys[0]);
		lane->active = skip_missing_keys(scan, chain);	/* asked again */
		return;
	}
	halves[0] = halves[1] = *chain;
	halves[0].nkeys = chain->nkeys / 2;
	halves[1].keys += halves[0].nkeys;
	halves[1].nkeys -= halves[0].nkeys;
	put_chains_first(scan, halves, 2);
	lane->active = false;
}

/*
 * After the first page of a probing walk (a chain that leaves out a long
 * time range): whether asking for the range's windows is expected to cost
 * fewer requests than walking the rest of the history, or to be done
 * sooner (chain.c).  A walk that ends on its first page is cheapest; an
 * answer that does not say how much history there is leaves the windows,
 * whose cost is known.
 */
static bool
windows_are_cheaper(OprecScan *scan, const OprecChain *chain, const OprecPage *page)
{
	int64		windows = oprec_window_count(scan->resource, chain);
	int64		walk_pages;

	if (!page->has_more)
		return false;
	if (!page->has_total)
		return true;
	walk_pages = (page->total + scan->options->page_size - 1) /
		Max(scan->options->page_size, 1);
	/*
	 * This page is read: the walk has the others left.  The scan's other
	 * batches decide alike, and their windows would share the lanes.
	 */
	return oprec_windows_sooner(scan->options, Max(scan->engine->counters.key_batches, 1),
								(double) windows, (double) (walk_pages - 1));
}

/*
 * Put a page at the end of the queue of pages received, with the later
 * pages of its chain if they are known (they wait for it like its next).
 */
static void
queue_page(OprecScan *scan, OprecLane *lane, OprecPage *page, OprecChain *later,
		   int nlater)
{
	OprecScanEngine *engine = scan->engine;
	MemoryContext oldcxt = MemoryContextSwitchTo(lane->page_cxt);
	OprecReadyPage *ready = palloc0(sizeof(OprecReadyPage));

	ready->cxt = lane->page_cxt;
	ready->page = *page;
	ready->chain = lane->chain;
	if (lane->active)
	{
		/* the chain's next page is asked for when this one is half read */
		ready->holds = lane;
		lane->next_held = true;
	}
	ready->later_chains = later;
	ready->nlater_chains = nlater;
	if (lane->chain.nkeys == 1)
		ready->key_json = oprec_json_owned(json_integer(lane->chain.keys[0]));
	MemoryContextSwitchTo(oldcxt);

	if (engine->ready_tail)
		engine->ready_tail->next = ready;
	else
		engine->ready_head = ready;
	engine->ready_tail = ready;
	engine->nready++;
}

/*
 * The token was refused: forget it, so that the next request gets a new
 * one, and ask again once.  Requests sent with it before are refused too;
 * they ask again with the new token.
 */
static void
renew_refused_token(OprecScan *scan, OprecLane *lane)
{
	oprec_session_token_refused(scan->session, lane->token_generation);
	end_request(scan, lane, false);
	lane->renewed_token = true;
}

/*
 * The first page of a probing walk decides between walking on and the
 * windows of its range; true if the windows replace the walk (the page is
 * dropped: no row of it was returned).
 */
static bool
walk_becomes_windows(OprecScan *scan, OprecLane *lane, const OprecPage *page)
{
	OprecScanEngine *engine = scan->engine;
	MemoryContext oldcxt;
	OprecChain *windows;
	int			nwindows;

	lane->chain.probe = false;	/* decided */
	if (!windows_are_cheaper(scan, &lane->chain, page))
		return false;
	oldcxt = MemoryContextSwitchTo(engine->run_cxt);
	windows = oprec_window_chains(scan->resource, &lane->chain, &nwindows);
	MemoryContextSwitchTo(oldcxt);
	put_chains_first(scan, windows, nwindows);
	engine->counters.time_windows = Max(engine->counters.time_windows, nwindows);
	lane->active = false;
	return true;
}

/*
 * The later pages of a chain, when its first page tells their cursors:
 * each becomes a chain of one page, and this page the chain's last.
 */
static OprecChain *
later_page_chains(OprecScan *scan, OprecLane *lane, OprecPage *page, int *nlater)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(scan->engine->run_cxt);
	OprecChain *later = palloc(sizeof(OprecChain) * page->nlater_cursors);

	for (int i = 0; i < page->nlater_cursors; i++)
	{
		later[i] = lane->chain;
		later[i].first_cursor = pstrdup(page->later_cursors[i]);
		later[i].one_page = true;
	}
	*nlater = page->nlater_cursors;
	MemoryContextSwitchTo(oldcxt);
	page->has_more = false;
	return later;
}

/*
 * Move the lane on to the next page of its chain, refusing a chain that
 * makes no progress: a missing or oversized cursor, one that came before,
 * too many empty pages in a row, or more pages than any real history has.
 */
static void
advance_cursor(OprecScan *scan, OprecLane *lane, const OprecAnswer *answer,
			   const OprecPage *page)
{
	OprecRequest *req = answer->req;
	MemoryContext oldcxt;

	if (page->next_cursor == NULL || page->next_cursor[0] == '\0')
		oprec_bad_answer(answer, "more records announced without a cursor to fetch them");
	if (strlen(page->next_cursor) > MAX_CURSOR_BYTES)
		oprec_bad_answer(answer, psprintf("a paging cursor longer than %d bytes", MAX_CURSOR_BYTES));

	lane->empty_pages_in_a_row = json_array_size(page->records) > 0
		? 0 : lane->empty_pages_in_a_row + 1;
	if (lane->empty_pages_in_a_row >= MAX_EMPTY_PAGES_IN_A_ROW)
		report_no_progress(scan, req,
						   psprintf("%d pages in a row without records, each announcing more",
									lane->empty_pages_in_a_row));
	if (lane->pages >= MAX_PAGES_PER_CHAIN)
		report_no_progress(scan, req,
						   psprintf("more than %d pages for one request chain", MAX_PAGES_PER_CHAIN));

	oldcxt = MemoryContextSwitchTo(lane->chain_cxt);
	if (!remember_cursor(lane, page->next_cursor))
	{
		const char *cursor = oprec_api_text(page->next_cursor, strlen(page->next_cursor));

		report_no_progress(scan, req,
						   psprintf("cursor \"%s\" came back after %d pages",
									cursor, lane->pages));
	}
	lane->cursor = pstrdup(page->next_cursor);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Read the answer to a lane's request: queue its page, and move the lane
 * to its next page, or to the chains that replace it.
 */
static void
receive_page(OprecScan *scan, OprecLane *lane)
{
	OprecScanEngine *engine = scan->engine;
	OprecAnswer answer;
	OprecPage	page;
	OprecAnswerOutcome outcome;
	bool		has_missing_key;
	int64		missing_key = 0;
	OprecChain *later = NULL;
	int			nlater = 0;
	MemoryContext oldcxt = MemoryContextSwitchTo(lane->page_cxt);

	memset(&page, 0, sizeof(OprecPage));
	oprec_answer_of(scan, lane->call, lane->req, &answer);
	outcome = oprec_page_answer_outcome(scan, &lane->chain,
										!lane->renewed_token && scan->renews_token,
										&answer, &has_missing_key, &missing_key);
	if (outcome == OPREC_ANSWER_RECORDS)
		scan->resource->read_page(scan, &lane->chain, lane->cursor, &answer, &page);
	MemoryContextSwitchTo(oldcxt);

	if (outcome == OPREC_ANSWER_TOKEN_REFUSED)
	{
		renew_refused_token(scan, lane);
		return;
	}
	lane->renewed_token = false;
	oprec_session_set_credential_accepted(scan->session);
	if (outcome == OPREC_ANSWER_KEY_NOT_FOUND)
	{
		split_chain(scan, lane, &answer, has_missing_key, missing_key);
		end_request(scan, lane, false);
		return;
	}
	engine->counters.pages++;
	engine->counters.records += json_array_size(page.records);
	if (lane->chain.probe && lane->pages == 0 && walk_becomes_windows(scan, lane, &page))
	{
		end_request(scan, lane, false);
		return;
	}

	lane->pages++;
	if (page.nlater_cursors > 0 && lane->pages == 1 && !lane->chain.one_page)
		later = later_page_chains(scan, lane, &page, &nlater);
	if (lane->chain.one_page)
		page.has_more = false;
	if (page.has_more)
		advance_cursor(scan, lane, &answer, &page);
	else
		lane->active = false;
	queue_page(scan, lane, &page, later, nlater);
	end_request(scan, lane, true);
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
					scan->service->title, scan->resource->columns[scan->resource->key_column].name,
					list.data, scan->scope ? " in " : "",
					scan->scope ? oprec_api_text(scan->scope, strlen(scan->scope)) : "",
					engine->nmissing > 1 ? "them" : "it")));
}

/*
 * Once the page being read is half read, ask for the next page of its
 * chain: it is on its way while the rest is read, and a LIMIT met within
 * the first half needs no more requests.
 */
static void
release_held_lane(OprecScan *scan, bool read_to_end)
{
	OprecReadyPage *current = scan->engine->current;
	size_t		nrecords = current->page.records ? json_array_size(current->page.records) : 0;

	if (current->holds == NULL && current->nlater_chains == 0)
		return;
	if (!read_to_end && scan->engine->record_index * 2 < nrecords)
		return;
	if (current->holds)
		current->holds->next_held = false;
	current->holds = NULL;
	if (current->nlater_chains > 0)
		put_chains_first(scan, current->later_chains, current->nlater_chains);
	current->nlater_chains = 0;
	if (!read_to_end)
		send_requests(scan);
}

/* Say how far the scan is, every oprec_scan_progress_ms. */
static void
report_progress(OprecScan *scan)
{
	OprecScanEngine *engine = scan->engine;
	TimestampTz now;

	if (oprec_scan_progress_ms <= 0)
		return;
	now = GetCurrentTimestamp();
	if (engine->progress_at == 0)
		engine->progress_at = now;
	if (!TimestampDifferenceExceeds(engine->progress_at, now, oprec_scan_progress_ms))
		return;
	engine->progress_at = now;
	ereport(NOTICE,
			(errmsg("reading the %s API: %lld %s values listed, %lld pages, %lld records, %lld requests so far",
					scan->service->title, (long long) engine->counters.listed_keys,
					scan->resource->columns[scan->resource->key_column].name,
					(long long) engine->counters.pages, (long long) engine->counters.records,
					(long long) engine->counters.http.requests)));
}

/*
 * Make the next page received the one rows come from, waiting for one if
 * none has arrived.  False when every chain is exhausted.
 */
static bool
next_page(OprecScan *scan)
{
	OprecScanEngine *engine = scan->engine;
	OprecCall  *calls[OPREC_MAX_CONCURRENCY];

	if (engine->current)
	{
		release_held_lane(scan, true);
		MemoryContextDelete(engine->current->cxt);
		engine->current = NULL;
	}
	for (;;)
	{
		int			done;

		send_requests(scan);
		if (engine->ready_head)
		{
			engine->current = engine->ready_head;
			engine->ready_head = engine->current->next;
			if (engine->ready_head == NULL)
				engine->ready_tail = NULL;
			engine->nready--;
			engine->record_index = 0;
			engine->row_in_record = 0;
			engine->rows_in_record = 0;
			scan->chain_key_json = engine->current->key_json;
			release_held_lane(scan, false);
			return true;
		}
		if (engine->in_flight == 0)
			return false;		/* nothing in flight, nothing to start */
		for (int i = 0; i < engine->nlanes; i++)
			calls[i] = engine->lanes[i].call;
		done = oprec_http_wait_any(&engine->transport, calls, engine->nlanes);
		Assert(done >= 0);
		receive_page(scan, &engine->lanes[done]);
		report_progress(scan);
		/* others may be done too: read them before waiting again */
		for (int i = 0; i < engine->nlanes; i++)
			if (engine->lanes[i].call && oprec_http_done(engine->lanes[i].call))
				receive_page(scan, &engine->lanes[i]);
	}
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
	value = oprec_column_value(scan, chain, record, 0, scan->resource->time_column);
	if (value == NULL || !oprec_json_epoch_ms(value, &ms))
		return false;			/* no time: no condition on time can hold */
	return ms >= chain->window_start_ms && ms < chain->window_end_ms;
}

/*
 * The next row of the scan: a record of the current page, the index of the
 * row within it, and the chain it came from.  Returns false when every
 * chain is exhausted.
 */
bool
oprec_scan_next_row(OprecScan *scan, json_t **record, int *row, const OprecChain **chain)
{
	OprecScanEngine *engine = scan->engine;

	for (;;)
	{
		OprecReadyPage *current = engine->current;

		if (current && current->page.records &&
			engine->record_index < json_array_size(current->page.records))
		{
			json_t	   *record_json = json_array_get(current->page.records, engine->record_index);

			if (engine->row_in_record == 0 && engine->rows_in_record == 0)
			{
				if (current->holds || current->nlater_chains > 0)
					release_held_lane(scan, false);
				if (!json_is_object(record_json) ||
					!record_in_window(scan, &current->chain, record_json))
				{
					engine->record_index++;
					continue;
				}
				engine->rows_in_record = scan->resource->rows_in_record
					? scan->resource->rows_in_record(record_json) : 1;
			}
			if (engine->row_in_record < engine->rows_in_record)
			{
				*record = record_json;
				*row = engine->row_in_record++;
				*chain = &current->chain;
				engine->counters.rows++;
				return true;
			}
			engine->record_index++;
			engine->row_in_record = 0;
			engine->rows_in_record = 0;
			continue;
		}

		if (!next_page(scan))
		{
			if (!engine->missing_reported)
				report_missing_keys(scan);
			return false;
		}
	}
}

/* Release everything the scan holds, curl and jansson objects included. */
void
oprec_scan_end(OprecScan *scan)
{
	MemoryContextDelete(scan->engine->scan_cxt);
}
