/*-------------------------------------------------------------------------
 *
 * credentials.c
 *		  What the backends of a cluster share about a credential: the
 *		  token the API issued for it, whether the API ever accepted it,
 *		  and which backend is getting it a new token.
 *
 * Only when the library is preloaded: the table lives in shared memory.
 * session.c keeps each backend's copy of a token and asks here, before
 * each request, whether another backend has a newer one; a backend that
 * gets a token publishes it here.  So a new connection sends no token
 * request while the cluster holds a valid token, and a credential the API
 * has accepted once needs no lone first request in any backend.
 *
 * A credential is named by a SHA-256 digest of its service, its base URL,
 * its user mapping's options and the server options its service names
 * (credential_server_options): two user mappings holding the same secrets
 * share a token.  The digest does not give the secrets back.
 *
 * One renewal for the cluster.  A backend that needs a token claims the
 * credential's renewal; the others that need one meanwhile sleep on the
 * slot's condition variable until the token is published or the claim is
 * given up (an error or an exit gives it up; the claim of a backend that
 * is gone is taken over).  A refused token is withdrawn only while it is
 * still the newest (by generation), so backends refused the same token
 * renew it once between them.
 *
 * A token is kept here only while it may be used: it is wiped when
 * withdrawn, replaced, due for renewal (found so by any backend), or when
 * its slot is taken by another credential.  A token longer than
 * SHARED_TOKEN_MAX is not shared; each backend then gets its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "oprec_fdw.h"

/* Credentials in use at once across the cluster; the least used goes. */
#define CREDENTIAL_SLOTS 64

/* IAM tokens take several kB; longer ones stay in their backend. */
#define SHARED_TOKEN_MAX 16384

/* A waiting backend looks again this often (a renewer may have gone). */
#define RENEWAL_RECHECK_MS 100

#define CREDENTIALS_TRANCHE "oprec_fdw credentials"

typedef struct CredentialSlot
{
	bool		used;
	uint8		digest[OPREC_CREDENTIAL_DIGEST_LEN];
	TimestampTz last_used;
	bool		accepted;		/* the API answered a request made with it */
	int			renewer;		/* pid of the backend getting a token; 0 */
	ConditionVariable renewed;	/* signalled when the renewer is done */
	uint64		generation;		/* of the token; 0: never had one */
	TimestampTz renew_at;		/* the token is due for renewal then */
	int			token_len;		/* 0: no token */
	char		token[SHARED_TOKEN_MAX];
} CredentialSlot;

typedef struct CredentialTable
{
	LWLock	   *lock;			/* protects everything below */
	uint64		last_generation;	/* generations never repeat */
	CredentialSlot slots[CREDENTIAL_SLOTS];
} CredentialTable;

static CredentialTable *credential_table = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* The slot whose renewal this backend has claimed, or -1. */
static int	claimed_slot = -1;
static bool exit_callback_registered = false;

static Size
credentials_shmem_size(void)
{
	return sizeof(CredentialTable);
}

#if PG_VERSION_NUM >= 150000
static void
credentials_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(credentials_shmem_size());
	RequestNamedLWLockTranche(CREDENTIALS_TRANCHE, 1);
}
#endif

static void
credentials_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	credential_table = ShmemInitStruct("oprec_fdw credentials", credentials_shmem_size(),
									   &found);
	if (!found)
	{
		memset(credential_table, 0, credentials_shmem_size());
		credential_table->lock = &(GetNamedLWLockTranche(CREDENTIALS_TRANCHE))->lock;
		for (int i = 0; i < CREDENTIAL_SLOTS; i++)
			ConditionVariableInit(&credential_table->slots[i].renewed);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Wipe a slot's token.  The caller holds the lock exclusively. */
static void
wipe_token(CredentialSlot *slot)
{
	explicit_bzero(slot->token, sizeof(slot->token));
	slot->token_len = 0;
	slot->renew_at = 0;
}

/* The slot of a digest, or -1.  The caller holds the lock. */
static int
slot_of(const uint8 *digest)
{
	for (int i = 0; i < CREDENTIAL_SLOTS; i++)
	{
		CredentialSlot *s = &credential_table->slots[i];

		if (s->used && memcmp(s->digest, digest, OPREC_CREDENTIAL_DIGEST_LEN) == 0)
			return i;
	}
	return -1;
}

/*
 * The slot of a digest, taken if it has none: a free one, else the least
 * recently used one nobody is renewing.  The caller holds the lock
 * exclusively.  -1 if every slot is being renewed.
 */
static int
take_slot(const uint8 *digest, TimestampTz now)
{
	int			found = slot_of(digest);
	int			victim = -1;
	CredentialSlot *slot;

	if (found >= 0)
	{
		credential_table->slots[found].last_used = now;
		return found;
	}
	for (int i = 0; i < CREDENTIAL_SLOTS; i++)
	{
		CredentialSlot *s = &credential_table->slots[i];

		if (s->used && s->renewer != 0)
			continue;
		if (victim < 0 || !s->used ||
			(credential_table->slots[victim].used &&
			 s->last_used < credential_table->slots[victim].last_used))
			victim = i;
		if (!s->used)
			break;
	}
	if (victim < 0)
		return -1;
	slot = &credential_table->slots[victim];
	wipe_token(slot);
	slot->used = true;
	memcpy(slot->digest, digest, OPREC_CREDENTIAL_DIGEST_LEN);
	slot->accepted = false;
	slot->renewer = 0;
	slot->generation = 0;
	slot->last_used = now;
	return victim;
}

/* Give up this backend's claim, waking the backends waiting on it. */
static void
release_claim(void)
{
	CredentialSlot *slot;
	bool		released = false;

	if (claimed_slot < 0)
		return;
	slot = &credential_table->slots[claimed_slot];
	LWLockAcquire(credential_table->lock, LW_EXCLUSIVE);
	if (slot->renewer == MyProcPid)
	{
		slot->renewer = 0;
		released = true;
	}
	LWLockRelease(credential_table->lock);
	claimed_slot = -1;
	if (released)
		ConditionVariableBroadcast(&slot->renewed);
}

/*
 * An error while getting a token (a transaction or subtransaction abort,
 * an exit) gives the claim up, so that another backend tries.  LWLocks
 * are released before these callbacks run.
 */
static void
credentials_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		release_claim();
}

static void
credentials_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		release_claim();
}

static void
credentials_exit(int code, Datum arg)
{
	if (credential_table != NULL)
		release_claim();
}

/* From _PG_init: reserve the shared table if being preloaded. */
void
oprec_credentials_init(void)
{
	RegisterXactCallback(credentials_xact_callback, NULL);
	RegisterSubXactCallback(credentials_subxact_callback, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = credentials_shmem_request;
#else
	RequestAddinShmemSpace(credentials_shmem_size());
	RequestNamedLWLockTranche(CREDENTIALS_TRANCHE, 1);
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = credentials_shmem_startup;
}

/* Whether credentials are shared by the cluster's backends. */
bool
oprec_credentials_shared(void)
{
	return credential_table != NULL;
}

/*
 * Whether the cluster has a token of the credential newer than
 * have_generation: if it has one not due for renewal, it is copied into
 * TopMemoryContext (*token), with its generation and renewal time; if the
 * newest was withdrawn or is due, *token is NULL: a backend's older token
 * is no better.  A token found due is wiped.
 */
bool
oprec_credential_newer_token(const uint8 *digest, uint64 have_generation, char **token,
							 uint64 *generation, TimestampTz *renew_at)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		newer = false;
	bool		usable = false;
	char	   *copy = NULL;
	int			i;

	*token = NULL;
	/* most often the backend has the newest token: a shared look */
	LWLockAcquire(credential_table->lock, LW_SHARED);
	i = slot_of(digest);
	if (i >= 0)
	{
		CredentialSlot *s = &credential_table->slots[i];

		newer = s->generation > have_generation;
		usable = s->token_len > 0 && now < s->renew_at;
	}
	LWLockRelease(credential_table->lock);
	if (!newer)
		return false;

	/* allocated before the lock: nothing may throw while it is held */
	if (usable)
		copy = MemoryContextAlloc(TopMemoryContext, SHARED_TOKEN_MAX + 1);
	LWLockAcquire(credential_table->lock, LW_EXCLUSIVE);
	i = slot_of(digest);
	if (i >= 0)
	{
		CredentialSlot *s = &credential_table->slots[i];

		if (s->token_len > 0 && now >= s->renew_at)
			wipe_token(s);
		if (copy != NULL && s->token_len > 0 && s->generation > have_generation)
		{
			memcpy(copy, s->token, s->token_len);
			copy[s->token_len] = '\0';
			*token = copy;
			*generation = s->generation;
			*renew_at = s->renew_at;
		}
	}
	LWLockRelease(credential_table->lock);
	if (*token == NULL && copy != NULL)
		pfree(copy);
	return true;
}

/*
 * Claim the renewal of the credential's token: true if this backend is to
 * get it, false if another backend is getting it (wait with
 * oprec_credential_await_renewal, then look for its token).  The claim of
 * a backend that is no longer running is taken over.
 */
bool
oprec_credential_claim_renewal(const uint8 *digest)
{
	int			renewer = 0;
	int			i;

	Assert(claimed_slot < 0);
	/* in the backend: a postmaster's exit callbacks are not inherited */
	if (!exit_callback_registered)
	{
		before_shmem_exit(credentials_exit, (Datum) 0);
		exit_callback_registered = true;
	}
	for (;;)
	{
		LWLockAcquire(credential_table->lock, LW_EXCLUSIVE);
		i = take_slot(digest, GetCurrentTimestamp());
		if (i < 0)
		{
			/* every slot is being renewed: renew without telling anyone */
			LWLockRelease(credential_table->lock);
			return true;
		}
		if (credential_table->slots[i].renewer == 0 ||
			credential_table->slots[i].renewer == MyProcPid ||
			(renewer != 0 && credential_table->slots[i].renewer == renewer))
		{
			credential_table->slots[i].renewer = MyProcPid;
			claimed_slot = i;
			LWLockRelease(credential_table->lock);
			return true;
		}
		renewer = credential_table->slots[i].renewer;
		LWLockRelease(credential_table->lock);

		/* outside the lock: ProcArrayLock is taken to look */
		if (BackendPidGetProc(renewer) != NULL)
			return false;
		/* gone without giving the claim up: take it over (loop) */
	}
}

/*
 * Wait a little for the backend renewing the credential's token: until it
 * is done, or RENEWAL_RECHECK_MS (it may have gone).  Interrupts are
 * served.
 */
void
oprec_credential_await_renewal(const uint8 *digest)
{
	CredentialSlot *slot = NULL;
	int			i;

	LWLockAcquire(credential_table->lock, LW_SHARED);
	i = slot_of(digest);
	if (i >= 0 && credential_table->slots[i].renewer != 0)
		slot = &credential_table->slots[i];
	LWLockRelease(credential_table->lock);
	if (slot == NULL)
		return;
	ConditionVariablePrepareToSleep(&slot->renewed);
	/* the renewer may have finished before this backend got on the list */
	LWLockAcquire(credential_table->lock, LW_SHARED);
	i = slot_of(digest);
	if (i < 0 || credential_table->slots[i].renewer == 0)
		slot = NULL;
	LWLockRelease(credential_table->lock);
	if (slot != NULL)
		(void) ConditionVariableTimedSleep(&slot->renewed, RENEWAL_RECHECK_MS,
										   PG_WAIT_EXTENSION);
	ConditionVariableCancelSleep();
	CHECK_FOR_INTERRUPTS();
}

/*
 * Publish a token this backend got (and give its claim up); its
 * generation, new in the cluster, is returned.  A token too long to share
 * gets a generation all the same, and is not published.
 */
uint64
oprec_credential_publish(const uint8 *digest, const char *token, TimestampTz renew_at)
{
	size_t		len = strlen(token);
	uint64		generation;
	int			i;

	LWLockAcquire(credential_table->lock, LW_EXCLUSIVE);
	generation = ++credential_table->last_generation;
	i = take_slot(digest, GetCurrentTimestamp());
	if (i >= 0 && len <= SHARED_TOKEN_MAX)
	{
		CredentialSlot *s = &credential_table->slots[i];

		wipe_token(s);
		memcpy(s->token, token, len);
		s->token_len = (int) len;
		s->renew_at = renew_at;
		s->generation = generation;
		/* a token was issued for these secrets: they work */
		s->accepted = true;
	}
	LWLockRelease(credential_table->lock);
	release_claim();
	return generation;
}

/* Give up a claim without a token (the unit got none). */
void
oprec_credential_end_renewal(void)
{
	release_claim();
}

/*
 * The API refused the token of this generation: wipe it if it is still
 * the newest, so that the next backend to need a token gets a new one.
 */
void
oprec_credential_withdraw(const uint8 *digest, uint64 generation)
{
	int			i;

	LWLockAcquire(credential_table->lock, LW_EXCLUSIVE);
	i = slot_of(digest);
	if (i >= 0 && credential_table->slots[i].generation == generation)
		wipe_token(&credential_table->slots[i]);
	LWLockRelease(credential_table->lock);
}

/* The API answered a request made with the credential. */
void
oprec_credential_set_accepted(const uint8 *digest)
{
	int			i;

	LWLockAcquire(credential_table->lock, LW_EXCLUSIVE);
	i = take_slot(digest, GetCurrentTimestamp());
	if (i >= 0)
		credential_table->slots[i].accepted = true;
	LWLockRelease(credential_table->lock);
}

/* Whether the API has answered a request made with the credential. */
bool
oprec_credential_accepted(const uint8 *digest)
{
	bool		accepted = false;
	int			i;

	LWLockAcquire(credential_table->lock, LW_SHARED);
	i = slot_of(digest);
	if (i >= 0)
		accepted = credential_table->slots[i].accepted;
	LWLockRelease(credential_table->lock);
	return accepted;
}

/*
 * Forget what the cluster knows of a credential (its user mapping or
 * server changed, so it may no longer be what it was).
 */
void
oprec_credential_forget(const uint8 *digest)
{
	int			i;

	LWLockAcquire(credential_table->lock, LW_EXCLUSIVE);
	i = slot_of(digest);
	if (i >= 0 && credential_table->slots[i].renewer == 0)
	{
		wipe_token(&credential_table->slots[i]);
		credential_table->slots[i].used = false;
	}
	LWLockRelease(credential_table->lock);
}
