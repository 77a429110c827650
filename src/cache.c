/*-------------------------------------------------------------------------
 *
 * cache.c
 *		  Rows of a rescanned scan, kept for repeated values within a query.
 *
 * A parameterized scan is run again for every outer row of a nested loop.
 * When an outer value repeats, the API would be asked the same thing again;
 * instead the rows of each complete scan are kept, by what it asked for
 * (the evaluated filters), and served again.  The planner's Memoize node
 * does the same when its estimates show repeated values; this cache also
 * works when they cannot (a VALUES list, a function, a subquery).  It is
 * bounded by work_mem: past it, nothing more is kept.  Rows are kept as
 * the scan returns them, before the local conditions, which the executor
 * applies again with the outer row's values.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/tuptable.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "oprec_fdw.h"

typedef struct CacheEntry
{
	uint64		hash;			/* hash key: of the signature */
	char	   *signature;		/* what the scan asked for */
	MinimalTuple *rows;
	int			nrows;
} CacheEntry;

struct OprecRowCache
{
	MemoryContext cxt;
	HTAB	   *entries;
	Size		max_bytes;
	bool		full;			/* over max_bytes: keep nothing more */

	/* the scan being recorded */
	char	   *filling;		/* its signature, or NULL */
	uint64		filling_hash;
	MinimalTuple *fill_rows;
	int			fill_count;
	int			fill_capacity;

	/* the entry being served */
	CacheEntry *serving;
	int			serve_index;

	int64		hits;			/* scans served from the cache */
};

OprecRowCache *
oprec_cache_create(MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "oprec_fdw rescan cache",
											  ALLOCSET_DEFAULT_SIZES);
	OprecRowCache *cache = MemoryContextAllocZero(cxt, sizeof(OprecRowCache));
	HASHCTL		ctl;

	cache->cxt = cxt;
	cache->max_bytes = (Size) work_mem * 1024;
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(CacheEntry);
	ctl.hcxt = cxt;
	cache->entries = hash_create("oprec_fdw rescan cache", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return cache;
}

/* What a scan asks for, as a string: equal filters ask for the same. */
char *
oprec_filters_signature(const OprecResource *res, const OprecFilters *filters)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (filters->empty)
		return pstrdup("empty");
	for (int c = 0; c < res->ncolumns; c++)
	{
		const OprecColumnFilter *f = &filters->columns[c];

		if (!f->active)
			continue;
		appendStringInfo(&buf, "%d:", c);
		for (int i = 0; i < f->nvalues; i++)
		{
			if (f->ints)
				appendStringInfo(&buf, INT64_FORMAT ",", f->ints[i]);
			else
			{
				/* the length first: values may hold any character */
				appendStringInfo(&buf, "%zu:%s,", strlen(f->strs[i]), f->strs[i]);
			}
		}
		appendStringInfoChar(&buf, ';');
	}
	if (filters->has_lower)
		appendStringInfo(&buf, "from:" INT64_FORMAT ";", filters->lower_ms);
	if (filters->has_upper)
		appendStringInfo(&buf, "to:" INT64_FORMAT ";", filters->upper_ms);
	return buf.data;
}

/*
 * Start a scan asking for signature: serve it from the cache if a complete
 * scan asked for the same (returns true), else record its rows.
 */
bool
oprec_cache_start(OprecRowCache *cache, const char *signature)
{
	uint64		hash = hash_bytes_extended((const unsigned char *) signature,
										   strlen(signature), 0);
	bool		found;
	CacheEntry *entry;

	oprec_cache_abandon(cache);
	cache->serving = NULL;
	entry = hash_search(cache->entries, &hash, HASH_FIND, &found);
	if (found && strcmp(entry->signature, signature) != 0)
		return false;			/* two signatures, one hash: not kept */
	if (found)
	{
		cache->serving = entry;
		cache->serve_index = 0;
		cache->hits++;
		return true;
	}
	if (!cache->full)
	{
		cache->filling = MemoryContextStrdup(cache->cxt, signature);
		cache->filling_hash = hash;
		cache->fill_count = 0;
		cache->fill_capacity = 0;
		cache->fill_rows = NULL;
	}
	return false;
}

/* The next row served from the cache into slot; false after the last. */
bool
oprec_cache_next(OprecRowCache *cache, TupleTableSlot *slot)
{
	CacheEntry *entry = cache->serving;

	if (entry == NULL || cache->serve_index >= entry->nrows)
		return false;
	ExecForceStoreMinimalTuple(entry->rows[cache->serve_index++], slot, false);
	return true;
}

/* Record a row of the scan being recorded. */
void
oprec_cache_add(OprecRowCache *cache, TupleTableSlot *slot)
{
	MemoryContext oldcxt;

	if (cache->filling == NULL)
		return;
	if (MemoryContextMemAllocated(cache->cxt, true) > cache->max_bytes)
	{
		cache->full = true;
		oprec_cache_abandon(cache);
		return;
	}
	oldcxt = MemoryContextSwitchTo(cache->cxt);
	if (cache->fill_count == cache->fill_capacity)
	{
		cache->fill_capacity = Max(16, cache->fill_capacity * 2);
		cache->fill_rows = cache->fill_rows
			? repalloc(cache->fill_rows, sizeof(MinimalTuple) * cache->fill_capacity)
			: palloc(sizeof(MinimalTuple) * cache->fill_capacity);
	}
	cache->fill_rows[cache->fill_count++] = ExecCopySlotMinimalTuple(slot);
	MemoryContextSwitchTo(oldcxt);
}

/* The scan being recorded ended with its last row: keep it. */
void
oprec_cache_complete(OprecRowCache *cache)
{
	CacheEntry *entry;
	bool		found;

	if (cache->filling == NULL)
		return;
	entry = hash_search(cache->entries, &cache->filling_hash, HASH_ENTER, &found);
	if (found)
	{
		oprec_cache_abandon(cache);
		return;
	}
	entry->signature = cache->filling;
	entry->rows = cache->fill_rows;
	entry->nrows = cache->fill_count;
	cache->filling = NULL;
	cache->fill_rows = NULL;
}

/* The scan being recorded stops before its end: keep nothing of it. */
void
oprec_cache_abandon(OprecRowCache *cache)
{
	if (cache->filling == NULL)
		return;
	for (int i = 0; i < cache->fill_count; i++)
		pfree(cache->fill_rows[i]);
	if (cache->fill_rows)
		pfree(cache->fill_rows);
	pfree(cache->filling);
	cache->filling = NULL;
	cache->fill_rows = NULL;
	cache->fill_count = 0;
}

int64
oprec_cache_hits(const OprecRowCache *cache)
{
	return cache->hits;
}
