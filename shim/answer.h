/*
 * answer.h: writing HTTP answers.
 *
 * Each answer's status line and headers are assembled in one buffer and
 * written with one mg_write (small bodies ride along), instead of through
 * mg_response_header_send, which writes every header line separately and,
 * with Nagle's algorithm on the socket, lets delayed ACKs stall answers.
 * Every answer carries Content-Length (keep-alive depends on it), Date,
 * Connection and the request's traceparent.  mg_send_http_error is never
 * used: its answers are text/plain; errors here are {"error", "code"}.
 */
#ifndef SHIM_ANSWER_H
#define SHIM_ANSWER_H

#include <stddef.h>

#include "shim.h"

void		answer(struct exchange *x, int status, const char *content_type,
				   const char *body, size_t body_len, const char *extra_headers);
void		answer_sized(struct exchange *x, int status, const char *content_type,
						 const char *body, size_t body_len, long long content_length,
						 const char *extra_headers);
void		answer_error(struct exchange *x, int status, const char *code, const char *message,
						 int retry_after);
void		answer_shutting_down(struct exchange *x);

#endif
