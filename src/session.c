/*-------------------------------------------------------------------------
 *
 * session.c
 *		  Per-backend state shared by the scans of one user mapping: the
 *		  cached API token (and the pacing state pace.c keeps there).
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
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "oprec_fdw.h"

static HTAB *session_hash = NULL;

static void
forget(OprecSession *session)
{
	if (session->token)
		pfree(session->token);
	session->token = NULL;
	session->token_renew_at = 0;
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
		session->credential_accepted = false;	/* the mapping may have changed */
	}
	return session;
}

/*
 * Cache a token the API issued.  It goes into a header of every request,
 * so a token with a control character is refused on receipt.  It is
 * renewed renew_margin_sec before it expires, or half-way through its
 * life if that is shorter: a token that lasts seconds is still used.
 */
void
oprec_session_set_token(OprecSession *session, const char *token, TimestampTz expires,
						int renew_margin_sec)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		margin_us = (int64) renew_margin_sec * USECS_PER_SEC;

	forget(session);
	if (oprec_has_control_char(token))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("the API issued a token that contains a control character"),
				 errdetail("The token is not used: in a request header it would add headers or requests."),
				 errhint("Report this to the API provider.")));
	session->token = MemoryContextStrdup(TopMemoryContext, token);
	session->token_generation++;
	if (expires > now)
		margin_us = Min(margin_us, (expires - now) / 2);
	session->token_renew_at = expires - margin_us;
}

void
oprec_session_forget_token(OprecSession *session)
{
	forget(session);
}

/* A token is usable if present and not due for renewal. */
bool
oprec_session_token_usable(OprecSession *session)
{
	if (session->token == NULL)
		return false;
	return GetCurrentTimestamp() < session->token_renew_at;
}
