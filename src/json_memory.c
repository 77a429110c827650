/*-------------------------------------------------------------------------
 *
 * json_memory.c
 *		  jansson values owned by PostgreSQL memory contexts, and answers
 *		  parsed into them within a memory budget.
 *
 * jansson allocates with malloc; a value handed to oprec_json_owned is
 * released when the memory context current at the time is reset or
 * deleted, on error too, so no code path has to remember a json_decref.
 * An answer body is parsed once (json.c), its tree carved from an arena
 * that the same context frees.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <jansson.h>

#include "utils/memutils.h"

#include "oprec_fdw.h"
#include "json_read.h"

/*
 * Reading one answer may take this much memory (an upper bound computed
 * before parsing, about three times what jansson really takes), or this
 * many bytes per byte of max_response_bytes if that is more.  A full page
 * of real records stays far below it.
 */
#define JSON_MIN_MEMORY_BUDGET ((size_t) 128 * 1024 * 1024)
#define JSON_MEMORY_PER_ANSWER_BYTE 8

/*
 * A palloc'd copy of text jansson wrote, which is freed here whether or
 * not the copy can be made.
 */
char *
oprec_jansson_text(char *text)
{
	size_t		len = strlen(text);
	char	   *copy = MemoryContextAllocExtended(CurrentMemoryContext, len + 1,
												  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);

	if (copy)
		memcpy(copy, text, len + 1);
	oprec_json_free(text);
	if (copy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed on request of size %zu.", len + 1)));
	return copy;
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

static void
release_json_arena(void *arg)
{
	oprec_json_arena_free((OprecJsonArena *) arg);
}

/*
 * Parse an answer body into JSON owned by the current memory context,
 * within the memory budget of the scan's answers.  NULL if the body is not
 * JSON; an ERROR if it would take more memory than its budget.  The tree is
 * carved from an arena, freed after it (callbacks run newest first).
 */
json_t *
oprec_json_load_owned(const StringInfo body, const OprecOptions *options)
{
	size_t		budget = Max(JSON_MIN_MEMORY_BUDGET,
							 options->max_response_bytes * JSON_MEMORY_PER_ANSWER_BYTE);
	const char *error;
	OprecJsonArena *arena;
	MemoryContextCallback *cb = MemoryContextAllocExtended(CurrentMemoryContext,
														   sizeof(MemoryContextCallback),
														   MCXT_ALLOC_NO_OOM);
	json_t	   *root;

	if (cb == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	root = oprec_json_parse_arena(body->data, body->len, budget, &arena, &error);
	if (arena)
	{
		cb->func = release_json_arena;
		cb->arg = arena;
		MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
	}

	if (root == NULL && error == oprec_json_over_budget)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
				 errmsg("an answer of the %s API needs more than %zu MB of memory to read",
						options->resource->service->title, budget / (1024 * 1024)),
				 errdetail("The answer has %d bytes; reading one answer may take %zu MB, or %d times the server's max_response_bytes if that is more.",
						   body->len, JSON_MIN_MEMORY_BUDGET / (1024 * 1024),
						   JSON_MEMORY_PER_ANSWER_BYTE),
				 errhint("Lower the server's page_size option; if the API's answers are this complex, raise max_response_bytes.")));
	return oprec_json_owned(root);
}
