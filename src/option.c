/*-------------------------------------------------------------------------
 *
 * option.c
 *		  Options of oprec_fdw servers, user mappings and foreign tables:
 *		  the validator run at CREATE/ALTER time, and their resolution for
 *		  one foreign table when it is planned or scanned.
 *
 * The engine owns the options every API shares (api, base_url, page_size,
 * timeouts, pacing); each API unit lists its own in OprecService.options.  A
 * validator is not told which server a user mapping or foreign table
 * belongs to, so those objects are checked against every API here and
 * against their server's API when the table is used.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/varlena.h"
#include "utils/timestamp.h"

#include "oprec_fdw.h"

#define DEFAULT_CONNECT_TIMEOUT_SEC 10
#define DEFAULT_REQUEST_TIMEOUT_SEC 60
#define DEFAULT_MAX_RETRIES 5
#define DEFAULT_REQUESTS_PER_SECOND 10
/* Enough to keep a 15 requests/s quota busy when an answer takes 0.5 s. */
#define DEFAULT_MAX_CONCURRENCY 8
#define DEFAULT_MAX_ID_RANGE 1000
#define DEFAULT_MAX_REQUESTS 10000

/* The cost model's defaults (estimate.c). */
#define DEFAULT_FDW_STARTUP_COST 100.0
#define DEFAULT_FDW_TUPLE_COST 0.01
#define DEFAULT_REQUEST_COST 1000.0
#define DEFAULT_RECORDS_PER_ID 20.0

/*
 * Default answer cap: room for page_size records of up to 32 kB each,
 * plus 1 MB for the rest of the answer.
 */
#define DEFAULT_RESPONSE_BYTES_PER_RECORD 32768
#define DEFAULT_RESPONSE_BYTES_BASE (1024 * 1024)

/* GUC oprec_fdw.allowed_hosts: see check_destinations */
char	   *oprec_allowed_hosts = NULL;

static const char *const time_windows_choices[] = {"auto", "always", NULL};
static const char *const list_items_choices[] = {"updated", "all", NULL};
static const char *const whole_history_choices[] = {"refuse", "allow", NULL};

/* Options every API's server takes; page_size is bounded per API below. */
static const OprecOptionDef engine_options[] = {
	{"api", ForeignServerRelationId, OPREC_OPT_STRING, 0, 0, false},
	{"base_url", ForeignServerRelationId, OPREC_OPT_URL, 0, 0, false},
	{"page_size", ForeignServerRelationId, OPREC_OPT_INT, 1, INT_MAX, false},
	{"connect_timeout", ForeignServerRelationId, OPREC_OPT_INT, 1, 600, false},
	{"request_timeout", ForeignServerRelationId, OPREC_OPT_INT, 1, 3600, false},
	{"requests_per_second", ForeignServerRelationId, OPREC_OPT_INT, 0, OPREC_MAX_REQUESTS_PER_SECOND, false},
	{"max_concurrency", ForeignServerRelationId, OPREC_OPT_INT, 1, OPREC_MAX_CONCURRENCY, false},
	{"max_retries", ForeignServerRelationId, OPREC_OPT_INT, 0, 20, false},
	{"max_response_bytes", ForeignServerRelationId, OPREC_OPT_INT, 65536, 128 * 1024 * 1024, false},
	{"ca_file", ForeignServerRelationId, OPREC_OPT_FILE, 0, 0, false},
	{"max_id_range", ForeignServerRelationId, OPREC_OPT_INT, 1, 1000000, false},
	{"time_windows", ForeignServerRelationId, OPREC_OPT_CHOICE, 0, 0, false, time_windows_choices},
	{"max_requests", ForeignServerRelationId, OPREC_OPT_INT, 1, 100000000, false},
	{"max_requests", ForeignTableRelationId, OPREC_OPT_INT, 1, 100000000, false},
	{"list_items", ForeignServerRelationId, OPREC_OPT_CHOICE, 0, 0, false, list_items_choices},
	{"whole_history", ForeignServerRelationId, OPREC_OPT_CHOICE, 0, 0, false, whole_history_choices},
	{"fdw_startup_cost", ForeignServerRelationId, OPREC_OPT_REAL, 0, 1000000000, false},
	{"fdw_tuple_cost", ForeignServerRelationId, OPREC_OPT_REAL, 0, 1000000000, false},
	{"request_cost", ForeignServerRelationId, OPREC_OPT_REAL, 0, 1000000000, false},
	{"records_per_id", ForeignServerRelationId, OPREC_OPT_REAL, 0, 1000000000, false},
	{"field", AttributeRelationId, OPREC_OPT_FIELD_PATH, 0, 0, false},
	{NULL}
};

static const char *
context_name(Oid context)
{
	switch (context)
	{
		case ForeignServerRelationId:
			return "server";
		case UserMappingRelationId:
			return "user mapping";
		case ForeignTableRelationId:
			return "foreign table";
		case AttributeRelationId:
			return "column";
		case ForeignDataWrapperRelationId:
			return "foreign-data wrapper";
	}
	return "object";
}

static char *
known_api_names(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; oprec_services[i]; i++)
		appendStringInfo(&buf, "%s'%s'", i > 0 ? ", " : "", oprec_services[i]->name);
	return buf.data;
}

/* Find a definition among the engine's and, if given, one API's options. */
static const OprecOptionDef *
find_option(const OprecService *api, const char *name, Oid context)
{
	for (const OprecOptionDef *def = engine_options; def->name; def++)
		if (def->context == context && strcmp(def->name, name) == 0)
			return def;
	if (api)
		for (const OprecOptionDef *def = api->options; def->name; def++)
			if (def->context == context && strcmp(def->name, name) == 0)
				return def;
	return NULL;
}

/*
 * The list of valid option names for a context, for hints.  With api NULL,
 * the options of every API are listed, each once.
 */
static char *
valid_option_names(const OprecService *api, Oid context)
{
	StringInfoData buf;
	List	   *seen = NIL;

	initStringInfo(&buf);
	for (const OprecOptionDef *def = engine_options; def->name; def++)
		if (def->context == context)
			seen = lappend(seen, (char *) def->name);
	for (int i = 0; oprec_services[i]; i++)
	{
		const OprecService *candidate = oprec_services[i];

		if (api && candidate != api)
			continue;
		for (const OprecOptionDef *def = candidate->options; def->name; def++)
		{
			bool		dup = false;
			ListCell   *lc;

			if (def->context != context)
				continue;
			foreach(lc, seen)
				if (strcmp(lfirst(lc), def->name) == 0)
					dup = true;
			if (!dup)
				seen = lappend(seen, (char *) def->name);
		}
	}
	if (seen == NIL)
		return pstrdup("none");
	for (int i = 0; i < list_length(seen); i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", (char *) list_nth(seen, i));
	return buf.data;
}

/* Where an option that is not valid here does belong, for a hint. */
static const char *
option_home(const char *name)
{
	static const Oid contexts[] = {
		ForeignServerRelationId, UserMappingRelationId, ForeignTableRelationId
	};

	for (int c = 0; c < lengthof(contexts); c++)
	{
		if (find_option(NULL, name, contexts[c]))
			return context_name(contexts[c]);
		for (int i = 0; oprec_services[i]; i++)
			if (find_option(oprec_services[i], name, contexts[c]))
				return context_name(contexts[c]);
	}
	return NULL;
}

static void
report_unknown_option(const char *name, const OprecService *api, Oid context)
{
	const char *home = option_home(name);

	if (home && strcmp(home, context_name(context)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"%s\" is not valid for an oprec_fdw %s",
						name, context_name(context)),
				 errdetail("\"%s\" is an option of a %s.", name, home),
				 errhint("Valid options for this %s are: %s.",
						 context_name(context), valid_option_names(api, context))));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\" for an oprec_fdw %s",
					name, context_name(context)),
			 errhint("Valid options for this %s are: %s.",
					 context_name(context), valid_option_names(api, context))));
}

/* Parse a base-10 integer option; false if it is not one. */
static bool
parse_int_option(const char *value, int *result)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < INT_MIN || v > INT_MAX)
		return false;
	*result = (int) v;
	return true;
}

/* Parse a finite, non-negative real option; false if it is not one. */
static bool
parse_real_option(const char *value, double *result)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(value, &end);
	if (errno != 0 || end == value || *end != '\0' || isnan(v) || isinf(v))
		return false;
	*result = v;
	return true;
}

/* An option's value as an error message may show it: never a secret. */
static const char *
shown_value(const OprecOptionDef *def, const char *value)
{
	return def->secret ? "(not shown)" : psprintf("\"%s\"", value);
}

/* Whether a URL option names a scheme, a host and nothing unexpected. */
static bool
url_is_plain(const char *value)
{
	const char *host;

	if (pg_strncasecmp(value, "http://", 7) == 0)
		host = value + 7;
	else if (pg_strncasecmp(value, "https://", 8) == 0)
		host = value + 8;
	else
		return false;
	/* no user info (user@host would hide the real host), query or fragment */
	return host[0] != '\0' && host[0] != '/' && host[0] != ':' &&
		strpbrk(value, " ?#@\\") == NULL;
}

static bool
is_host_label(const char *value)
{
	size_t		len = strlen(value);

	if (len == 0 || len > 63 || value[0] == '-' || value[len - 1] == '-')
		return false;
	return strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789-") == len;
}

/* Whether a value is one of the choices of a choice option. */
static bool
is_choice(const OprecOptionDef *def, const char *value)
{
	for (const char *const *c = def->choices; *c; c++)
		if (strcmp(*c, value) == 0)
			return true;
	return false;
}

/*
 * What a value of an option's kind looks like, for the hint when one is
 * refused.
 */
static const char *
value_hint(const OprecOptionDef *def, int max_value)
{
	StringInfoData choices;

	switch (def->type)
	{
		case OPREC_OPT_URL:
			return "Give an http:// or https:// URL with a host, optional port and optional path prefix, such as 'https://api.example.com', without user name, spaces, query or fragment.";
		case OPREC_OPT_INT:
			return psprintf("Give an integer from %d to %d.", def->min_value, max_value);
		case OPREC_OPT_REAL:
			return psprintf("Give a number from %d to %d.", def->min_value, max_value);
		case OPREC_OPT_CHOICE:
			initStringInfo(&choices);
			for (const char *const *c = def->choices; *c; c++)
				appendStringInfo(&choices, "%s'%s'", c == def->choices ? "" : ", ", *c);
			return psprintf("Give one of %s.", choices.data);
		case OPREC_OPT_FIELD_PATH:
			return "Give the name of a field of the API, or a path of names separated by dots, such as 'user.nick_name' or 'record_contents.0.new'.";
		case OPREC_OPT_HOST_LABEL:
			return "Give lowercase letters, digits and hyphens only, such as 'cn-north-4'.";
		case OPREC_OPT_FILE:
			return "Give an absolute path.";
		case OPREC_OPT_STRING:
		case OPREC_OPT_TIMESTAMPTZ:
			break;				/* refused with messages of their own */
	}
	return NULL;
}

static void
check_option_value(const OprecOptionDef *def, const char *value, const OprecService *api)
{
	int			ival;
	double		rval;
	int			max_value = def->max_value;
	bool		valid = true;

	if (strcmp(def->name, "page_size") == 0 && api)
		max_value = api->resources[0]->max_page_size;

	/* values reach headers, URLs and JSON: no option may hold one */
	if (oprec_has_control_char(value))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": it contains a control character", def->name),
				 errhint("Remove line breaks, tabs and other control characters from the value.")));

	switch (def->type)
	{
		case OPREC_OPT_STRING:
			if (value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("option \"%s\" must not be empty", def->name)));
			break;
		case OPREC_OPT_URL:
			valid = url_is_plain(value);
			break;
		case OPREC_OPT_INT:
			valid = parse_int_option(value, &ival) &&
				ival >= def->min_value && ival <= max_value;
			break;
		case OPREC_OPT_REAL:
			valid = parse_real_option(value, &rval) &&
				rval >= def->min_value && rval <= max_value;
			break;
		case OPREC_OPT_CHOICE:
			valid = is_choice(def, value);
			break;
		case OPREC_OPT_FIELD_PATH:
			valid = oprec_field_path_valid(value);
			break;
		case OPREC_OPT_TIMESTAMPTZ:
			(void) oprec_parse_timestamptz(value, def->name);
			break;
		case OPREC_OPT_HOST_LABEL:
			valid = is_host_label(value);
			break;
		case OPREC_OPT_FILE:
			/* like file_fdw's filename: it makes the server read a file */
			if (!superuser())
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("only superusers may set option \"%s\"", def->name),
						 errdetail("The option names a file on the database server.")));
			valid = is_absolute_path(value);
			break;
	}
	if (!valid)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": %s", def->name, shown_value(def, value)),
				 errhint("%s", value_hint(def, max_value))));
}

/* The scheme://host[:port] of a URL, lowercased. */
static char *
url_origin(const char *url)
{
	const char *host = strstr(url, "://");
	size_t		len;
	char	   *origin;

	host = host ? host + 3 : url;
	len = (host - url) + strcspn(host, "/");
	origin = pnstrdup(url, len);
	for (char *c = origin; *c; c++)
		*c = pg_tolower((unsigned char) *c);
	return origin;
}

/* Whether oprec_fdw.allowed_hosts lists the origin of url. */
static bool
url_is_allowed(const char *url)
{
	char	   *origin = url_origin(url);
	char	   *list = pstrdup(oprec_allowed_hosts ? oprec_allowed_hosts : "");
	List	   *entries;
	ListCell   *lc;

	if (!SplitIdentifierString(list, ',', &entries))
		return false;
	foreach(lc, entries)
	{
		char	   *entry = url_origin((const char *) lfirst(lc));

		if (strcmp(entry, origin) == 0)
			return true;
	}
	return false;
}

/*
 * Where requests may go.  A server's URL options send its user mappings'
 * credentials to the host they name, so a server owned by a role that is
 * not a superuser may name only the API's own default hosts, or origins a
 * superuser listed in oprec_fdw.allowed_hosts.  Checked when the options
 * are set (by their owner) and again when a table is used (the owner or
 * the setting may have changed since).
 */
static void
check_destination(const OprecOptionDef *def, const char *value, Oid owner,
				  const char *server_name)
{
	if (def->type != OPREC_OPT_URL || superuser_arg(owner) || url_is_allowed(value))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 server_name
			 ? errmsg("option \"%s\" of server \"%s\" names a host that servers owned by non-superusers may not use",
					  def->name, server_name)
			 : errmsg("option \"%s\" names a host that servers owned by non-superusers may not use",
					  def->name),
			 errdetail("Requests would go to %s.", url_origin(value)),
			 errhint("Leave \"%s\" unset to use the API's own host, or have a superuser add that origin to oprec_fdw.allowed_hosts.",
					 def->name)));
}

/* Whether a foreign table of this API takes an option of this name. */
bool
oprec_is_table_option(const OprecService *api, const char *name)
{
	return find_option(api, name, ForeignTableRelationId) != NULL;
}

/* The valid table options of an API, for messages. */
char *
oprec_table_option_names(const OprecService *api)
{
	return valid_option_names(api, ForeignTableRelationId);
}

/* Which API a user mapping or table option list is written for, if any. */
static const OprecService *
api_of_options(List *options, Oid context)
{
	const OprecService *found = NULL;
	const char *found_option = NULL;
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *opt = lfirst(lc);

		for (int i = 0; oprec_services[i]; i++)
		{
			const OprecService *api = oprec_services[i];

			if (find_option(NULL, opt->defname, context))
				continue;		/* an engine option fits every API */
			if (!find_option(api, opt->defname, context))
				continue;
			/* an option name two APIs share says nothing */
			if (found && found != api && !find_option(found, opt->defname, context))
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
						 errmsg("options \"%s\" and \"%s\" belong to different APIs",
								found_option, opt->defname),
						 errhint("\"%s\" is for api '%s' servers and \"%s\" for api '%s' servers.",
								 found_option, found->name, opt->defname, api->name)));
			if (!found)
			{
				found = api;
				found_option = opt->defname;
			}
		}
	}
	return found;
}

PG_FUNCTION_INFO_V1(oprec_fdw_validator);

/*
 * Validate the options of an oprec_fdw object; called with the complete
 * option list after CREATE or ALTER.
 */
Datum
oprec_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			context = PG_GETARG_OID(1);
	const OprecService *api = NULL;
	ListCell   *lc;

	if (context == ForeignServerRelationId)
	{
		bool		has_api = false;

		foreach(lc, options)
		{
			DefElem    *opt = lfirst(lc);

			if (strcmp(opt->defname, "api") == 0)
			{
				has_api = true;
				api = oprec_find_service(defGetString(opt));
				if (!api)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
							 errmsg("unknown api \"%s\"", defGetString(opt)),
							 errhint("Valid values for option \"api\" are: %s.", known_api_names())));
			}
		}
		if (!has_api)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
					 errmsg("an oprec_fdw server needs the option \"api\""),
					 errhint("Add OPTIONS (api 'feishu'); valid values are: %s.", known_api_names())));
	}
	else if (context == UserMappingRelationId || context == ForeignTableRelationId)
		api = api_of_options(options, context);

	foreach(lc, options)
	{
		DefElem    *opt = lfirst(lc);
		const OprecOptionDef *def = find_option(api, opt->defname, context);

		if (!def && !api && context != ForeignServerRelationId)
		{
			/* not written for one API: accept the name if any API has it */
			for (int i = 0; oprec_services[i] && !def; i++)
				def = find_option(oprec_services[i], opt->defname, context);
		}
		if (!def)
			report_unknown_option(opt->defname, api, context);
		check_option_value(def, defGetString(opt), api);
		if (context == ForeignServerRelationId)
			check_destination(def, defGetString(opt), GetUserId(), NULL);
	}

	if (context == UserMappingRelationId && api && api->check_user_mapping)
		api->check_user_mapping(options);

	PG_RETURN_VOID();
}

/*
 * Check that a user mapping's or table's options suit its server's API;
 * the validator could not know which server they were for.
 */
static void
check_options_for_api(const OprecService *api, List *options, Oid context,
					  const char *server_name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *opt = lfirst(lc);

		if (!find_option(api, opt->defname, context))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("option \"%s\" of a %s is not valid with server \"%s\" (api '%s')",
							opt->defname, context_name(context), server_name, api->name),
					 errhint("Valid options for a %s of an api '%s' server are: %s.",
							 context_name(context), api->name,
							 valid_option_names(api, context))));
	}
}

/*
 * The value of a number option for this table, read as an integer or as a
 * real; fallback when no object sets it or it does not read as one.
 */
static double
option_number(const OprecOptions *options, const char *name, bool integer,
			  double fallback)
{
	const char *value = oprec_option_value(options, name);
	int			ival;
	double		rval;

	if (value == NULL)
		return fallback;
	if (integer)
		return parse_int_option(value, &ival) ? ival : fallback;
	return parse_real_option(value, &rval) ? rval : fallback;
}

static int
oprec_option_int(const OprecOptions *options, const char *name, int fallback)
{
	return (int) option_number(options, name, true, fallback);
}

static double
option_real(const OprecOptions *options, const char *name, double fallback)
{
	return option_number(options, name, false, fallback);
}

/* The API a table's server names; an error if it names none we know. */
static const OprecService *
server_api(const OprecOptions *opts, const ForeignServer *server)
{
	const char *api_name = oprec_option_value(opts, "api");
	const OprecService *api = api_name ? oprec_find_service(api_name) : NULL;

	if (!api)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" has no valid \"api\" option", server->servername),
				 errhint("Set it with ALTER SERVER %s OPTIONS (ADD api 'feishu').",
						 quote_identifier(server->servername))));
	return api;
}

/*
 * The engine's settings of a table: sizes, timeouts, pacing and limits,
 * each from its option or its default.
 */
static void
read_engine_settings(OprecOptions *opts)
{
	const char *time_windows;

	opts->page_size = oprec_option_int(opts, "page_size", opts->resource->default_page_size);
	opts->connect_timeout_ms =
		oprec_option_int(opts, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_SEC) * 1000;
	opts->request_timeout_ms =
		oprec_option_int(opts, "request_timeout", DEFAULT_REQUEST_TIMEOUT_SEC) * 1000;
	opts->requests_per_second =
		oprec_option_int(opts, "requests_per_second",
						 opts->resource->service->default_requests_per_second > 0
						 ? opts->resource->service->default_requests_per_second
						 : DEFAULT_REQUESTS_PER_SECOND);
	opts->max_concurrency = oprec_option_int(opts, "max_concurrency", DEFAULT_MAX_CONCURRENCY);
	opts->max_retries = oprec_option_int(opts, "max_retries", DEFAULT_MAX_RETRIES);
	opts->max_response_bytes =
		(size_t) oprec_option_int(opts, "max_response_bytes",
								  Min(DEFAULT_RESPONSE_BYTES_BASE +
									  opts->page_size * DEFAULT_RESPONSE_BYTES_PER_RECORD,
									  128 * 1024 * 1024));
	opts->ca_file = oprec_option_value(opts, "ca_file");
	opts->max_id_range = oprec_option_int(opts, "max_id_range", DEFAULT_MAX_ID_RANGE);
	opts->max_requests = oprec_option_int(opts, "max_requests", DEFAULT_MAX_REQUESTS);
	opts->list_every_key = oprec_option_value(opts, "list_items") != NULL &&
		strcmp(oprec_option_value(opts, "list_items"), "all") == 0;
	opts->allow_whole_history = oprec_option_value(opts, "whole_history") != NULL &&
		strcmp(oprec_option_value(opts, "whole_history"), "allow") == 0;
	time_windows = oprec_option_value(opts, "time_windows");
	opts->always_windows = time_windows != NULL && strcmp(time_windows, "always") == 0;
}

/* The cost model's numbers (estimate.c), each from its option or default. */
static void
read_cost_settings(OprecOptions *opts)
{
	opts->fdw_startup_cost = option_real(opts, "fdw_startup_cost", DEFAULT_FDW_STARTUP_COST);
	opts->fdw_tuple_cost = option_real(opts, "fdw_tuple_cost", DEFAULT_FDW_TUPLE_COST);
	opts->request_cost = option_real(opts, "request_cost", DEFAULT_REQUEST_COST);
	opts->records_per_id = option_real(opts, "records_per_id", DEFAULT_RECORDS_PER_ID);
}

/*
 * Check again where the server's URL options send requests: its owner or
 * oprec_fdw.allowed_hosts may have changed since they were set.
 */
static void
check_server_destinations(const OprecService *api, const ForeignServer *server)
{
	ListCell   *lc;

	foreach(lc, server->options)
	{
		DefElem    *opt = lfirst(lc);
		const OprecOptionDef *def = find_option(api, opt->defname,
												ForeignServerRelationId);

		if (def)
			check_destination(def, defGetString(opt), server->owner, server->servername);
	}
}

/*
 * Resolve the options of a foreign table.  The user mapping is read only
 * for a scan (userid valid): planning must not need credentials.
 */
OprecOptions *
oprec_get_options(Oid foreigntableid, Oid userid)
{
	ForeignTable *table = GetForeignTable(foreigntableid);
	ForeignServer *server = GetForeignServer(table->serverid);
	OprecOptions *opts = palloc0(sizeof(OprecOptions));
	const OprecService *service;
	const char *base_url;

	opts->server_options = server->options;
	opts->table_options = table->options;

	service = server_api(opts, server);
	check_options_for_api(service, table->options, ForeignTableRelationId,
						  server->servername);
	opts->resource = oprec_find_resource(service,
										 oprec_defelem_value(table->options, "resource"));

	if (OidIsValid(userid))
	{
		UserMapping *mapping = GetUserMapping(userid, server->serverid);

		opts->user_mapping_id = mapping->umid;
		opts->user_options = mapping->options;
		check_options_for_api(service, mapping->options, UserMappingRelationId,
							  server->servername);
	}

	base_url = oprec_option_value(opts, "base_url");
	if (base_url == NULL)
		base_url = service->default_base_url_for
			? service->default_base_url_for(opts)
			: service->default_base_url;
	opts->base_url = oprec_url_base(base_url);

	read_engine_settings(opts);
	read_cost_settings(opts);
	check_server_destinations(service, server);
	return opts;
}
