/*-------------------------------------------------------------------------
 *
 * convert.c
 *		  JSON values from API answers to PostgreSQL datums.
 *
 * A column's declared type decides the conversion: epoch milliseconds
 * become a timestamptz, timestamp or date exactly (integer arithmetic,
 * never through a double); integers stay exact as text or int8; any JSON
 * value can become json or its JSON text, and jsonb built from the parsed
 * value itself; a JSON array becomes an array column element by element.
 * Everything else goes through the type's input function, so a table may
 * declare a column as text, varchar, numeric, boolean, ... as it likes.  Strings arrive in
 * UTF-8 and are converted to the database encoding.  Numbers that jansson
 * could not keep exactly arrive as marked strings (json.c) and are written
 * back as the numbers they are.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <jansson.h>

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "oprec_fdw.h"
#include "json_read.h"


void
oprec_prepare_converter(OprecColumnConverter *conv, const OprecResource *res,
						const OprecColumnMap *map, Oid typid, int32 typmod)
{
	Oid			input_func;

	conv->map = map;
	conv->kind = map->api_column >= 0 ? res->columns[map->api_column].kind : OPREC_VALUE_JSON;
	conv->typid = typid;
	conv->typmod = typmod;
	getTypeInputInfo(typid, &input_func, &conv->typioparam);
	fmgr_info(input_func, &conv->input);

	conv->elemtype = get_element_type(typid);
	if (OidIsValid(conv->elemtype))
	{
		getTypeInputInfo(conv->elemtype, &input_func, &conv->elem_ioparam);
		fmgr_info(input_func, &conv->elem_input);
		get_typlenbyvalalign(conv->elemtype, &conv->elemlen, &conv->elembyval,
							 &conv->elemalign);
	}
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
				(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
				 errmsg("could not serialize a JSON value from the API answer")));
	oprec_json_unmark_numbers(dumped);
	result = oprec_jansson_text(dumped);
	return utf8_to_server(result, strlen(result));
}

/*
 * The text form of a scalar: a string as is, a number in its exact JSON
 * spelling, true/false; arrays and objects as JSON text.
 */
static char *
json_scalar_text(json_t *value)
{
	const char *number;
	size_t		number_len;

	if (oprec_json_marked_number(value, &number, &number_len))
		return pnstrdup(number, number_len);
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

		if (*s == '\0' || strspn(s + (*s == '-'), "0123456789") != strlen(s + (*s == '-')))
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

/* A JSON value as a message may show it: cut short, no control characters. */
char *
oprec_json_shown(json_t *value)
{
	char	   *dumped = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
	char	   *shown;

	if (dumped == NULL)
		return pstrdup("(a value that cannot be shown)");
	oprec_json_unmark_numbers(dumped);
	shown = oprec_api_text(dumped, strlen(dumped));
	oprec_json_free(dumped);
	return shown;
}

static bool
is_time_type(Oid typid)
{
	return typid == TIMESTAMPTZOID || typid == TIMESTAMPOID || typid == DATEOID;
}

/*
 * Epoch milliseconds as a timestamptz, timestamp (the UTC time the API
 * means) or date (the UTC day).
 */
static Datum
epoch_ms_to_datum(Oid typid, json_t *value, int64 ms)
{
	TimestampTz ts;

	if (!oprec_ms_to_timestamptz(ms, &ts))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("epoch milliseconds out of range in the API answer: %s",
						oprec_json_shown(value))));
	if (typid == DATEOID)
	{
		/* days since 2000-01-01 UTC, rounded down */
		int64		days = ts / USECS_PER_DAY;

		if (ts < 0 && ts % USECS_PER_DAY != 0)
			days--;
		return DateADTGetDatum((DateADT) days);
	}
	return TimestampTzGetDatum(ts);
}

/* A JSON array as an array of the column's element type. */
static Datum
json_array_to_datum(OprecColumnConverter *conv, json_t *value)
{
	size_t		n = json_array_size(value);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1];
	int			lbs[1] = {1};
	size_t		i;
	json_t	   *element;

	if (!json_is_array(value))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("an array column needs a JSON array, and the API sent %s",
						oprec_json_shown(value))));
	if (n > (size_t) MaxArraySize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a JSON array of %zu elements is too long for an array column", n)));
	json_array_foreach(value, i, element)
	{
		nulls[i] = json_is_null(element);
		elems[i] = nulls[i] ? (Datum) 0
			: InputFunctionCall(&conv->elem_input, json_scalar_text(element),
								conv->elem_ioparam, -1);
	}
	dims[0] = (int) n;
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, conv->elemtype,
											  conv->elemlen, conv->elembyval,
											  conv->elemalign));
}

/*
 * numeric's input functions, declared by utils/fmgrprotos.h, which cannot
 * be included with jansson.h (both declare json_object and json_typeof).
 */
extern Datum numeric_in(PG_FUNCTION_ARGS);
extern Datum int8_numeric(PG_FUNCTION_ARGS);

/*
 * What numeric_in accepts on every PostgreSQL version: an exponent of at
 * most 1000 either way (NUMERIC_MAX_PRECISION, its long-standing bound on
 * exponents), at most 131072 digits before the decimal point and 16383
 * after.  Checked here, so that a number past them never reaches it.
 */
#define NUMERIC_INPUT_MAX_EXPONENT 1000
#define NUMERIC_INPUT_MAX_INT_DIGITS 131072
#define NUMERIC_INPUT_MAX_SCALE 16383

/*
 * Whether a JSON number (valid by JSON's grammar: json.c kept its text)
 * is within numeric's limits.  A valid JSON number such as 1e999999999 is
 * not, and numeric_in would fail on it.
 */
static bool
number_fits_numeric(const char *text, size_t len)
{
	size_t		i = 0;
	int64		int_digits = 0;
	int64		frac_digits = 0;
	int64		exponent = 0;
	bool		negative_exponent = false;

	if (i < len && text[i] == '-')
		i++;
	for (; i < len && text[i] >= '0' && text[i] <= '9'; i++)
		int_digits++;
	if (i < len && text[i] == '.')
		for (i++; i < len && text[i] >= '0' && text[i] <= '9'; i++)
			frac_digits++;
	if (i < len && (text[i] == 'e' || text[i] == 'E'))
	{
		i++;
		if (i < len && (text[i] == '+' || text[i] == '-'))
			negative_exponent = text[i++] == '-';
		for (; i < len && text[i] >= '0' && text[i] <= '9'; i++)
		{
			exponent = exponent * 10 + (text[i] - '0');
			if (exponent > NUMERIC_INPUT_MAX_EXPONENT)
				return false;
		}
	}
	if (negative_exponent)
		exponent = -exponent;
	return int_digits + exponent <= NUMERIC_INPUT_MAX_INT_DIGITS &&
		frac_digits - exponent <= NUMERIC_INPUT_MAX_SCALE;
}

/*
 * A JSON scalar as a jsonb scalar value (numbers exact).  A number beyond
 * numeric's limits cannot be a jsonb number: it is kept as a string of its
 * exact text rather than fail the whole query, and the first of a scan's
 * column says so (the error context names the record).
 */
static void
jsonb_scalar(OprecColumnConverter *conv, json_t *value, JsonbValue *out)
{
	const char *number;
	size_t		number_len;

	if (oprec_json_marked_number(value, &number, &number_len))
	{
		char	   *text = pnstrdup(number, number_len);

		if (number_fits_numeric(number, number_len))
		{
			out->type = jbvNumeric;
			out->val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																   CStringGetDatum(text),
																   ObjectIdGetDatum(InvalidOid),
																   Int32GetDatum(-1)));
			return;
		}
		if (!conv->kept_number_as_string)
			ereport(WARNING,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("a number in the API answer is beyond the range of numeric: kept as the string \"%s\" in the jsonb value",
							oprec_api_text(text, number_len)),
					 errdetail("A jsonb number is a numeric: at most 131072 digits before the decimal point, 16383 after, and an exponent of at most 1000. Later such numbers of this column in this scan are kept the same way without a warning.")));
		conv->kept_number_as_string = true;
		out->type = jbvString;
		out->val.string.val = text;
		out->val.string.len = (int) number_len;
		return;
	}
	switch (json_typeof(value))
	{
		case JSON_STRING:
			out->type = jbvString;
			out->val.string.val = utf8_to_server(json_string_value(value),
												 json_string_length(value));
			out->val.string.len = strlen(out->val.string.val);
			break;
		case JSON_INTEGER:
			out->type = jbvNumeric;
			out->val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric,
																   Int64GetDatum((int64) json_integer_value(value))));
			break;
		case JSON_TRUE:
		case JSON_FALSE:
			out->type = jbvBool;
			out->val.boolean = json_is_true(value);
			break;
		case JSON_NULL:
			out->type = jbvNull;
			break;
		default:
			/* reals arrive as marked numbers (json.c): never here */
			elog(ERROR, "oprec_fdw: unexpected JSON value type %d", (int) json_typeof(value));
	}
}

/* Push a JSON value into a jsonb under construction. */
static JsonbValue *
push_jsonb(OprecColumnConverter *conv, JsonbParseState **state, json_t *value,
		   JsonbIteratorToken token)
{
	JsonbValue	scalar;
	JsonbValue *result;

	check_stack_depth();
	if (json_is_object(value))
	{
		const char *key;
		json_t	   *member;

		pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
		json_object_foreach(value, key, member)
		{
			JsonbValue	k;

			k.type = jbvString;
			k.val.string.val = utf8_to_server(key, strlen(key));
			k.val.string.len = strlen(k.val.string.val);
			pushJsonbValue(state, WJB_KEY, &k);
			push_jsonb(conv, state, member, WJB_VALUE);
		}
		return pushJsonbValue(state, WJB_END_OBJECT, NULL);
	}
	if (json_is_array(value))
	{
		size_t		i;
		json_t	   *element;

		pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
		json_array_foreach(value, i, element)
			push_jsonb(conv, state, element, WJB_ELEM);
		return pushJsonbValue(state, WJB_END_ARRAY, NULL);
	}
	jsonb_scalar(conv, value, &scalar);
	result = pushJsonbValue(state, token, &scalar);
	return result;
}

/*
 * A JSON value as jsonb, built from jansson's tree: the answer is parsed
 * once (no text in between for jsonb_in to parse again).
 */
static Jsonb *
json_to_jsonb(OprecColumnConverter *conv, json_t *value)
{
	JsonbParseState *state = NULL;

	if (!json_is_object(value) && !json_is_array(value))
	{
		JsonbValue	scalar;

		jsonb_scalar(conv, value, &scalar);
		return JsonbValueToJsonb(&scalar);
	}
	return JsonbValueToJsonb(push_jsonb(conv, &state, value, WJB_ELEM));
}

/*
 * The datum of a column from its JSON value (NULL: absent).  A value that
 * cannot become the column's type is an error; the caller's error context
 * names the column, its field and the value.
 */
Datum
oprec_json_to_datum(OprecColumnConverter *conv, json_t *value, bool *isnull)
{
	int64		ms;

	*isnull = (value == NULL || json_is_null(value));
	if (*isnull)
		return (Datum) 0;

	if (is_time_type(conv->typid))
	{
		if (oprec_json_epoch_ms(value, &ms))
			return epoch_ms_to_datum(conv->typid, value, ms);
		if (conv->kind == OPREC_VALUE_EPOCH_MS)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("invalid epoch milliseconds in the API answer: %s",
							oprec_json_shown(value))));
	}

	switch (conv->typid)
	{
		case INT8OID:
			if (json_is_integer(value))
				return Int64GetDatum((int64) json_integer_value(value));
			break;
		case BOOLOID:
			if (json_is_boolean(value))
				return BoolGetDatum(json_is_true(value));
			break;
		case JSONBOID:
			return JsonbPGetDatum(json_to_jsonb(conv, value));
		case JSONOID:
			return InputFunctionCall(&conv->input, json_serialize(value),
									 conv->typioparam, conv->typmod);
	}
	if (OidIsValid(conv->elemtype))
		return json_array_to_datum(conv, value);

	return InputFunctionCall(&conv->input, json_scalar_text(value), conv->typioparam,
							 conv->typmod);
}
