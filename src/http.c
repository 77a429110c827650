/*-------------------------------------------------------------------------
 *
 * http.c
 *		  HTTP transfers through libcurl, retries, and the errors of the
 *		  remote side.
 *
 * Every transfer runs on one per-backend curl multi handle, whose
 * connection cache keeps connections alive from page to page and from
 * query to query, and which carries many transfers at once: a request is
 * an OprecCall, started without waiting (oprec_http_start) and waited for
 * together with others (oprec_http_wait_any).  While waiting, the backend
 * waits on its latch and on curl's sockets together, so a cancel request, a
 * statement_timeout or the postmaster's death ends the wait at once; curl's
 * own connect and request timeouts bound it too.
 *
 * Lifetime.  A call lives in a memory context of its own, and each attempt's
 * transfer in a child of it.  Freeing a call, or an error freeing its
 * caller's memory, takes its transfer off the multi handle (a reset
 * callback) and gives its place in the pace window back; curl may call a
 * transfer's callbacks whenever the multi handle is next driven, which can
 * be by another scan or another query, so a transfer is never freed while
 * attached.  The callbacks touch only memory of the transfer's own context,
 * never the caller's, and never throw.
 *
 * Hostile answers.  An answer is refused past the server's
 * max_response_bytes, counted after decompression; the body is kept once,
 * in the transfer's context, and handed to the caller.  Every string from
 * the remote side that reaches a message goes through oprec_api_text.
 *
 * Retries.  Throttling, 5xx answers, answers the caller calls transient
 * (an API's error codes), connection resets and timeouts are retried with
 * exponential backoff and jitter (or as Retry-After says), up to
 * max_retries; a call waiting for its next attempt is waited for like one
 * in flight, so a cancel still ends the wait at once, and the other calls
 * go on meanwhile.
 *
 * Connections.  Over HTTP/2, which https APIs may offer, the requests of a
 * backend share one connection (a transfer waits for the first connection
 * to say whether it multiplexes).  Over HTTP/1.1 each request in flight
 * has its own connection, kept and reused by the next requests.  A server
 * whose accept queue is full drops the connection requests that arrive
 * meanwhile, and the kernel sends a dropped one again only after a second
 * (then 3 s, 7 s...): many requests starting together against a small
 * queue would wait for that.  So a transfer whose connection is still not
 * established after STALL_FACTOR times this backend's usual connect time
 * (at least STALL_MIN_MS) is started again at once on a new connection;
 * by then the server has emptied its queue.  Until a connect has been
 * seen, nothing is taken for stalled.
 *
 * This file knows HTTP and nothing of APIs or scans: what it needs of its
 * caller (settings, pacing, counters, the request budget, which answers
 * are transient) comes in an OprecTransport.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif
#include "lib/ilist.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "oprec_fdw.h"

/* Cap on a single wait, so curl's timers are honoured even if it forgets. */
#define MAX_WAIT_MS 1000

/* Captured header values (an IAM token is a few KB) are cut here. */
#define MAX_CAPTURED_VALUE_BYTES 32768

/* Backoff: first delay, first delay when throttled, and the longest. */
#define RETRY_BASE_DELAY_MS 200
#define THROTTLE_BASE_DELAY_MS 1000
#define RETRY_MAX_DELAY_MS 30000

/* A Retry-After longer than this is not waited for: the query fails. */
#define RETRY_AFTER_MAX_MS (120 * 1000)

/*
 * Stalled connects: a connect is taken for dropped after this many times
 * the usual one (at least STALL_MIN_MS), and started again at most
 * STALL_MAX_RESTARTS times per request.  Connects of a second or more were
 * sent again by the kernel: they do not count in the usual time.
 */
#define STALL_FACTOR 8
#define STALL_MIN_MS 3
#define STALL_MAX_RESTARTS 8
#define KERNEL_RETRANSMIT_US 1000000

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

/* Moving average of this backend's connect times, in us; 0: none seen. */
static double usual_connect_us = 0;

/*
 * One transfer, and everything its callbacks touch.  It is allocated in
 * its own memory context (cxt), and so are the body and captured headers,
 * which the callbacks allocate without throwing.
 */
typedef struct Transfer
{
	MemoryContext cxt;
	CURL	   *easy;
	struct curl_slist *headers;
	bool		attached;		/* on the multi handle */
	bool		started;		/* was put on it: may have been sent */
	TimestampTz attached_at;
	bool		connected;		/* its connection was seen ready to send */
	bool		done;
	CURLcode	result;
	char		errbuf[CURL_ERROR_SIZE];
	char	   *body;
	size_t		body_len;
	size_t		body_cap;
	size_t		max_body;		/* the server's max_response_bytes */
	bool		too_large;
	/* headers to keep: the caller's, the API's log id names, Retry-After */
	int			ncapture;
	char	   *capture_name[OPREC_MAX_CAPTURED_HEADERS];
	char	   *captured[OPREC_MAX_CAPTURED_HEADERS];
	int			nlog_id_names;
	char	  **log_id_names;
	char	   *log_id;
	char	   *retry_after;
	/* its place in the pace window, from the start until curl says done */
	OprecPaceTicket ticket;
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

/* Memory for a callback: from the transfer's context, NULL rather than throw. */
static void *
callback_alloc(Transfer *t, size_t size)
{
	return MemoryContextAllocExtended(t->cxt, size, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

static size_t
write_callback(char *data, size_t size, size_t nmemb, void *userp)
{
	Transfer   *t = userp;
	size_t		len = size * nmemb;

	/* counted after decompression: a small gzip answer cannot grow past it */
	if (len > t->max_body || t->body_len > t->max_body - len)
	{
		t->too_large = true;
		return 0;				/* makes curl fail with CURLE_WRITE_ERROR */
	}
	if (t->body_len + len + 1 > t->body_cap)
	{
		size_t		capacity = Max(Max(t->body_cap * 2, t->body_len + len + 1), 16384);
		char	   *grown;

		capacity = Min(capacity, t->max_body + 1);
		grown = callback_alloc(t, capacity);
		if (grown == NULL)
			return 0;
		if (t->body)
		{
			memcpy(grown, t->body, t->body_len);
			pfree(t->body);
		}
		t->body = grown;
		t->body_cap = capacity;
	}
	memcpy(t->body + t->body_len, data, len);
	t->body_len += len;
	t->body[t->body_len] = '\0';
	return len;
}

static bool
header_name_is(const char *data, size_t name_len, const char *wanted)
{
	return strlen(wanted) == name_len && pg_strncasecmp(data, wanted, name_len) == 0;
}

/* Keep a header's value if it is one the transfer wants. */
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
	char	   *copy;

	if (colon == NULL)
		return len;
	name_len = colon - data;
	value = colon + 1;
	value_len = len - name_len - 1;
	while (value_len > 0 && (*value == ' ' || *value == '\t'))
		value++, value_len--;
	while (value_len > 0 && (value[value_len - 1] == '\r' || value[value_len - 1] == '\n' ||
							 value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
		value_len--;
	value_len = Min(value_len, MAX_CAPTURED_VALUE_BYTES);

	for (int i = 0; i < t->nlog_id_names && slot == NULL; i++)
		if (header_name_is(data, name_len, t->log_id_names[i]))
			slot = &t->log_id;
	for (int i = 0; i < t->ncapture && slot == NULL; i++)
		if (header_name_is(data, name_len, t->capture_name[i]))
			slot = &t->captured[i];
	if (slot == NULL && header_name_is(data, name_len, "Retry-After"))
		slot = &t->retry_after;
	if (slot == NULL)
		return len;

	copy = callback_alloc(t, value_len + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, value, value_len);
	copy[value_len] = '\0';
	if (*slot)
		pfree(*slot);
	*slot = copy;
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
		curl_multi_setopt(multi_handle, CURLMOPT_PIPELINING, (long) CURLPIPE_MULTIPLEX);
		/*
		 * Keep a connection for every request a scan may have in flight
		 * (and a few for token hosts); by default curl keeps four per
		 * transfer attached, so a scan's connections were closed as its
		 * transfers ended and the next scan opened them again.
		 */
		curl_multi_setopt(multi_handle, CURLMOPT_MAXCONNECTS, (long) (OPREC_MAX_CONCURRENCY + 8));
		curl_multi_setopt(multi_handle, CURLMOPT_SOCKETFUNCTION, socket_callback);
		curl_multi_setopt(multi_handle, CURLMOPT_TIMERFUNCTION, timer_callback);
	}
	return multi_handle;
}

/*
 * Release a transfer's curl objects, taking it off the multi handle first.
 * Also the reset callback of the transfer's context; safe to call twice.
 */
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
	/* abandoned while in flight, it may have reached the API */
	if (t->started)
		oprec_pace_complete(&t->ticket);
	else
		oprec_pace_withdraw(&t->ticket);
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

/* Add a header line to the transfer's list; curl copies it. */
static void
append_header(Transfer *t, const char *line)
{
	struct curl_slist *grown = curl_slist_append(t->headers, line);

	if (grown == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
				 errmsg("out of memory while building request headers")));
	t->headers = grown;
}

static void set_transfer_options(Transfer *t, const OprecOptions *options,
								 const OprecRequest *req);

/*
 * A transfer for req in cxt, a new context: freeing it releases the
 * transfer's curl objects (release_transfer).
 */
static Transfer *
prepare_transfer(MemoryContext cxt, const OprecTransport *transport, const OprecRequest *req)
{
	const OprecOptions *options = transport->options;
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	Transfer   *t = palloc0(sizeof(Transfer));
	MemoryContextCallback *cb = palloc0(sizeof(MemoryContextCallback));
	const char *const *names = transport->log_id_headers;
	ListCell   *lc;

	t->cxt = cxt;
	t->max_body = options->max_response_bytes;
	cb->func = release_transfer;
	cb->arg = t;
	MemoryContextRegisterResetCallback(cxt, cb);

	/* copies: the transfer must not point into its caller's memory */
	for (int i = 0; i < req->ncapture; i++)
		t->capture_name[t->ncapture++] = pstrdup(req->capture[i]);
	for (int i = 0; names && names[i]; i++)
		t->nlog_id_names++;
	t->log_id_names = palloc0(sizeof(char *) * Max(t->nlog_id_names, 1));
	for (int i = 0; i < t->nlog_id_names; i++)
		t->log_id_names[i] = pstrdup(names[i]);

	t->easy = curl_easy_init();
	if (t->easy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));

	foreach(lc, req->headers)
		append_header(t, (char *) lfirst(lc));
	/* curl would add "Expect: 100-continue" to larger bodies: a round trip */
	append_header(t, "Expect:");
	set_transfer_options(t, options, req);

	MemoryContextSwitchTo(oldcxt);
	return t;
}

/*
 * The transfer's curl options: what may be reached and how (HTTP(S) only,
 * no redirects, TLS verified), its limits, and its callbacks.  curl copies
 * the URL and, with COPYPOSTFIELDS, the body.
 */
static void
set_transfer_options(Transfer *t, const OprecOptions *options, const OprecRequest *req)
{
	SETOPT(t->easy, CURLOPT_URL, req->url.data);
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SETOPT(t->easy, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SETOPT(t->easy, CURLOPT_NOSIGNAL, 1L);	/* the backend owns SIGALRM */
#if LIBCURL_VERSION_NUM >= 0x075700
	/* a cancelled transfer must not wait for its resolver thread */
	SETOPT(t->easy, CURLOPT_QUICK_EXIT, 1L);
#endif
	SETOPT(t->easy, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(t->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(t->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (options->ca_file)
		SETOPT(t->easy, CURLOPT_CAINFO, options->ca_file);
	SETOPT(t->easy, CURLOPT_CONNECTTIMEOUT_MS, (long) options->connect_timeout_ms);
	SETOPT(t->easy, CURLOPT_TIMEOUT_MS, (long) options->request_timeout_ms);
	SETOPT(t->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) t->max_body);
	SETOPT(t->easy, CURLOPT_HTTPHEADER, t->headers);
	SETOPT(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
	SETOPT(t->easy, CURLOPT_WRITEFUNCTION, write_callback);
	SETOPT(t->easy, CURLOPT_WRITEDATA, t);
	SETOPT(t->easy, CURLOPT_HEADERFUNCTION, header_callback);
	SETOPT(t->easy, CURLOPT_HEADERDATA, t);
	SETOPT(t->easy, CURLOPT_PRIVATE, (char *) t);
	SETOPT(t->easy, CURLOPT_USERAGENT, "oprec_fdw/" OPREC_FDW_VERSION);
	SETOPT(t->easy, CURLOPT_ACCEPT_ENCODING, "");	/* whatever curl can decode */
	if (pg_strncasecmp(req->url.data, "https:", 6) == 0 &&
		(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2))
	{
		/* HTTP/2 if the server offers it, known once TLS is set up */
		SETOPT(t->easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS);
		SETOPT(t->easy, CURLOPT_PIPEWAIT, 1L);
	}
	if (strcmp(req->method, "POST") == 0)
	{
		SETOPT(t->easy, CURLOPT_POST, 1L);
		SETOPT(t->easy, CURLOPT_POSTFIELDSIZE, (long) req->body.len);
		SETOPT(t->easy, CURLOPT_COPYPOSTFIELDS, req->body.data);
	}
	else
		SETOPT(t->easy, CURLOPT_HTTPGET, 1L);
}

/* ----------------------------------------------------------------
 *		Waiting
 * ----------------------------------------------------------------
 */

/*
 * Collect finished transfers' results from the multi handle, and settle
 * their places in the pace at once: the scan that owns a transfer may read
 * its answer much later, and until then the request is no longer on the
 * wire.  Never throws.
 */
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
			oprec_pace_complete(&t->ticket);
		}
	}
}

static void
socket_action(curl_socket_t fd, int events)
{
	int			running;
	CURLMcode	mc;

	/* a backend may wait for the pace before its first transfer */
	if (multi_handle == NULL)
		return;
	mc = curl_multi_socket_action(multi_handle, fd, events, &running);
	if (mc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("libcurl multi handle failed: %s", curl_multi_strerror(mc))));
	collect_finished();
}

/*
 * Wait once for curl's sockets, its timer, the latch or deadline (0: none);
 * with poll_only, only look at what is ready now.  The wait event set is
 * freed before anything can throw: before PostgreSQL 17 no resource owner
 * tracks its descriptor.
 */
static void
wait_for_activity(TimestampTz deadline, bool poll_only)
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
		timeout = Min(timeout, oprec_ms_until(timer_deadline));
	if (deadline != 0)
		timeout = Min(timeout, oprec_ms_until(deadline));
	if (poll_only)
		timeout = 0;

#if PG_VERSION_NUM >= 170000
	set = CreateWaitEventSet(CurrentResourceOwner, nwatched + 2);
#else
	set = CreateWaitEventSet(CurrentMemoryContext, nwatched + 2);
#endif
	PG_TRY();
	{
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		/* a single-user backend has no postmaster to watch */
		if (IsUnderPostmaster)
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
 *		Failures
 * ----------------------------------------------------------------
 */

static void
report_transport_failure(const OprecTransport *transport, const OprecRequest *req, Transfer *t,
						 int retries)
{
	const char *what;
	const char *hint;
	curl_off_t	connect_time = 0;
	long		new_connections = 0;
	const char *libcurl_message = t->errbuf[0] ? oprec_api_text(t->errbuf, strlen(t->errbuf)) : NULL;

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
								transport->options->connect_timeout_ms / 1000);
				hint = "Check the network path to the API, or raise the server's connect_timeout option.";
			}
			else
			{
				what = psprintf("request timed out after %d s",
								transport->options->request_timeout_ms / 1000);
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
			hint = "Check that the host in base_url speaks https, its certificate, and the CA certificates of the database host (or the server's ca_file option).";
			break;
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
			what = "the connection broke before an answer arrived";
			hint = "Retry; if it persists, check proxies between the database host and the API.";
			break;
		case CURLE_FILESIZE_EXCEEDED:
		case CURLE_WRITE_ERROR:
			if (t->too_large || t->result == CURLE_FILESIZE_EXCEEDED)
			{
				what = psprintf("the answer exceeded max_response_bytes (%zu bytes)", t->max_body);
				hint = "Lower the server's page_size option, or raise its max_response_bytes option if answers this large are expected.";
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
			 errmsg("request to the %s API failed: %s%s", transport->title, what,
					retries > 0 ? psprintf(" (after %d retries)", retries) : ""),
			 errdetail("Request: %s.%s%s", req->summary.data,
					   libcurl_message ? " libcurl: " : "",
					   libcurl_message ? libcurl_message : ""),
			 hint ? errhint("%s", hint) : 0));
}

/* Hand the answer, kept in the transfer's context, to the caller. */
static void
fill_response(Transfer *t, const OprecRequest *req, OprecResponse *resp)
{
	memset(resp, 0, sizeof(OprecResponse));
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &resp->status);
	if (t->body == NULL)
	{
		t->body = MemoryContextAllocZero(t->cxt, 1);
		t->body_cap = 1;
	}
	resp->body.data = t->body;
	resp->body.len = (int) t->body_len;
	resp->body.maxlen = (int) t->body_cap;
	resp->body.cursor = 0;
	resp->log_id = t->log_id;
	for (int i = 0; i < req->ncapture; i++)
		resp->captured[i] = t->captured[i];
}

/* Whether a transport failure may pass if the request is sent again. */
static bool
transport_failure_is_transient(CURLcode result)
{
	switch (result)
	{
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			return true;
		default:
			return false;
	}
}

/*
 * Why an attempt may pass if sent again, or NULL if it may not: a
 * transient transport failure, throttling, a 5xx answer, or an answer the
 * caller knows to be transient.  Every call of these APIs is a read, so
 * sending it again is harmless.
 */
static const char *
transient_failure(const OprecTransport *transport, Transfer *t, OprecResponse *resp,
				  bool *throttled)
{
	*throttled = false;
	if (t->result != CURLE_OK)
		return transport_failure_is_transient(t->result) ? curl_easy_strerror(t->result) : NULL;
	if (resp->status == 429)
	{
		*throttled = true;
		return "HTTP 429";
	}
	if (resp->status >= 500 && resp->status <= 599 && resp->status != 501 &&
		resp->status != 505)
		return psprintf("HTTP %ld", resp->status);
	if (transport->transient_answer == NULL)
		return NULL;
	return transport->transient_answer(transport->arg, resp, throttled);
}

/*
 * How long to wait before the next attempt, in ms; -1 if the API asked for
 * a wait longer than we are willing to make.  Retry-After (seconds or an
 * HTTP date) wins; else exponential backoff with jitter.
 */
static long
retry_delay_ms(const Transfer *t, int attempt, bool throttled)
{
	long		base = throttled ? THROTTLE_BASE_DELAY_MS : RETRY_BASE_DELAY_MS;
	long		delay;

	if (t->retry_after && t->retry_after[0])
	{
		const char *v = t->retry_after;
		int64		ms = -1;

		if (strspn(v, "0123456789") == strlen(v))
			ms = strlen(v) > 9 ? PG_INT64_MAX : (int64) atol(v) * 1000;
		else
		{
			time_t		when = curl_getdate(v, NULL);

			if (when != (time_t) -1)
				ms = Max((int64) (when - time(NULL)) * 1000, 0);
		}
		if (ms > RETRY_AFTER_MAX_MS)
			return -1;
		if (ms >= 0)
			return (long) ms;
	}

	delay = base << Min(attempt, 16);
	delay = Min(delay, RETRY_MAX_DELAY_MS);
	/* jitter over the upper half: spreads backends that failed together */
#if PG_VERSION_NUM >= 150000
	return delay / 2 + (long) pg_prng_uint64_range(&pg_global_prng_state, 0, delay / 2);
#else
	return delay / 2 + random() % (delay / 2 + 1);
#endif
}

/* ----------------------------------------------------------------
 *		Sending
 * ----------------------------------------------------------------
 */

/*
 * One request, from its first attempt to its answer.  It lives in a memory
 * context of its own; each attempt's transfer lives in a child of it, so
 * freeing the call (or an error freeing its parent) takes every transfer
 * off the multi handle and settles its place in the pace window.
 */
typedef enum CallState
{
	CALL_WAITING,				/* for the pace, or between attempts */
	CALL_SENDING,				/* a transfer is on the multi handle */
	CALL_DONE					/* an answer, or a failure not retried */
} CallState;

struct OprecCall
{
	MemoryContext cxt;
	dlist_node	node;			/* in live_calls */
	const OprecTransport *transport;	/* the caller's: outlives the call */
	OprecRequest *req;			/* the caller's: lives as long as the call */
	CallState	state;
	TimestampTz not_before;		/* CALL_WAITING: next attempt from then */
	int			attempt;		/* attempts before the current one */
	int			connect_restarts;	/* attempts started again, their connect
									 * stalled */
	Transfer   *transfer;		/* CALL_SENDING and CALL_DONE */
	OprecPaceTicket ticket;		/* reserved, until its transfer takes it */
	OprecResponse resp;			/* CALL_DONE, if the transfer succeeded */
};

/* Requests this backend has sent (oprec_http_requests_sent). */
static int64 requests_sent = 0;

/* Every call of this backend, whichever scan or query it belongs to. */
static dlist_head live_calls = DLIST_STATIC_INIT(live_calls);

/* The call's context goes: it leaves live_calls, and any place it holds. */
static void
release_call(void *arg)
{
	OprecCall  *call = arg;

	dlist_delete(&call->node);
	/* a ticket the call still holds is one no transfer ever used */
	oprec_pace_withdraw(&call->ticket);
}

/* Start an attempt: put its transfer on the multi handle. */
static void
start_transfer(OprecCall *call)
{
	CURLM	   *multi = get_multi_handle();
	MemoryContext cxt = AllocSetContextCreate(call->cxt, "oprec_fdw transfer",
											  ALLOCSET_SMALL_SIZES);
	Transfer   *t;
	CURLMcode	mc;

	t = prepare_transfer(cxt, call->transport, call->req);
	/* from here on, freeing the transfer settles its place in the pace */
	t->ticket = call->ticket;
	call->ticket.serial = 0;
	mc = curl_multi_add_handle(multi, t->easy);
	if (mc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not start a request: %s", curl_multi_strerror(mc))));
	t->attached = t->started = true;
	t->attached_at = GetCurrentTimestamp();
	call->transfer = t;
	call->state = CALL_SENDING;
	call->transport->counters->requests++;
	requests_sent++;
	socket_action(CURL_SOCKET_TIMEOUT, 0);
}

/*
 * Take an attempt whose request has not been sent off the wire, giving its
 * place in the pace back: the call waits to be sent again.
 */
static void
take_back(OprecCall *call)
{
	Transfer   *t = call->transfer;

	oprec_pace_withdraw(&t->ticket);
	MemoryContextDelete(t->cxt);
	call->transfer = NULL;
	call->state = CALL_WAITING;
	call->not_before = 0;
	call->transport->counters->requests--;
	requests_sent--;
}

/*
 * Note once that a transfer's connection is ready to send; a new
 * connection's connect time goes into the usual one.  Never throws.
 */
static void
observe_connect(Transfer *t, OprecHttpCounters *counters)
{
	curl_off_t	pretransfer_us = 0;
	curl_off_t	connect_us = 0;
	long		new_connections = 0;

	if (t->connected)
		return;
	curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
	if (pretransfer_us <= 0)
		return;
	t->connected = true;
	curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &new_connections);
	if (new_connections <= 0)
		return;
	counters->connections += new_connections;
	curl_easy_getinfo(t->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
	if (connect_us > 0 && connect_us < KERNEL_RETRANSMIT_US)
		usual_connect_us = usual_connect_us == 0 ? (double) connect_us :
			(7 * usual_connect_us + (double) connect_us) / 8;
}

/*
 * A sending attempt whose connect has stalled (see the file's header) is
 * taken back, to be started again at once.  Returns when to look at the
 * attempt again (0: no need).
 */
static TimestampTz
check_connect(OprecCall *call)
{
	Transfer   *t = call->transfer;
	long		stall_ms;
	TimestampTz stalled_at;

	observe_connect(t, call->transport->counters);
	if (t->connected || call->connect_restarts >= STALL_MAX_RESTARTS)
		return 0;
	/* no connect seen yet: look again soon, one may have finished */
	if (usual_connect_us == 0)
		return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), STALL_MIN_MS);
	stall_ms = Max(STALL_MIN_MS, (long) (STALL_FACTOR * usual_connect_us / 1000));
	stall_ms = Min(stall_ms, call->transport->options->connect_timeout_ms);
	stalled_at = TimestampTzPlusMilliseconds(t->attached_at, stall_ms);
	if (GetCurrentTimestamp() < stalled_at)
		return stalled_at;
	call->connect_restarts++;
	call->transport->counters->connect_restarts++;
	take_back(call);
	return 0;
}

/*
 * An attempt's transfer ended: take it off the multi handle, and either
 * end the call or plan the next attempt (see transient_failure).
 */
static void
end_attempt(OprecCall *call)
{
	const OprecTransport *transport = call->transport;
	const OprecOptions *options = transport->options;
	Transfer   *t = call->transfer;
	OprecResponse *resp = &call->resp;
	const char *reason;
	bool		throttled;
	long		delay;

	observe_connect(t, transport->counters);
	curl_multi_remove_handle(multi_handle, t->easy);
	t->attached = false;
	if (t->result == CURLE_OK)
	{
		fill_response(t, call->req, resp);
		release_transfer(t);
		transport->counters->bytes_received += resp->body.len;
	}
	else
		memset(resp, 0, sizeof(OprecResponse));
	resp->retries = call->attempt;

	reason = transient_failure(transport, t, resp, &throttled);
	if (throttled)
		oprec_pace_throttled(transport->session, transport->pace_key, t->ticket.sent);
	if (reason == NULL || call->attempt >= options->max_retries)
	{
		call->state = CALL_DONE;
		return;
	}
	delay = retry_delay_ms(t, call->attempt, throttled);
	if (delay < 0)
	{
		const char *asked = oprec_api_text(t->retry_after, strlen(t->retry_after));

		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the %s API asked to be called again after \"%s\" (Retry-After), later than the %d s oprec_fdw waits",
						transport->title, asked, RETRY_AFTER_MAX_MS / 1000),
				 errdetail("Request: %s. Answer: HTTP %ld after %d retries.",
						   call->req->summary.data, resp->status, call->attempt),
				 errhint("Run the query again later%s.",
						 throttled ? ", or lower the server's requests_per_second option" : "")));
	}

	ereport(DEBUG1,
			(errmsg_internal("oprec_fdw: retrying a %s request in %ld ms (attempt %d of %d): %s",
							 transport->title, delay, call->attempt + 2, options->max_retries + 1,
							 reason)));
	transport->counters->retries++;
	MemoryContextDelete(t->cxt);
	call->transfer = NULL;
	call->attempt++;
	call->state = CALL_WAITING;
	call->not_before = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay);
}

/*
 * Move a call on as far as it goes without waiting.  Returns, for a call
 * still waiting for its pace or its next attempt, when to look again;
 * else 0.
 */
static TimestampTz
advance_call(OprecCall *call)
{
	if (call->state == CALL_SENDING && call->transfer->done)
		end_attempt(call);
	if (call->state == CALL_SENDING)
	{
		TimestampTz next = check_connect(call);

		if (call->state == CALL_SENDING)
			return next;
	}
	if (call->state == CALL_WAITING)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		wait_ms;

		if (now < call->not_before)
			return call->not_before;
		/* before a place in the pace is reserved: it may refuse to send */
		if (call->transport->before_attempt)
			call->transport->before_attempt(call->transport->arg, call->req);
		wait_ms = oprec_pace_reserve(call->transport->session, call->transport->pace_key,
									 call->transport->options->requests_per_second,
									 &call->ticket);
		if (wait_ms > 0)
		{
			call->not_before = TimestampTzPlusMilliseconds(now, wait_ms);
			return call->not_before;
		}
		start_transfer(call);
		/* it may end at once (a refused connection), or be connecting */
		return advance_call(call);
	}
	return 0;
}

/*
 * Begin a request: it is sent as soon as the pace allows, and answered
 * while this or any other call is waited for.  The call lives in a new
 * child of the current memory context; req must live until the call's
 * result is taken (oprec_http_result).
 */
OprecCall *
oprec_http_start(const OprecTransport *transport, OprecRequest *req)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "oprec_fdw call",
											  ALLOCSET_SMALL_SIZES);
	OprecCall  *call = MemoryContextAllocZero(cxt, sizeof(OprecCall));
	MemoryContextCallback *cb = MemoryContextAllocZero(cxt, sizeof(MemoryContextCallback));

	call->cxt = cxt;
	call->transport = transport;
	call->req = req;
	call->state = CALL_WAITING;
	dlist_push_tail(&live_calls, &call->node);
	cb->func = release_call;
	cb->arg = call;
	MemoryContextRegisterResetCallback(cxt, cb);
	(void) advance_call(call);
	return call;
}

/* Whether a call has its outcome (oprec_http_result then says which). */
bool
oprec_http_done(OprecCall *call)
{
	return call->state == CALL_DONE;
}

/*
 * Wait until one of the calls (NULL entries skipped) has its outcome and
 * return its index; -1 if none is left to wait for.  A cancel or
 * statement_timeout ends the wait at once, with an error.
 */
int
oprec_http_wait_any(const OprecTransport *transport, OprecCall *const *calls, int ncalls)
{
	TimestampTz started = GetCurrentTimestamp();
	int			found = -1;

	for (;;)
	{
		TimestampTz deadline = 0;
		bool		any = false;

		CHECK_FOR_INTERRUPTS();
		for (int i = 0; i < ncalls && found < 0; i++)
		{
			TimestampTz next;

			if (calls[i] == NULL)
				continue;
			any = true;
			next = advance_call(calls[i]);
			if (calls[i]->state == CALL_DONE)
				found = i;
			else if (next != 0 && (deadline == 0 || next < deadline))
				deadline = next;
		}
		if (found >= 0 || !any)
			break;
		wait_for_activity(deadline, false);
	}
	transport->counters->wait_us += GetCurrentTimestamp() - started;
	return found;
}

/*
 * The outcome of a call that is done: its answer, which lives as long as
 * the call, or an ERROR for a transport failure.  Any HTTP status is
 * returned to the caller, which knows what the API means by it.
 */
void
oprec_http_result(OprecCall *call, OprecResponse *resp)
{
	Assert(call->state == CALL_DONE);
	if (call->transfer->result != CURLE_OK)
		report_transport_failure(call->transport, call->req, call->transfer, call->attempt);
	*resp = call->resp;
	/* the answer stays with the call; the request may be on the caller's stack */
	call->req = NULL;
}

/*
 * The executor has stopped asking for rows (a cursor's FETCH returned, or a
 * portal was suspended) and the backend may now stay idle for any time,
 * watching no transfer: hold no place in the pace meanwhile.  What has
 * finished is collected (and settled); a transfer that has not begun to
 * send its request is taken off the wire and its place given back, to be
 * sent again when its scan goes on; a request already sent is counted as
 * completed now (it has reached the API, whose quota counts requests as
 * they arrive), as nobody will see its answer arrive until then.
 */
void
oprec_http_suspend(void)
{
	dlist_iter	iter;

	if (dlist_is_empty(&live_calls) || multi_handle == NULL)
		return;
	wait_for_activity(0, true);
	dlist_foreach(iter, &live_calls)
	{
		OprecCall  *call = dlist_container(OprecCall, node, iter.cur);
		Transfer   *t = call->transfer;
		curl_off_t	pretransfer_us = 0;

		if (call->state != CALL_SENDING || t->done)
			continue;
		curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
		if (pretransfer_us > 0)
		{
			oprec_pace_complete(&t->ticket);
			continue;
		}
		take_back(call);
	}
}

/* Free a call, its transfers and its answer; one in flight is abandoned. */
void
oprec_http_free(OprecCall *call)
{
	MemoryContextDelete(call->cxt);
}

/* How many requests this backend has sent, for work that spans scans. */
int64
oprec_http_requests_sent(void)
{
	return requests_sent;
}
