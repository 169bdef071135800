/* capture.h - `ringsync capture --source URI --out DIR [--duration S]`:
 * records what a replica of the source receives (the snapshot and the
 * command stream, with arrival times) into the files of capture_file.h. */
#ifndef RS_CAPTURE_H
#define RS_CAPTURE_H

/* Returns the process exit code: 0 done (--duration reached, or SIGINT /
 * SIGTERM after the snapshot: the files are finished), 1 the capture failed
 * or was stopped before the snapshot was complete, 2 bad usage. */
int capture_main(int argc, char **argv);

#endif
