/*
 * json_fuzz.c - libFuzzer target for src/json.c: the bounded, exact reader
 * of API answers.  The input is an answer body.  Built with json.c alone,
 * jansson and no PostgreSQL (test/fuzz/run.sh).
 *
 * Checked per input, besides the sanitizers:
 *  - the result contract: a tree and no error, or NULL and an error;
 *  - the budget: a parse never holds more than its budget at its peak
 *    (bytes counted by json.c's allocator, oprec_json_take_peak_bytes), so
 *    json.c's bound computed before parsing is a true upper bound; and
 *    every byte is given back by json_decref, also after a failed parse
 *    (no leak through the counter);
 *  - a second parse with a small budget (most fail over budget: jansson's
 *    out-of-memory paths) gives the same guarantees (JSON_FUZZ_SMALL_BUDGET=0
 *    turns it off);
 *  - exactness round trip: json_dumps of the tree, oprec_json_unmark_numbers,
 *    parsed again, dumps to the same text.  Only for trees whose marked
 *    strings all come from json.c's own rewrite: a string of the answer
 *    that itself starts with the marker is counted as a spoof (see
 *    README.md) and not checked, so that the run goes on.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <jansson.h>

#include "json_read.h"

#define BUDGET ((size_t) 8 << 20)

static unsigned long spoofed_markers;
static bool small_budget_parse = true;	/* JSON_FUZZ_SMALL_BUDGET, default 1 */
static bool slack_of_input = false; /* JSON_FUZZ_BUDGET_SLACK=input: allow
									 * peak <= budget + input length (the
									 * lexer's buffer growth, FINDINGS.md 2) */

#define CHECK(cond, ...) \
	do { if (!(cond)) { fprintf(stderr, "json_fuzz: check failed: %s: ", #cond); \
		fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } } while (0)

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

static bool
fits_int64(const char *p, size_t len)
{
	char		buf[32];
	char	   *end;

	if (len == 0 || len >= sizeof(buf) || memchr(p, '.', len) ||
		memchr(p, 'e', len) || memchr(p, 'E', len))
		return false;
	memcpy(buf, p, len);
	buf[len] = '\0';
	errno = 0;
	(void) strtoll(buf, &end, 10);
	return errno == 0 && *end == '\0';
}

/* Whether a marked string could have come from json.c's own rewrite. */
static bool
genuine_marked(const char *s, size_t len)
{
	if (len < OPREC_JSON_NUMBER_MARK_LEN ||
		memcmp(s, OPREC_JSON_NUMBER_MARK, OPREC_JSON_NUMBER_MARK_LEN) != 0)
		return true;			/* not marked at all */
	s += OPREC_JSON_NUMBER_MARK_LEN;
	len -= OPREC_JSON_NUMBER_MARK_LEN;
	return is_json_number(s, len) && !fits_int64(s, len);
}

/* Walk the tree; false if some string (or key) spoofs the marker. */
static bool
walk(json_t *value, int depth)
{
	const char *key;
	json_t	   *member;
	size_t		index;
	const char *text;
	size_t		len;
	bool		ok = true;

	CHECK(depth < 100000, "runaway depth");
	switch (json_typeof(value))
	{
		case JSON_OBJECT:
			json_object_foreach(value, key, member)
			{
				/* keys are not checked: a number is never a key in JSON */
				ok &= walk(member, depth + 1);
			}
			break;
		case JSON_ARRAY:
			json_array_foreach(value, index, member)
				ok &= walk(member, depth + 1);
			break;
		case JSON_STRING:
			if (!genuine_marked(json_string_value(value), json_string_length(value)))
				ok = false;
			if (oprec_json_marked_number(value, &text, &len))
				CHECK(text == json_string_value(value) + OPREC_JSON_NUMBER_MARK_LEN &&
					  len == json_string_length(value) - OPREC_JSON_NUMBER_MARK_LEN,
					  "marked number text");
			break;
		case JSON_REAL:
			/* every number that is not an int64 should be a marked string */
			CHECK(false, "a JSON real in the tree: %.17g", json_real_value(value));
			break;
		default:
			break;
	}
	return ok;
}

static char *
dump_unmarked(json_t *root)
{
	char	   *text = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);

	if (text)
		oprec_json_unmark_numbers(text);
	return text;
}

/* Parse within budget; check the contract; return the tree or NULL. */
static json_t *
parse_checked(const char *data, size_t size, size_t budget)
{
	size_t		before = oprec_json_live_bytes();
	const char *error = (const char *) 1;
	json_t	   *root;
	size_t		peak;

	(void) oprec_json_take_peak_bytes();	/* the peak starts from here */
	root = oprec_json_parse_bounded(data, size, budget, &error);
	peak = oprec_json_take_peak_bytes();
	/* the bound json.c computes before parsing must hold for the real parse */
	CHECK(peak - before <= budget + (slack_of_input ? size : 0),
		  "the parse held %zu bytes at its peak, over its budget of %zu (%s, input of %zu bytes)",
		  peak - before, budget, root ? "parsed" : error, size);

	if (root == NULL)
	{
		CHECK(error != NULL && error != (const char *) 1, "NULL result without an error");
		CHECK(oprec_json_live_bytes() == before,
			  "failed parse leaked %zu counted bytes (error: %s)",
			  oprec_json_live_bytes() - before, error);
		return NULL;
	}
	CHECK(error == NULL, "a tree and an error: %s", error);
	CHECK(oprec_json_live_bytes() - before <= budget,
		  "tree of %zu bytes over its budget of %zu", oprec_json_live_bytes() - before, budget);
	return root;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *env = getenv("JSON_FUZZ_SMALL_BUDGET");

	if (env && strcmp(env, "0") == 0)
		small_budget_parse = false;
	env = getenv("JSON_FUZZ_BUDGET_SLACK");
	if (env && strcmp(env, "input") == 0)
		slack_of_input = true;
	oprec_json_install_allocator();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		baseline = oprec_json_live_bytes();
	json_t	   *root;
	uint32_t	h = 2166136261u;
	size_t		small_budget;

	root = parse_checked((const char *) data, size, BUDGET);
	if (root)
	{
		bool		genuine = walk(root, 0);

		if (!genuine)
			spoofed_markers++;
		else
		{
			char	   *first = dump_unmarked(root);

			if (first)
			{
				json_t	   *again = parse_checked(first, strlen(first), BUDGET);
				char	   *second;

				CHECK(again != NULL, "the unmarked dump does not parse again: %s", first);
				second = dump_unmarked(again);
				CHECK(second != NULL, "second dump failed");
				CHECK(strcmp(first, second) == 0,
					  "round trip changed the answer:\n first  %s\n second %s", first, second);
				oprec_json_free(second);
				json_decref(again);
				oprec_json_free(first);
			}
		}
		json_decref(root);
	}
	CHECK(oprec_json_live_bytes() == baseline, "json_decref left %zu counted bytes",
		  oprec_json_live_bytes() - baseline);

	/* a small budget: the over-budget paths */
	if (!small_budget_parse)
		return 0;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 16777619u;
	small_budget = 16 + h % (size * 8 + 1);
	root = parse_checked((const char *) data, size, small_budget);
	json_decref(root);
	CHECK(oprec_json_live_bytes() == baseline, "json_decref left %zu counted bytes (small budget)",
		  oprec_json_live_bytes() - baseline);
	return 0;
}
