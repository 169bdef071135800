/* test_job_file.c - `ringsync sync --config job.yaml` between real
 * redis-server processes: the destination asks for a password, which the job
 * file gives through a password_file; a flag given too overrides the file's
 * value; `ringsync config check` prints the effective job with the password
 * masked; and the password shows nowhere on standard error.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "redis_fixture.h"

#define PASSWORD "Job-File-Secret-93"
#define KEYS     200

TestSuite(job_file, .fini = redis_fixture_stop_all, .timeout = 60);

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    cr_assert(fd >= 0, "cannot write %s", path);
    cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

static long long dbsize(redisContext *c)
{
    redisReply *r = redis_fixture_command(c, "DBSIZE");
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static void assert_exit(const struct program_result *r, int code, const char *what)
{
    char st[64];
    cr_assert(r->exited && r->exit_code == code, "%s: ended with %s, expected exit %d; stderr:\n%s",
              what, program_result_describe(r, st, sizeof(st)), code, r->err);
}

Test(job_file, sync_from_a_job_file_with_a_password_file_and_a_flag_over_it)
{
    struct redis_fixture *src = redis_fixture_start(NULL);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    /* The destination asks for a password from now on (the fixture's own
     * connection stays logged in). */
    redis_fixture_exec(dst->ctx, "CONFIG SET requirepass %s", PASSWORD);
    for (int i = 0; i < KEYS; i++)
        redis_fixture_exec(src->ctx, "SET job:%d value-%d", i, i);
    redis_fixture_exec(src->ctx, "HSET job:hash a 1 b 2");

    char pw_path[128], job_path[128], out_path[128];
    redis_fixture_path(dst, "dst.pw", pw_path, sizeof(pw_path));
    redis_fixture_path(dst, "job.yaml", job_path, sizeof(job_path));
    redis_fixture_path(dst, "check.out", out_path, sizeof(out_path));
    write_file(pw_path, PASSWORD "\n", 0600);
    char job[1024];
    snprintf(job, sizeof(job),
             "command: sync\n"
             "topology: oneway\n"
             "source: redis://127.0.0.1:%d\n"
             "destination:\n"
             "  host: 127.0.0.1\n"
             "  port: %d\n"
             "  password_file: %s\n"
             "workers: 2\n"
             "snapshot_only: true\n"
             "checkpoint: none\n"
             "status: none\n",
             src->port, dst->port, pw_path);
    write_file(job_path, job, 0644);

    /* config check: valid, the flag wins, the password masked. */
    const char *check[] = {
        fixture_env("RS_RINGSYNC"), "config", "check", job_path, "--workers", "1", NULL};
    struct program_result r;
    cr_assert(program_run(check, NULL, out_path, 10000, &r) == 0);
    assert_exit(&r, 0, "config check");
    size_t len;
    char *out = fixture_read_file(out_path, &len);
    cr_assert(out != NULL);
    cr_assert(strstr(out, PASSWORD) == NULL, "config check shows the password:\n%s", out);
    char want[256];
    snprintf(want, sizeof(want), "destination: \"redis://:***@127.0.0.1:%d\"", dst->port);
    cr_assert(strstr(out, want) != NULL, "config check lacks '%s':\n%s", want, out);
    cr_assert(strstr(out, "\nworkers: 1\n") != NULL, "the flag's workers:\n%s", out);
    cr_assert(strstr(out, "\nsnapshot_only: true\n") != NULL, "%s", out);
    free(out);
    program_result_deinit(&r);

    /* The sync itself, --workers 1 over the file's 2. */
    const char *sync[] = {
        fixture_env("RS_RINGSYNC"), "sync", "--config", job_path, "--workers", "1", NULL};
    cr_assert(program_run(sync, NULL, NULL, 30000, &r) == 0);
    assert_exit(&r, 0, "sync --config");
    cr_assert(strstr(r.err, ", 1 workers,") != NULL, "the flag's --workers 1 is not used:\n%s",
              r.err);
    cr_assert(strstr(r.err, "snapshot applied") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, PASSWORD) == NULL, "stderr shows the password:\n%s", r.err);
    cr_assert(strstr(r.err, "warning") == NULL, "no warning expected:\n%s", r.err);
    program_result_deinit(&r);
    cr_assert_eq(dbsize(dst->ctx), KEYS + 1);
    redisReply *v = redis_fixture_command(dst->ctx, "GET job:7");
    cr_assert_str_eq(v->str, "value-7");
    freeReplyObject(v);

    /* A bad value in the file: exit 2, the file's place in the message. */
    write_file(job_path,
               "source: redis://127.0.0.1:1\ndestination: redis://127.0.0.1:2\n"
               "workers: many\n",
               0644);
    cr_assert(program_run(sync, NULL, NULL, 10000, &r) == 0);
    assert_exit(&r, 2, "a bad workers");
    snprintf(want, sizeof(want), "%s:3:10: workers: --workers must be a number", job_path);
    cr_assert(strstr(r.err, want) != NULL, "stderr lacks '%s':\n%s", want, r.err);
    program_result_deinit(&r);
}
