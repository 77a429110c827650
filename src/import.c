/*-------------------------------------------------------------------------
 *
 * import.c
 *		  IMPORT FOREIGN SCHEMA: the documented tables of a server's API.
 *
 * IMPORT FOREIGN SCHEMA <schema> FROM SERVER s INTO local_schema creates
 * every table (resource) of the server's service, its columns as the
 * resource documents them; the statement's OPTIONS become the tables'.
 * PostgreSQL applies LIMIT TO and EXCEPT; a name that is no table of the
 * API is an error here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/defrem.h"
#include "utils/builtins.h"

#include "oprec_fdw.h"

/* The names of the tables IMPORT FOREIGN SCHEMA creates, for messages. */
static char *
import_table_names(const OprecService *service)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; service->resources[i]; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", service->resources[i]->table_name);
	return buf.data;
}

/* The table options IMPORT takes: all but resource, which it sets itself. */
static char *
import_option_names(const OprecService *service)
{
	char	   *names = oprec_table_option_names(service);
	StringInfoData buf;
	char	   *name;
	char	   *save = NULL;

	initStringInfo(&buf);
	for (name = strtok_r(names, ", ", &save); name; name = strtok_r(NULL, ", ", &save))
		if (strcmp(name, "resource") != 0)
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", name);
	return buf.data;
}

/*
 * CREATE FOREIGN TABLE for one table of a service, with the given options;
 * a table other than the server's first names its resource.
 */
static char *
import_command(const OprecResource *res, ForeignServer *server, List *options,
			   bool name_resource)
{
	StringInfoData sql;
	ListCell   *lc;
	bool		first = true;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE FOREIGN TABLE %s (", quote_identifier(res->table_name));
	for (int i = 0; i < res->ncolumns; i++)
		appendStringInfo(&sql, "%s%s %s", i > 0 ? ", " : "",
						 quote_identifier(res->columns[i].name), res->columns[i].sql_type);
	appendStringInfo(&sql, ") SERVER %s", quote_identifier(server->servername));
	if (name_resource)
	{
		appendStringInfo(&sql, " OPTIONS (resource %s", quote_literal_cstr(res->name));
		first = false;
	}
	foreach(lc, options)
	{
		DefElem    *opt = lfirst(lc);

		appendStringInfo(&sql, "%s%s %s", first ? " OPTIONS (" : ", ",
						 quote_identifier(opt->defname), quote_literal_cstr(defGetString(opt)));
		first = false;
	}
	if (!first)
		appendStringInfoChar(&sql, ')');
	return sql.data;
}

/* Refuse a table name of LIMIT TO or EXCEPT that the service has not. */
static void
check_table_names(const OprecService *service, List *table_list)
{
	ListCell   *lc;

	foreach(lc, table_list)
	{
		RangeVar   *rv = lfirst(lc);
		bool		known = false;

		for (int i = 0; service->resources[i] && !known; i++)
			known = strcmp(rv->relname, service->resources[i]->table_name) == 0;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
					 errmsg("schema \"%s\" has no table \"%s\"", service->import_schema,
							rv->relname),
					 errhint("Its tables: %s.", import_table_names(service))));
	}
}

/* Refuse an option of the statement that its tables would not take. */
static void
check_import_options(const OprecService *service, List *options)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *opt = lfirst(lc);

		if (!oprec_is_table_option(service, opt->defname) ||
			strcmp(opt->defname, "resource") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\" for IMPORT FOREIGN SCHEMA %s",
							opt->defname, service->import_schema),
					 errhint("Its options become the options of the imported tables: %s.",
							 import_option_names(service))));
	}
}

List *
oprec_import_foreign_schema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	const char *api_name = oprec_defelem_value(server->options, "api");
	const OprecService *service = api_name ? oprec_find_service(api_name) : NULL;
	List	   *commands = NIL;

	if (service == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" has no valid \"api\" option", server->servername)));
	if (service->import_schema == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("server \"%s\" (api '%s') has no schema to import",
						server->servername, service->name),
				 errhint("Create its tables with CREATE FOREIGN TABLE.")));
	if (strcmp(stmt->remote_schema, service->import_schema) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("server \"%s\" (api '%s') has no schema \"%s\": its schema is \"%s\"",
						server->servername, service->name, stmt->remote_schema,
						service->import_schema),
				 errhint("IMPORT FOREIGN SCHEMA %s FROM SERVER %s INTO ...",
						 service->import_schema, quote_identifier(server->servername))));
	check_table_names(service, stmt->table_list);
	check_import_options(service, stmt->options);

	/* the server's table, then the others it serves (LIMIT TO picks) */
	for (int i = 0; service->resources[i]; i++)
		commands = lappend(commands, import_command(service->resources[i], server,
													stmt->options, i > 0));
	return commands;
}
