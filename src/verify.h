/* verify.h - `ringsync verify`: compares two data sets, standalone or
 * cluster on either side (verify.c; the checking threads: verify_check.h). */
#ifndef RS_VERIFY_H
#define RS_VERIFY_H

/* The command: argv[0] is "verify". Returns the exit code: 0 equal, 1 not
 * equal or could not finish (said on stderr), 2 bad usage. Prints the
 * report on stdout. */
int verify_main(int argc, char **argv);

/* Parses verify's argv as verify_main would and says each option's value
 * (defaults included) to emit, as its long option's name and text. Returns
 * 0, -1 (--help printed) or 2 (bad usage, said). config check's. */
int verify_describe(int argc, char **argv,
                    void (*emit)(void *ctx, const char *option, const char *value), void *ctx);

#endif
