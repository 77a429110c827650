/*-------------------------------------------------------------------------
 *
 * json_read.h
 *		  Bounded, exact reading of API answers (json.c).
 *
 * Kept apart from oprec_fdw.h because json.c uses no PostgreSQL backend
 * facility: the fuzz target builds it alone.
 *
 *-------------------------------------------------------------------------
 */
#ifndef OPREC_JSON_READ_H
#define OPREC_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>

typedef struct json_t json_t;

/*
 * A number that jansson could not keep exactly becomes a string of this
 * marker followed by the number's text.  The marker as bytes, and as
 * written inside a JSON string.
 */
#define OPREC_JSON_NUMBER_MARK "\0N"
#define OPREC_JSON_NUMBER_MARK_LEN 2
#define OPREC_JSON_NUMBER_MARK_JSON "\\u0000N"

/* The error of a parse that would pass its memory budget (compare pointers). */
extern const char oprec_json_over_budget[];

/* Route jansson's allocations through the counting allocator; once. */
extern void oprec_json_install_allocator(void);

/* Free memory jansson gave the caller, such as json_dumps text. */
extern void oprec_json_free(void *ptr);

/* Bytes jansson holds now, and the most it held since the last call. */
extern size_t oprec_json_live_bytes(void);
extern size_t oprec_json_take_peak_bytes(void);

/*
 * Parse JSON text within memory_budget bytes of new allocations.  NULL on
 * failure with *error set: oprec_json_over_budget (compare the pointer) or
 * a description of the syntax error, valid until the next call.
 */
extern json_t *oprec_json_parse_bounded(const char *text, size_t len,
										size_t memory_budget, const char **error);

/*
 * The same, the tree carved from an arena returned in *arena (NULL when the
 * parse fails): json_decref the tree first, then oprec_json_arena_free.
 */
typedef struct OprecJsonArena OprecJsonArena;

extern json_t *oprec_json_parse_arena(const char *text, size_t len, size_t memory_budget,
									  OprecJsonArena **arena, const char **error);
extern void oprec_json_arena_free(OprecJsonArena *arena);

/* Whether value is a marked number; if so, its text (not NUL-terminated). */
extern bool oprec_json_marked_number(const json_t *value, const char **text,
									 size_t *len);

/* Write marked numbers in jansson's output back as numbers, in place. */
extern void oprec_json_unmark_numbers(char *json_text);

#endif							/* OPREC_JSON_READ_H */
