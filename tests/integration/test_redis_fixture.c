/* test_redis_fixture.c - the helpers the integration tests stand on: servers
 * start, stop and replicate as promised, a native replica is a usable oracle
 * (its model equals its primary's), and program_run reports what a program did.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "redis_fixture.h"
#include "redis_model.h"

TestSuite(redis_fixture, .fini = redis_fixture_stop_all, .timeout = 60);

Test(redis_fixture, stop_ends_the_server_and_removes_its_dir)
{
    struct redis_fixture *f = redis_fixture_start(NULL);
    pid_t pid = f->pid;
    char dir[sizeof(f->dir)];
    memcpy(dir, f->dir, sizeof(dir));
    redis_fixture_exec(f->ctx, "SET k v");
    redis_fixture_stop(f);
    cr_assert(kill(pid, 0) != 0 && errno == ESRCH, "redis-server %d still runs", (int)pid);
    struct stat st;
    cr_assert(stat(dir, &st) != 0 && errno == ENOENT, "%s is still there", dir);
}

Test(redis_fixture, a_server_that_cannot_start_is_reported_with_its_output)
{
    static const char *const args[] = {"--no-such-directive", "1", NULL};
    struct redis_fixture_opts opts = {.extra_args = args};
    char why[2048];
    struct redis_fixture *f = redis_fixture_try_start(&opts, why, sizeof(why));
    cr_assert(f == NULL, "redis-server started with a bad directive");
    cr_assert(strstr(why, "no-such-directive") != NULL, "the reason does not quote it: %s", why);
}

Test(redis_fixture, a_replica_holds_what_its_primary_holds)
{
    struct redis_fixture *primary = redis_fixture_start(NULL);
    struct redis_fixture *replica = redis_fixture_start(NULL);
    /* Some before the sync (they travel in the RDB), some after (as commands). */
    redis_fixture_exec(primary->ctx, "RPUSH l a b c");
    redis_fixture_exec(primary->ctx, "XADD s 1-1 f v");
    redis_fixture_exec(primary->ctx, "XGROUP CREATE s g 0");
    redis_fixture_exec(primary->ctx, "XREADGROUP GROUP g c STREAMS s >");
    redis_fixture_exec(primary->ctx, "PEXPIREAT l 4102444800000");
    redis_fixture_replicate(replica, primary, 10000);
    redis_fixture_exec(primary->ctx, "SELECT 4");
    redis_fixture_exec(primary->ctx, "ZADD z 1.5 a -inf b");
    redis_fixture_exec(primary->ctx, "SELECT 0");
    redis_fixture_exec(primary->ctx, "HSET h %b %b", "\x00k", (size_t)2, "\xff", (size_t)1);
    redisReply *r = redis_fixture_command(primary->ctx, "WAIT 1 10000");
    cr_assert(r->type == REDIS_REPLY_INTEGER && r->integer == 1, "the replica did not catch up");
    freeReplyObject(r);

    struct redis_model a, b;
    redis_model_from_server(&a, primary->ctx);
    redis_model_from_server(&b, replica->ctx);
    cr_assert_eq(redis_model_count(&a, MODEL_DBS), 4);
    struct model_diff d;
    redis_model_compare(&a, &b, 0, &d);
    cr_assert(d.differences == 0, "primary vs replica:\n%s", d.report);

    /* And the comparison notices a write the replica has not seen. */
    redis_fixture_exec(replica->ctx, "REPLICAOF NO ONE");
    redis_fixture_exec(primary->ctx, "LSET l 1 B");
    redis_model_free(&a);
    redis_model_from_server(&a, primary->ctx);
    redis_model_compare(&a, &b, 0, &d);
    cr_assert(d.differences == 1 && strstr(d.report, "element 1") != NULL, "%s", d.report);
    redis_model_free(&a);
    redis_model_free(&b);
}

Test(redis_fixture, program_run_reports_exit_status_signal_stderr_and_timeout)
{
    struct program_result r;
    const char *exit3[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    cr_assert(program_run(exit3, NULL, NULL, 5000, &r) == 0);
    cr_assert(r.exited && r.exit_code == 3 && strcmp(r.err, "err\n") == 0, "exit %d, err '%s'",
              r.exit_code, r.err);
    program_result_deinit(&r);

    const char *segv[] = {"sh", "-c", "kill -SEGV $$", NULL};
    cr_assert(program_run(segv, NULL, NULL, 5000, &r) == 0);
    cr_assert(!r.exited && r.term_signal == SIGSEGV);
    program_result_deinit(&r);

    const char *slow[] = {"sleep", "10", NULL};
    cr_assert(program_run(slow, NULL, NULL, 200, &r) == 0);
    cr_assert(r.timed_out && !r.exited);
    program_result_deinit(&r);

    const char *missing[] = {"/nonexistent/program", NULL};
    cr_assert(program_run(missing, NULL, NULL, 5000, &r) == -ENOENT);
}
