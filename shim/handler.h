/*
 * handler.h: civetweb's entry points into the shim: the one request
 * handler every path goes to, the http_error callback that turns
 * civetweb's own errors into {"error", "code"} answers, and the callbacks
 * of a connection's start and end.
 */
#ifndef SHIM_HANDLER_H
#define SHIM_HANDLER_H

struct mg_connection;

int			handle_request(struct mg_connection *conn, void *cbdata);
int			handle_http_error(struct mg_connection *conn, int status, const char *message);
int			handle_connection_init(const struct mg_connection *conn, void **conn_data);
void		handle_connection_close(const struct mg_connection *conn);

#endif
