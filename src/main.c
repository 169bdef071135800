/* main.c - `ringsync <command> [args]`: picks the command and returns its exit code.
 *
 * Exit codes (DESIGN.md §5): 0 done, 1 the job failed (the reason is on
 * stderr), 2 bad usage. This is the only file that ends the process; commands
 * return their code instead of exiting.
 */
#include <stdio.h>
#include <string.h>

#include "capture.h"
#include "checkpoint.h"
#include "inspect.h"
#include "status_client.h"
#include "sync.h"
#include "verify.h"

#define RINGSYNC_VERSION "0.1.0"

struct main_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct main_command main_commands[] = {
    {"sync", sync_main, "copy a live Redis into another one (the snapshot, through PSYNC)"},
    {"restore", restore_main, "write an RDB file into a Redis, as sync writes a snapshot"},
    {"inspect", inspect_main, "print what an RDB file holds, as JSON lines or a summary"},
    {"capture", capture_main, "record a source's snapshot and write stream, with arrival times"},
    {"checkpoint", checkpoint_main, "show or clear the progress a sync keeps in its destination"},
    {"replay", replay_main,
     "apply a capture to a Redis at its pace, N times faster or at full speed"},
    {"verify", verify_main, "compare two data sets: keys, types, TTLs, lengths (and values)"},
    {"status", status_main, "print a running sync's status (its --status-addr)"},
};

static void main_print_usage(FILE *f)
{
    fprintf(f, "usage: ringsync <command> [args]\n"
               "       ringsync --help | --version\n"
               "\n"
               "Commands:\n");
    for (size_t i = 0; i < sizeof(main_commands) / sizeof(main_commands[0]); i++)
        fprintf(f, "  %-10s %s\n", main_commands[i].name, main_commands[i].summary);
    fprintf(f, "\n"
               "Run 'ringsync <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        main_print_usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        main_print_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("ringsync %s\n", RINGSYNC_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(main_commands) / sizeof(main_commands[0]); i++) {
        if (strcmp(cmd, main_commands[i].name) == 0)
            return main_commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "ringsync: unknown command '%s'\n", cmd);
    main_print_usage(stderr);
    return 2;
}
