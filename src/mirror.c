/*-------------------------------------------------------------------------
 *
 * mirror.c
 *		  Mirrors: exact local copies of a foreign table's history in an
 *		  ordinary table, brought up to date by replacing their recent tail.
 *
 * A mirror is a table with its source's columns, registered in the table
 * oprec_fdw_mirror.  A refresh asks the API again for every record from a
 * little before the newest time the mirror holds (the tail, an hour by
 * default) and, in one transaction, deletes the mirror's rows of that tail
 * and inserts what the API returned.  Records have no id, so the tail is
 * replaced as a whole: a record that arrives late with a time within the
 * tail is copied, and none twice.  A record that arrives later than that is
 * copied by the next full refresh (every full_every, or one asked for with
 * reread_from), which re-reads everything since the mirror's start.  A
 * source without a time column (feishu_users) is replaced whole each time,
 * for the keys that a column of another table names (the operators of a
 * records mirror).
 *
 * Readers see a mirror before a refresh or after it, never half: the
 * refresh is one transaction, and one that fails (an API error, a cancel, a
 * crash) leaves the mirror as it was, for the next refresh to complete.  A
 * refresh holds SHARE ROW EXCLUSIVE on the mirror, so two refreshes of one
 * mirror never run at once, and readers are not blocked.  It always reads
 * the API as the mirror's owner (that role's user mapping and privileges),
 * whoever runs it; the registry is written as the extension's owner.
 * The SQL functions here make (oprec_fdw_create_mirror), refresh, alter
 * (how often, how deep, full re-reads) and drop a mirror; the caller must
 * own the mirror for all but the first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_type.h"
#include "catalog/pg_user_mapping.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "oprec_fdw.h"

/* A refresh that reads long says how far it is this often (a NOTICE). */
#define MIRROR_PROGRESS_MS 10000

/* What the registry says of one mirror. */
typedef struct MirrorEntry
{
	Oid			mirror;
	Oid			source;
	char	   *time_column;	/* NULL: replaced whole, for the keys of */
	Oid			keys_from;		/* ...this table's column */
	char	   *keys_column;
	TimestampTz since;
	Datum		tail;			/* intervals */
	Datum		refresh_every;
	bool		has_full_every;
	Datum		full_every;
	bool		has_last_full;
	TimestampTz last_full;
	bool		has_rows;		/* the rows the last refresh left */
	int64		rows;
} MirrorEntry;

/* What one refresh did. */
typedef struct MirrorRun
{
	TimestampTz started;
	bool		whole;			/* re-read everything since the start */
	TimestampTz reread_since;	/* the tail re-read (has_time only) */
	bool		has_reread_since;
	int64		rows_read;		/* rows the API returned */
	int64		rows_deleted;	/* the mirror's rows it replaced */
	int64		requests;
	int64		rows;			/* the mirror's rows after it */
	bool		has_newest;
	TimestampTz newest;
	const char *error;			/* NULL: it succeeded */
} MirrorRun;

/* A role change, and the GUC level to undo with it. */
typedef struct RoleSwitch
{
	Oid			saved_userid;
	int			saved_sec_context;
	int			guc_level;
} RoleSwitch;

PG_FUNCTION_INFO_V1(oprec_fdw_create_mirror);
PG_FUNCTION_INFO_V1(oprec_fdw_refresh_mirror);
PG_FUNCTION_INFO_V1(oprec_fdw_drop_mirror);
PG_FUNCTION_INFO_V1(oprec_fdw_alter_mirror);

/* ----------------------------------------------------------------
 *		Roles and names
 * ----------------------------------------------------------------
 */

/*
 * Act as role.  restricted: as the owner of a mirror, with a safe
 * search_path and none of what a security-restricted operation forbids
 * (as REFRESH MATERIALIZED VIEW runs a view's owner's code).
 */
static void
become(Oid role, bool restricted, RoleSwitch *rs)
{
	GetUserIdAndSecContext(&rs->saved_userid, &rs->saved_sec_context);
	SetUserIdAndSecContext(role, rs->saved_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   (restricted ? SECURITY_RESTRICTED_OPERATION : 0));
	rs->guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

static void
unbecome(const RoleSwitch *rs)
{
	AtEOXact_GUC(false, rs->guc_level);
	SetUserIdAndSecContext(rs->saved_userid, rs->saved_sec_context);
}

/*
 * The schema and owner of the extension in this database, in the current
 * memory context; false if it is not installed here.
 */
bool
oprec_mirror_extension(char **schema, Oid *owner)
{
	MemoryContext upper = CurrentMemoryContext;
	bool		installed;
	bool		isnull;

	SPI_connect();
	if (SPI_execute("SELECT n.nspname::text, e.extowner FROM pg_catalog.pg_extension e"
					" JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
					" WHERE e.extname = 'oprec_fdw'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_extension");
	installed = SPI_processed == 1;
	if (installed)
	{
		*schema = MemoryContextStrdup(upper, SPI_getvalue(SPI_tuptable->vals[0],
														  SPI_tuptable->tupdesc, 1));
		*owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
												2, &isnull));
	}
	SPI_finish();
	return installed;
}

/* The extension's schema and owner: the registry's home and writer. */
static void
extension_home(char **registry, Oid *owner)
{
	char	   *schema;

	if (!oprec_mirror_extension(&schema, owner))
		elog(ERROR, "extension oprec_fdw is not installed in this database");
	*registry = quote_qualified_identifier(schema, "oprec_fdw_mirror");
}

/* A relation's name, qualified as needed. */
static char *
relation_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* The owner of a relation. */
static Oid
relation_owner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/* ----------------------------------------------------------------
 *		The source
 * ----------------------------------------------------------------
 */

/* Refuse a source that is not a foreign table of oprec_fdw. */
static ForeignServer *
source_server(Oid source)
{
	ForeignServer *server;
	ForeignDataWrapper *fdw;
	char	   *handler;

	if (get_rel_relkind(source) != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a foreign table", relation_name(source)),
				 errhint("A mirror copies a foreign table of an oprec_fdw server.")));
	server = GetForeignServer(GetForeignTable(source)->serverid);
	fdw = GetForeignDataWrapper(server->fdwid);
	handler = OidIsValid(fdw->fdwhandler) ? get_func_name(fdw->fdwhandler) : NULL;
	if (handler == NULL || strcmp(handler, "oprec_fdw_handler") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("foreign table \"%s\" is not an oprec_fdw table", relation_name(source))));
	return server;
}

/*
 * The role reads the API with its own user mapping (or PUBLIC's): say so
 * before anything is made, not when the first request would be sent.
 */
static void
require_user_mapping(Oid role, ForeignServer *server)
{
	if (SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(role),
							  ObjectIdGetDatum(server->serverid)) ||
		SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
							  ObjectIdGetDatum(server->serverid)))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
			 errmsg("role \"%s\" has no user mapping for server \"%s\"",
					GetUserNameFromId(role, false), server->servername),
			 errdetail("A mirror reads the API with its owner's credentials."),
			 errhint("CREATE USER MAPPING FOR %s SERVER %s OPTIONS (...), as for querying the table.",
					 quote_identifier(GetUserNameFromId(role, false)),
					 quote_identifier(server->servername))));
}

/*
 * The source's column that reads its resource's key (key) or time column,
 * or NULL; with the earliest history its API serves, if asked.
 */
static char *
source_column(Oid source, bool key, TimestampTz *history_start)
{
	Relation	rel = table_open(source, AccessShareLock);
	OprecOptions *options = oprec_get_options(source, InvalidOid);
	const OprecResource *res = options->resource;
	OprecColumnMap *map = oprec_map_columns(rel, res);
	int			wanted = key ? res->key_column : res->time_column;
	char	   *name = NULL;

	for (int i = 0; i < RelationGetDescr(rel)->natts && wanted >= 0 && name == NULL; i++)
		if (!map[i].dropped && map[i].api_column == wanted)
			name = pstrdup(NameStr(TupleDescAttr(RelationGetDescr(rel), i)->attname));
	if (history_start)
	{
		*history_start = oprec_history_start(options);
		if (*history_start == 0)
			(void) oprec_ms_to_timestamptz(OPREC_LISTING_FLOOR_MS, history_start);
	}
	table_close(rel, AccessShareLock);
	return name;
}

/* ----------------------------------------------------------------
 *		The registry
 * ----------------------------------------------------------------
 */

/* Run a statement of the registry's or a mirror's; SPI is connected. */
static void
run_sql(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);

	if (rc != expected)
		elog(ERROR, "oprec_fdw: SPI_execute_with_args failed (%d): %s", rc, sql);
}

/* A column of the first row of the last SPI result, copied into cxt. */
static Datum
result_value(int column, bool *isnull, MemoryContext cxt)
{
	Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, isnull);
	Form_pg_attribute attr = TupleDescAttr(SPI_tuptable->tupdesc, column - 1);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);

	if (!*isnull)
		value = datumCopy(value, attr->attbyval, attr->attlen);
	MemoryContextSwitchTo(oldcxt);
	return value;
}

/*
 * Read a mirror's registration into e (in cxt), as the registry's owner;
 * false if it has none.
 */
static bool
registry_read(const char *registry, Oid reader, Oid mirror, MirrorEntry *e, MemoryContext cxt)
{
	RoleSwitch	rs;
	bool		isnull;
	Datum		value;

	become(reader, false, &rs);
	run_sql(psprintf("SELECT source, time_column::text, keys_from, keys_column::text, since,"
					 " tail, refresh_every, full_every, last_full, rows FROM %s WHERE mirror = $1",
					 registry),
			1, (Oid[]) {REGCLASSOID}, (Datum[]) {ObjectIdGetDatum(mirror)}, NULL, SPI_OK_SELECT);
	unbecome(&rs);
	if (SPI_processed != 1)
		return false;
	memset(e, 0, sizeof(MirrorEntry));
	e->mirror = mirror;
	e->source = DatumGetObjectId(result_value(1, &isnull, cxt));
	value = result_value(2, &isnull, cxt);
	e->time_column = isnull ? NULL : TextDatumGetCString(value);
	e->keys_from = DatumGetObjectId(result_value(3, &isnull, cxt));
	value = result_value(4, &isnull, cxt);
	e->keys_column = isnull ? NULL : TextDatumGetCString(value);
	e->since = DatumGetTimestampTz(result_value(5, &isnull, cxt));
	e->tail = result_value(6, &isnull, cxt);
	e->refresh_every = result_value(7, &isnull, cxt);
	e->full_every = result_value(8, &e->has_full_every, cxt);
	e->has_full_every = !e->has_full_every;
	value = result_value(9, &e->has_last_full, cxt);
	e->has_last_full = !e->has_last_full;
	e->last_full = e->has_last_full ? DatumGetTimestampTz(value) : 0;
	value = result_value(10, &isnull, cxt);
	e->has_rows = !isnull;
	e->rows = isnull ? 0 : DatumGetInt64(value);
	return true;
}

/* Record what a refresh did (as the extension's owner). */
static void
registry_record(const char *registry, Oid writer, Oid mirror, const MirrorRun *run)
{
	RoleSwitch	rs;
	Oid			types[9] = {REGCLASSOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, INT8OID, INT8OID,
	BOOLOID, INT8OID, TIMESTAMPTZOID};
	Datum		values[9];
	char		nulls[9] = "         ";

	values[0] = ObjectIdGetDatum(mirror);
	values[1] = TimestampTzGetDatum(run->started);
	values[2] = CStringGetTextDatum(run->error ? "failed" : run->whole ? "full refresh" : "refreshed");
	values[3] = run->error ? CStringGetTextDatum(run->error) : (Datum) 0;
	nulls[3] = run->error ? ' ' : 'n';
	values[4] = Int64GetDatum(run->requests);
	values[5] = Int64GetDatum(run->rows_read);
	values[6] = BoolGetDatum(run->whole && run->error == NULL);
	values[7] = Int64GetDatum(run->rows);
	nulls[7] = run->error ? 'n' : ' ';
	values[8] = TimestampTzGetDatum(run->newest);
	nulls[8] = (run->error || !run->has_newest) ? 'n' : ' ';
	become(writer, false, &rs);
	run_sql(psprintf("UPDATE %s SET last_start = $2, last_end = clock_timestamp(),"
					 " last_outcome = $3, last_error = $4, last_requests = $5,"
					 " last_rows_read = $6, last_full = CASE WHEN $7 THEN $2 ELSE last_full END,"
					 " rows = coalesce($8, rows),"
					 " newest = CASE WHEN $3 = 'failed' THEN newest ELSE $9 END,"
					 " next_due = $2 + refresh_every WHERE mirror = $1", registry),
			9, types, values, nulls, SPI_OK_UPDATE);
	unbecome(&rs);
}

/* ----------------------------------------------------------------
 *		Refreshing
 * ----------------------------------------------------------------
 */

/* t - interval */
static TimestampTz
minus_interval(TimestampTz t, Datum interval)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
												   TimestampTzGetDatum(t), interval));
}

static TimestampTz
plus_interval(TimestampTz t, Datum interval)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
												   TimestampTzGetDatum(t), interval));
}

/*
 * The end of what a refresh re-reads: the engine reads no record later than
 * an hour past now (clock skew), so neither does the copy; a record of a
 * clock that far ahead is copied once the present reaches it.
 */
static TimestampTz
reread_until(const MirrorRun *run)
{
	return TimestampTzPlusMilliseconds(run->started, OPREC_CLOCK_SKEW_ALLOWANCE_MS);
}

/* Whether the mirror's full refresh is due. */
static bool
full_refresh_due(const MirrorEntry *e, TimestampTz now)
{
	return e->has_full_every &&
		(!e->has_last_full || plus_interval(e->last_full, e->full_every) <= now);
}

/*
 * Replace the re-read part of a mirror with what the API returns for it:
 * everything since run->reread_since (a tail, or the mirror's start), or,
 * for a source without a time column, everything, for the keys the keys
 * table names.  SPI is connected; the caller acts as the mirror's owner.
 */
static void
replace_rows(const MirrorEntry *e, MirrorRun *run)
{
	char	   *mirror = relation_name(e->mirror);
	char	   *source = relation_name(e->source);

	if (e->time_column)
	{
		const char *column = quote_identifier(e->time_column);
		Datum		range[2] = {TimestampTzGetDatum(run->reread_since),
		TimestampTzGetDatum(reread_until(run))};

		run_sql(psprintf("DELETE FROM %s WHERE %s >= $1 AND %s < $2", mirror, column, column),
				2, (Oid[]) {TIMESTAMPTZOID, TIMESTAMPTZOID}, range, NULL, SPI_OK_DELETE);
		run->rows_deleted = (int64) SPI_processed;
		run_sql(psprintf("INSERT INTO %s SELECT * FROM %s WHERE %s >= $1 AND %s < $2",
						 mirror, source, column, column),
				2, (Oid[]) {TIMESTAMPTZOID, TIMESTAMPTZOID}, range, NULL, SPI_OK_INSERT);
	}
	else
	{
		char	   *key = source_column(e->source, true, NULL);
		Oid			key_type = get_atttype(e->source, get_attnum(e->source, key));

		run_sql(psprintf("DELETE FROM %s", mirror), 0, NULL, NULL, NULL, SPI_OK_DELETE);
		run->rows_deleted = (int64) SPI_processed;
		run_sql(psprintf("INSERT INTO %s SELECT * FROM %s WHERE %s = ANY (ARRAY("
						 "SELECT DISTINCT %s::%s FROM %s WHERE %s IS NOT NULL))",
						 mirror, source, quote_identifier(key),
						 quote_identifier(e->keys_column), format_type_be(key_type),
						 relation_name(e->keys_from), quote_identifier(e->keys_column)),
				0, NULL, NULL, NULL, SPI_OK_INSERT);
	}
	run->rows_read = (int64) SPI_processed;
}

/*
 * The mirror's rows and newest time, after a refresh: its rows counted
 * after a full refresh, else those before less the replaced plus the read
 * (a tail refresh reads little, and need not count a large mirror).
 */
static void
count_rows(const MirrorEntry *e, MirrorRun *run)
{
	bool		count = run->whole || !e->has_rows;
	bool		isnull;
	Datum		value;

	run_sql(psprintf("SELECT %s, %s FROM %s", count ? "count(*)" : "NULL::bigint",
					 e->time_column ? psprintf("max(%s)", quote_identifier(e->time_column))
					 : "NULL::timestamptz", relation_name(e->mirror)),
			0, NULL, NULL, NULL, SPI_OK_SELECT);
	run->rows = count ? DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 1, &isnull))
		: e->rows - run->rows_deleted + run->rows_read;
	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	run->has_newest = !isnull;
	run->newest = isnull ? 0 : DatumGetTimestampTz(value);
}

/*
 * Where a refresh starts re-reading: reread_from if given (never before
 * the mirror's start), else the mirror's start for a full refresh or an
 * empty mirror, else the tail before its newest time.
 */
static void
choose_reread(const MirrorEntry *e, bool has_reread_from, TimestampTz reread_from,
			  MirrorRun *run)
{
	bool		isnull;
	Datum		newest;

	run->has_reread_since = e->time_column != NULL;
	run->whole = e->time_column == NULL || full_refresh_due(e, run->started);
	if (e->time_column == NULL)
		return;
	if (has_reread_from)
	{
		run->reread_since = Max(reread_from, e->since);
		run->whole = run->reread_since <= e->since;
		return;
	}
	run_sql(psprintf("SELECT max(%s) FROM %s", quote_identifier(e->time_column),
					 relation_name(e->mirror)), 0, NULL, NULL, NULL, SPI_OK_SELECT);
	newest = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull || run->whole)
	{
		run->reread_since = e->since;
		run->whole = true;
		return;
	}
	run->reread_since = Max(minus_interval(Min(DatumGetTimestampTz(newest), run->started), e->tail),
							e->since);
}

/*
 * One refresh of a registered mirror, as its owner, in the current
 * (sub)transaction: raises on any failure.  The caller holds the mirror's
 * lock; SPI is connected.
 */
static void
refresh_as_owner(const MirrorEntry *e, bool has_reread_from, TimestampTz reread_from,
				 MirrorRun *run)
{
	Oid			owner = relation_owner(e->mirror);
	int64		requests_before = oprec_http_requests_sent();
	RoleSwitch	rs;

	require_user_mapping(owner, source_server(e->source));
	become(owner, true, &rs);
	choose_reread(e, has_reread_from, reread_from, run);
	/* a fill that takes long says how far it is */
	oprec_scan_progress_ms = MIRROR_PROGRESS_MS;
	PG_TRY();
	{
		replace_rows(e, run);
	}
	PG_FINALLY();
	{
		oprec_scan_progress_ms = 0;
	}
	PG_END_TRY();
	count_rows(e, run);
	unbecome(&rs);
	run->requests = oprec_http_requests_sent() - requests_before;
}

/* Say in the server log what a refresh did: one line each. */
static void
log_run(Oid mirror, const MirrorRun *run)
{
	long		ms = (long) ((GetCurrentTimestamp() - run->started) / 1000);

	if (run->error)
		ereport(LOG,
				(errmsg("oprec_fdw: mirror %s: refresh failed after %lld requests and %ld ms: %s",
						relation_name(mirror), (long long) run->requests, ms, run->error)));
	else
		ereport(LOG,
				(errmsg("oprec_fdw: mirror %s: %s, %lld rows read%s%s, %lld requests, %ld ms, %lld rows",
						relation_name(mirror), run->whole ? "full refresh" : "refreshed",
						(long long) run->rows_read,
						run->has_reread_since ? " since " : "",
						run->has_reread_since ? timestamptz_to_str(run->reread_since) : "",
						(long long) run->requests, ms, (long long) run->rows)));
}

/*
 * Refresh in a subtransaction: a failure leaves the mirror as it was and is
 * returned in run->error (a cancel or a shutdown is not caught).
 */
static void
refresh_catching(const MirrorEntry *e, bool has_reread_from, TimestampTz reread_from,
				 MirrorRun *run)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	int64		requests_before = oprec_http_requests_sent();

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		SPI_connect();
		refresh_as_owner(e, has_reread_from, reread_from, run);
		SPI_finish();
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(cxt);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		/* a cancel or a shutdown ends the caller's work too */
		if (error->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			error->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(error);
		run->error = error->message;
		run->requests = oprec_http_requests_sent() - requests_before;
	}
	PG_END_TRY();
}

/* The caller may refresh or drop the mirror: it owns it (or is a superuser). */
static void
require_mirror_owner(Oid mirror)
{
	if (!has_privs_of_role(GetUserId(), relation_owner(mirror)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be the owner of mirror \"%s\"", relation_name(mirror))));
}

/*
 * oprec_fdw_refresh_mirror(mirror, reread_from): bring a mirror up to date,
 * as its owner.  A failure is recorded (oprec_fdw_mirrors), shown as a
 * WARNING and returned; the mirror stays as it was.  A mirror another
 * session is refreshing is left to it.
 */
Datum
oprec_fdw_refresh_mirror(PG_FUNCTION_ARGS)
{
	Oid			mirror;
	MirrorEntry entry;
	MirrorRun	run = {0};
	char	   *registry;
	Oid			writer;
	TupleDesc	tupdesc;
	Datum		values[5] = {0};
	bool		nulls[5] = {false};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the mirror to refresh may not be NULL")));
	mirror = PG_GETARG_OID(0);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "oprec_fdw_refresh_mirror must return a record");
	require_mirror_owner(mirror);
	extension_home(&registry, &writer);
	SPI_connect();
	if (!registry_read(registry, writer, mirror, &entry, fcinfo->flinfo->fn_mcxt))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a mirror", relation_name(mirror)),
				 errhint("Make one with oprec_fdw_create_mirror().")));
	run.started = GetCurrentTimestamp();
	if (!ConditionalLockRelationOid(mirror, ShareRowExclusiveLock))
	{
		SPI_finish();
		ereport(NOTICE,
				(errmsg("mirror \"%s\" is being refreshed by another session", relation_name(mirror))));
		values[0] = CStringGetTextDatum("already refreshing");
		memset(nulls, true, sizeof(nulls));
		nulls[0] = false;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
	}
	refresh_catching(&entry, !PG_ARGISNULL(1), PG_ARGISNULL(1) ? 0 : PG_GETARG_TIMESTAMPTZ(1),
					 &run);
	registry_record(registry, writer, mirror, &run);
	if (run.error)
		run.error = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, run.error);
	SPI_finish();
	log_run(mirror, &run);
	if (run.error)
		ereport(WARNING,
				(errmsg("refresh of mirror \"%s\" failed: %s", relation_name(mirror), run.error),
				 errdetail("The mirror is as it was; the next refresh reads what this one missed.")));

	values[0] = CStringGetTextDatum(run.error ? "failed" : run.whole ? "full refresh" : "refreshed");
	values[1] = Int64GetDatum(run.rows_read);
	values[2] = Int64GetDatum(run.requests);
	values[3] = TimestampTzGetDatum(run.reread_since);
	nulls[3] = !run.has_reread_since;
	values[4] = run.error ? CStringGetTextDatum(run.error) : (Datum) 0;
	nulls[4] = run.error == NULL;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ----------------------------------------------------------------
 *		Making and dropping mirrors
 * ----------------------------------------------------------------
 */

/*
 * Check a keyed mirror's keys: a source without a time column is copied
 * for the keys a column of another table holds.
 */
static void
check_keys_from(Oid source, bool has_keys_from, Oid keys_from, const char *keys_column)
{
	if (!has_keys_from || keys_column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("foreign table \"%s\" has no time column: a mirror of it needs the keys to read",
						relation_name(source)),
				 errhint("Name a table and its column holding them: keys_from => 'records_mirror', keys_column => 'operator'.")));
	if (get_attnum(keys_from, keys_column) == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of \"%s\" does not exist", keys_column,
						relation_name(keys_from))));
}

/* Register a mirror just made (as the extension's owner). */
static void
registry_insert(const char *registry, Oid writer, const MirrorEntry *e)
{
	RoleSwitch	rs;
	Oid			types[9] = {REGCLASSOID, REGCLASSOID, TEXTOID, REGCLASSOID, TEXTOID,
	TIMESTAMPTZOID, INTERVALOID, INTERVALOID, INTERVALOID};
	Datum		values[9];
	char		nulls[9] = "         ";

	values[0] = ObjectIdGetDatum(e->mirror);
	values[1] = ObjectIdGetDatum(e->source);
	values[2] = e->time_column ? CStringGetTextDatum(e->time_column) : (Datum) 0;
	nulls[2] = e->time_column ? ' ' : 'n';
	values[3] = ObjectIdGetDatum(e->keys_from);
	nulls[3] = OidIsValid(e->keys_from) ? ' ' : 'n';
	values[4] = e->keys_column ? CStringGetTextDatum(e->keys_column) : (Datum) 0;
	nulls[4] = e->keys_column ? ' ' : 'n';
	values[5] = TimestampTzGetDatum(e->since);
	values[6] = e->refresh_every;
	values[7] = e->tail;
	values[8] = e->full_every;
	nulls[8] = e->has_full_every ? ' ' : 'n';
	become(writer, false, &rs);
	run_sql(psprintf("INSERT INTO %s (mirror, source, time_column, keys_from, keys_column,"
					 " since, refresh_every, tail, full_every, created, next_due)"
					 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now())", registry),
			9, types, values, nulls, SPI_OK_INSERT);
	unbecome(&rs);
}

/* Make the mirror's table, as the caller: the source's columns, by time. */
static Oid
make_mirror_table(const char *name, Oid source, const char *time_column)
{
	List	   *names = stringToQualifiedNameList(name
#if PG_VERSION_NUM >= 160000
												  , NULL
#endif
		);
	RangeVar   *rv = makeRangeVarFromNameList(names);
	char	   *qualified = NameListToQuotedString(names);

	run_sql(psprintf("CREATE TABLE %s (LIKE %s)", qualified, relation_name(source)),
			0, NULL, NULL, NULL, SPI_OK_UTILITY);
	if (time_column)
		run_sql(psprintf("CREATE INDEX ON %s (%s)", qualified, quote_identifier(time_column)),
				0, NULL, NULL, NULL, SPI_OK_UTILITY);
	return RangeVarGetRelid(rv, NoLock, false);
}

/* The arguments of oprec_fdw_create_mirror, into a registry entry. */
static void
mirror_arguments(FunctionCallInfo fcinfo, MirrorEntry *e)
{
	TimestampTz history_start;

	for (int i = 0; i < 3; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("source, mirror and refresh_every may not be NULL")));
	memset(e, 0, sizeof(MirrorEntry));
	e->source = PG_GETARG_OID(0);
	e->refresh_every = PG_GETARG_DATUM(2);
	e->tail = PG_ARGISNULL(6) ? DirectFunctionCall3(interval_in, CStringGetDatum("1 hour"),
													ObjectIdGetDatum(InvalidOid),
													Int32GetDatum(-1))
		: PG_GETARG_DATUM(6);
	e->has_full_every = !PG_ARGISNULL(7);
	e->full_every = e->has_full_every ? PG_GETARG_DATUM(7) : (Datum) 0;
	(void) source_server(e->source);
	e->time_column = source_column(e->source, false, &history_start);
	e->since = PG_ARGISNULL(3) ? history_start : Max(PG_GETARG_TIMESTAMPTZ(3), history_start);
	if (e->time_column == NULL)
	{
		e->keys_from = PG_ARGISNULL(4) ? InvalidOid : PG_GETARG_OID(4);
		e->keys_column = PG_ARGISNULL(5) ? NULL : NameStr(*PG_GETARG_NAME(5));
		check_keys_from(e->source, !PG_ARGISNULL(4), e->keys_from, e->keys_column);
	}
}

/*
 * oprec_fdw_create_mirror(source, mirror, refresh_every, since, keys_from,
 * keys_column, tail, full_every): make the mirror's table (owned by the
 * caller), register it and fill it, all in the caller's transaction: if
 * the first fill fails, nothing is left.
 */
Datum
oprec_fdw_create_mirror(PG_FUNCTION_ARGS)
{
	MirrorEntry entry;
	MirrorRun	run = {0};
	char	   *registry;
	Oid			writer;

	mirror_arguments(fcinfo, &entry);
	require_user_mapping(GetUserId(), source_server(entry.source));
	extension_home(&registry, &writer);
	SPI_connect();
	entry.mirror = make_mirror_table(text_to_cstring(PG_GETARG_TEXT_PP(1)), entry.source,
									 entry.time_column);
	registry_insert(registry, writer, &entry);
	run.started = GetCurrentTimestamp();
	LockRelationOid(entry.mirror, ShareRowExclusiveLock);
	refresh_as_owner(&entry, false, 0, &run);
	run.whole = true;
	registry_record(registry, writer, entry.mirror, &run);
	SPI_finish();
	log_run(entry.mirror, &run);
	PG_RETURN_OID(entry.mirror);
}

/* oprec_fdw_drop_mirror(mirror): forget a mirror and drop its table. */
Datum
oprec_fdw_drop_mirror(PG_FUNCTION_ARGS)
{
	Oid			mirror = PG_GETARG_OID(0);
	char	   *registry;
	Oid			writer;
	RoleSwitch	rs;
	char	   *name;

	require_mirror_owner(mirror);
	name = relation_name(mirror);
	extension_home(&registry, &writer);
	SPI_connect();
	become(writer, false, &rs);
	run_sql(psprintf("DELETE FROM %s WHERE mirror = $1", registry),
			1, (Oid[]) {REGCLASSOID}, (Datum[]) {ObjectIdGetDatum(mirror)}, NULL, SPI_OK_DELETE);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a mirror", name)));
	unbecome(&rs);
	run_sql(psprintf("DROP TABLE %s", name), 0, NULL, NULL, NULL, SPI_OK_UTILITY);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * An interval argument of oprec_fdw_alter_mirror, unless NULL: refused if
 * it is not above zero (or, with zero_allowed, below it).
 */
static Datum
interval_argument(FunctionCallInfo fcinfo, int arg, const char *name, bool zero_allowed)
{
	Datum		zero = DirectFunctionCall3(interval_in, CStringGetDatum("0"),
										   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	Datum		value;
	int			sign;

	if (PG_ARGISNULL(arg))
		return (Datum) 0;
	value = PG_GETARG_DATUM(arg);
	sign = DatumGetInt32(DirectFunctionCall2(interval_cmp, value, zero));
	if (sign < 0 || (sign == 0 && !zero_allowed))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be %s", name, zero_allowed ? "zero or more" : "more than zero")));
	return value;
}

/*
 * oprec_fdw_alter_mirror(mirror, refresh_every, tail, full_every,
 * no_full_refresh): change how a mirror is kept current.  A NULL keeps a
 * setting; no_full_refresh stops the full re-reads.  A new refresh_every
 * counts from the start of the last refresh (or the mirror's creation), so
 * a shorter one may make the mirror due at once.
 */
Datum
oprec_fdw_alter_mirror(PG_FUNCTION_ARGS)
{
	Oid			types[5] = {REGCLASSOID, INTERVALOID, INTERVALOID, INTERVALOID, BOOLOID};
	Datum		values[5];
	char		nulls[6] = "     ";
	char	   *registry;
	Oid			writer;
	RoleSwitch	rs;
	Oid			mirror;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("mirror may not be NULL")));
	mirror = PG_GETARG_OID(0);
	require_mirror_owner(mirror);
	values[0] = ObjectIdGetDatum(mirror);
	values[1] = interval_argument(fcinfo, 1, "refresh_every", false);
	values[2] = interval_argument(fcinfo, 2, "tail", true);
	values[3] = interval_argument(fcinfo, 3, "full_every", false);
	values[4] = BoolGetDatum(!PG_ARGISNULL(4) && PG_GETARG_BOOL(4));
	for (int i = 1; i <= 3; i++)
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	if (!PG_ARGISNULL(3) && DatumGetBool(values[4]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("full_every and no_full_refresh contradict each other")));

	extension_home(&registry, &writer);
	SPI_connect();
	become(writer, false, &rs);
	run_sql(psprintf("UPDATE %s SET refresh_every = coalesce($2, refresh_every),"
					 " tail = coalesce($3, tail),"
					 " full_every = CASE WHEN $5 THEN NULL ELSE coalesce($4, full_every) END,"
					 " next_due = CASE WHEN $2 IS NULL THEN next_due"
					 " ELSE coalesce(last_start, created) + $2 END"
					 " WHERE mirror = $1", registry),
			5, types, values, nulls, SPI_OK_UPDATE);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a mirror", relation_name(mirror))));
	unbecome(&rs);
	SPI_finish();
	PG_RETURN_VOID();
}
