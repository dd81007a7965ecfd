/*
 * openapi.h: the OpenAPI 3.1 document of the shim's routes, served at
 * GET /jam/openapi.json.  Its source of truth is docs/openapi.json, which
 * make compiles into jam-shim as these bytes (shim/openapi_doc.o), so the
 * shim needs no file at run time.
 */
#ifndef SHIM_OPENAPI_H
#define SHIM_OPENAPI_H

#include <stddef.h>

extern const unsigned char shim_openapi_json[];
extern const size_t shim_openapi_json_len;

#endif
