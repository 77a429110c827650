/*-------------------------------------------------------------------------
 *
 * session.c
 *		  Per-backend state shared by the scans of one user mapping: the
 *		  token, whether the API accepted the credential, and the name of
 *		  the credential (the pacing state pace.c keeps there too).
 *
 * Sessions live for the backend's lifetime, keyed by user mapping, like
 * postgres_fdw's connections.  ALTER or DROP of the user mapping or its
 * server forgets the cached token (a changed secret must not keep working
 * through an old token).  When the library is preloaded, tokens and
 * acceptance are shared by the cluster's backends through credentials.c;
 * each backend keeps a copy of the token it sends.  Tokens are kept in
 * TopMemoryContext, wiped when dropped, and never appear in messages.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "oprec_fdw.h"

static HTAB *session_hash = NULL;

/* Drop the backend's copy of the token, wiped. */
static void
forget(OprecSession *session)
{
	if (session->token)
	{
		explicit_bzero(session->token, strlen(session->token));
		pfree(session->token);
	}
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

static int
compare_defelem_names(const ListCell *a, const ListCell *b)
{
	return strcmp(((DefElem *) lfirst(a))->defname, ((DefElem *) lfirst(b))->defname);
}

static void
append_part(StringInfo buf, const char *part)
{
	appendBinaryStringInfo(buf, part, strlen(part) + 1);
}

/*
 * What names a credential: the service, the base URL, the user mapping's
 * options and the server options the service names.  Every part ends
 * with a NUL, which none can contain, so different credentials give
 * different input.  It holds secrets: only its digest is kept.
 */
static void
credential_parts(const OprecOptions *options, StringInfo buf)
{
	const OprecService *service = options->resource->service;
	List	   *sorted = list_copy(options->user_options);
	ListCell   *lc;

	list_sort(sorted, compare_defelem_names);
	append_part(buf, service->name);
	append_part(buf, options->base_url ? options->base_url : "");
	foreach(lc, sorted)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		append_part(buf, def->defname);
		append_part(buf, defGetString(def));
	}
	list_free(sorted);
	for (const char *const *name = service->credential_server_options; name && *name; name++)
	{
		const char *value = oprec_option_value(options, *name);

		append_part(buf, *name);
		append_part(buf, value ? value : "");
	}
}

/* The SHA-256 digest that names the credential of options. */
static void
credential_digest(const OprecOptions *options, uint8 *digest)
{
	StringInfoData parts;
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	bool		failed;

	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	initStringInfo(&parts);
	credential_parts(options, &parts);
	failed = pg_cryptohash_init(ctx) != 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) parts.data, parts.len) != 0 ||
		pg_cryptohash_final(ctx, digest, OPREC_CREDENTIAL_DIGEST_LEN) != 0;
	pg_cryptohash_free(ctx);
	explicit_bzero(parts.data, parts.len);
	pfree(parts.data);
	if (failed)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute the SHA-256 digest of a credential")));
}

/*
 * The session of a scan's user mapping, (re)named after its credential if
 * the mapping or its server changed.  If the credential changed with it,
 * what the cluster knew of the old one is forgotten.
 */
OprecSession *
oprec_get_session(const OprecOptions *options)
{
	OprecSession *session;
	bool		found;
	Oid			user_mapping_id = options->user_mapping_id;

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
		uint8		digest[OPREC_CREDENTIAL_DIGEST_LEN];

		if (HeapTupleIsValid(tup))
		{
			serverid = ((Form_pg_user_mapping) GETSTRUCT(tup))->umserver;
			ReleaseSysCache(tup);
		}
		credential_digest(options, digest);
		if (session->has_credential &&
			memcmp(digest, session->credential, sizeof(digest)) != 0)
		{
			/* the secrets changed: the old ones' token must not serve */
			if (oprec_credentials_shared())
				oprec_credential_forget(session->credential);
			session->credential_accepted = false;
		}
		memcpy(session->credential, digest, sizeof(digest));
		session->has_credential = true;
		session->mapping_hashvalue =
			GetSysCacheHashValue1(USERMAPPINGOID, ObjectIdGetDatum(user_mapping_id));
		session->server_hashvalue =
			GetSysCacheHashValue1(FOREIGNSERVEROID, ObjectIdGetDatum(serverid));
		session->valid = true;
	}
	return session;
}

/*
 * Keep a token the API issued, and share it with the cluster.  It goes
 * into a header of every request, so a token with a control character is
 * refused on receipt.  It is renewed renew_margin_sec before it expires,
 * or half-way through its life if that is shorter: a token that lasts
 * seconds is still used.
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
	if (expires > now)
		margin_us = Min(margin_us, (expires - now) / 2);
	session->token_renew_at = expires - margin_us;
	/* a token was issued for these secrets: they work */
	session->credential_accepted = true;
	if (oprec_credentials_shared())
		session->token_generation = oprec_credential_publish(session->credential, token,
															 session->token_renew_at);
	else
		session->token_generation++;
}

/*
 * Whether the session has a token it may send: its own, or a newer one
 * another backend of the cluster got.  Its own is dropped when the
 * cluster's newest is newer, even if that one cannot be used (withdrawn or
 * due): the newer one replaced it.
 */
bool
oprec_session_token_usable(OprecSession *session)
{
	char	   *shared;
	uint64		generation;
	TimestampTz renew_at;

	if (oprec_credentials_shared() &&
		oprec_credential_newer_token(session->credential, session->token_generation,
									 &shared, &generation, &renew_at))
	{
		forget(session);
		if (shared != NULL)
		{
			session->token = MemoryContextStrdup(TopMemoryContext, shared);
			explicit_bzero(shared, strlen(shared));
			pfree(shared);
			session->token_generation = generation;
			session->token_renew_at = renew_at;
		}
	}
	if (session->token == NULL)
		return false;
	return GetCurrentTimestamp() < session->token_renew_at;
}

/*
 * The API refused the token of this generation: forget it, unless a newer
 * one came meanwhile (the next request then uses that one).
 */
void
oprec_session_token_refused(OprecSession *session, uint64 generation)
{
	if (generation != session->token_generation)
		return;
	forget(session);
	if (oprec_credentials_shared())
		oprec_credential_withdraw(session->credential, generation);
}

/*
 * Until the API has answered a request made with a credential (in any
 * backend of the cluster, when preloaded), a scan sends one request at a
 * time: a wrong secret then fails one request, not many (an AK/SK pair is
 * locked after a few failures).
 */
bool
oprec_session_credential_accepted(OprecSession *session)
{
	if (!session->credential_accepted && oprec_credentials_shared() &&
		oprec_credential_accepted(session->credential))
		session->credential_accepted = true;
	return session->credential_accepted;
}

/* The API answered a request made with the session's credential. */
void
oprec_session_set_credential_accepted(OprecSession *session)
{
	if (session->credential_accepted)
		return;
	session->credential_accepted = true;
	if (oprec_credentials_shared())
		oprec_credential_set_accepted(session->credential);
}

/*
 * Make sure the session holds a token it may send, getting one with
 * get_token(arg) if not.  When the cluster shares credentials, one backend
 * at a time gets a credential's token; the others wait for it.
 */
void
oprec_session_ensure_token(OprecSession *session, void (*get_token) (void *arg), void *arg)
{
	while (!oprec_session_token_usable(session))
	{
		if (!oprec_credentials_shared())
		{
			get_token(arg);
			return;
		}
		if (oprec_credential_claim_renewal(session->credential))
		{
			/* another backend may have published while this one looked */
			if (!oprec_session_token_usable(session))
				get_token(arg); /* publishes, and gives the claim up */
			oprec_credential_end_renewal();
			return;
		}
		oprec_credential_await_renewal(session->credential);
	}
}
