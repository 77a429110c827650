/*-------------------------------------------------------------------------
 *
 * service.c
 *		  The engine's side of an API service: sending a scan's requests,
 *		  with its token, and reading what every answer says before a
 *		  resource reads its records.
 *
 * A scan's requests go through its transport (http.c), which this file
 * sets up: the server's settings and pace, the scan's counters, the
 * max_requests budget (checked before each attempt), and which answers
 * are worth sending again (the service's throttling and transient error
 * codes).  Every answer is parsed once; the service says whether it is an
 * error (error_of), whether that error refuses the token (token_refused;
 * the token is then renewed and the request sent again, once) and what to
 * do about it (hint).  A resource's read_page sees only answers that are
 * not errors.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <jansson.h>

#include "oprec_fdw.h"
#include "json_read.h"

/*
 * Whether an answer is a transient error is asked of the service when it
 * is not a 2xx answer of up to ERROR_ANSWER_BYTES, or a 2xx answer of up
 * to SMALL_ANSWER_BYTES (an error in disguise is short; a page seldom is).
 * Reading one such answer may take up to ERROR_ANSWER_BUDGET of memory.
 */
#define ERROR_ANSWER_BYTES 65536
#define SMALL_ANSWER_BYTES 4096
#define ERROR_ANSWER_BUDGET (4 * 1024 * 1024)

/* ----------------------------------------------------------------
 *		The scan's transport
 * ----------------------------------------------------------------
 */

/* The scan's budget of requests (max_requests) allows one more. */
static void
check_request_budget(void *arg, const OprecRequest *req)
{
	OprecScan  *scan = arg;

	if (scan->engine->counters.http.requests >= scan->options->max_requests)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the scan would send more than max_requests (%d) requests to the %s API",
						scan->options->max_requests, scan->service->title),
				 errdetail("Next request: %s.", req->summary.data),
				 errhint("Narrow the query (name ids, shorten the time range), or raise the table's or server's max_requests option.")));
}

static bool
code_in(const char *code, const char *const *codes)
{
	for (int i = 0; codes && codes[i]; i++)
		if (strcmp(codes[i], code) == 0)
			return true;
	return false;
}

/*
 * Why an answer the transport would not send again is transient after all
 * (an error code of the service's lists), or NULL.  Never throws: the JSON
 * is read within a small budget, and freed here.
 */
static const char *
transient_answer(void *arg, const OprecResponse *resp, bool *throttled)
{
	OprecScan  *scan = arg;
	const OprecService *service = scan->service;
	const char *reason = NULL;
	const char *parse_error;
	json_t	   *root;
	OprecApiError error;

	if (service->throttled_codes == NULL && service->transient_codes == NULL)
		return NULL;
	if (resp->body.len > ((resp->status >= 200 && resp->status <= 299)
						  ? SMALL_ANSWER_BYTES : ERROR_ANSWER_BYTES))
		return NULL;
	root = oprec_json_parse_bounded(resp->body.data, resp->body.len, ERROR_ANSWER_BUDGET,
									&parse_error);
	if (root == NULL)
		return NULL;			/* the answer is read later, and refused then */
	if (service->error_of(root, &error))
	{
		if (code_in(error.code, service->throttled_codes))
		{
			*throttled = true;
			reason = psprintf("%s error %s (throttled)", service->title, error.code);
		}
		else if (code_in(error.code, service->transient_codes))
			reason = psprintf("%s error %s (transient)", service->title, error.code);
	}
	json_decref(root);
	return reason;
}

/* Set up the transport of a scan's requests, in the engine's state. */
void
oprec_service_transport(OprecScan *scan, uint64 pace_key, OprecTransport *transport)
{
	memset(transport, 0, sizeof(OprecTransport));
	transport->options = scan->options;
	transport->title = scan->service->title;
	transport->log_id_headers = scan->service->log_id_headers;
	transport->session = scan->session;
	transport->pace_key = pace_key;
	transport->counters = &scan->engine->counters.http;
	transport->before_attempt = check_request_budget;
	transport->transient_answer = transient_answer;
	transport->arg = scan;
}

/* ----------------------------------------------------------------
 *		Tokens
 * ----------------------------------------------------------------
 */

static void
get_token(void *arg)
{
	OprecScan  *scan = arg;

	scan->service->get_token(scan);
}

/*
 * Make sure the session holds a token the scan may send, if its
 * credentials get tokens: the one it has, one another backend got, or a
 * new one from the service.
 */
void
oprec_ensure_token(OprecScan *scan)
{
	if (scan->renews_token && scan->service->get_token)
		oprec_session_ensure_token(scan->session, get_token, scan);
}

/* ----------------------------------------------------------------
 *		Answers
 * ----------------------------------------------------------------
 */

/* The error an answer reports, as the service reads it; false if none. */
static bool
answer_error(const OprecScan *scan, const OprecAnswer *answer, OprecApiError *error)
{
	if (answer->root == NULL || !scan->service->error_of(answer->root, error))
		return false;
	if (error->message == NULL || error->message[0] == '\0')
		error->message = "(no message)";
	return true;
}

/* Whether the error of an answer refuses a token the scan may renew. */
static bool
refuses_renewable_token(const OprecScan *scan, const OprecApiError *error)
{
	return scan->renews_token && scan->service->token_refused &&
		scan->service->token_refused(error);
}

static void
raise_api_error(OprecScan *scan, OprecAnswer *answer, const OprecApiError *error)
{
	oprec_api_error(answer, error->code, error->message,
					scan->service->hint ? scan->service->hint(scan, error->code) : NULL);
}

/* Raise the error an answer reports, if it reports one. */
void
oprec_raise_error_of(OprecScan *scan, OprecAnswer *answer)
{
	OprecApiError error;

	if (answer_error(scan, answer, &error))
		raise_api_error(scan, answer, &error);
}

/*
 * Raise what is wrong with an answer as a whole: not JSON (a failure of the
 * API or of a gateway if its HTTP status says so, else an answer we cannot
 * read), the error the service read from it (error, or NULL), or a failing
 * HTTP status.
 */
static void
check_answer(OprecScan *scan, OprecAnswer *answer, const OprecApiError *error)
{
	long		status = answer->resp.status;

	if (answer->root == NULL)
	{
		if (status < 200 || status > 299)
			oprec_api_error(answer, NULL, "the request failed", NULL);
		oprec_bad_answer(answer, "the answer is not JSON");
	}
	if (error)
		raise_api_error(scan, answer, error);
	if (status < 200 || status > 299)
		oprec_api_error(answer, NULL, "the request failed", NULL);
}

/* The answer of a call that is done, its body parsed as JSON. */
void
oprec_answer_of(OprecScan *scan, OprecCall *call, OprecRequest *req, OprecAnswer *answer)
{
	answer->service = scan->service;
	answer->req = req;
	oprec_http_result(call, &answer->resp);
	answer->root = oprec_json_load_owned(&answer->resp.body, scan->options);
}

/*
 * A key of the chain that an error message names, if it names one: saves
 * asking for halves of the batch to find it.  The format of such messages
 * is not documented; without a key of the chain in it, the engine finds
 * the unknown keys itself.
 */
static bool
key_named_in(const OprecChain *chain, const char *message, int64 *key)
{
	for (const char *p = message; *p; p++)
	{
		char	   *end;
		long long	v;

		if (*p < '0' || *p > '9' || (p > message && p[-1] >= '0' && p[-1] <= '9'))
			continue;
		errno = 0;
		v = strtoll(p, &end, 10);
		if (errno != 0)
			continue;
		for (int i = 0; i < chain->nkeys; i++)
			if (chain->keys[i] == (int64) v)
			{
				*key = (int64) v;
				return true;
			}
	}
	return false;
}

/*
 * What the answer to a page request says before its records are read: a
 * token refused (when may_renew), a key of the chain that does not exist
 * (*missing_key set if the message names it), or records to read.  Any
 * other error raises.
 */
OprecAnswerOutcome
oprec_page_answer_outcome(OprecScan *scan, const OprecChain *chain, bool may_renew,
						  OprecAnswer *answer, bool *has_missing_key, int64 *missing_key)
{
	const char *not_found = scan->resource->key_not_found_code;
	OprecApiError error;
	bool		has_error = answer_error(scan, answer, &error);

	*has_missing_key = false;
	if (has_error && may_renew && refuses_renewable_token(scan, &error))
		return OPREC_ANSWER_TOKEN_REFUSED;
	if (has_error && not_found && strcmp(error.code, not_found) == 0)
	{
		*has_missing_key = key_named_in(chain, error.message, missing_key);
		return OPREC_ANSWER_KEY_NOT_FOUND;
	}
	check_answer(scan, answer, has_error ? &error : NULL);
	return OPREC_ANSWER_RECORDS;
}

/*
 * The keys of a listing answer's items (a JSON array, or null for none),
 * each an object with an integer "id"; an answer of another shape raises
 * with the message given.
 */
void
oprec_read_listed_keys(OprecAnswer *answer, json_t *items, const char *not_array,
					   const char *without_id, OprecKeyPage *page)
{
	json_t	   *item;
	size_t		i;

	if (items != NULL && !json_is_null(items) && !json_is_array(items))
		oprec_bad_answer(answer, not_array);
	page->keys = palloc(sizeof(int64) * Max(json_array_size(items), 1));
	page->nkeys = 0;
	json_array_foreach(items, i, item)
	{
		json_t	   *id = json_object_get(item, "id");

		if (!json_is_integer(id))
			oprec_bad_answer(answer, without_id);
		page->keys[page->nkeys++] = json_integer_value(id);
	}
}

/* ----------------------------------------------------------------
 *		Sending, for API units
 * ----------------------------------------------------------------
 */

/*
 * Send one request and wait for its answer (sent again while it fails in
 * a way that may pass), its body parsed as JSON if it is JSON.  The answer
 * lives in the current memory context; req must live as long.  Transport
 * failures raise; the answer's own errors are the caller's to read.
 */
void
oprec_send(OprecScan *scan, OprecRequest *req, OprecAnswer *answer)
{
	OprecCall  *call = oprec_http_start(&scan->engine->transport, req);

	(void) oprec_http_wait_any(&scan->engine->transport, &call, 1);
	oprec_answer_of(scan, call, req, answer);
}

/*
 * Send a request that an API unit writes (build, with arg) with the
 * session's token, and return the answer's JSON, its errors raised.  If
 * the service refuses the token, it is renewed and the request written
 * and sent once more.  The request and answer live in the current memory
 * context.
 */
json_t *
oprec_call(OprecScan *scan, OprecAnswer *answer,
		   void (*build) (OprecScan *scan, OprecRequest *req, void *arg), void *arg)
{
	for (int attempt = 0;; attempt++)
	{
		OprecRequest *req = palloc(sizeof(OprecRequest));
		OprecApiError error;
		bool		has_error;

		uint64		token_generation;

		oprec_ensure_token(scan);
		token_generation = scan->session->token_generation;
		oprec_request_init(req, "GET");
		build(scan, req, arg);
		oprec_send(scan, req, answer);
		has_error = answer_error(scan, answer, &error);
		if (attempt == 0 && has_error && refuses_renewable_token(scan, &error))
		{
			oprec_session_token_refused(scan->session, token_generation);
			continue;
		}
		check_answer(scan, answer, has_error ? &error : NULL);
		return answer->root;
	}
}
