/* status_client.h - `ringsync status`: asks a running job's status server
 * (status_server.h) for its status over a plain blocking HTTP/1.0 GET, and
 * prints it for a person (/status.txt) or as JSON (--json: /status). */
#ifndef RS_STATUS_CLIENT_H
#define RS_STATUS_CLIENT_H

#include <stddef.h>

/* `ringsync status [--status-addr HOST:PORT] [--json]` (the address may come
 * from RINGSYNC_STATUS_ADDR). Exit code: 0 printed, 1 no answer, 2 bad usage. */
int status_main(int argc, char **argv);

/* GETs path from addr ("HOST:PORT" or "[V6]:PORT") within timeout_ms: 0
 * with the reply's body in *body (malloc'd, NUL-terminated, the caller
 * frees it) and its HTTP status in *code; -1 with why in err (cap bytes). */
int status_client_get(const char *addr, const char *path, int timeout_ms, int *code, char **body,
                      char *err, size_t cap);

#endif
