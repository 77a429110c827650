/*-------------------------------------------------------------------------
 *
 * page_fuzz.c
 *		  libFuzzer driver for the answer readers of both APIs, run inside a
 *		  real PostgreSQL backend.
 *
 * Built with the extension's own sources into test/fuzz/build/oprec_fuzz.so
 * (never installed).  The SQL function oprec_fuzz_run(text[]) hands its
 * arguments to libFuzzer's LLVMFuzzerRunDriver, which then calls
 * fuzz_one_input for every input, inside the backend: palloc, ereport,
 * memory contexts, type input functions and the catalog are the real ones.
 *
 * An input is two header bytes and an answer body:
 *   byte 0, bit 0:  0 Feishu, 1 Huawei
 *           bit 1:  may_renew (a refused token returns TOKEN_REJECTED)
 *           bit 2:  a cursor is given (Feishu "cursor", Huawei offset 9900)
 *           bit 3:  Feishu: the chain is a time window (records outside it
 *                   are skipped by the engine, as in a real scan)
 *           bit 4:  the answer has a log id header
 *   byte 1: < 0x80: HTTP 200; else a status from the table below
 *   rest:   the answer body, as received from the API
 *
 * Per input: the API's read_page on an OprecResponse holding the body;
 * then the engine's row iteration (oprec_scan_next_row, which calls
 * rows_in_record and, for windowed chains, column_value of the time
 * column); then column_value of every column for every row, and
 * oprec_json_to_datum of each value to text, bigint, timestamptz, jsonb,
 * json, numeric and varchar(10), with the column's value kind.  An ERROR
 * is an expected outcome: it is caught (PG_TRY), flushed, and the input's
 * memory is reset.  Crashes, sanitizer reports and libFuzzer's limits
 * (-rss_limit_mb, -timeout, -malloc_limit_mb) are the findings.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* no utils/builtins.h: its json_object and json_typeof clash with jansson */
#include <jansson.h>

#include "oprec_fdw.h"

extern char *text_to_cstring(const text *t);

PG_FUNCTION_INFO_V1(oprec_fuzz_run);

extern int	LLVMFuzzerRunDriver(int *argc, char ***argv,
								int (*UserCb) (const uint8_t *Data, size_t Size));

/*
 * Weak stand-ins for request pacing (pace.c), which no answer reader calls
 * but the scan engine links to; used only while a work tree lacks pace.c,
 * the real ones win when it is there.
 */
__attribute__((weak)) void
oprec_pace_init(void)
{
}

__attribute__((weak)) uint64
oprec_pace_key(const OprecOptions *options)
{
	return 0;
}

__attribute__((weak)) void
oprec_pace_wait(OprecSession *session, uint64 pace_key, int requests_per_second)
{
}

__attribute__((weak)) void
oprec_pace_done(OprecSession *session, uint64 pace_key, bool throttled)
{
}

static const long statuses[] = {
	200, 201, 204, 206, 301, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 504, 0, 99, 999, -1
};

/* The declared types every value is converted to. */
static const struct
{
	Oid			typid;
	int32		typmod;
}			fuzz_types[] = {
	{TEXTOID, -1},
	{INT8OID, -1},
	{TIMESTAMPTZOID, -1},
	{JSONBOID, -1},
	{JSONOID, -1},
	{NUMERICOID, -1},
	{VARCHAROID, 10 + VARHDRSZ},
	{INT4OID, -1},
	{BOOLOID, -1},
	{DATEOID, -1},
	{TEXTARRAYOID, -1},
};

/* Field paths read from every row, as column options may name them. */
static const char *const fuzz_paths[] = {
	"record_contents.0.new", "record_contents.object_property",
	"record_contents.object.object_type", "user.nick_name", "details.old_value",
	"details", "id.x.0",
};

#define NPATHS lengthof(fuzz_paths)

#define NTYPES lengthof(fuzz_types)

typedef struct FuzzApi
{
	const OprecApi *api;
	OprecScan  *scan;
	OprecChain	chains[2];		/* [0] not windowed, [1] windowed */
} FuzzApi;

static FuzzApi fuzz_apis[2];
static OprecColumnConverter converters[NTYPES];
static OprecColumnMap path_maps[NPATHS];
static MemoryContext fuzz_cxt;	/* lives as long as the driver */

/* Counters, printed when the driver ends (libFuzzer calls exit). */
static uint64 n_inputs,
			n_pages,
			n_rows,
			n_values,
			n_datums,
			n_page_errors,
			n_convert_errors,
			n_token_rejected;

static void
print_counters(void)
{
	fprintf(stderr,
			"oprec_fuzz: inputs " UINT64_FORMAT ", pages read " UINT64_FORMAT
			", page errors " UINT64_FORMAT ", token rejected " UINT64_FORMAT
			", rows " UINT64_FORMAT ", values " UINT64_FORMAT ", datums " UINT64_FORMAT
			", conversion errors " UINT64_FORMAT "\n",
			n_inputs, n_pages, n_page_errors, n_token_rejected, n_rows, n_values,
			n_datums, n_convert_errors);
}

static DefElem *
option(const char *name, const char *value)
{
	return makeDefElem(pstrdup(name), (Node *) makeString(pstrdup(value)), -1);
}

static void
setup_api(FuzzApi *fa, const OprecApi *api)
{
	OprecOptions *options = palloc0(sizeof(OprecOptions));
	OprecFilters *filters;
	OprecScan  *scan;
	MemoryContext oldcxt;
	int64		key;

	options->api = api;
	options->base_url = pstrdup("http://127.0.0.1:9");
	options->page_size = api->default_page_size;
	options->connect_timeout_ms = 1000;
	options->request_timeout_ms = 1000;
	if (strcmp(api->name, "feishu") == 0)
	{
		options->server_options = list_make1(option("project_key", "proj_alpha"));
		options->user_options = list_make2(option("plugin_token", "p-static-sim-token"),
										   option("user_key", "7491126018028090001"));
		key = 1001;
	}
	else
	{
		options->server_options = list_make2(option("project_id", "c15cc54e338d4506afd9bd8103071ff0"),
											 option("region", "cn-north-4"));
		options->user_options = list_make1(option("auth_token", "MIIsim-static-huawei-token"));
		key = 9175005;
	}
	options->user_mapping_id = InvalidOid;

	scan = oprec_scan_create(fuzz_cxt, options);

	/* one key, no other condition: what "WHERE key = <key>" gives */
	oldcxt = MemoryContextSwitchTo(scan->engine->run_cxt);
	filters = palloc0(sizeof(OprecFilters));
	filters->columns = palloc0(sizeof(OprecColumnFilter) * api->ncolumns);
	filters->columns[api->key_column].active = true;
	filters->columns[api->key_column].nvalues = 1;
	filters->columns[api->key_column].ints = palloc(sizeof(int64));
	filters->columns[api->key_column].ints[0] = key;
	MemoryContextSwitchTo(oldcxt);
	oprec_scan_start(scan, filters);

	/* our own chains instead of the engine's many windows */
	fa->chains[0] = (OprecChain) {.keys = filters->columns[api->key_column].ints, .nkeys = 1,
	.windowed = false};
	fa->chains[1] = (OprecChain) {
		.keys = filters->columns[api->key_column].ints, .nkeys = 1,
		.windowed = (api->time_column >= 0),
		.window_start_ms = INT64CONST(1719849600000),	/* 2024-07-01T16:00Z */
		.window_end_ms = INT64CONST(1800000000000)	/* 2027-01-15 */
	};
	scan->engine->chains = fa->chains;

	oldcxt = MemoryContextSwitchTo(scan->engine->chain_cxt);
	scan->chain_key_json = oprec_json_owned(json_integer(key));
	MemoryContextSwitchTo(oldcxt);

	fa->api = api;
	fa->scan = scan;
}

/* Convert one JSON value to every type; an ERROR is an expected outcome. */
static void
convert_value(OprecValueKind kind, json_t *value)
{
	for (int t = 0; t < (int) NTYPES; t++)
	{
		MemoryContext cxt = CurrentMemoryContext;

		PG_TRY();
		{
			bool		isnull;
			Datum		d;

			converters[t].kind = kind;
			d = oprec_json_to_datum(&converters[t], value, &isnull);

			/* touch the result: a datum must be a valid value of its type */
			if (!isnull)
			{
				Oid			outfunc;
				bool		isvarlena;

				getTypeOutputInfo(fuzz_types[t].typid, &outfunc, &isvarlena);
				(void) OidOutputFunctionCall(outfunc, d);
			}
			n_datums++;
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			FlushErrorState();
			n_convert_errors++;
		}
		PG_END_TRY();
	}
}

static void
run_page(FuzzApi *fa, uint8 flags, long status, const uint8_t *body, size_t len)
{
	OprecScan  *scan = fa->scan;
	const OprecApi *api = fa->api;
	int			chain_index = (flags & 8) ? 1 : 0;
	const char *cursor = NULL;
	OprecRequest req;
	OprecResponse resp;
	OprecPageOutcome outcome;
	json_t	   *record;
	int			row;
	const OprecChain *chain;

	if (flags & 4)
		cursor = (api == &oprec_feishu_api) ? "cursor-1" : "9900";

	oprec_request_init(&req, "GET");
	appendStringInfo(&req.summary, "fuzz request of %s", api->name);
	memset(&resp, 0, sizeof(resp));
	resp.status = status;
	initStringInfo(&resp.body);
	appendBinaryStringInfo(&resp.body, (const char *) body, (int) len);
	if (flags & 16)
		resp.log_id = pstrdup("0000000000000000002a");

	memset(&scan->engine->page, 0, sizeof(OprecPage));
	outcome = api->read_page(scan, &scan->engine->chains[chain_index], cursor, (flags & 2) != 0,
							 &req, &resp, &scan->engine->page);
	if (outcome != OPREC_PAGE_OK)
	{
		/* a refused token, or a key said not to exist: no page to read */
		n_token_rejected++;
		return;
	}
	n_pages++;

	/* the engine's iteration over this page only: one chain, done */
	scan->engine->nchains = chain_index + 1;
	scan->engine->chain_index = chain_index;
	scan->engine->chain_started = true;
	scan->engine->chain_done = true;
	scan->engine->record_index = 0;
	scan->engine->row_in_record = 0;
	scan->engine->rows_in_record = 0;

	while (oprec_scan_next_row(scan, &record, &row, &chain))
	{
		n_rows++;
		for (int col = 0; col < api->ncolumns; col++)
		{
			json_t	   *value = api->column_value(scan, chain, record, row, col);

			n_values++;
			convert_value(api->columns[col].kind, value);
		}
		for (int p = 0; p < (int) NPATHS; p++)
		{
			n_values++;
			convert_value(OPREC_VALUE_JSON,
						  oprec_column_json(scan, chain, record, row, &path_maps[p]));
		}
	}
}

static int
fuzz_one_input(const uint8_t *data, size_t size)
{
	FuzzApi    *fa;
	uint8		flags;
	long		status = 200;
	MemoryContext oldcxt = CurrentMemoryContext;

	if (size < 2 || size > MaxAllocSize / 2)
		return -1;				/* not added to the corpus */
	n_inputs++;
	flags = data[0];
	if (data[1] >= 0x80)
		status = statuses[data[1] % lengthof(statuses)];
	fa = &fuzz_apis[flags & 1];

	MemoryContextReset(fa->scan->engine->page_cxt);
	MemoryContextSwitchTo(fa->scan->engine->page_cxt);
	PG_TRY();
	{
		run_page(fa, flags, status, data + 2, size - 2);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(fa->scan->engine->page_cxt);
		FlushErrorState();
		n_page_errors++;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	/* the page's JSON and every datum go away here, as before a next page */
	MemoryContextReset(fa->scan->engine->page_cxt);
	memset(&fa->scan->engine->page, 0, sizeof(OprecPage));

	if (n_inputs % 100000 == 0)
		print_counters();
	return 0;
}

Datum
oprec_fuzz_run(PG_FUNCTION_ARGS)
{
	ArrayType  *args = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			argc;
	char	  **argv;
	MemoryContext oldcxt;
	int			rc;

	fuzz_cxt = AllocSetContextCreate(TopMemoryContext, "oprec_fuzz",
									 ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(fuzz_cxt);

	deconstruct_array(args, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	argv = palloc0(sizeof(char *) * (nelems + 2));
	argv[0] = pstrdup("oprec_fuzz");
	argc = 1;
	for (int i = 0; i < nelems; i++)
		if (!nulls[i])
			argv[argc++] = text_to_cstring(DatumGetTextPP(elems[i]));

	for (int p = 0; p < (int) NPATHS; p++)
	{
		/* a path, split as column.c splits a field option */
		char	   *steps = pstrdup(fuzz_paths[p]);

		path_maps[p].api_column = -1;
		path_maps[p].field = fuzz_paths[p];
		path_maps[p].path = palloc(sizeof(char *) * 8);
		for (char *step = strtok(steps, "."); step; step = strtok(NULL, "."))
			path_maps[p].path[path_maps[p].npath++] = step;
	}
	for (int t = 0; t < (int) NTYPES; t++)
		oprec_prepare_converter(&converters[t], &oprec_feishu_api, &path_maps[0],
								fuzz_types[t].typid, fuzz_types[t].typmod);
	setup_api(&fuzz_apis[0], &oprec_feishu_api);
	setup_api(&fuzz_apis[1], &oprec_huawei_api);

	atexit(print_counters);
	MemoryContextSwitchTo(oldcxt);

	/* libFuzzer exits the process when it is done */
	rc = LLVMFuzzerRunDriver(&argc, &argv, fuzz_one_input);
	PG_RETURN_INT32(rc);
}
