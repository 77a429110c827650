/*-------------------------------------------------------------------------
 *
 * pace.c
 *		  Pacing of requests per credential: at most requests_per_second
 *		  requests complete in any one-second window, slower after the API
 *		  throttles, and counted across the cluster when preloaded.
 *
 * A credential is a pace key: taken from the digest that names it (the
 * API, the base URL, the user mapping's options and the server options
 * that name the credential; session.c), so that two user mappings holding
 * the same token on the same host share one pace (the API counts the
 * token, not the mapping).
 *
 * Each credential has a window (OprecPaceWindow): one entry per recent
 * request, holding its send time while it is in flight and its completion
 * time afterwards.  A request may be sent when the requests in flight plus
 * those completed within the last PACE_WINDOW_MS number fewer than the rate.
 * That bounds the completions in every window: of the requests completing
 * within one, the one sent last saw every other either completed within the
 * second before it was sent, or in flight.  Completion times are used
 * because a request that completed has certainly reached the API, so a gap
 * of a full window after it cannot be counted in the same second there.
 *
 * Adaptive rate.  A throttling answer halves the rate of its credential (at
 * least 1 request per second); it then recovers by one request per second
 * every PACE_RECOVER_STEP_MS without another.  Throttling answers to
 * requests sent before the last halving do not halve it again: they were
 * sent at the old rate, which has already been corrected.
 *
 * Where windows live.  When the library is in shared_preload_libraries the
 * windows are in shared memory, PACE_SLOTS of them keyed by pace key under
 * one LWLock, so that every backend of the cluster counts against the same
 * quota.  Otherwise each backend paces its own requests, in the window of
 * its session (one per user mapping); several backends then share a quota
 * without knowing of each other, and throttling answers are retried.
 *
 * Requests in flight.  A backend may have many requests in flight at once
 * (a scan runs several request chains together, and several scans may be
 * open).  Each holds a ticket: its entry in the window, so that its
 * completion turns the send time into the completion time in place.  The
 * ticket is settled when curl reports the transfer done, whichever scan
 * happens to drive the multi handle (http.c), not when its own scan reads
 * the answer, which may be much later; a ticket whose request is abandoned
 * (its transfer freed, an error, an abort) is settled as completed then:
 * the request may have reached the API.  A request taken back before it
 * was sent gives its entry back (oprec_pace_withdraw).
 *
 * The lock is never held while waiting nor across anything that can raise
 * an error.  The caller waits (on the latch) as long as oprec_pace_reserve
 * says.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "oprec_fdw.h"

/* Requests are paced over this window (the APIs' quotas are per second). */
#define PACE_WINDOW_MS 1000
/* One more millisecond: the API's clock and ours tick differently. */
#define PACE_WINDOW_US ((int64) (PACE_WINDOW_MS + 1) * 1000)

/* After throttling, the rate grows by one request per second this often. */
#define PACE_RECOVER_STEP_MS 2000

/*
 * How long to wait before looking again when the rate is taken by requests
 * in flight: their completion times, which decide the wait, are not known
 * yet.  Nothing signals a completion to the other backends.
 */
#define PACE_POLL_MS 20

/*
 * A request in flight for longer than this is taken to have been abandoned
 * by a backend that could not say so.  No transfer lasts this long
 * (request_timeout is at most 1 hour, connect_timeout 10 minutes); aborts
 * and exits settle their requests (settle), so this is only a
 * backstop against a slot blocked for good.
 */
#define PACE_STALE_IN_FLIGHT_US ((int64) 2 * 3600 * USECS_PER_SEC)

/* A window has an entry per request (requests_per_second at most). */
#define OPREC_PACE_ENTRIES 1024

/*
 * Recent requests of one credential: the send time of each request in
 * flight, the completion time of the others, and the rate after the API
 * throttled.  In shared memory when the library is preloaded.
 */
typedef struct OprecPaceWindow
{
	TimestampTz times[OPREC_PACE_ENTRIES];	/* 0: unused */
	bool		sending[OPREC_PACE_ENTRIES];	/* times[i] is a send time */
	int			limit;			/* requests_per_second last asked for */
	int			lowered_rate;	/* rate set by the last throttling... */
	TimestampTz lowered_at;		/* ...at this time; 0: none */
} OprecPaceWindow;

/* Shared windows; 128 credentials in use at once is far beyond need. */
#define PACE_SLOTS 128
#define PACE_TRANCHE "oprec_fdw"

typedef struct PaceSlot
{
	bool		used;
	uint32		generation;		/* changes whenever the slot is (re)used */
	uint64		key;
	TimestampTz last_used;
	OprecPaceWindow window;
} PaceSlot;

typedef struct PaceTable
{
	LWLock	   *lock;			/* protects everything below */
	uint32		next_generation;
	PaceSlot	slots[PACE_SLOTS];
} PaceTable;

/* The shared table, or NULL when pacing is per backend. */
static PaceTable *pace_table = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * The requests this backend sent and has not reported done, each at the
 * index its ticket names.  Remembering where a request's window entry is
 * lets oprec_pace_complete turn the send time into the completion time in
 * place; recording the completion as a second entry instead would count
 * every request twice within a window while it is short, halving the rate.
 * In shared memory the slot may have been given to another credential
 * since; its generation tells, and then the completion is recorded anew.
 */
typedef struct PendingRequest
{
	uint64		serial;			/* the ticket's; 0: free */
	bool		paced;			/* false: requests_per_second was 0 */
	SubTransactionId subid;		/* reserved in this subtransaction */
	uint64		key;
	OprecPaceWindow *local;		/* the session's window, or NULL: shared */
	int			slot;			/* shared: slot and its generation */
	uint32		generation;
	int			pos;			/* the entry in the window */
	TimestampTz sent;
} PendingRequest;

static PendingRequest *pending = NULL;	/* in TopMemoryContext */
static int	npending = 0;		/* allocated entries */
static uint64 next_serial = 1;

static bool callbacks_registered = false;


/* ----------------------------------------------------------------
 *		Windows (the caller holds the lock of a shared one)
 * ----------------------------------------------------------------
 */

/* The rate in effect: requests_per_second, or less after throttling. */
static int
effective_rate(const OprecPaceWindow *w, int requests_per_second, TimestampTz now)
{
	int			rate = Min(requests_per_second, OPREC_MAX_REQUESTS_PER_SECOND);

	if (w->lowered_at != 0)
	{
		int64		steps = (now - w->lowered_at) / (PACE_RECOVER_STEP_MS * INT64CONST(1000));

		steps = Max(steps, 0);	/* the clock went back */
		if (steps < OPREC_MAX_REQUESTS_PER_SECOND)
			rate = Min(rate, w->lowered_rate + (int) steps);
	}
	return Max(rate, 1);
}

static int
compare_timestamps(const void *a, const void *b)
{
	return timestamptz_cmp_internal(*(const TimestampTz *) a, *(const TimestampTz *) b);
}

/*
 * Reserve an entry for a request sent now, if the rate allows: return 0 and
 * its position.  Else return how many ms to wait before trying again.
 */
static long
window_reserve(OprecPaceWindow *w, int requests_per_second, TimestampTz now,
			   int *pos)
{
	int			rate;
	int			counted = 0;
	int			ncompleted = 0;
	TimestampTz completed[OPREC_PACE_ENTRIES];
	int			free_pos = -1;
	int			expire;

	w->limit = requests_per_second;
	rate = effective_rate(w, requests_per_second, now);

	for (int i = 0; i < OPREC_PACE_ENTRIES; i++)
	{
		TimestampTz t = w->times[i];

		if (w->sending[i])
		{
			if (now - t < PACE_STALE_IN_FLIGHT_US)
			{
				counted++;
				continue;
			}
			w->sending[i] = false;
		}
		else if (t != 0 && now - t < PACE_WINDOW_US)
		{
			completed[ncompleted++] = t;
			counted++;
			continue;
		}
		/* free: reuse the oldest, so the window reads like a history */
		if (free_pos < 0 || t < w->times[free_pos])
			free_pos = i;
	}

	if (counted < rate)
	{
		/* counted < rate < OPREC_PACE_ENTRIES: some entry is free */
		Assert(free_pos >= 0);
		w->times[free_pos] = now;
		w->sending[free_pos] = true;
		*pos = free_pos;
		return 0;
	}

	/* wait until enough completed entries leave the window */
	expire = counted - rate + 1;
	if (ncompleted < expire)
		return PACE_POLL_MS;
	qsort(completed, ncompleted, sizeof(TimestampTz), compare_timestamps);
	return Max(oprec_ms_until(completed[expire - 1] + PACE_WINDOW_US), 1);
}

/* Record a completion that has no entry of its own: in the oldest free one. */
static void
window_add_completion(OprecPaceWindow *w, TimestampTz now)
{
	int			pos = -1;

	for (int i = 0; i < OPREC_PACE_ENTRIES; i++)
	{
		if (w->sending[i])
			continue;
		if (pos < 0 || w->times[i] < w->times[pos])
			pos = i;
	}
	if (pos >= 0)
		w->times[pos] = now;
}

/* A request completed: its entry at pos (or -1: unknown) gets the time. */
static void
window_complete(OprecPaceWindow *w, int pos, TimestampTz sent, TimestampTz now)
{
	if (pos >= 0 && w->sending[pos] && w->times[pos] == sent)
	{
		w->times[pos] = now;
		w->sending[pos] = false;
	}
	else
		window_add_completion(w, now);
}

/* A request reserved at pos was never sent: free its entry. */
static void
window_remove(OprecPaceWindow *w, int pos, TimestampTz sent)
{
	if (pos >= 0 && w->sending[pos] && w->times[pos] == sent)
	{
		w->times[pos] = 0;
		w->sending[pos] = false;
	}
}

/*
 * The API throttled a request sent at sent (0: unknown).  Halve the rate,
 * and return the new rate if it went down, else 0.
 */
static int
window_throttled(OprecPaceWindow *w, TimestampTz sent, TimestampTz now)
{
	int			before;

	if (sent != 0 && w->lowered_at != 0 && sent < w->lowered_at)
		return 0;
	before = effective_rate(w, w->limit > 0 ? w->limit : OPREC_MAX_REQUESTS_PER_SECOND, now);
	w->lowered_rate = Max(before / 2, 1);
	w->lowered_at = now;
	return w->lowered_rate < before ? w->lowered_rate : 0;
}

/* Nothing in flight, nothing recent, no rate still recovering. */
static bool
window_idle(const OprecPaceWindow *w, TimestampTz now)
{
	for (int i = 0; i < OPREC_PACE_ENTRIES; i++)
		if (w->sending[i] || (w->times[i] != 0 && now - w->times[i] < PACE_WINDOW_US))
			return false;
	return w->lowered_at == 0 ||
		now - w->lowered_at >=
		(int64) OPREC_MAX_REQUESTS_PER_SECOND * PACE_RECOVER_STEP_MS * 1000;
}


/* ----------------------------------------------------------------
 *		The shared table
 * ----------------------------------------------------------------
 */

static Size
pace_shmem_size(void)
{
	return sizeof(PaceTable);
}

#if PG_VERSION_NUM >= 150000
static void
pace_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(pace_shmem_size());
	RequestNamedLWLockTranche(PACE_TRANCHE, 1);
}
#endif

static void
pace_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	pace_table = ShmemInitStruct("oprec_fdw pacing", pace_shmem_size(), &found);
	if (!found)
	{
		memset(pace_table, 0, pace_shmem_size());
		pace_table->lock = &(GetNamedLWLockTranche(PACE_TRANCHE))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * The slot of a key, taken if it has none: a free one, else the least
 * recently used of the idle ones, else the least recently used.  Taking a
 * busy slot forgets that credential's recent requests; with PACE_SLOTS
 * credentials busy within the same second that is the lesser harm.  The
 * caller holds the lock exclusively.
 */
static int
find_slot(uint64 key, TimestampTz now)
{
	int			victim = -1;
	bool		victim_idle = false;
	PaceSlot   *slot;

	for (int i = 0; i < PACE_SLOTS; i++)
	{
		PaceSlot   *s = &pace_table->slots[i];
		bool		idle;

		if (s->used && s->key == key)
		{
			s->last_used = now;
			return i;
		}
		idle = !s->used || window_idle(&s->window, now);
		if (victim < 0 || (idle && !victim_idle) ||
			(idle == victim_idle && s->last_used < pace_table->slots[victim].last_used))
		{
			victim = i;
			victim_idle = idle;
		}
	}

	slot = &pace_table->slots[victim];
	memset(slot, 0, sizeof(PaceSlot));
	slot->used = true;
	slot->key = key;
	slot->generation = ++pace_table->next_generation;
	slot->last_used = now;
	return victim;
}


/* ----------------------------------------------------------------
 *		Requests in flight
 * ----------------------------------------------------------------
 */

/*
 * Settle a pending request as completed now: it was abandoned, but may
 * have reached the API.  Never throws.
 */
static void
settle(PendingRequest *p)
{
	PendingRequest copy = *p;

	p->serial = 0;
	if (copy.serial == 0 || !copy.paced)
		return;
	if (copy.local)
		window_complete(copy.local, copy.pos, copy.sent, GetCurrentTimestamp());
	else
	{
		PaceSlot   *slot = &pace_table->slots[copy.slot];

		LWLockAcquire(pace_table->lock, LW_EXCLUSIVE);
		if (slot->used && slot->generation == copy.generation)
			window_complete(&slot->window, copy.pos, copy.sent, GetCurrentTimestamp());
		LWLockRelease(pace_table->lock);
	}
}

/*
 * An abort settles the requests its (sub)transaction sent whose tickets
 * are still held, so that a backend left idle after a cancel holds no
 * place in a shared window.  Freeing a transfer settles its ticket too
 * (oprec_pace_complete); this is the backstop.  LWLocks are released
 * before these callbacks run; an exit aborts the transaction too.
 */
static void
pace_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		for (int i = 0; i < npending; i++)
			settle(&pending[i]);
}

static void
pace_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		for (int i = 0; i < npending; i++)
			if (pending[i].serial != 0 && pending[i].subid >= mySubid)
				settle(&pending[i]);
}

/* A free entry for a new pending request; may throw (before any change). */
static int
free_pending_entry(void)
{
	int			grown;
	int			first_new = npending;

	for (int i = 0; i < npending; i++)
		if (pending[i].serial == 0)
			return i;
	grown = Max(16, npending * 2);
	if (pending == NULL)
		pending = MemoryContextAllocZero(TopMemoryContext, sizeof(PendingRequest) * grown);
	else
	{
		pending = repalloc(pending, sizeof(PendingRequest) * grown);
		memset(&pending[npending], 0, sizeof(PendingRequest) * (grown - npending));
	}
	npending = grown;
	return first_new;
}

/* The pending request a ticket names, or NULL if it was settled. */
static PendingRequest *
ticket_request(const OprecPaceTicket *ticket)
{
	if (ticket->serial == 0 || ticket->index < 0 || ticket->index >= npending ||
		pending[ticket->index].serial != ticket->serial)
		return NULL;
	return &pending[ticket->index];
}


/* ----------------------------------------------------------------
 *		Interface
 * ----------------------------------------------------------------
 */

/* From _PG_init: reserve the shared table if being preloaded. */
void
oprec_pace_init(void)
{
	StaticAssertStmt(OPREC_MAX_REQUESTS_PER_SECOND < OPREC_PACE_ENTRIES,
					 "a window has an entry for every request it counts");

	if (!process_shared_preload_libraries_in_progress)
		return;

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pace_shmem_request;
#else
	RequestAddinShmemSpace(pace_shmem_size());
	RequestNamedLWLockTranche(PACE_TRANCHE, 1);
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pace_shmem_startup;
}

/*
 * The credential a session's requests count against: the first bytes of
 * the digest that names it (session.c), already a hash of its parts.
 */
uint64
oprec_pace_key(const OprecSession *session)
{
	uint64		key;

	StaticAssertStmt(sizeof(key) <= OPREC_CREDENTIAL_DIGEST_LEN, "a key fits in a digest");
	memcpy(&key, session->credential, sizeof(key));
	return key;
}

/*
 * Before each request: reserve its place in the credential's window if
 * the rate allows one more request now, and return 0 with its ticket; else
 * return how many ms to wait before asking again.  requests_per_second 0
 * sends at once and counts nothing (the ticket still has to be done).
 */
long
oprec_pace_reserve(OprecSession *session, uint64 pace_key, int requests_per_second,
				   OprecPaceTicket *ticket)
{
	int			index = free_pending_entry();
	PendingRequest *p = &pending[index];
	TimestampTz now;
	long		wait_ms;
	int			pos = -1;

	if (!callbacks_registered)
	{
		RegisterXactCallback(pace_xact_callback, NULL);
		RegisterSubXactCallback(pace_subxact_callback, NULL);
		callbacks_registered = true;
		/* the one place that says which pacing is in effect */
		ereport(DEBUG1,
				(errmsg_internal("oprec_fdw: requests are paced %s",
								 pace_table ? "across all backends (shared memory)"
								 : "per backend (oprec_fdw is not in shared_preload_libraries)")));
	}
	if (!pace_table && session->pace == NULL)
		session->pace = MemoryContextAllocZero(TopMemoryContext, sizeof(OprecPaceWindow));

	memset(p, 0, sizeof(PendingRequest));
	p->key = pace_key;
	p->subid = GetCurrentSubTransactionId();
	if (requests_per_second <= 0)
		wait_ms = 0;
	else if (pace_table)
	{
		int			s;

		requests_per_second = Min(requests_per_second, OPREC_MAX_REQUESTS_PER_SECOND);
		LWLockAcquire(pace_table->lock, LW_EXCLUSIVE);
		now = GetCurrentTimestamp();
		s = find_slot(pace_key, now);
		wait_ms = window_reserve(&pace_table->slots[s].window,
								 requests_per_second, now, &pos);
		if (wait_ms == 0)
		{
			p->paced = true;
			p->slot = s;
			p->generation = pace_table->slots[s].generation;
			p->sent = now;
		}
		LWLockRelease(pace_table->lock);
	}
	else
	{
		requests_per_second = Min(requests_per_second, OPREC_MAX_REQUESTS_PER_SECOND);
		now = GetCurrentTimestamp();
		wait_ms = window_reserve(session->pace, requests_per_second, now, &pos);
		if (wait_ms == 0)
		{
			p->paced = true;
			p->local = session->pace;
			p->sent = now;
		}
	}
	if (wait_ms > 0)
		return wait_ms;

	p->pos = pos;
	p->serial = next_serial++;
	ticket->index = index;
	ticket->serial = p->serial;
	ticket->sent = p->paced ? p->sent : GetCurrentTimestamp();
	return 0;
}

/*
 * A request ended (its transfer finished, however, or was abandoned): its
 * entry gets its completion time, now; the request may have reached the
 * API.  The ticket is spent.  Never throws: curl's completions are
 * collected, and memory context callbacks run, where no error may be
 * raised.
 */
void
oprec_pace_complete(OprecPaceTicket *ticket)
{
	PendingRequest *p = ticket_request(ticket);

	ticket->serial = 0;
	if (p)
		settle(p);
}

/*
 * A request that was never sent (taken back before its transfer wrote
 * anything): its entry is removed, as if it had never been reserved.  The
 * ticket is spent.  Never throws.
 */
void
oprec_pace_withdraw(OprecPaceTicket *ticket)
{
	PendingRequest *found = ticket_request(ticket);
	PendingRequest p;

	ticket->serial = 0;
	if (found == NULL)
		return;
	p = *found;
	found->serial = 0;
	if (!p.paced)
		return;
	if (p.local)
		window_remove(p.local, p.pos, p.sent);
	else
	{
		PaceSlot   *slot = &pace_table->slots[p.slot];

		LWLockAcquire(pace_table->lock, LW_EXCLUSIVE);
		if (slot->used && slot->generation == p.generation)
			window_remove(&slot->window, p.pos, p.sent);
		LWLockRelease(pace_table->lock);
	}
}

/*
 * The API answered a request sent at sent (0: unknown) that the quota was
 * exceeded: slow the credential down (see window_throttled).
 */
void
oprec_pace_throttled(OprecSession *session, uint64 pace_key, TimestampTz sent)
{
	int			lowered;

	if (pace_table)
	{
		LWLockAcquire(pace_table->lock, LW_EXCLUSIVE);
		lowered = window_throttled(&pace_table->slots[find_slot(pace_key, GetCurrentTimestamp())].window,
								   sent, GetCurrentTimestamp());
		LWLockRelease(pace_table->lock);
	}
	else
	{
		if (session->pace == NULL)
			return;
		lowered = window_throttled(session->pace, sent, GetCurrentTimestamp());
	}
	if (lowered > 0)
		ereport(DEBUG1,
				(errmsg_internal("oprec_fdw: the API throttled a request: its credential is now paced at %d requests per second %s",
								 lowered, pace_table ? "across all backends" : "in this backend")));
}

/* ----------------------------------------------------------------
 *		The pace of a credential, for SQL
 * ----------------------------------------------------------------
 */

/* What a window holds now. */
static void
window_counts(const OprecPaceWindow *w, int requests_per_second, TimestampTz now,
			  OprecPaceCounts *counts)
{
	memset(counts, 0, sizeof(OprecPaceCounts));
	counts->rate = requests_per_second > 0 ? effective_rate(w, requests_per_second, now) : 0;
	for (int i = 0; i < OPREC_PACE_ENTRIES; i++)
	{
		if (w->sending[i] && now - w->times[i] < PACE_STALE_IN_FLIGHT_US)
			counts->in_flight++;
		else if (!w->sending[i] && w->times[i] != 0 && now - w->times[i] < PACE_WINDOW_US)
			counts->recent++;
	}
}

/*
 * The pace of the credential a table's requests count against, as
 * options resolve it: whether it is shared by the cluster's backends, and
 * its counts now.
 */
void
oprec_pace_counts(const OprecOptions *options, OprecPaceCounts *counts)
{
	OprecSession *session = oprec_get_session(options);
	uint64		key = oprec_pace_key(session);
	TimestampTz now = GetCurrentTimestamp();

	memset(counts, 0, sizeof(OprecPaceCounts));
	if (pace_table)
	{
		LWLockAcquire(pace_table->lock, LW_SHARED);
		for (int i = 0; i < PACE_SLOTS; i++)
			if (pace_table->slots[i].used && pace_table->slots[i].key == key)
				window_counts(&pace_table->slots[i].window, options->requests_per_second,
							  now, counts);
		LWLockRelease(pace_table->lock);
	}
	else if (session->pace)
		window_counts(session->pace, options->requests_per_second, now, counts);
	if (counts->rate == 0 && options->requests_per_second > 0)
		counts->rate = Min(options->requests_per_second, OPREC_MAX_REQUESTS_PER_SECOND);
	counts->shared = pace_table != NULL;
}
