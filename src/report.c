/*-------------------------------------------------------------------------
 *
 * report.c
 *		  Errors of the remote side, and what of an API's bytes a message
 *		  may show.
 *
 * Every string an API sends that reaches a message (an error code or
 * message, a log id, an excerpt of an answer, a cursor) goes through
 * oprec_api_text: cut short, invalid UTF-8 and characters the database
 * encoding lacks shown as '?', control characters as spaces.  An answer
 * that carries a credential is never quoted.  Messages say what the API
 * answered, what was asked (the request's summary, which never holds a
 * secret) and what to do.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"

#include "oprec_fdw.h"

/* How much of an answer body or of a string from the API a message shows. */
#define API_TEXT_MAX_BYTES 300

/*
 * A string from the API (a message, a code, a log id, an excerpt of an
 * answer), made safe for a message: at most API_TEXT_MAX_BYTES of it,
 * invalid UTF-8 and characters the database encoding lacks shown as '?',
 * control characters as spaces.  Call it before ereport, never inside one:
 * conversion may fail.
 */
char *
oprec_api_text(const char *text, size_t len)
{
	StringInfoData buf;
	size_t		shown = 0;
	const unsigned char *p = (const unsigned char *) text;
	bool		ascii = true;
	char	   *result;

	initStringInfo(&buf);
	while (shown < len && buf.len < API_TEXT_MAX_BYTES)
	{
		int			charlen = pg_utf_mblen(p + shown);

		if (p[shown] < 0x80)
		{
			appendStringInfoChar(&buf, (p[shown] < 0x20 || p[shown] == 0x7f) ? ' ' : p[shown]);
			shown++;
		}
		else if (shown + charlen <= len && pg_utf8_islegal(p + shown, charlen))
		{
			appendBinaryStringInfo(&buf, (const char *) p + shown, charlen);
			shown += charlen;
			ascii = false;
		}
		else
		{
			appendStringInfoChar(&buf, '?');
			shown++;
		}
	}

	result = buf.data;
	if (!ascii && GetDatabaseEncoding() != PG_UTF8)
	{
		MemoryContext oldcxt = CurrentMemoryContext;

		PG_TRY();
		{
			result = pg_any_to_server(buf.data, buf.len, PG_UTF8);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(oldcxt);
			FlushErrorState();
			for (char *c = buf.data; *c; c++)
				if (IS_HIGHBIT_SET(*c))
					*c = '?';
			result = buf.data;
		}
		PG_END_TRY();
	}
	return shown < len ? psprintf("%s...", result) : result;
}

/* A short excerpt of an answer body, for messages. */
static char *
body_excerpt(const OprecRequest *req, const OprecResponse *resp)
{
	if (req->secret_answer)
		return pstrdup("(not shown: the answer carries a credential)");
	if (resp->body.len == 0)
		return pstrdup("(empty)");
	return oprec_api_text(resp->body.data, resp->body.len);
}

static const char *
log_id_suffix(const OprecResponse *resp)
{
	return resp->log_id
		? psprintf(", log id %s", oprec_api_text(resp->log_id, strlen(resp->log_id)))
		: "";
}

static const char *
retries_suffix(const OprecResponse *resp)
{
	return resp->retries > 0 ? psprintf(", after %d retries", resp->retries) : "";
}

/*
 * Report an error the API answered with.  code and message come from the
 * answer and are made safe here.  Without an API error code the answer
 * itself is quoted, as far as it may be shown.
 */
void
oprec_api_error(const OprecAnswer *answer, const char *code, const char *message,
				const char *hint)
{
	const OprecRequest *req = answer->req;
	const OprecResponse *resp = &answer->resp;
	const char *suffix = psprintf("HTTP %ld%s%s", resp->status, log_id_suffix(resp),
								  retries_suffix(resp));

	if (hint == NULL && code == NULL && (resp->status < 200 || resp->status > 299))
		hint = "The API or a gateway in front of it failed; retry later, and check the server's base_url option if it persists.";

	if (code)
	{
		const char *shown_code = oprec_api_text(code, strlen(code));
		const char *shown_message = oprec_api_text(message, strlen(message));

		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("%s API error %s: \"%s\" (%s)",
						answer->service->title, shown_code, shown_message, suffix),
				 errdetail("Request: %s.", req->summary.data),
				 hint ? errhint("%s", hint) : 0));
	}
	else
	{
		const char *excerpt = body_excerpt(req, resp);

		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("%s API error: %s (%s)", answer->service->title, message, suffix),
				 errdetail("Request: %s. Answer: %s", req->summary.data, excerpt),
				 hint ? errhint("%s", hint) : 0));
	}
	pg_unreachable();
}

void
oprec_bad_answer(const OprecAnswer *answer, const char *what)
{
	const OprecRequest *req = answer->req;
	const OprecResponse *resp = &answer->resp;
	const char *suffix = log_id_suffix(resp);
	const char *excerpt = body_excerpt(req, resp);

	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
			 errmsg("unexpected answer from the %s API: %s (HTTP %ld%s)",
					answer->service->title, what, resp->status, suffix),
			 errdetail("Request: %s. Answer: %s", req->summary.data, excerpt),
			 errhint("Check that the server's base_url option points at the %s API; if it does, the API has changed: report the answer above.",
					 answer->service->title)));
	pg_unreachable();
}
