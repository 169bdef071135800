/* verify.h - `ringsync verify`: compares two data sets, standalone or
 * cluster on either side (verify.c; the checking threads: verify_check.h). */
#ifndef RS_VERIFY_H
#define RS_VERIFY_H

/* The command: argv[0] is "verify". Returns the exit code: 0 equal, 1 not
 * equal or could not finish (said on stderr), 2 bad usage. Prints the
 * report on stdout. */
int verify_main(int argc, char **argv);

#endif
