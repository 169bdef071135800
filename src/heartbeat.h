/* heartbeat.h - `--heartbeat-key KEY`: once a second the job writes KEY on
 * the source with ringsync's own clock (Unix ms), the router finds the SET
 * in the stream, and once the destination applied it the lag is now minus
 * that value: the lag a write made on the source sees, network and queues
 * included (issue 17). ringsync's clock on both ends, so no clock skew
 * between hosts enters it. The key is an ordinary key: the destination
 * holds it too (equality checks stay exact); the source's user needs SET
 * on it.
 *
 *     main thread:  heartbeat_tick --SET KEY <ms>--> source
 *     router:       SET KEY <ms> seen at offset E (router_take_heartbeat)
 *     source feed:  applied >= E  -->  job->heartbeat_lag_us
 */
#ifndef RS_HEARTBEAT_H
#define RS_HEARTBEAT_H

#include <stdint.h>

#include "endpoint.h"

struct heartbeat;

/* A writer of key to source (its own control link, opened on the first
 * tick). NULL when out of memory. */
struct heartbeat *heartbeat_new(const struct endpoint *source, const char *key);
void heartbeat_free(struct heartbeat *hb);

/* Writes the key when a second passed since the last write (a short timeout:
 * a slow source delays the caller at most 500 ms, then the link is dropped
 * and tried again 5 s later, said once). Call often (the main loop). */
void heartbeat_tick(struct heartbeat *hb);

/* ringsync's clock as written into the key: Unix time in ms. */
int64_t heartbeat_now_ms(void);

#endif
