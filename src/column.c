/*-------------------------------------------------------------------------
 *
 * column.c
 *		  How the columns of a foreign table map to the fields of its API.
 *
 * A column maps to the API column of its own name, or to what its `field`
 * option names: another API column (then conditions on it are pushed down
 * as on that column), or a path into the record as the API sends it, such
 * as user.nick_name or record_contents.0.new.  A path is read locally only.
 *
 * A path is a list of steps separated by dots.  On an object a step names
 * a member; on an array a step of digits takes that element (from 0), and
 * any other step is taken on every element, giving an array of the
 * results (elements without it are left out).  So on Feishu,
 * record_contents.object_property is the property of every content, as an
 * array.  The API unit resolves the first step, so a path can start at
 * what a row stands for (Huawei: details is the row's own detail).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <jansson.h>

#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "utils/rel.h"

#include "oprec_fdw.h"

/* A path this long is a mistake, not a record's shape. */
#define MAX_PATH_BYTES 512

/* The API column of a name; -1 if none. */
int
oprec_api_column(const OprecResource *res, const char *name)
{
	for (int i = 0; i < res->ncolumns; i++)
		if (strcmp(res->columns[i].name, name) == 0)
			return i;
	return -1;
}

/* Whether a field option is a well-formed path (checked by the validator). */
bool
oprec_field_path_valid(const char *path)
{
	size_t		len = strlen(path);

	if (len == 0 || len > MAX_PATH_BYTES || path[0] == '.' || path[len - 1] == '.')
		return false;
	return strstr(path, "..") == NULL;
}

static char **
split_path(const char *path, int *nsteps)
{
	char	   *copy = pstrdup(path);
	char	  **steps = palloc(sizeof(char *) * (strlen(path) / 2 + 1));
	char	   *step = copy;
	int			n = 0;

	for (;;)
	{
		char	   *dot = strchr(step, '.');

		steps[n++] = step;
		if (dot == NULL)
			break;
		*dot = '\0';
		step = dot + 1;
	}
	*nsteps = n;
	return steps;
}

static char *
api_column_names(const OprecResource *res)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < res->ncolumns; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", res->columns[i].name);
	return buf.data;
}

/* The `field` option of a column, or NULL. */
static const char *
column_field_option(Oid relid, AttrNumber attnum)
{
	ListCell   *lc;

	foreach(lc, GetForeignColumnOptions(relid, attnum))
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "field") == 0)
			return defGetString(opt);
	}
	return NULL;
}

/*
 * The mapping of every attribute of a foreign table, indexed by attnum - 1.
 * A column with no field option must be named like an API column.
 */
OprecColumnMap *
oprec_map_columns(Relation rel, const OprecResource *res)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	OprecColumnMap *map = palloc0(sizeof(OprecColumnMap) * Max(tupdesc->natts, 1));

	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		const char *field;

		map[i].api_column = -1;
		if (attr->attisdropped)
		{
			map[i].dropped = true;
			continue;
		}
		field = column_field_option(RelationGetRelid(rel), attr->attnum);
		map[i].field = field ? field : pstrdup(NameStr(attr->attname));
		map[i].api_column = oprec_api_column(res, map[i].field);
		if (map[i].api_column >= 0)
			continue;
		if (field == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_COLUMN_NAME),
					 errmsg("column \"%s\" of foreign table \"%s\" is not a field of the %s API",
							NameStr(attr->attname), RelationGetRelationName(rel), res->service->title),
					 errhint("Columns of an api '%s' table may be: %s; or give the column OPTIONS (field '...') naming one of them or a path into the record.",
							 res->service->name, api_column_names(res))));
		map[i].path = split_path(field, &map[i].npath);
	}
	return map;
}

/* Every element's value of step, as a new array owned by the current context. */
static json_t *
step_on_each(json_t *array, const char *step)
{
	json_t	   *result = oprec_json_owned(json_array());
	size_t		i;
	json_t	   *element;

	json_array_foreach(array, i, element)
	{
		json_t	   *value = NULL;

		if (json_is_object(element))
			value = json_object_get(element, step);
		if (value != NULL)
			json_array_append(result, value);
	}
	return result;
}

/* Whether a step of a path is an array index (digits only), and which. */
static bool
is_index_step(const char *step, size_t *index)
{
	size_t		digits = strspn(step, "0123456789");
	unsigned long long v;

	if (digits == 0 || step[digits] != '\0')
		return false;
	errno = 0;
	v = strtoull(step, NULL, 10);
	*index = (size_t) v;
	return errno == 0;
}

/* Follow a path from the value of its first step; NULL if it leads nowhere. */
static json_t *
follow_path(json_t *value, char **steps, int nsteps)
{
	for (int s = 1; s < nsteps && value != NULL; s++)
	{
		size_t		index;

		if (json_is_object(value))
			value = json_object_get(value, steps[s]);
		else if (json_is_array(value) && is_index_step(steps[s], &index))
			value = json_array_get(value, index);
		else if (json_is_array(value))
			value = step_on_each(value, steps[s]);
		else
			value = NULL;
	}
	return value;
}

/*
 * The JSON value of an API column for one row of a record: the resource's
 * column_value, or by default the record's member of the column's name.
 * A record that does not say its scope, or in a chain of one key its key,
 * belongs to those asked for.  NULL when the record does not have it.
 */
json_t *
oprec_column_value(OprecScan *scan, const OprecChain *chain, json_t *record, int row,
				   int column)
{
	const OprecResource *res = scan->resource;
	json_t	   *value;

	if (res->column_value)
		return res->column_value(scan, chain, record, row, column);
	value = json_object_get(record, res->columns[column].name);
	if (value == NULL && column == res->scope_column)
		value = scan->scope_json;
	if (value == NULL && column == res->key_column)
		value = scan->chain_key_json;
	return value;
}

/*
 * The JSON value of one mapped column for one row of a record; NULL when
 * the record does not have it.  Arrays a path builds belong to the current
 * memory context.
 */
json_t *
oprec_column_json(OprecScan *scan, const OprecChain *chain, json_t *record, int row,
				  const OprecColumnMap *map)
{
	const OprecResource *res = scan->resource;
	json_t	   *first;

	if (map->api_column >= 0)
		return oprec_column_value(scan, chain, record, row, map->api_column);
	first = res->record_field
		? res->record_field(scan, record, row, map->path[0])
		: json_object_get(record, map->path[0]);
	return follow_path(first, map->path, map->npath);
}
