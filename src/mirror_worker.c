/*-------------------------------------------------------------------------
 *
 * mirror_worker.c
 *		  The background workers that keep mirrors current: a launcher,
 *		  and a worker per database of oprec_fdw.mirror_databases.
 *
 * With the library in shared_preload_libraries, a launcher starts (it
 * connects to no database) and, every oprec_fdw.mirror_naptime seconds,
 * starts a worker for each database of oprec_fdw.mirror_databases that
 * exists and has none running.  A worker refreshes the mirrors of its
 * database whose next refresh is due, one after another (so one credential
 * never has two refreshes of it at once), each in a transaction of its own,
 * through oprec_fdw_refresh_mirror(): the refresh reads the API as the
 * mirror's owner, paced with the same shared pace as queries, and records
 * its outcome.  A refresh that fails is recorded and tried again when due;
 * the worker goes on with the next.  Both settings take effect on reload.
 * Without preload, oprec_fdw_refresh_mirror() from pg_cron or a crontab
 * does the same work.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "oprec_fdw.h"

/* The most databases the launcher starts workers for. */
#define MAX_MIRROR_DATABASES 16

/* GUCs */
static char *mirror_databases = NULL;
static int	mirror_naptime = 10;

PGDLLEXPORT void oprec_fdw_mirror_launcher(Datum arg);
PGDLLEXPORT void oprec_fdw_mirror_worker(Datum arg);

/* The settings, and the launcher when the library is preloaded. */
void
oprec_mirror_worker_init(void)
{
	BackgroundWorker worker = {0};

	DefineCustomStringVariable("oprec_fdw.mirror_databases",
							   "Databases whose mirrors a background worker keeps current.",
							   "A comma-separated list; needs the library in shared_preload_libraries.",
							   &mirror_databases, "", PGC_SIGHUP, GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("oprec_fdw.mirror_naptime",
							"How often the mirror workers look for due refreshes.",
							NULL, &mirror_naptime, 10, 1, 3600, PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;

	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "oprec_fdw");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "oprec_fdw_mirror_launcher");
	snprintf(worker.bgw_name, BGW_MAXLEN, "oprec_fdw mirror launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "oprec_fdw mirror launcher");
	RegisterBackgroundWorker(&worker);
}

/* Wait for the nap, a reload or the end; reload the settings if asked. */
static void
nap(void)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 (long) mirror_naptime * 1000L, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

static void
set_up_signals(void)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
}

/* ----------------------------------------------------------------
 *		The launcher
 * ----------------------------------------------------------------
 */

typedef struct DatabaseWorker
{
	char		name[NAMEDATALEN];
	BackgroundWorkerHandle *handle;
} DatabaseWorker;

/*
 * Whether a database of that name exists now, and allows connections.  The
 * launcher is connected to no database: it reads the shared catalog
 * pg_database by a plain scan (as autovacuum's launcher does).
 */
static bool
database_exists(const char *name)
{
	bool		exists = false;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (!exists && (tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);

		exists = strcmp(NameStr(db->datname), name) == 0 && db->datallowconn;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return exists;
}

/* Start the worker of a database, unless one is running. */
static void
ensure_worker(DatabaseWorker *w)
{
	BackgroundWorker worker = {0};
	pid_t		pid;

	if (w->handle && GetBackgroundWorkerPid(w->handle, &pid) != BGWH_STOPPED)
		return;
	if (!database_exists(w->name))
		return;
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	worker.bgw_notify_pid = MyProcPid;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "oprec_fdw");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "oprec_fdw_mirror_worker");
	snprintf(worker.bgw_name, BGW_MAXLEN, "oprec_fdw mirror worker for %s", w->name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "oprec_fdw mirror worker");
	strlcpy(worker.bgw_extra, w->name, BGW_EXTRALEN);
	if (!RegisterDynamicBackgroundWorker(&worker, &w->handle))
		ereport(LOG,
				(errmsg("oprec_fdw: could not start the mirror worker for database \"%s\"", w->name),
				 errhint("Raise max_worker_processes.")));
}

/* The databases of oprec_fdw.mirror_databases, keeping known handles. */
static int
wanted_databases(DatabaseWorker *workers, int nworkers)
{
	char	   *copy = pstrdup(mirror_databases ? mirror_databases : "");
	List	   *names = NIL;
	DatabaseWorker wanted[MAX_MIRROR_DATABASES] = {0};
	int			n = 0;
	ListCell   *lc;

	if (!SplitIdentifierString(copy, ',', &names))
		ereport(LOG,
				(errmsg("oprec_fdw: oprec_fdw.mirror_databases is not a list of names")));
	foreach(lc, names)
	{
		if (n == MAX_MIRROR_DATABASES)
			break;
		strlcpy(wanted[n].name, lfirst(lc), NAMEDATALEN);
		for (int i = 0; i < nworkers; i++)
			if (strcmp(workers[i].name, wanted[n].name) == 0)
				wanted[n].handle = workers[i].handle;
		n++;
	}
	memcpy(workers, wanted, sizeof(wanted));
	return n;
}

void
oprec_fdw_mirror_launcher(Datum arg)
{
	DatabaseWorker workers[MAX_MIRROR_DATABASES] = {0};
	int			nworkers = 0;

	set_up_signals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("oprec_fdw mirror launcher");
	for (;;)
	{
		nworkers = wanted_databases(workers, nworkers);
		for (int i = 0; i < nworkers; i++)
			ensure_worker(&workers[i]);
		nap();
	}
}

/* ----------------------------------------------------------------
 *		The worker of a database
 * ----------------------------------------------------------------
 */

/*
 * The mirrors due for a refresh, oldest due first, and the function that
 * refreshes them (qualified by the extension's schema), in cxt (which
 * outlives the transaction); NIL when the extension is not installed.
 */
static List *
due_mirrors(MemoryContext upper, char **refresh_function)
{
	List	   *due = NIL;
	char	   *schema;
	Oid			owner;

	if (!oprec_mirror_extension(&schema, &owner))
		return NIL;
	*refresh_function = MemoryContextStrdup(upper,
											quote_qualified_identifier(schema, "oprec_fdw_refresh_mirror"));
	SPI_connect();
	if (SPI_execute(psprintf("SELECT mirror FROM %s WHERE next_due <= now() ORDER BY next_due",
							 quote_qualified_identifier(schema, "oprec_fdw_mirror")),
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the mirrors due");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		mirror = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1,
										   &isnull);
		MemoryContext oldcxt = MemoryContextSwitchTo(upper);

		due = lappend_oid(due, DatumGetObjectId(mirror));
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	return due;
}

/* Run one statement of the worker in a transaction of its own. */
static void
run_in_transaction(void (*step) (void *arg), void *arg, const char *activity)
{
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
	PG_TRY();
	{
		step(arg);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		/* a failure outside the refresh itself (the refresh records its own) */
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
}

typedef struct DueStep
{
	MemoryContext cxt;			/* where the answer is kept */
	List	   *due;
	char	   *refresh_function;
} DueStep;

static void
find_due(void *arg)
{
	DueStep    *step = arg;

	step->due = due_mirrors(step->cxt, &step->refresh_function);
}

typedef struct RefreshStep
{
	const char *refresh_function;
	Oid			mirror;
} RefreshStep;

static void
refresh_one(void *arg)
{
	RefreshStep *step = arg;
	Datum		mirror = ObjectIdGetDatum(step->mirror);

	SPI_connect();
	if (SPI_execute_with_args(psprintf("SELECT outcome FROM %s($1)", step->refresh_function),
							  1, (Oid[]) {REGCLASSOID}, &mirror, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not refresh mirror %u", step->mirror);
	SPI_finish();
}

void
oprec_fdw_mirror_worker(Datum arg)
{
	MemoryContext cycle = AllocSetContextCreate(TopMemoryContext, "oprec_fdw mirror worker",
												ALLOCSET_DEFAULT_SIZES);

	set_up_signals();
	BackgroundWorkerInitializeConnection(MyBgworkerEntry->bgw_extra, NULL, 0);
	pgstat_report_appname("oprec_fdw mirror worker");
	for (;;)
	{
		DueStep		due = {cycle};
		ListCell   *lc;

		MemoryContextSwitchTo(cycle);
		run_in_transaction(find_due, &due, "oprec_fdw: looking for mirrors due");
		foreach(lc, due.due)
		{
			RefreshStep step = {due.refresh_function, lfirst_oid(lc)};

			run_in_transaction(refresh_one, &step, "oprec_fdw: refreshing a mirror");
		}
		MemoryContextReset(cycle);
		nap();
	}
}
