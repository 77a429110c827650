/*-------------------------------------------------------------------------
 *
 * option_value.c
 *		  Option values as the engine and API units read them: by name
 *		  from an option list or a table's resolved options, a URL ready
 *		  for a path, and a timestamp.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/defrem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "oprec_fdw.h"

static DefElem *
find_defelem(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, name) == 0)
			return opt;
	}
	return NULL;
}

/* The value of an option in one option list, or NULL. */
const char *
oprec_defelem_value(List *options, const char *name)
{
	DefElem    *opt = find_defelem(options, name);

	return opt ? defGetString(opt) : NULL;
}

/* A copy of a URL without trailing slashes, ready for a path to follow. */
char *
oprec_url_base(const char *url)
{
	char	   *result = pstrdup(url);
	size_t		len = strlen(result);

	while (len > 0 && result[len - 1] == '/')
		result[--len] = '\0';
	return result;
}

/*
 * The value of an option for this table: the table's own, else the user
 * mapping's, else the server's; NULL if none sets it.
 */
const char *
oprec_option_value(const OprecOptions *options, const char *name)
{
	DefElem    *opt;

	if ((opt = find_defelem(options->table_options, name)) != NULL ||
		(opt = find_defelem(options->user_options, name)) != NULL ||
		(opt = find_defelem(options->server_options, name)) != NULL)
		return defGetString(opt);
	return NULL;
}

/* Parse a finite timestamp with time zone; false if it is not one. */
bool
oprec_try_parse_timestamptz(const char *text, TimestampTz *result)
{
	volatile bool ok = true;
	MemoryContext oldcxt = CurrentMemoryContext;

	PG_TRY();
	{
		*result = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
														  CStringGetDatum(text),
														  ObjectIdGetDatum(InvalidOid),
														  Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	return ok && !TIMESTAMP_NOT_FINITE(*result);
}

TimestampTz
oprec_parse_timestamptz(const char *text, const char *option_name)
{
	TimestampTz result = 0;

	if (!oprec_try_parse_timestamptz(text, &result))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", option_name, text),
				 errhint("Give a finite timestamp with time zone, such as '2024-07-02 00:00:00+08'.")));
	return result;
}
