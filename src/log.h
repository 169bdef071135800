/* log.h - the one line a message of ringsync's control plane takes on
 * standard error: "ringsync: <text>\n", or with --log-format json one JSON
 * object {"time":"<UTC, ms>","level":"info|warning|error","message":"<text>"}.
 * Workers' hot paths never log. Messages never hold a password (endpoint.h
 * keeps them out of every name). */
#ifndef RS_LOG_H
#define RS_LOG_H

#include <stddef.h>

enum rs_log_format { RS_LOG_TEXT = 0, RS_LOG_JSON };

/* Writes one line (see above) to stderr, in one write so that lines of two
 * threads do not interleave. The level is "warning" for a text that begins
 * with "warning", "error" for one that begins with "failed", "cannot" or
 * "error", else "info". */
void rs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Later messages begin with "<where>: " (a job file's "job.yaml:3:10"), or
 * not when where is NULL or "". Option parsing only: the main thread, before
 * any other thread logs (job_file_at sets it). */
void rs_log_set_context(const char *where);

/* The format of later lines; before any thread logs (option parsing). */
void rs_log_set_format(enum rs_log_format f);

/* The line rs_log writes for text msg, made in out (cap bytes, >= 64): its
 * length, the newline included. Any thread. */
size_t rs_log_format_line(char *out, size_t cap, const char *msg, double unix_time_s);

#endif
