/* http_static.h — static files under a root directory.
 *
 * Resolves the decoded request path safely (no "..", no NUL, no symlink
 * out of the root, directories served by index.html), answers GET and
 * HEAD with the MIME type, ETag and Last-Modified, and 304 on a matching
 * If-None-Match / If-Modified-Since. Small files are kept in memory and
 * revalidated at most once a second; large ones are read in pieces.
 */
#ifndef HYCHAT_HTTP_STATIC_H
#define HYCHAT_HTTP_STATIC_H

#include "hychat/http_server.h"

#define HTTP_STATIC_CACHE_MAX_FILE (256 * 1024)
#define HTTP_STATIC_CACHE_MAX_BYTES (32 * 1024 * 1024)
#define HTTP_STATIC_REVALIDATE_MS 1000

struct http_static;

/* Returns NULL with *cause set (allocated) if root is not a readable
 * directory. */
struct http_static *http_static_new(const char *root, char **cause);
void http_static_free(struct http_static *st);

/* Serves req->path from the root (or path, if not NULL). Fills res for a
 * small file, an error or a 304 and returns 0; for a large file it starts
 * a streamed response on the connection itself, sets res->deferred and
 * returns 1 (the caller must then not send res). */
int http_static_serve(
    struct http_static *st, struct http_request *req, const char *path, struct http_response *res);

#define HTTP_MIME_UNKNOWN "application/octet-stream"

/* The MIME type for a file name, from a table; HTTP_MIME_UNKNOWN when
 * unknown. */
const char *http_static_mime(const char *name);

#endif
