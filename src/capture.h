/* capture.h - `ringsync capture --source URI --out DIR [--duration S]`:
 * records what a replica of the source receives (the snapshot and the
 * command stream, with arrival times) into the files of capture_file.h. */
#ifndef RS_CAPTURE_H
#define RS_CAPTURE_H

/* Returns the process exit code: 0 done (--duration reached, or SIGINT /
 * SIGTERM after the snapshot: the files are finished), 1 the capture failed
 * or was stopped before the snapshot was complete, 2 bad usage. */
int capture_main(int argc, char **argv);

/* Parses capture's argv as capture_main would and says each option's value
 * (defaults included) to emit, as its long option's name and text. Returns
 * 0, -1 (--help printed) or 2 (bad usage, said). config check's. */
int capture_describe(int argc, char **argv,
                     void (*emit)(void *ctx, const char *option, const char *value), void *ctx);

#endif
