/* inspect.h - `ringsync inspect`: print what an RDB file holds.
 *
 *     ringsync inspect [--summary] FILE.rdb|-
 *
 * Default: one JSON object per key (and per function library) on stdout, in
 * file order, in the format of notes/inspect_json.md. --summary: a text report
 * (version, AUX fields, keys per database and type, the largest keys, sizes,
 * decode speed). Warnings (empty collections skipped, bytes after the end of
 * the snapshot) and errors go to stderr, each line starting "ringsync: inspect: ".
 *
 * Memory stays bounded whatever the size of a value: the decoder hands out
 * values in pieces and the output is written once its buffer passes 1 MiB.
 */
#ifndef RS_INSPECT_H
#define RS_INSPECT_H

/* Runs the command; argv[0] is "inspect". Returns the exit code: 0 the file
 * was read to its end, 1 it is bad or could not be read (or the output could
 * not be written), 2 bad usage. Never exits. Sets stdout's buffer (setvbuf),
 * so it must run before anything is written to stdout. */
int inspect_main(int argc, char **argv);

#endif
