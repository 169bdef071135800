/* heartbeat.c - the --heartbeat-key writer (see heartbeat.h). */
#include "heartbeat.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control_link.h"
#include "log.h"

#define HEARTBEAT_EVERY_MS   1000
#define HEARTBEAT_TIMEOUT_MS 500
#define HEARTBEAT_RETRY_MS   5000

struct heartbeat {
    const struct endpoint *source;
    char *key;
    struct control_link cl;
    bool open;
    int64_t next_ms; /* the next write (or attempt) */
    bool said;       /* a failure was said */
};

int64_t heartbeat_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct heartbeat *heartbeat_new(const struct endpoint *source, const char *key)
{
    struct heartbeat *hb = calloc(1, sizeof(*hb));
    if (hb == NULL || (hb->key = strdup(key)) == NULL) {
        free(hb);
        return NULL;
    }
    hb->source = source;
    return hb;
}

void heartbeat_free(struct heartbeat *hb)
{
    if (hb == NULL)
        return;
    control_link_close(&hb->cl);
    free(hb->key);
    free(hb);
}

static void failed(struct heartbeat *hb, const char *why)
{
    if (!hb->said)
        rs_log("warning: --heartbeat-key: cannot write '%s' on source %s: %s; trying again every "
               "%d s (the status has no heartbeat lag meanwhile)",
               hb->key, hb->source->name, why, HEARTBEAT_RETRY_MS / 1000);
    hb->said = true;
    control_link_close(&hb->cl);
    hb->open = false;
    hb->next_ms = heartbeat_now_ms() + HEARTBEAT_RETRY_MS;
}

void heartbeat_tick(struct heartbeat *hb)
{
    int64_t now = heartbeat_now_ms();
    if (now < hb->next_ms)
        return;
    struct rs_error err = {0};
    if (!hb->open) {
        if (control_link_open(&hb->cl, hb->source, HEARTBEAT_TIMEOUT_MS, &err) < 0) {
            failed(hb, err.msg);
            return;
        }
        hb->open = true;
    }
    char ms[24];
    snprintf(ms, sizeof(ms), "%" PRId64, now);
    struct control_reply rep = {0};
    if (control_link_commandv(&hb->cl, &rep, &err, "SET", hb->key, ms, NULL) < 0) {
        failed(hb, err.msg);
        return;
    }
    if (rep.r->type == REDIS_REPLY_ERROR) {
        char why[256];
        snprintf(why, sizeof(why), "SET answered %.200s", rep.r->str);
        control_reply_free(&rep);
        failed(hb, why);
        return;
    }
    control_reply_free(&rep);
    if (hb->said)
        rs_log("--heartbeat-key: writing '%s' on source %s again", hb->key, hb->source->name);
    hb->said = false;
    hb->next_ms = now + HEARTBEAT_EVERY_MS;
}
