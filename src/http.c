/*-------------------------------------------------------------------------
 *
 * http.c
 *		  HTTP transfers through libcurl, and the errors of the remote side.
 *
 * Every transfer runs on one per-backend curl multi handle, whose
 * connection cache keeps connections alive from page to page and from
 * query to query.  While a transfer is in flight the backend waits on its
 * latch and on curl's sockets together, so a cancel request, a
 * statement_timeout or the postmaster's death ends the wait at once; curl's
 * own connect and request timeouts bound it too.  The multi handle is ready
 * for several transfers in flight, although a scan sends one at a time.
 *
 * Each transfer's curl objects belong to a memory context through a reset
 * callback, so they are released when a query fails half-way as well.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "oprec_fdw.h"

/* Answers larger than this are refused rather than buffered. */
#define MAX_ANSWER_BYTES ((size_t) 256 * 1024 * 1024)

/* Cap on a single wait, so curl's timers are honoured even if it forgets. */
#define MAX_WAIT_MS 1000

/* Body excerpt length in error messages. */
#define BODY_EXCERPT_CHARS 300

/* A socket curl wants watched. */
typedef struct WatchedSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN / OUT / INOUT */
} WatchedSocket;

static CURLM *multi_handle = NULL;
static WatchedSocket *watched = NULL;
static int	nwatched = 0;
static int	watched_capacity = 0;
static TimestampTz timer_deadline = 0;	/* 0: no timer */

/*
 * One transfer.  Buffers filled from curl callbacks are malloc'd: an
 * ereport must never unwind through libcurl.
 */
typedef struct Transfer
{
	CURL	   *easy;
	struct curl_slist *headers;
	bool		attached;		/* added to the multi handle */
	bool		done;
	CURLcode	result;
	char		errbuf[CURL_ERROR_SIZE];
	char	   *body;
	size_t		body_len;
	size_t		body_cap;
	bool		too_large;
	const OprecRequest *req;
	const char *const *log_id_headers;
	char	   *captured[OPREC_MAX_CAPTURED_HEADERS];
	char	   *log_id;
} Transfer;

/* ----------------------------------------------------------------
 *		curl callbacks (must not throw)
 * ----------------------------------------------------------------
 */

static int
socket_callback(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	int			i;

	for (i = 0; i < nwatched; i++)
		if (watched[i].fd == fd)
			break;

	if (what == CURL_POLL_REMOVE)
	{
		if (i < nwatched)
			watched[i] = watched[--nwatched];
		return 0;
	}
	if (i == nwatched)
	{
		if (nwatched == watched_capacity)
		{
			int			capacity = Max(8, watched_capacity * 2);
			WatchedSocket *grown = realloc(watched, sizeof(WatchedSocket) * capacity);

			if (grown == NULL)
				return -1;
			watched = grown;
			watched_capacity = capacity;
		}
		nwatched++;
	}
	watched[i].fd = fd;
	watched[i].what = what;
	return 0;
}

static int
timer_callback(CURLM *multi, long timeout_ms, void *userp)
{
	if (timeout_ms < 0)
		timer_deadline = 0;
	else
		timer_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	return 0;
}

static size_t
write_callback(char *data, size_t size, size_t nmemb, void *userp)
{
	Transfer   *t = userp;
	size_t		len = size * nmemb;

	if (t->body_len + len + 1 > MAX_ANSWER_BYTES)
	{
		t->too_large = true;
		return 0;				/* makes curl fail with CURLE_WRITE_ERROR */
	}
	if (t->body_len + len + 1 > t->body_cap)
	{
		size_t		capacity = Max(t->body_cap * 2, t->body_len + len + 1);
		char	   *grown;

		capacity = Max(capacity, 16384);
		grown = realloc(t->body, capacity);
		if (grown == NULL)
			return 0;
		t->body = grown;
		t->body_cap = capacity;
	}
	memcpy(t->body + t->body_len, data, len);
	t->body_len += len;
	t->body[t->body_len] = '\0';
	return len;
}

/* Keep a header's value if it is one the caller asked for. */
static size_t
header_callback(char *data, size_t size, size_t nitems, void *userp)
{
	Transfer   *t = userp;
	size_t		len = size * nitems;
	const char *colon = memchr(data, ':', len);
	size_t		name_len;
	const char *value;
	size_t		value_len;
	char	  **slot = NULL;

	if (colon == NULL)
		return len;
	name_len = colon - data;
	value = colon + 1;
	value_len = len - name_len - 1;
	while (value_len > 0 && (*value == ' ' || *value == '\t'))
		value++, value_len--;
	while (value_len > 0 && (value[value_len - 1] == '\r' || value[value_len - 1] == '\n' ||
							 value[value_len - 1] == ' '))
		value_len--;

	for (const char *const *h = t->log_id_headers; h && *h && slot == NULL; h++)
		if (strlen(*h) == name_len && pg_strncasecmp(data, *h, name_len) == 0)
			slot = &t->log_id;
	for (int i = 0; i < t->req->ncapture && slot == NULL; i++)
	{
		const char *wanted = t->req->capture[i];

		if (strlen(wanted) == name_len && pg_strncasecmp(data, wanted, name_len) == 0)
			slot = &t->captured[i];
	}
	if (slot)
	{
		char	   *copy = malloc(value_len + 1);

		if (copy == NULL)
			return 0;
		memcpy(copy, value, value_len);
		copy[value_len] = '\0';
		free(*slot);
		*slot = copy;
	}
	return len;
}

/* ----------------------------------------------------------------
 *		Set-up and clean-up
 * ----------------------------------------------------------------
 */

void
oprec_http_init(void)
{
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not initialize libcurl")));
}

static CURLM *
get_multi_handle(void)
{
	if (multi_handle == NULL)
	{
		multi_handle = curl_multi_init();
		if (multi_handle == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl multi handle")));
		curl_multi_setopt(multi_handle, CURLMOPT_SOCKETFUNCTION, socket_callback);
		curl_multi_setopt(multi_handle, CURLMOPT_TIMERFUNCTION, timer_callback);
	}
	return multi_handle;
}

/* Memory context reset callback: release a transfer's curl objects. */
static void
release_transfer(void *arg)
{
	Transfer   *t = arg;

	if (t->easy)
	{
		if (t->attached)
			curl_multi_remove_handle(multi_handle, t->easy);
		curl_easy_cleanup(t->easy);
	}
	t->easy = NULL;
	t->attached = false;
	curl_slist_free_all(t->headers);
	t->headers = NULL;
	free(t->body);
	t->body = NULL;
	free(t->log_id);
	t->log_id = NULL;
	for (int i = 0; i < OPREC_MAX_CAPTURED_HEADERS; i++)
	{
		free(t->captured[i]);
		t->captured[i] = NULL;
	}
}

void
oprec_request_init(OprecRequest *req, const char *method)
{
	memset(req, 0, sizeof(OprecRequest));
	req->method = method;
	initStringInfo(&req->url);
	initStringInfo(&req->body);
	initStringInfo(&req->summary);
}

void
oprec_request_add_header(OprecRequest *req, const char *name, const char *value)
{
	req->headers = lappend(req->headers, psprintf("%s: %s", name, value));
}

static void
setopt_or_fail(CURL *easy, CURLcode rc, const char *what)
{
	if (rc != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not set libcurl option %s: %s", what, curl_easy_strerror(rc))));
}

#define SETOPT(easy, opt, val) setopt_or_fail((easy), curl_easy_setopt((easy), (opt), (val)), #opt)

static Transfer *
prepare_transfer(const OprecOptions *options, const OprecRequest *req)
{
	Transfer   *t = palloc0(sizeof(Transfer));
	MemoryContextCallback *cb = palloc0(sizeof(MemoryContextCallback));
	ListCell   *lc;

	t->req = req;
	t->log_id_headers = options->api->log_id_headers;
	cb->func = release_transfer;
	cb->arg = t;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);

	t->easy = curl_easy_init();
	if (t->easy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));

	foreach(lc, req->headers)
	{
		struct curl_slist *grown = curl_slist_append(t->headers, (char *) lfirst(lc));

		if (grown == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
					 errmsg("out of memory while building request headers")));
		t->headers = grown;
	}
	/* curl would add "Expect: 100-continue" to larger bodies: a round trip */
	t->headers = curl_slist_append(t->headers, "Expect:");

	SETOPT(t->easy, CURLOPT_URL, req->url.data);
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SETOPT(t->easy, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SETOPT(t->easy, CURLOPT_NOSIGNAL, 1L);	/* the backend owns SIGALRM */
	SETOPT(t->easy, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(t->easy, CURLOPT_CONNECTTIMEOUT_MS, (long) options->connect_timeout_ms);
	SETOPT(t->easy, CURLOPT_TIMEOUT_MS, (long) options->request_timeout_ms);
	SETOPT(t->easy, CURLOPT_HTTPHEADER, t->headers);
	SETOPT(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
	SETOPT(t->easy, CURLOPT_WRITEFUNCTION, write_callback);
	SETOPT(t->easy, CURLOPT_WRITEDATA, t);
	SETOPT(t->easy, CURLOPT_HEADERFUNCTION, header_callback);
	SETOPT(t->easy, CURLOPT_HEADERDATA, t);
	SETOPT(t->easy, CURLOPT_USERAGENT, "oprec_fdw/" OPREC_FDW_VERSION);
	SETOPT(t->easy, CURLOPT_ACCEPT_ENCODING, "");	/* whatever curl can decode */
	if (strcmp(req->method, "POST") == 0)
	{
		SETOPT(t->easy, CURLOPT_POST, 1L);
		SETOPT(t->easy, CURLOPT_POSTFIELDS, req->body.data);
		SETOPT(t->easy, CURLOPT_POSTFIELDSIZE, (long) req->body.len);
	}
	else
		SETOPT(t->easy, CURLOPT_HTTPGET, 1L);
	return t;
}

/* ----------------------------------------------------------------
 *		Waiting
 * ----------------------------------------------------------------
 */

/* Collect finished transfers' results from the multi handle. */
static void
collect_finished(void)
{
	CURLMsg    *msg;
	int			pending;

	while ((msg = curl_multi_info_read(multi_handle, &pending)) != NULL)
	{
		Transfer   *t = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
		if (t)
		{
			t->done = true;
			t->result = msg->data.result;
		}
	}
}

static void
socket_action(curl_socket_t fd, int events)
{
	int			running;
	CURLMcode	mc;

	mc = curl_multi_socket_action(multi_handle, fd, events, &running);
	if (mc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("libcurl multi handle failed: %s", curl_multi_strerror(mc))));
	collect_finished();
}

/*
 * Wait once for curl's sockets, its timer or the latch.  The wait event set
 * is freed before anything can throw: before PostgreSQL 17 no resource
 * owner tracks its descriptor.
 */
static void
wait_for_activity(void)
{
	WaitEventSet *set;
	WaitEvent	events[16];
	int			nevents;
	long		timeout = MAX_WAIT_MS;
	curl_socket_t fired_fd[16];
	int			fired_what[16];
	int			nfired = 0;
	bool		latch_set = false;

	if (timer_deadline != 0)
	{
		timeout = Min(timeout, oprec_ms_until(timer_deadline));
	}

#if PG_VERSION_NUM >= 170000
	set = CreateWaitEventSet(CurrentResourceOwner, nwatched + 2);
#else
	set = CreateWaitEventSet(CurrentMemoryContext, nwatched + 2);
#endif
	PG_TRY();
	{
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		for (int i = 0; i < nwatched; i++)
		{
			uint32		ev = 0;

			if (watched[i].what & CURL_POLL_IN)
				ev |= WL_SOCKET_READABLE;
			if (watched[i].what & CURL_POLL_OUT)
				ev |= WL_SOCKET_WRITEABLE;
			AddWaitEventToSet(set, ev, watched[i].fd, NULL, NULL);
		}
		nevents = WaitEventSetWait(set, timeout, events, lengthof(events), PG_WAIT_EXTENSION);
	}
	PG_FINALLY();
	{
		FreeWaitEventSet(set);
	}
	PG_END_TRY();

	for (int i = 0; i < nevents; i++)
	{
		if (events[i].events & WL_LATCH_SET)
			latch_set = true;
		else if (events[i].events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
		{
			int			what = 0;

			if (events[i].events & WL_SOCKET_READABLE)
				what |= CURL_CSELECT_IN;
			if (events[i].events & WL_SOCKET_WRITEABLE)
				what |= CURL_CSELECT_OUT;
			fired_fd[nfired] = events[i].fd;
			fired_what[nfired++] = what;
		}
	}

	if (latch_set)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	for (int i = 0; i < nfired; i++)
		socket_action(fired_fd[i], fired_what[i]);
	if (nfired == 0 || (timer_deadline != 0 && GetCurrentTimestamp() >= timer_deadline))
		socket_action(CURL_SOCKET_TIMEOUT, 0);
}

/* ----------------------------------------------------------------
 *		Errors
 * ----------------------------------------------------------------
 */

/* A short excerpt of an answer body, for messages. */
static char *
body_excerpt(const OprecRequest *req, const OprecResponse *resp)
{
	int			len = resp->body.len;

	if (req->secret_answer)
		return pstrdup("(not shown: the answer carries a credential)");
	if (len == 0)
		return pstrdup("(empty)");
	if (!pg_verify_mbstr(PG_UTF8, resp->body.data, len, true))
		return psprintf("(%d bytes, not UTF-8 text)", len);
	if (len > BODY_EXCERPT_CHARS)
		len = pg_encoding_mbcliplen(PG_UTF8, resp->body.data, len, BODY_EXCERPT_CHARS);
	return psprintf("%s%s", pg_any_to_server(pnstrdup(resp->body.data, len), len, PG_UTF8),
					len < resp->body.len ? "..." : "");
}

static const char *
log_id_suffix(const OprecResponse *resp)
{
	return resp->log_id ? psprintf(", log id %s", resp->log_id) : "";
}

/*
 * Report an error the API answered with.  Without an API error code the
 * answer itself is quoted, as far as it may be shown.
 */
void
oprec_api_error(OprecScan *scan, OprecRequest *req, OprecResponse *resp,
				const char *code, const char *message, const char *hint)
{
	if (hint == NULL && code == NULL && (resp->status < 200 || resp->status > 299))
		hint = "The API or a gateway in front of it failed; retry later, and check the server's base_url option if it persists.";

	if (code)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("%s API error %s: %s (HTTP %ld%s)",
						scan->api->title, code, message, resp->status, log_id_suffix(resp)),
				 errdetail("Request: %s.", req->summary.data),
				 hint ? errhint("%s", hint) : 0));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("%s API error: %s (HTTP %ld%s)",
					scan->api->title, message, resp->status, log_id_suffix(resp)),
			 errdetail("Request: %s. Answer: %s", req->summary.data, body_excerpt(req, resp)),
			 hint ? errhint("%s", hint) : 0));
}

void
oprec_bad_answer(OprecScan *scan, OprecRequest *req, OprecResponse *resp, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
			 errmsg("unexpected answer from the %s API: %s (HTTP %ld%s)",
					scan->api->title, what, resp->status, log_id_suffix(resp)),
			 errdetail("Request: %s. Answer: %s", req->summary.data, body_excerpt(req, resp)),
			 errhint("Check that the server's base_url option points at the %s API; if it does, the API has changed: report the answer above.",
					 scan->api->title)));
}

static void
report_transport_failure(OprecScan *scan, const OprecRequest *req, Transfer *t)
{
	const char *what;
	const char *hint;
	curl_off_t	connect_time = 0;
	long		new_connections = 0;

	switch (t->result)
	{
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
			what = "could not resolve the host name";
			hint = "Check the host in the server's base_url option and the DNS settings of the database host.";
			break;
		case CURLE_COULDNT_CONNECT:
			what = "could not connect";
			hint = "Check the host and port in the server's base_url option and that the database host may reach them.";
			break;
		case CURLE_OPERATION_TIMEDOUT:
			/* a reused connection was connected before this transfer */
			curl_easy_getinfo(t->easy, CURLINFO_CONNECT_TIME_T, &connect_time);
			curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &new_connections);
			if (new_connections > 0 && connect_time == 0)
			{
				what = psprintf("connection timed out after %d s",
								scan->options->connect_timeout_ms / 1000);
				hint = "Check the network path to the API, or raise the server's connect_timeout option.";
			}
			else
			{
				what = psprintf("request timed out after %d s",
								scan->options->request_timeout_ms / 1000);
				hint = "The API did not answer in time; retry later, or raise the server's request_timeout option.";
			}
			break;
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
			what = "TLS handshake failed";
			hint = "Check that the host in base_url speaks https, its certificate, and the CA certificates of the database host.";
			break;
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
			what = "the connection broke before an answer arrived";
			hint = "Retry; if it persists, check proxies between the database host and the API.";
			break;
		case CURLE_WRITE_ERROR:
			if (t->too_large)
			{
				what = psprintf("the answer exceeded %zu MB", MAX_ANSWER_BYTES / (1024 * 1024));
				hint = "Lower the server's page_size option.";
				break;
			}
			/* FALLTHROUGH */
		default:
			what = curl_easy_strerror(t->result);
			hint = NULL;
			break;
	}

	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
			 errmsg("request to the %s API failed: %s", scan->api->title, what),
			 errdetail("Request: %s.%s%s", req->summary.data,
					   t->errbuf[0] ? " libcurl: " : "", t->errbuf),
			 hint ? errhint("%s", hint) : 0));
}

/* ----------------------------------------------------------------
 *		Sending
 * ----------------------------------------------------------------
 */

/*
 * Send one request and wait for its answer, in the current memory context.
 * Transport failures raise an ERROR; any HTTP status is returned to the
 * caller, which knows what the API means by it.
 */
void
oprec_http_send(OprecScan *scan, OprecRequest *req, OprecResponse *resp)
{
	CURLM	   *multi = get_multi_handle();
	Transfer   *t;
	CURLMcode	mc;

	oprec_session_pace(scan->session, scan->options->requests_per_second);

	t = prepare_transfer(scan->options, req);
	SETOPT(t->easy, CURLOPT_PRIVATE, (char *) t);
	mc = curl_multi_add_handle(multi, t->easy);
	if (mc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not start a request: %s", curl_multi_strerror(mc))));
	t->attached = true;
	scan->counters.http_requests++;

	socket_action(CURL_SOCKET_TIMEOUT, 0);
	while (!t->done)
	{
		CHECK_FOR_INTERRUPTS();
		wait_for_activity();
	}
	oprec_session_record_request(scan->session);

	curl_multi_remove_handle(multi, t->easy);
	t->attached = false;

	if (t->result != CURLE_OK)
		report_transport_failure(scan, req, t);

	memset(resp, 0, sizeof(OprecResponse));
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &resp->status);
	initStringInfo(&resp->body);
	if (t->body_len > 0)
		appendBinaryStringInfo(&resp->body, t->body, t->body_len);
	if (t->log_id)
		resp->log_id = pstrdup(t->log_id);
	for (int i = 0; i < req->ncapture; i++)
		if (t->captured[i])
			resp->captured[i] = pstrdup(t->captured[i]);
}
