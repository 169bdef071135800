/* log.h - the one line a message of ringsync's control plane takes on
 * standard error: "ringsync: <text>\n". Workers' hot paths never log. */
#ifndef RS_LOG_H
#define RS_LOG_H

/* Writes "ringsync: ", the formatted text and a newline to stderr, in one
 * write so that lines of two threads do not interleave. */
void rs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
