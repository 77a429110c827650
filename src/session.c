/*-------------------------------------------------------------------------
 *
 * session.c
 *		  Per-backend state shared by the scans of one user mapping: the
 *		  cached API token and the pacing of requests.
 *
 * Sessions live for the backend's lifetime, keyed by user mapping, like
 * postgres_fdw's connections.  ALTER or DROP of the user mapping or its
 * server forgets the cached token (a changed secret must not keep working
 * through an old token).  Tokens are kept in TopMemoryContext and never
 * appear in messages.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_user_mapping.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "oprec_fdw.h"

/* Requests are paced over this window (the APIs' quotas are per second). */
#define PACING_WINDOW_MS 1000

static HTAB *session_hash = NULL;

static void
forget(OprecSession *session)
{
	if (session->token)
	{
		/* overwrite before freeing: it is a credential */
		explicit_bzero(session->token, strlen(session->token));
		pfree(session->token);
	}
	session->token = NULL;
	session->token_expires = 0;
}

/* A server or user mapping changed: forget what was cached for it. */
static void
invalidation_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	OprecSession *session;

	hash_seq_init(&scan, session_hash);
	while ((session = hash_seq_search(&scan)) != NULL)
	{
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID && session->server_hashvalue == hashvalue) ||
			(cacheid == USERMAPPINGOID && session->mapping_hashvalue == hashvalue))
		{
			forget(session);
			session->valid = false;
		}
	}
}

OprecSession *
oprec_get_session(Oid user_mapping_id)
{
	OprecSession *session;
	bool		found;

	if (session_hash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(OprecSession);
		session_hash = hash_create("oprec_fdw sessions", 8, &ctl,
								   HASH_ELEM | HASH_BLOBS);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, invalidation_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID, invalidation_callback, (Datum) 0);
	}

	session = hash_search(session_hash, &user_mapping_id, HASH_ENTER, &found);
	if (!found)
	{
		memset(((char *) session) + sizeof(Oid), 0, sizeof(OprecSession) - sizeof(Oid));
		session->valid = false;
	}
	if (!session->valid)
	{
		HeapTuple	tup = SearchSysCache1(USERMAPPINGOID, ObjectIdGetDatum(user_mapping_id));
		Oid			serverid = InvalidOid;

		if (HeapTupleIsValid(tup))
		{
			serverid = ((Form_pg_user_mapping) GETSTRUCT(tup))->umserver;
			ReleaseSysCache(tup);
		}
		session->mapping_hashvalue =
			GetSysCacheHashValue1(USERMAPPINGOID, ObjectIdGetDatum(user_mapping_id));
		session->server_hashvalue =
			GetSysCacheHashValue1(FOREIGNSERVEROID, ObjectIdGetDatum(serverid));
		session->valid = true;
	}
	return session;
}

void
oprec_session_set_token(OprecSession *session, const char *token, TimestampTz expires)
{
	forget(session);
	session->token = MemoryContextStrdup(TopMemoryContext, token);
	session->token_expires = expires;
}

void
oprec_session_forget_token(OprecSession *session)
{
	forget(session);
}

/* A token is usable if present and not within renew_margin_sec of expiry. */
bool
oprec_session_token_usable(OprecSession *session, int renew_margin_sec)
{
	if (session->token == NULL)
		return false;
	if (session->token_expires == 0)
		return true;
	return GetCurrentTimestamp() <
		TimestampTzPlusMilliseconds(session->token_expires,
									-(int64) renew_margin_sec * 1000);
}

/*
 * Wait, if needed, so that no more than requests_per_second requests of
 * this session complete within any one-second window.  Completion times are
 * used: a request that completed has certainly reached the API, so a gap of
 * a full window after it cannot be counted in the same second there.  The
 * wait is on the latch, so a cancel interrupts it.
 */
void
oprec_session_pace(OprecSession *session, int requests_per_second)
{
	int			oldest;

	if (requests_per_second <= 0)
		return;
	requests_per_second = Min(requests_per_second, OPREC_MAX_RATE_WINDOW);
	oldest = (session->recent_next - requests_per_second + OPREC_MAX_RATE_WINDOW)
		% OPREC_MAX_RATE_WINDOW;

	for (;;)
	{
		TimestampTz until;
		long		wait_ms;

		if (session->recent[oldest] == 0)
			return;
		until = TimestampTzPlusMilliseconds(session->recent[oldest], PACING_WINDOW_MS + 1);
		wait_ms = oprec_ms_until(until);
		if (wait_ms <= 0)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

void
oprec_session_record_request(OprecSession *session)
{
	session->recent[session->recent_next] = GetCurrentTimestamp();
	session->recent_next = (session->recent_next + 1) % OPREC_MAX_RATE_WINDOW;
}
