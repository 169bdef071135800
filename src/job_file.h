/* job_file.h - a job described in a YAML file (`--config job.yaml`), read as
 * the long options it stands for.
 *
 * A job file is one YAML mapping: each key the twin of one long option of the
 * command (`workers: 2` is `--workers=2`), named in the managed service's
 * vocabulary where it has one (`destination` is `--target`, `status` is
 * `--status-addr`, `filters:` holds the filter options) and otherwise the
 * option's name with '_' for '-'. The file becomes an argv of long options
 * that the command's own getopt parser takes, in front of the command line's:
 *
 *     ringsync sync --config job.yaml --workers 1
 *       -> sync --source=redis://a:6379 --target=redis://b:6379 --workers=2 --workers 1
 *                '-------------- from job.yaml ---------------------------'  flags
 *
 * so a flag overrides the file (the last one wins) and a repeatable option
 * given in both has the values of both. Every value keeps its place in the
 * file (line and column, libyaml's marks): the parser's message about a bad
 * value begins with it (job_file_at).
 *
 * Secrets: an endpoint's password comes from `password_file:` or
 * `password_env:`; it never enters the argv nor a message, and reaches the
 * endpoint through RINGSYNC_SOURCE_PASSWORD / RINGSYNC_TARGET_PASSWORD
 * (endpoint.h), set by job_file_merge unless the command line names that
 * endpoint itself.
 *
 * Life of a job file (main thread, before any other thread starts):
 *
 *   job_file_load / job_file_translate  ->  job_file_merge  ->  command's parser
 *                                                               (job_file_at per option)
 *                                        ->  job_file_deinit
 */
#ifndef RS_JOB_FILE_H
#define RS_JOB_FILE_H

#include <stddef.h>

#include "rs_error.h"

/* The commands a job file may describe (a mask in the key table). */
enum job_command {
    JOB_SYNC = 1,
    JOB_RESTORE = 2,
    JOB_REPLAY = 4,
    JOB_VERIFY = 8,
    JOB_CAPTURE = 16,
};

#define JOB_FILE_MAX_BYTES (1024 * 1024)

/* Where a value came from, for messages. */
struct job_file_place {
    unsigned line, column; /* 1-based */
    const char *key;       /* the key as the table spells it ("filters.key_prefix") */
};

/* An endpoint's password read from the file's password_file or password_env:
 * never printed, never copied anywhere but into the environment. */
struct job_file_secret {
    char *password; /* NULL: the file gave none */
    struct job_file_place place;
};

/* A job file read for one command. All strings are owned. A zeroed struct is
 * an empty job (job_file_deinit accepts it). */
struct job_file {
    char path[256];
    unsigned command; /* one JOB_* */
    int nopts;
    char **opts;                   /* "--name=value" or "--name", in the order of the file */
    struct job_file_place *places; /* nopts of them */
    char *input; /* restore's rdb_file, replay's capture_dir: the positional; NULL: none */
    struct job_file_place input_place;
    struct job_file_secret secret[2]; /* 0 the source, 1 the destination */
    /* job_file_merge's: argv[0], opts, input (unless the command line has
     * one), the command line's arguments but --config; argv[argc] is NULL.
     * The strings are opts' or the caller's. */
    int argc;
    char **argv;
};

/* The name of command (one JOB_*), or NULL. */
const char *job_command_name(unsigned command);

/* The JOB_* named name ("sync" ...), or 0. */
unsigned job_command_of(const char *name);

/* Translates text (len bytes, any bytes) of a file called path (for messages)
 * into jf's opts, input and secrets (jf is overwritten). command is the
 * JOB_* the file is read for, or 0: the file's `command:` key says (sync when
 * it has none). Reads the password files and variables it names.
 * Returns 0, or -EINVAL with err saying "path:line:column: what" (never a
 * password); jf is empty then. Warnings (a password file others may read) go
 * to rs_log. */
int job_file_translate(const char *path, const char *text, size_t len, unsigned command,
                       struct job_file *jf, struct rs_error *err);

/* Reads the file at path (at most JOB_FILE_MAX_BYTES) and translates it as
 * above. Returns 0 or -errno / -EINVAL with err. */
int job_file_load(const char *path, unsigned command, struct job_file *jf, struct rs_error *err);

/* Puts jf's options in front of the command line's: argv (argc of them,
 * argv[0] the command's name, NULL-ended) less its --config FILE, into
 * jf->argv, and sets the environment with the file's passwords for the
 * endpoints the command line does not give. Also warns (one line) about a
 * password given in a URI on the command line. Until job_file_deinit,
 * job_file_at knows jf's values. Returns 0. */
int job_file_merge(struct job_file *jf, int argc, char **argv);

/* Frees what jf owns (its passwords wiped first); jf is empty after. */
void job_file_deinit(struct job_file *jf);

/* `ringsync <command> ... [--config FILE] ...`: loads FILE when given and
 * merges (into jf) the command line with it; without --config, jf->argv is
 * the command line as it was. command is a JOB_*. Returns 0, or 2 after
 * saying what is wrong (bad usage). The caller runs the command with
 * jf->argc, jf->argv, then job_file_deinit. */
int job_file_expand(unsigned command, int argc, char **argv, struct job_file *jf);

/* A command's option parser calls it for each option, with getopt's optarg
 * (NULL for none): while the value came from the job file merged last,
 * messages (rs_log) begin with its place, "job.yaml:3:10: workers"; else
 * they begin as always. job_file_at(NULL) after the loop. Main thread. */
void job_file_at(const char *optarg);

/* `ringsync config check FILE [flags]`: prints the effective job (every
 * option of the command after its defaults, passwords as ***) on stdout.
 * Returns 0, or 2 (said on stderr). */
int config_main(int argc, char **argv);

#endif
