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
#include "job_file.h"
#include "status_client.h"
#include "sync.h"
#include "verify.h"

#define RINGSYNC_VERSION "0.1.0"

struct main_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    unsigned job; /* the JOB_* of a command that takes --config FILE (job_file.h); 0: none */
};

static const struct main_command main_commands[] = {
    {"sync", sync_main, "copy a live Redis into another one (the snapshot, through PSYNC)",
     JOB_SYNC},
    {"restore", restore_main, "write an RDB file into a Redis, as sync writes a snapshot",
     JOB_RESTORE},
    {"inspect", inspect_main, "print what an RDB file holds, as JSON lines or a summary", 0},
    {"capture", capture_main, "record a source's snapshot and write stream, with arrival times",
     JOB_CAPTURE},
    {"checkpoint", checkpoint_main, "show or clear the progress a sync keeps in its destination",
     0},
    {"replay", replay_main,
     "apply a capture to a Redis at its pace, N times faster or at full speed", JOB_REPLAY},
    {"verify", verify_main, "compare two data sets: keys, types, TTLs, lengths (and values)",
     JOB_VERIFY},
    {"config", config_main, "check a job file (config check FILE) and print the effective job", 0},
    {"status", status_main, "print a running sync's status (its --status-addr)", 0},
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
        const struct main_command *mc = &main_commands[i];
        if (strcmp(cmd, mc->name) != 0)
            continue;
        if (mc->job == 0)
            return mc->run(argc - 1, argv + 1);
        /* The job file's options, then the command line's: a flag overrides the file. */
        struct job_file jf;
        int code = job_file_expand(mc->job, argc - 1, argv + 1, &jf);
        if (code == 0)
            code = mc->run(jf.argc, jf.argv);
        job_file_deinit(&jf);
        return code;
    }
    fprintf(stderr, "ringsync: unknown command '%s'\n", cmd);
    main_print_usage(stderr);
    return 2;
}
