/*-------------------------------------------------------------------------
 *
 * convert.c
 *		  JSON values from API answers to PostgreSQL datums.
 *
 * A column's declared type decides the conversion: a JSON value of an
 * epoch-milliseconds column becomes a timestamptz exactly (integer
 * arithmetic, never through a double); integers stay exact as text or
 * int8; any JSON value can become json/jsonb or its JSON text.  Everything
 * else goes through the type's input function, so a table may declare a
 * column as text, varchar, numeric, ... as it likes.  Strings arrive in
 * UTF-8 and are converted to the database encoding.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <jansson.h>

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "oprec_fdw.h"

void
oprec_prepare_converter(OprecColumnConverter *conv, int column, Oid typid, int32 typmod)
{
	Oid			input_func;

	conv->column = column;
	conv->typid = typid;
	conv->typmod = typmod;
	getTypeInputInfo(typid, &input_func, &conv->typioparam);
	fmgr_info(input_func, &conv->input);
}

/* Text in the database encoding from UTF-8 bytes. */
static char *
utf8_to_server(const char *text, size_t len)
{
	return pg_any_to_server(text, (int) len, PG_UTF8);
}

/* The JSON text of any value (a string keeps its quotes). */
static char *
json_serialize(json_t *value)
{
	char	   *dumped = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
	char	   *result;

	if (dumped == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("could not serialize a JSON value from the API answer")));
	/* copy out of malloc'd memory before anything can throw */
	result = pstrdup(dumped);
	free(dumped);
	return utf8_to_server(result, strlen(result));
}

/*
 * The text form of a scalar: a string as is, a number in its exact JSON
 * spelling, true/false; arrays and objects as JSON text.
 */
static char *
json_scalar_text(json_t *value)
{
	switch (json_typeof(value))
	{
		case JSON_STRING:
			return utf8_to_server(json_string_value(value), json_string_length(value));
		case JSON_INTEGER:
			return psprintf(INT64_FORMAT, (int64) json_integer_value(value));
		case JSON_TRUE:
			return pstrdup("true");
		case JSON_FALSE:
			return pstrdup("false");
		default:
			return json_serialize(value);
	}
}

/* Read epoch milliseconds from an integer or a string of digits. */
bool
oprec_json_epoch_ms(json_t *value, int64 *ms)
{
	if (json_is_integer(value))
	{
		*ms = (int64) json_integer_value(value);
		return true;
	}
	if (json_is_string(value))
	{
		const char *s = json_string_value(value);
		char	   *end;
		long long	v;

		if (*s == '\0')
			return false;
		errno = 0;
		v = strtoll(s, &end, 10);
		if (errno != 0 || *end != '\0')
			return false;
		*ms = (int64) v;
		return true;
	}
	return false;
}

Datum
oprec_json_to_datum(OprecColumnConverter *conv, OprecValueKind kind,
					json_t *value, bool *isnull)
{
	char	   *text;

	*isnull = (value == NULL || json_is_null(value));
	if (*isnull)
		return (Datum) 0;

	if (kind == OPREC_VALUE_EPOCH_MS &&
		(conv->typid == TIMESTAMPTZOID || conv->typid == TIMESTAMPOID))
	{
		int64		ms;
		TimestampTz ts;

		if (!oprec_json_epoch_ms(value, &ms) || !oprec_ms_to_timestamptz(ms, &ts))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("invalid epoch milliseconds in the API answer: %s",
							json_serialize(value))));
		/* a timestamp column shows the UTC time the API means */
		return TimestampTzGetDatum(ts);
	}

	if (conv->typid == INT8OID && json_is_integer(value))
		return Int64GetDatum((int64) json_integer_value(value));

	if (conv->typid == JSONBOID || conv->typid == JSONOID)
		text = json_serialize(value);
	else
		text = json_scalar_text(value);

	return InputFunctionCall(&conv->input, text, conv->typioparam, conv->typmod);
}

/*
 * A new empty JSON object.  jansson's json_object() cannot be called from
 * here: the postgres executable exports a function of the same name (the
 * SQL json_object) and the dynamic linker binds our reference to it.
 * jansson's own calls inside libjansson are not affected, so let json_pack
 * build the object.
 */
json_t *
oprec_json_new_object(void)
{
	return json_pack("{}");
}

/*
 * Write a JSON value as the body of a request.  jansson's text may hold a
 * secret (a token exchange carries one), so it is wiped before it is freed.
 */
void
oprec_request_set_json_body(OprecRequest *req, json_t *body)
{
	char	   *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	if (text == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not build a request body")));
	resetStringInfo(&req->body);
	appendStringInfoString(&req->body, text);
	explicit_bzero(text, strlen(text));
	free(text);
}

static void
release_json(void *arg)
{
	json_decref((json_t *) arg);
}

/*
 * Make a jansson value (malloc'd by jansson) owned by the current memory
 * context: it is released when the context is reset or deleted, on error
 * too.  Call before anything can throw.
 */
json_t *
oprec_json_owned(json_t *value)
{
	MemoryContextCallback *cb;

	if (value == NULL)
		return NULL;
	cb = MemoryContextAllocExtended(CurrentMemoryContext, sizeof(MemoryContextCallback),
									MCXT_ALLOC_NO_OOM);
	if (cb == NULL)
	{
		json_decref(value);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	cb->func = release_json;
	cb->arg = value;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
	return value;
}

/*
 * The JSON of a page answer, owned by the current memory context.  An
 * answer that is not JSON is an error: a failure of the API (or of a
 * gateway) if its HTTP status says so, else an answer we cannot read.
 */
json_t *
oprec_json_answer(OprecScan *scan, OprecRequest *req, OprecResponse *resp)
{
	json_t	   *root = oprec_json_load_owned(&resp->body);

	if (root == NULL)
	{
		if (resp->status < 200 || resp->status > 299)
			oprec_api_error(scan, req, resp, NULL, "the request failed", NULL);
		oprec_bad_answer(scan, req, resp, "the answer is not JSON");
	}
	return root;
}

/* Parse an answer body into JSON owned by the current memory context. */
json_t *
oprec_json_load_owned(const StringInfo body)
{
	json_error_t error;

	return oprec_json_owned(json_loadb(body->data, body->len, 0, &error));
}
