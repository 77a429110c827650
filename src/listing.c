/*-------------------------------------------------------------------------
 *
 * listing.c
 *		  The keys of a scan that names none: the scope's items, listed in
 *		  slices of their update time, each key handed out once.
 *
 * An API that lists items (Feishu's work_item/filter, Huawei's V4 issue
 * list) pages over a list that moves while it is read: an item edited
 * meanwhile jumps to the top, so paging by page number reads an item that
 * slides across a page boundary twice and never reads one that moves from
 * an unread page to a read one.  So no slice of the listing is read in more
 * than one page if that can be helped:
 *
 * - The first request asks for every item updated since the time range
 *   starts (or every item).  If one page holds them all, that answer is
 *   exact and the listing is over.
 * - Otherwise the range is closed at the time of that request, T, and split
 *   into slices of update time small enough for one page each (by the
 *   total the API reports), which are read one by one; a slice that still
 *   holds more than a page is split again.  The API's order does not
 *   matter: a slice read in one answer is exact when it is read.
 * - An item edited while the slices are read leaves them (its update time
 *   passes T).  A follow-up slice lists the items updated since T, less a
 *   margin for the API's clock, and created before the scan: those not
 *   listed yet are read too.  It ends the listing when one page holds it;
 *   else it is closed and split like the first, with a follow-up of its
 *   own.
 * - Only a slice one millisecond wide with more items than a page is read
 *   in pages; when its total shrinks (an item left it), it is read again
 *   from its first page.
 *
 * Every key listed is remembered: a key listed again (slices share their
 * edges, a follow-up lists items read before) is not handed out again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "oprec_fdw.h"

/*
 * How far the API's clock may be behind the database host's: a follow-up
 * lists the items updated since this long before the slices were closed.
 */
#define LISTING_CLOCK_MARGIN_MS (60 * 1000)

/* A slice is split into at most this many, each expected to fill this much of a page. */
#define LISTING_MAX_SPLIT 64
#define LISTING_PAGE_FILL 0.75

/* Follow-ups that still overflow a page: the items change faster than they can be listed. */
#define LISTING_MAX_FOLLOWUPS 20

typedef struct PendingSlice
{
	OprecKeySlice slice;
	bool		followup;		/* lists what moved while others were read */
	bool		has_first_total;	/* a paged slice: its first page's total */
	int64		first_total;
} PendingSlice;

struct OprecListing
{
	MemoryContext cxt;
	HTAB	   *listed;			/* every key handed out */
	List	   *pending;		/* PendingSlice *, the next first */
	int			followups;
};

static int64
now_ms(void)
{
	return oprec_timestamptz_to_ms_floor(GetCurrentTimestamp());
}

/* Where a slice starts: its lower end, or the floor of every listing. */
static int64
slice_from(const OprecKeySlice *slice)
{
	return slice->has_updated_from ? slice->updated_from_ms : OPREC_LISTING_FLOOR_MS;
}

static PendingSlice *
new_slice(OprecListing *listing, const OprecKeySlice *slice, bool followup)
{
	PendingSlice *p = MemoryContextAllocZero(listing->cxt, sizeof(PendingSlice));

	p->slice = *slice;
	p->followup = followup;
	return p;
}

/*
 * Begin the listing of a scan: every item updated since the time range
 * starts (filters->lower_ms), or with every_key (or no lower bound) every
 * item of the scope, in each of the resource's nvariants listings.  Its
 * state lives in cxt.
 */
OprecListing *
oprec_listing_begin(MemoryContext cxt, const OprecFilters *filters, bool every_key,
					int nvariants)
{
	OprecListing *listing = MemoryContextAllocZero(cxt, sizeof(OprecListing));
	OprecKeySlice first = {0};
	HASHCTL		ctl;

	listing->cxt = cxt;
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(int64);
	ctl.hcxt = cxt;
	listing->listed = hash_create("oprec_fdw listed keys", 256, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	if (!every_key && filters->has_lower)
	{
		first.has_updated_from = true;
		first.updated_from_ms = Max(filters->lower_ms, OPREC_LISTING_FLOOR_MS);
	}
	for (int variant = 0; variant < Max(nvariants, 1); variant++)
	{
		first.variant = variant;
		listing->pending = lappend(listing->pending, new_slice(listing, &first, false));
	}
	return listing;
}

/*
 * Split a slice that holds more than a page, closed at its upper end, into
 * slices expected to fit a page each, read before anything else pending.
 * Neighbours share their edge millisecond: whether the API reads an end as
 * inclusive is not documented, and a key listed twice is dropped.
 */
static void
split_slice(OprecListing *listing, const PendingSlice *whole, const OprecKeyPage *page)
{
	int64		from = slice_from(&whole->slice);
	int64		to = whole->slice.updated_to_ms;
	int64		width = to - from;
	int			n = 2;
	List	   *parts = NIL;

	if (page->has_total && page->nkeys > 0)
		n = (int) Min((double) LISTING_MAX_SPLIT,
					  ceil((double) page->total / (page->nkeys * LISTING_PAGE_FILL)));
	n = (int) Max(Min((int64) n, width), 2);
	for (int i = 0; i < n; i++)
	{
		OprecKeySlice part = whole->slice;

		part.has_updated_from = true;
		part.updated_from_ms = from + width * i / n;
		part.has_updated_to = true;
		part.updated_to_ms = from + width * (i + 1) / n;
		part.page = 0;
		parts = lappend(parts, new_slice(listing, &part, false));
	}
	listing->pending = list_concat(parts, listing->pending);
}

/*
 * The slice after an answer that said it holds more than that page: split
 * it (closing it at sent_ms first if it was open, with a follow-up for
 * what moves meanwhile), or, one millisecond wide, read its next page.
 */
static void
slice_overflows(OprecScan *scan, OprecListing *listing, PendingSlice *p,
				const OprecKeyPage *page, int64 sent_ms)
{
	/*
	 * Close an open slice at the time it was asked for; one that starts
	 * later than that (an API clock ahead of ours, a range in the future)
	 * cannot be closed, and is read in pages.
	 */
	if (!p->slice.has_updated_to &&
		!(p->slice.has_updated_from && p->slice.updated_from_ms >= sent_ms))
	{
		OprecKeySlice followup = {0};

		if (p->followup && ++listing->followups > LISTING_MAX_FOLLOWUPS)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("the %s API's %s values changed faster than they could be listed",
							scan->service->title, scan->resource->columns[scan->resource->key_column].name),
					 errdetail("More than a page of items was updated within a minute, %d times in a row, while the listing was read.",
							   LISTING_MAX_FOLLOWUPS),
					 errhint("Name the ids in the query, or run it again later.")));
		p->slice.has_updated_to = true;
		p->slice.updated_to_ms = sent_ms;
		followup.has_updated_from = true;
		followup.updated_from_ms = Max(sent_ms - LISTING_CLOCK_MARGIN_MS, OPREC_LISTING_FLOOR_MS);
		followup.variant = p->slice.variant;
		followup.has_created_to = true;
		followup.created_to_ms = p->slice.has_created_to ? p->slice.created_to_ms
			: sent_ms + LISTING_CLOCK_MARGIN_MS;
		listing->pending = lappend(listing->pending, new_slice(listing, &followup, true));
	}
	/* split into parts at least a millisecond apart */
	if (p->slice.page == 0 && p->slice.has_updated_to &&
		p->slice.updated_to_ms - slice_from(&p->slice) >= 2)
	{
		split_slice(listing, p, page);
		return;
	}

	/* too narrow to split (or open): its next page, or its first again if it shrank */
	if (!p->has_first_total)
	{
		p->has_first_total = page->has_total;
		p->first_total = page->total;
	}
	if (page->has_total && p->has_first_total && page->total < p->first_total)
	{
		p->slice.page = 0;
		p->first_total = page->total;
	}
	else
		p->slice.page++;
	listing->pending = lcons(p, listing->pending);
}

/*
 * The next keys of the listing not handed out before, in the current memory
 * context; false when the listing is over.  Sends one listing request per
 * call at most (nkeys may be 0 while it is not over).
 */
bool
oprec_listing_next(OprecScan *scan, OprecListing *listing, int64 **keys, int *nkeys)
{
	PendingSlice *p;
	OprecKeyPage page;
	int64		sent_ms;
	bool		has_more;

	*keys = NULL;
	*nkeys = 0;
	if (listing->pending == NIL)
		return false;
	p = linitial(listing->pending);
	listing->pending = list_delete_first(listing->pending);

	memset(&page, 0, sizeof(page));
	sent_ms = now_ms();
	scan->resource->list_keys(scan, &p->slice, &page);
	/* more: up to the total if the answer says it, else while pages are full */
	has_more = page.has_total
		? (int64) p->slice.page * scan->resource->list_page_size + page.nkeys < page.total
		: page.nkeys >= scan->resource->list_page_size;
	if (has_more && page.nkeys == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the %s API is listing %s values without progress",
						scan->service->title, scan->resource->columns[scan->resource->key_column].name),
				 errdetail("An answer announced more items without any."),
				 errhint("Retry later; name the ids in the query to avoid the listing.")));

	*keys = palloc(sizeof(int64) * Max(page.nkeys, 1));
	for (int i = 0; i < page.nkeys; i++)
	{
		bool		found;

		(void) hash_search(listing->listed, &page.keys[i], HASH_ENTER, &found);
		if (!found)
			(*keys)[(*nkeys)++] = page.keys[i];
	}
	if (has_more)
		slice_overflows(scan, listing, p, &page, sent_ms);
	return true;
}

/* How many distinct keys the listing has handed out. */
int64
oprec_listing_count(const OprecListing *listing)
{
	return (int64) hash_get_num_entries(listing->listed);
}
