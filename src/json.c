/*-------------------------------------------------------------------------
 *
 * json.c
 *		  Reading the JSON of an API answer, as if the API were hostile.
 *
 * Two things about jansson need guarding before an answer reaches it:
 *
 * Memory.  A small answer can parse into a huge tree (every "{}" costs a
 * jansson object and a hash table), so the bytes of an answer say little
 * about the memory it takes.  Before jansson sees an answer, one pass over
 * its text bounds from above what the tree will take (per object, array,
 * member, string and number, with jansson's growth and malloc's overhead),
 * and an answer whose bound passes its budget is refused unparsed.  An
 * allocation must never fail inside jansson instead: its lexer ignores a
 * failed append and then reads past its buffer.  The allocator only counts
 * what is live, so that the bound can be checked against the truth.
 *
 * Speed.  A page's tree is thousands of small blocks, all freed together
 * when the page is done.  Parsed with an arena (oprec_json_parse_arena),
 * they are carved from a few large chunks instead of malloc'd one by one,
 * freeing a block is a no-op, and the chunks go when the arena is freed,
 * after the tree.  The arena takes at most the answer's memory bound; past
 * that, blocks come from malloc as usual.
 *
 * Numbers.  jansson refuses an integer past int64 (the whole answer is then
 * "not JSON") and keeps other numbers as doubles, which changes their
 * digits.  Record contents are the API's data and must come through exact,
 * so every number token that is not an int64 is rewritten, before parsing,
 * into a marked string holding its exact text; conversion (convert.c)
 * writes it back as a number.  The marker starts with a NUL character,
 * which no PostgreSQL text can hold; a NUL the API sends (\u0000) becomes
 * U+FFFD before parsing, so no value of the API can pass for a marker.
 *
 * Nothing here calls into PostgreSQL: the fuzz target links this file
 * alone.
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <jansson.h>

#include "json_read.h"

#ifndef Max
#define Max(x, y) ((x) > (y) ? (x) : (y))
#endif


/*
 * jansson's allocations carry their size in front so that the live total
 * is known; the header keeps the block maximally aligned.
 */
typedef union AllocHeader
{
	size_t		size;
	long double align_float;
	long long	align_int;
	void	   *align_pointer;
} AllocHeader;

const char	oprec_json_over_budget[] = "the answer needs more memory than its budget";

static size_t json_live_bytes = 0;
static size_t json_peak_bytes = 0;

/* A block's size with this bit set was carved from an arena. */
#define ARENA_BLOCK (((size_t) 1) << (sizeof(size_t) * 8 - 1))

/*
 * Chunks have one size, and the chunks of freed arenas are kept for the
 * next (up to ARENA_SPARE_CHUNKS): a page after page scan then takes no
 * new memory from the system, and gives none back, per page.  A block
 * larger than an eighth of a chunk comes from malloc.
 */
#define ARENA_CHUNK_BYTES (256 * 1024)
#define ARENA_SPARE_CHUNKS 16

typedef struct ArenaChunk
{
	struct ArenaChunk *next;
	size_t		used;
	AllocHeader data[];			/* ARENA_CHUNK_BYTES; keeps blocks aligned */
} ArenaChunk;

static ArenaChunk *spare_chunks = NULL;
static int	nspare_chunks = 0;

struct OprecJsonArena
{
	ArenaChunk *chunks;			/* newest first */
	size_t		taken;			/* bytes of all chunks */
	size_t		limit;			/* most bytes the chunks may take */
};

/* The arena jansson's allocations come from now, or NULL: malloc. */
static OprecJsonArena *current_arena = NULL;

/* A block of total bytes from the current arena, or NULL: use malloc. */
static AllocHeader *
arena_alloc(OprecJsonArena *arena, size_t total)
{
	ArenaChunk *chunk = arena->chunks;

	total = (total + sizeof(AllocHeader) - 1) / sizeof(AllocHeader) * sizeof(AllocHeader);
	if (total > ARENA_CHUNK_BYTES / 8)
		return NULL;
	if (chunk == NULL || ARENA_CHUNK_BYTES - chunk->used < total)
	{
		if (arena->taken + ARENA_CHUNK_BYTES > arena->limit)
			return NULL;
		if (spare_chunks)
		{
			chunk = spare_chunks;
			spare_chunks = chunk->next;
			nspare_chunks--;
		}
		else if ((chunk = malloc(sizeof(ArenaChunk) + ARENA_CHUNK_BYTES)) == NULL)
			return NULL;
		chunk->used = 0;
		chunk->next = arena->chunks;
		arena->chunks = chunk;
		arena->taken += ARENA_CHUNK_BYTES;
	}
	chunk->used += total;
	return (AllocHeader *) ((char *) chunk->data + chunk->used - total);
}

static void *
counting_malloc(size_t size)
{
	AllocHeader *block = NULL;

	if (size > (SIZE_MAX >> 1) - 2 * sizeof(AllocHeader))
		return NULL;
	if (current_arena)
		block = arena_alloc(current_arena, sizeof(AllocHeader) + size);
	if (block)
		block->size = size | ARENA_BLOCK;
	else
	{
		block = malloc(sizeof(AllocHeader) + size);
		if (block == NULL)
			return NULL;
		block->size = size;
	}
	json_live_bytes += size;
	json_peak_bytes = Max(json_peak_bytes, json_live_bytes);
	return block + 1;
}

static void
counting_free(void *ptr)
{
	AllocHeader *block;
	size_t		size;

	if (ptr == NULL)
		return;
	block = ((AllocHeader *) ptr) - 1;
	size = block->size & ~ARENA_BLOCK;
	json_live_bytes -= size < json_live_bytes ? size : json_live_bytes;
	if (!(block->size & ARENA_BLOCK))
		free(block);
	/* an arena's block goes with its arena */
}

/* Free an arena's chunks; the tree parsed into it must be freed first. */
void
oprec_json_arena_free(OprecJsonArena *arena)
{
	ArenaChunk *chunk;

	if (arena == NULL)
		return;
	chunk = arena->chunks;
	while (chunk)
	{
		ArenaChunk *next = chunk->next;

		if (nspare_chunks < ARENA_SPARE_CHUNKS)
		{
			chunk->next = spare_chunks;
			spare_chunks = chunk;
			nspare_chunks++;
		}
		else
			free(chunk);
		chunk = next;
	}
	free(arena);
}

void
oprec_json_install_allocator(void)
{
	json_set_alloc_funcs(counting_malloc, counting_free);
}

/* Free what jansson returned to be freed by the caller (json_dumps). */
void
oprec_json_free(void *ptr)
{
	counting_free(ptr);
}

size_t
oprec_json_live_bytes(void)
{
	return json_live_bytes;
}

/* The most jansson held at once since the last call (tests check bounds). */
size_t
oprec_json_take_peak_bytes(void)
{
	size_t		peak = json_peak_bytes;

	json_peak_bytes = json_live_bytes;
	return peak;
}

/* ----------------------------------------------------------------
 *		Number tokens
 * ----------------------------------------------------------------
 */

/* Length of the JSON number token at p. */
static size_t
number_token_length(const char *p, const char *end)
{
	const char *q = p;

	while (q < end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' ||
					   *q == 'E' || *q == '+' || *q == '-'))
		q++;
	return q - p;
}

/* Whether a token is a JSON number: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)? */
static bool
is_json_number(const char *p, size_t len)
{
	const char *end = p + len;

#define DIGIT(c) ((c) >= '0' && (c) <= '9')
	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (p < end && DIGIT(*p))
		while (p < end && DIGIT(*p))
			p++;
	else
		return false;
	if (p < end && *p == '.')
	{
		if (++p == end || !DIGIT(*p))
			return false;
		while (p < end && DIGIT(*p))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E'))
	{
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p == end || !DIGIT(*p))
			return false;
		while (p < end && DIGIT(*p))
			p++;
	}
#undef DIGIT
	return p == end;
}

/* Whether jansson keeps a number token exactly: an integer within int64. */
static bool
number_fits_int64(const char *p, size_t len)
{
	char		buf[32];
	char	   *end;

	if (len == 0 || len >= sizeof(buf))
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] == '.' || p[i] == 'e' || p[i] == 'E')
			return false;
	memcpy(buf, p, len);
	buf[len] = '\0';
	errno = 0;
	(void) strtoll(buf, &end, 10);
	return errno == 0 && *end == '\0';
}

/*
 * Upper bounds of what jansson 2.x allocates on a 64-bit system, each
 * allocation counted with 32 bytes for its header and malloc's: a value's
 * struct; an object's hash table (8 buckets at first, doubling, so at most
 * 2 buckets of 16 bytes per member beyond those) and a pair per member; an
 * array's table (doubling, at most 2 slots per element); a string's copy.
 * The lexer keeps a token in a buffer that doubles, old and new buffer
 * both live while it grows: three times the text's length covers it, bare
 * words (which nothing else counts) included.
 */
#define BOUND_OBJECT 512
#define BOUND_MEMBER 160
#define BOUND_ARRAY 160
#define BOUND_ELEMENT 48
#define BOUND_STRING 96
#define BOUND_NUMBER 96

/* What one pass over the text found. */
typedef struct TextScan
{
	size_t		objects;
	size_t		arrays;
	size_t		members;		/* ':' outside strings */
	size_t		commas;
	size_t		strings;
	size_t		string_bytes;
	size_t		numbers;
	size_t		inexact;		/* numbers to mark */
	size_t		nuls;			/* \u0000 escapes to replace */
	/* the rewritten text, when there is one */
	char	   *out;			/* NULL: only count */
	size_t		out_len;
	const char *copied;			/* input copied up to here */
} TextScan;

static void
append_bytes(TextScan *ts, const char *data, size_t len)
{
	memcpy(ts->out + ts->out_len, data, len);
	ts->out_len += len;
}

/*
 * Scan a string token from just after its opening quote; return where the
 * scan goes on, after the closing quote.
 */
static const char *
scan_string(const char *p, const char *end, TextScan *ts)
{
	const char *start = p;

	for (; p < end && *p != '"'; p++)
	{
		if (*p != '\\' || p + 1 >= end)
			continue;
		/* \u0000 becomes U+FFFD: only markers hold a NUL */
		if (end - p >= 6 && memcmp(p, "\\u0000", 6) == 0)
		{
			ts->nuls++;
			if (ts->out)
			{
				append_bytes(ts, ts->copied, p - ts->copied);
				append_bytes(ts, "\\ufffd", 6);
				ts->copied = p + 6;
			}
			p += 5;
		}
		else
			p++;
	}
	ts->strings++;
	ts->string_bytes += p - start;
	return p + 1;
}

/*
 * Scan a number token; one that is not an int64 is copied as a marked
 * string.  Return where the scan goes on.
 */
static const char *
scan_number(const char *p, const char *end, TextScan *ts)
{
	size_t		toklen = number_token_length(p, end);

	ts->numbers++;
	ts->string_bytes += toklen;
	if (is_json_number(p, toklen) && !number_fits_int64(p, toklen))
	{
		ts->inexact++;
		if (ts->out)
		{
			append_bytes(ts, ts->copied, p - ts->copied);
			append_bytes(ts, "\"" OPREC_JSON_NUMBER_MARK_JSON,
						 1 + strlen(OPREC_JSON_NUMBER_MARK_JSON));
			append_bytes(ts, p, toklen);
			append_bytes(ts, "\"", 1);
			ts->copied = p + toklen;
		}
	}
	return p + Max(toklen, 1);
}

/*
 * Walk the JSON text, counting what the tree will hold and the number
 * tokens that are not an int64; when ts->out is set, also copy the text
 * with each of those turned into a marked string.  Malformed text is left
 * for jansson to refuse.
 */
static void
scan_text(const char *text, size_t len, TextScan *ts)
{
	const char *p = text;
	const char *end = text + len;

	while (p < end)
	{
		if (*p == '"')
			p = scan_string(p + 1, end, ts);
		else if (*p == '-' || (*p >= '0' && *p <= '9'))
			p = scan_number(p, end, ts);
		else
		{
			/* outside strings and numbers, only these characters count */
			ts->objects += (*p == '{');
			ts->arrays += (*p == '[');
			ts->members += (*p == ':');
			ts->commas += (*p == ',');
			p++;
		}
	}
	if (ts->out)
		append_bytes(ts, ts->copied, end - ts->copied);
}

/* a + b, or SIZE_MAX when it overflows */
static size_t
add_sat(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t
mul_sat(size_t a, size_t b)
{
	return (b != 0 && a > SIZE_MAX / b) ? SIZE_MAX : a * b;
}

/* An upper bound of the memory jansson takes for the scanned text. */
static size_t
memory_bound(const TextScan *ts, size_t len)
{
	size_t		bound = add_sat(mul_sat(len, 3), 64);

	bound = add_sat(bound, mul_sat(ts->objects, BOUND_OBJECT));
	bound = add_sat(bound, mul_sat(ts->members, BOUND_MEMBER));
	bound = add_sat(bound, mul_sat(ts->arrays, BOUND_ARRAY));
	bound = add_sat(bound, mul_sat(ts->commas, BOUND_ELEMENT));
	bound = add_sat(bound, mul_sat(ts->strings, BOUND_STRING));
	bound = add_sat(bound, mul_sat(ts->numbers, BOUND_NUMBER));
	bound = add_sat(bound, mul_sat(ts->string_bytes, 2));
	return bound;
}

static json_t *
parse_bounded(const char *text, size_t len, size_t memory_budget,
			  OprecJsonArena **arena, const char **error)
{
	static char message[200];
	json_error_t jerror;
	json_t	   *root;
	TextScan	ts = {0};
	size_t		extra = 2 + strlen(OPREC_JSON_NUMBER_MARK_JSON);
	size_t		rewritten_len;
	char	   *rewritten = NULL;

	*error = NULL;
	scan_text(text, len, &ts);
	rewritten_len = (ts.inexact || ts.nuls) ? add_sat(len, mul_sat(ts.inexact, extra)) : 0;
	if (add_sat(memory_bound(&ts, len), rewritten_len) > memory_budget)
	{
		*error = oprec_json_over_budget;
		return NULL;
	}

	if (ts.inexact > 0 || ts.nuls > 0)
	{
		TextScan	rw = {0};

		rewritten = malloc(rewritten_len);
		if (rewritten == NULL)
		{
			*error = oprec_json_over_budget;
			return NULL;
		}
		rw.out = rewritten;
		rw.copied = text;
		scan_text(text, len, &rw);
		text = rewritten;
		len = rw.out_len;
	}

	if (arena)
	{
		*arena = calloc(1, sizeof(OprecJsonArena));
		if (*arena == NULL)
		{
			free(rewritten);
			*error = oprec_json_over_budget;
			return NULL;
		}
		(*arena)->limit = memory_bound(&ts, len);
		current_arena = *arena;
	}
	root = json_loadb(text, len, JSON_ALLOW_NUL, &jerror);
	current_arena = NULL;
	free(rewritten);
	if (root == NULL && arena)
	{
		oprec_json_arena_free(*arena);
		*arena = NULL;
	}

	if (root == NULL)
	{
		/* positions in a rewritten text would mislead: give them only for the original */
		if (rewritten)
			snprintf(message, sizeof(message), "%s", jerror.text);
		else
			snprintf(message, sizeof(message), "%s at line %d, column %d",
					 jerror.text, jerror.line, jerror.column);
		*error = message;
	}
	return root;
}
json_t *
oprec_json_parse_bounded(const char *text, size_t len, size_t memory_budget,
						 const char **error)
{
	return parse_bounded(text, len, memory_budget, NULL, error);
}

/*
 * The same, with the tree's blocks carved from an arena (*arena); free the
 * tree, then the arena.  *arena is NULL when the parse fails.
 */
json_t *
oprec_json_parse_arena(const char *text, size_t len, size_t memory_budget,
					   OprecJsonArena **arena, const char **error)
{
	*arena = NULL;
	return parse_bounded(text, len, memory_budget, arena, error);
}

bool
oprec_json_marked_number(const json_t *value, const char **text, size_t *len)
{
	const char *s;
	size_t		slen;

	if (!json_is_string(value))
		return false;
	s = json_string_value(value);
	slen = json_string_length(value);
	if (slen < OPREC_JSON_NUMBER_MARK_LEN + 1 ||
		memcmp(s, OPREC_JSON_NUMBER_MARK, OPREC_JSON_NUMBER_MARK_LEN) != 0)
		return false;
	*text = s + OPREC_JSON_NUMBER_MARK_LEN;
	*len = slen - OPREC_JSON_NUMBER_MARK_LEN;
	return true;
}

/*
 * Turn the marked strings of JSON text written by jansson back into the
 * numbers they hold, in place (the text only shrinks).  A string that
 * starts with the marker but holds anything but a number token is left as
 * it is.
 */
void
oprec_json_unmark_numbers(char *json_text)
{
	const char *mark = "\"" OPREC_JSON_NUMBER_MARK_JSON;
	size_t		mark_len = strlen(mark);
	char	   *in = json_text;
	char	   *out = json_text;

	while (*in)
	{
		if (*in == '"')
		{
			if (strncmp(in, mark, mark_len) == 0)
			{
				const char *token = in + mark_len;
				size_t		toklen = number_token_length(token, token + strlen(token));

				if (is_json_number(token, toklen) && token[toklen] == '"')
				{
					memmove(out, token, toklen);
					out += toklen;
					in = (char *) token + toklen + 1;
					continue;
				}
			}
			/* copy the string through its closing quote */
			*out++ = *in++;
			while (*in && *in != '"')
			{
				if (*in == '\\' && in[1])
					*out++ = *in++;
				*out++ = *in++;
			}
			if (*in)
				*out++ = *in++;
		}
		else
			*out++ = *in++;
	}
	*out = '\0';
}
