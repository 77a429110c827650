/*-------------------------------------------------------------------------
 *
 * request.c
 *		  Writing a request: its URL, headers and body.
 *
 * What reaches the wire is checked here: a value escaped for a URL can
 * never add a path step or a parameter, and a header value with a control
 * character (which would let one header or request become several) is
 * refused without being shown, as it may be a credential.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <jansson.h>

#include "oprec_fdw.h"

void
oprec_request_init(OprecRequest *req, const char *method)
{
	memset(req, 0, sizeof(OprecRequest));
	req->method = method;
	initStringInfo(&req->url);
	initStringInfo(&req->body);
	initStringInfo(&req->summary);
}

/*
 * A value percent-encoded for a URL's path or query: every byte but the
 * unreserved characters, so that a value can never add a path step, a
 * query parameter or a fragment.
 */
char *
oprec_url_escape(const char *value)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (const unsigned char *p = (const unsigned char *) value; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~')
			appendStringInfoChar(&buf, (char) *p);
		else
			appendStringInfo(&buf, "%%%02X", *p);
	}
	return buf.data;
}

/*
 * Add a header.  A value with a control character would let curl send
 * more headers, or a second request, than the caller wrote: refuse it,
 * without showing it (it may be a credential).
 */
void
oprec_request_add_header(OprecRequest *req, const char *name, const char *value)
{
	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("refusing to send header %s: it has no value", name),
				 errhint("Check that the user mapping gives every option the API needs.")));
	if (oprec_has_control_char(value))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("refusing to send header %s: its value contains a control character", name),
				 errdetail("Control characters in a header would let the request carry headers or requests it was not meant to."),
				 errhint("Check the user mapping's options; if the value came from the API (a token), the API answered with a malformed token.")));
	req->headers = lappend(req->headers, psprintf("%s: %s", name, value));
}

/* Whether a string holds a character below 0x20 or DEL. */
bool
oprec_has_control_char(const char *value)
{
	for (const unsigned char *p = (const unsigned char *) value; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

/* Write a JSON value as the body of a request. */
void
oprec_request_set_json_body(OprecRequest *req, json_t *body)
{
	char	   *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	if (text == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not build a request body")));
	text = oprec_jansson_text(text);
	resetStringInfo(&req->body);
	appendStringInfoString(&req->body, text);
	pfree(text);
}
