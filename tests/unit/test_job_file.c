/* test_job_file.c - job files: a complete file becomes the long options
 * expected, in front of the command line's; unknown keys, wrong kinds of
 * node and bad values are refused with file:line:column; passwords come from
 * password_file / password_env and never show in messages nor in
 * config check's output. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "job_file.h"
#include "sync_opts.h"

#define SECRET "pw-Secret-4711"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/rs-job-file-XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
    unsetenv("RINGSYNC_SOURCE_PASSWORD");
    unsetenv("RINGSYNC_TARGET_PASSWORD");
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert(system(cmd) == 0);
    unsetenv("RINGSYNC_SOURCE_PASSWORD");
    unsetenv("RINGSYNC_TARGET_PASSWORD");
}

TestSuite(job_file, .init = make_dir, .fini = remove_dir);

/* Writes text to DIR/name (mode) and returns its path (static buffer per name slot). */
static const char *write_file(const char *name, const char *text, mode_t mode)
{
    static char paths[4][128];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, 128, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    cr_assert(fd >= 0);
    cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    chmod(path, mode);
    return path;
}

/* Translates text for command; asserts it is refused with a message that
 * holds want. Returns nothing; the message must never hold SECRET. */
static void refused(const char *text, unsigned command, const char *want)
{
    struct job_file jf;
    struct rs_error err = {0};
    int rc = job_file_translate("job.yaml", text, strlen(text), command, &jf, &err);
    cr_assert_eq(rc, -EINVAL, "refused: '%s'", text);
    cr_assert(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
    cr_assert(strstr(err.msg, SECRET) == NULL, "the message shows the password: %s", err.msg);
    cr_assert_eq(jf.nopts, 0);
    job_file_deinit(&jf);
}

/* What fd 1 or 2 receives while fn runs, in out (NUL-terminated). */
static int capture_fd(int fd, int (*fn)(void *), void *arg, char *out, size_t cap)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/captured-%d", dir, fd);
    fflush(stdout);
    fflush(stderr);
    int saved = dup(fd);
    int tmp = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert(saved >= 0 && tmp >= 0);
    dup2(tmp, fd);
    int rc = fn(arg);
    fflush(stdout);
    fflush(stderr);
    dup2(saved, fd);
    close(saved);
    ssize_t n = pread(tmp, out, cap - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(tmp);
    return rc;
}

Test(job_file, complete_file_becomes_the_long_options_before_the_flags)
{
    const char *pw = write_file("dst.pw", SECRET "\n", 0600);
    char text[2048];
    snprintf(text, sizeof(text),
             "# a sync job\n"
             "command: sync\n"
             "topology: oneway\n"
             "source: redis://10.0.0.1:6379\n"
             "destination:\n"
             "  host: 10.0.0.2\n"
             "  port: 6380\n"
             "  user: syncer\n"
             "  password_file: %s\n"
             "workers: 2\n"
             "target_mode: standalone\n"
             "target_nonempty: keep\n"
             "db_map: {0: 1, 2: 3}\n"
             "db_prefix: false\n"
             "filters:\n"
             "  key_prefix: [\"user:\", \"order:\"]\n"
             "  block_key_prefix: tmp\n"
             "  db: [0, 1]\n"
             "  block_command: [FLUSHALL]\n"
             "cross_slot: skip\n"
             "checkpoint: target\n"
             "job_id: orders\n"
             "status: 127.0.0.1:9121\n"
             "snapshot_only: false\n"
             "forward_publish: true\n"
             "quiet: yes\n"
             "expiry_margin: 60\n"
             "max_memory: 64mb\n",
             pw);
    struct job_file jf;
    struct rs_error err = {0};
    cr_assert_eq(job_file_translate("job.yaml", text, strlen(text), JOB_SYNC, &jf, &err), 0, "%s",
                 err.msg);
    static const char *const want[] = {
        "--topology=oneway",
        "--source=redis://10.0.0.1:6379",
        "--target=redis://syncer@10.0.0.2:6380",
        "--workers=2",
        "--target-mode=standalone",
        "--target-nonempty=keep",
        "--db-map=0:1,2:3",
        "--filter-key-prefix=user:",
        "--filter-key-prefix=order:",
        "--block-key-prefix=tmp",
        "--filter-db=0",
        "--filter-db=1",
        "--block-command=FLUSHALL",
        "--cross-slot=skip",
        "--checkpoint=target",
        "--job-id=orders",
        "--status-addr=127.0.0.1:9121",
        "--forward-publish",
        "--quiet",
        "--expiry-margin=60",
        "--max-memory=64mb",
    };
    size_t nwant = sizeof(want) / sizeof(want[0]);
    cr_assert_eq((size_t)jf.nopts, nwant, "%d options", jf.nopts);
    for (size_t i = 0; i < nwant; i++)
        cr_assert_str_eq(jf.opts[i], want[i]);
    cr_assert_eq(jf.places[3].line, 10);
    cr_assert_eq(jf.places[3].column, 10);
    cr_assert_str_eq(jf.places[3].key, "workers");
    cr_assert_str_eq(jf.places[8].key, "filters.key_prefix");
    cr_assert_str_eq(jf.secret[1].password, SECRET, "one trailing newline is cut");
    cr_assert_null(jf.secret[0].password);

    /* The command line after the file: a flag overrides it. */
    char *cli[] = {"sync", "--config", "job.yaml", "--workers", "1", NULL};
    job_file_merge(&jf, 5, cli);
    cr_assert_eq(jf.argc, 1 + (int)nwant + 2);
    cr_assert_str_eq(jf.argv[0], "sync");
    cr_assert_str_eq(jf.argv[2], "--source=redis://10.0.0.1:6379");
    cr_assert_str_eq(jf.argv[jf.argc - 2], "--workers");
    cr_assert_str_eq(jf.argv[jf.argc - 1], "1");
    cr_assert_null(jf.argv[jf.argc]);
    cr_assert_str_eq(getenv("RINGSYNC_TARGET_PASSWORD"), SECRET);
    for (int i = 0; i < jf.argc; i++)
        cr_assert(strstr(jf.argv[i], SECRET) == NULL);
    job_file_deinit(&jf);
}

Test(job_file, a_flag_overrides_the_file_in_the_parser)
{
    const char *path = write_file("job.yaml",
                                  "source: redis://127.0.0.1:7001\n"
                                  "destination: redis://127.0.0.1:7002\n"
                                  "workers: 3\n"
                                  "timeout_ms: 900\n",
                                  0644);
    char *cli[] = {"sync", "--workers", "1", "--config", (char *)path, NULL};
    struct job_file jf;
    cr_assert_eq(job_file_expand(JOB_SYNC, 5, cli, &jf), 0);
    struct sync_opts o;
    cr_assert_eq(sync_opts_parse(jf.argc, jf.argv, MODE_SYNC, &o), 0);
    cr_assert_eq(o.workers, 1);
    cr_assert_eq(o.timeout_ms, 900);
    cr_assert_str_eq(o.target_uri, "redis://127.0.0.1:7002");
    job_file_deinit(&jf);
}

Test(job_file, the_command_lines_endpoint_takes_no_password_from_the_file)
{
    const char *pw = write_file("pw", SECRET, 0600);
    char text[512];
    snprintf(text, sizeof(text),
             "source: redis://127.0.0.1:7001\n"
             "destination: {host: 127.0.0.1, port: 7002, password_file: %s}\n",
             pw);
    const char *path = write_file("job.yaml", text, 0644);
    char *cli[] = {"sync", "--config", (char *)path, "--target", "redis://127.0.0.1:7003", NULL};
    struct job_file jf;
    cr_assert_eq(job_file_expand(JOB_SYNC, 5, cli, &jf), 0);
    cr_assert_null(getenv("RINGSYNC_TARGET_PASSWORD"));
    job_file_deinit(&jf);
}

Test(job_file, unknown_key_names_file_line_and_column)
{
    refused("workers: 2\n"
            "  \n"
            "wokers: 3\n",
            JOB_SYNC, "job.yaml:3:1: unknown key 'wokers'");
    refused("destination:\n  host: h\n  passwd: x\n", JOB_SYNC,
            "job.yaml:3:3: unknown key 'passwd' in an endpoint");
    refused("filters:\n  key_prefixes: [a]\n", JOB_SYNC,
            "job.yaml:2:3: unknown key 'filters.key_prefixes'");
    refused("mode: full\n", JOB_SYNC, "job.yaml:1:1: 'mode' is not an option of sync");
    refused("workers: 1\nworkers: 2\n", JOB_SYNC, "job.yaml:2:1: 'workers' is given twice");
}

Test(job_file, wrong_type_names_file_line_and_column)
{
    refused("workers: [1, 2]\n", JOB_SYNC, "job.yaml:1:10: workers takes one value, not a list");
    refused("destination: [a]\n", JOB_SYNC, "job.yaml:1:14: destination takes one value");
    refused("quiet: maybe\n", JOB_SYNC, "job.yaml:1:8: quiet takes true or false");
    refused("filters: [a]\n", JOB_SYNC, "job.yaml:1:10: filters takes a mapping");
    refused("workers:\n", JOB_SYNC, "workers has no value");
    refused("- workers\n", JOB_SYNC, "job.yaml:1:1: a job file is a mapping");
    refused("workers: [1\n", JOB_SYNC, "job.yaml:2:1: not YAML");
    refused("destination: redis://h:99999\n", JOB_SYNC, "job.yaml:1:14: destination: endpoint");
    refused("command: verify\n", JOB_SYNC, "job.yaml:1:10: this job file is for ringsync verify");
}

struct parse_call {
    struct job_file *jf;
    enum sync_mode mode;
};

static int run_parse(void *arg)
{
    struct parse_call *c = arg;
    struct sync_opts o;
    return sync_opts_parse(c->jf->argc, c->jf->argv, c->mode, &o);
}

Test(job_file, bad_value_is_the_parsers_message_with_the_files_place)
{
    const char *path = write_file("bad.yaml",
                                  "source: redis://127.0.0.1:7001\n"
                                  "destination: redis://127.0.0.1:7002\n"
                                  "on_error: skip\n"
                                  "cross_slot:   maybe\n",
                                  0644);
    char *cli[] = {"sync", "--config", (char *)path, NULL};
    struct job_file jf;
    cr_assert_eq(job_file_expand(JOB_SYNC, 3, cli, &jf), 0);
    char out[4096];
    struct parse_call c = {&jf, MODE_SYNC};
    cr_assert_eq(capture_fd(2, run_parse, &c, out, sizeof(out)), 2);
    char want[256];
    snprintf(want, sizeof(want), "%s:4:15: cross_slot: --cross-slot takes one of stop, skip", path);
    cr_assert(strstr(out, want) != NULL, "stderr '%s' lacks '%s'", out, want);
    job_file_deinit(&jf);

    /* The same value on the command line: the parser's words, no place. */
    char *flags[] = {"sync",        "--source",     "redis://h:1", "--target",
                     "redis://h:2", "--cross-slot", "maybe",       NULL};
    cr_assert_eq(job_file_expand(JOB_SYNC, 7, flags, &jf), 0);
    c.jf = &jf;
    cr_assert_eq(capture_fd(2, run_parse, &c, out, sizeof(out)), 2);
    cr_assert(strstr(out, "ringsync: --cross-slot takes one of stop, skip") != NULL, "%s", out);
    job_file_deinit(&jf);
}

struct check_call {
    int argc;
    char **argv;
};

static int run_config_check(void *arg)
{
    struct check_call *c = arg;
    return config_main(c->argc, c->argv);
}

Test(job_file, config_check_masks_every_password)
{
    const char *pw = write_file("dst.pw", SECRET "\n", 0600);
    setenv("RS_TEST_JOB_SOURCE_PW", SECRET "-env", 1);
    char text[1024];
    snprintf(text, sizeof(text),
             "source: {host: 127.0.0.1, port: 7001, user: app, password_env: "
             "RS_TEST_JOB_SOURCE_PW}\n"
             "destination:\n"
             "  uri: redis://127.0.0.1:7002/0\n"
             "  password_file: %s\n"
             "workers: 2\n",
             pw);
    const char *path = write_file("job.yaml", text, 0644);
    char *argv[] = {"config", "check", (char *)path, "--workers", "1", NULL};
    struct check_call c = {5, argv};
    char out[8192];
    cr_assert_eq(capture_fd(1, run_config_check, &c, out, sizeof(out)), 0);
    cr_assert(strstr(out, SECRET) == NULL, "config check shows a password:\n%s", out);
    cr_assert(strstr(out, "source: \"redis://app:***@127.0.0.1:7001\"") != NULL, "%s", out);
    cr_assert(strstr(out, "destination: \"redis://:***@127.0.0.1:7002/0\"") != NULL, "%s", out);
    cr_assert(strstr(out, "\nworkers: 1\n") != NULL, "the flag wins:\n%s", out);
    cr_assert(strstr(out, "\ntimeout_ms: 5000\n") != NULL, "defaults are shown:\n%s", out);

    /* A password in a URI on the command line: masked too, and warned about. */
    char *argv2[] = {
        "config", "check", (char *)path, "--source", "redis://:" SECRET "@127.0.0.1:7009", NULL};
    struct check_call c2 = {5, argv2};
    cr_assert_eq(capture_fd(1, run_config_check, &c2, out, sizeof(out)), 0);
    cr_assert(strstr(out, SECRET) == NULL, "%s", out);
    cr_assert_eq(capture_fd(2, run_config_check, &c2, out, sizeof(out)), 0);
    cr_assert(strstr(out, "warning: the password in --source's URI is visible") != NULL, "%s", out);
    cr_assert(strstr(out, SECRET) == NULL, "%s", out);
    unsetenv("RS_TEST_JOB_SOURCE_PW");
}

Test(job_file, password_sources_are_checked)
{
    const char *empty = write_file("empty.pw", "\n", 0600);
    char text[512];
    snprintf(text, sizeof(text), "destination: {host: h, password_file: %s}\n", empty);
    refused(text, JOB_SYNC, "job.yaml:1:39: password_file");
    refused("destination: {host: h, password_file: /nonexistent/pw}\n", JOB_SYNC, "No such file");
    unsetenv("RS_TEST_JOB_UNSET");
    refused("destination: {host: h, password_env: RS_TEST_JOB_UNSET}\n", JOB_SYNC,
            "RS_TEST_JOB_UNSET is not set");
    setenv("RS_TEST_JOB_PW", SECRET, 1);
    refused("destination: {uri: 'redis://:other@h:1', password_env: RS_TEST_JOB_PW}\n", JOB_SYNC,
            "the URI holds a password");
    refused("destination: {host: h, password_env: RS_TEST_JOB_PW, password_file: /x}\n", JOB_SYNC,
            "not both");
    unsetenv("RS_TEST_JOB_PW");
}

Test(job_file, verify_and_capture_and_restore_keys)
{
    struct job_file jf;
    struct rs_error err = {0};
    const char *v = "command: verify\nsource: redis://a:1\ndestination: redis://b:2\n"
                    "mode: full\njson: true\npasses: 3\n";
    cr_assert_eq(job_file_translate("v.yaml", v, strlen(v), 0, &jf, &err), 0, "%s", err.msg);
    cr_assert_eq(jf.command, JOB_VERIFY);
    cr_assert_eq(jf.nopts, 5);
    cr_assert_str_eq(jf.opts[3], "--json");
    job_file_deinit(&jf);
    const char *r = "rdb_file: /tmp/dump.rdb\ndestination: redis://b:2\n";
    cr_assert_eq(job_file_translate("r.yaml", r, strlen(r), JOB_RESTORE, &jf, &err), 0, "%s",
                 err.msg);
    cr_assert_str_eq(jf.input, "/tmp/dump.rdb");
    char *cli[] = {"restore", "other.rdb", NULL};
    job_file_merge(&jf, 2, cli);
    cr_assert_eq(jf.argc, 3, "the command line's file wins");
    cr_assert_str_eq(jf.argv[2], "other.rdb");
    job_file_deinit(&jf);
    const char *c = "command: capture\nsource: redis://a:1\nout: /tmp/cap\nduration: 5\n";
    cr_assert_eq(job_file_translate("c.yaml", c, strlen(c), JOB_CAPTURE, &jf, &err), 0, "%s",
                 err.msg);
    cr_assert_str_eq(jf.opts[2], "--duration=5");
    job_file_deinit(&jf);
}
