/* write_script.c - the scripted load of write_script.h (moved here from
 * test_stream.c, unchanged, so that test_capture.c runs the same load). */
#include "write_script.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "redis_model.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static long long info_number(redisContext *c, const char *section, const char *field)
{
    char buf[64];
    cr_assert(redis_fixture_info(c, section, field, buf, sizeof(buf)), "no %s in INFO %s", field,
              section);
    return atoll(buf);
}

/* Every command here succeeds on a source that holds none of these keys at
 * first (the script runs twice: over the snapshot's keys, and after FLUSHALL;
 * function libraries survive FLUSHALL, hence FUNCTION LOAD REPLACE). Keys with
 * tags {a}, {b}, {c} land in different slots, so multi-key commands cross
 * slots (and, with two workers, workers). */
static const char *const script_families[] = {
    "SELECT 0",
    /* strings */
    "SET s:1 v1",
    "SET s:2 v2 EX 100000",
    "SET s:3 v3 PX 100000000",
    "SET s:1 nope NX",
    "SET s:1 v1b XX",
    "SET s:2 v2b KEEPTTL",
    "SET s:1 v1c GET",
    "SET s:11 v EXAT 4102444800",
    "SET s:12 v PXAT 4102444800123",
    "SETEX s:5 100000 five",
    "PSETEX s:10 100000000 ten",
    "SETNX s:6 six",
    "SETNX s:6 again",
    "APPEND s:6 -more",
    "APPEND s:7 fresh",
    "SET s:4 10",
    "INCR s:4",
    "DECR s:4",
    "INCRBY s:4 100",
    "DECRBY s:4 7",
    "INCRBYFLOAT s:8 1.5",
    "INCRBYFLOAT s:8 2.25",
    "SET s:13 3.0e3",
    "INCRBYFLOAT s:13 0.1",
    "SETRANGE s:7 2 XYZ",
    "SETRANGE s:9 5 pad",
    "GETSET s:9 replaced",
    "GETDEL s:3",
    "GETEX s:6 EX 100000",
    "GETEX s:2 PERSIST",
    "GETEX s:10 PXAT 4102444800999",
    "MSET {a}m:1 1 {b}m:2 2 {c}m:3 3 m:4 4 m:5 5 m:6 6",
    "MSETNX {a}nx:1 1 {b}nx:2 2 nx:3 3",
    "MSETNX {a}nx:1 x {c}nx:4 4",
    /* keys */
    "MSET k:1 1 k:2 2 k:3 3 k:4 4 k:5 5 k:6 6 k:7 7 k:8 8 k:9 9",
    "DEL k:1 {a}m:1 {b}m:2 nosuchkey",
    "UNLINK k:2 {c}m:3 m:4",
    "EXPIRE k:3 100000",
    "PEXPIRE k:4 100000000",
    "EXPIRE k:5 100000",
    "PERSIST k:5",
    "EXPIREAT k:6 4102444800",
    "PEXPIREAT k:7 4102444800456",
    "EXPIRE k:7 100 GT",
    "EXPIRE k:8 100000 NX",
    "EXPIRE k:8 200000 XX",
    "EXPIRE k:8 150000 LT",
    "EXPIRE k:9 -1",
    "RENAME k:3 k:3r",
    "RENAMENX k:4 k:4r",
    "RENAMENX k:5 k:6",
    "COPY k:6 k:6c",
    "COPY k:5 k:6c REPLACE",
    "COPY k:6 k:6d DB 3",
    "MOVE k:5 4",
    "MOVE nosuchkey 4",
    "TOUCH k:6 k:3r",
    "RPUSH l:n 3 1 2 10",
    "SORT l:n STORE l:sorted",
    "SORT l:n DESC LIMIT 0 2 STORE {b}l:sorted2",
    /* lists */
    "RPUSH l:1 a b c d e f g h",
    "LPUSH l:1 z y",
    "LPUSHX l:1 x0",
    "RPUSHX l:none x",
    "RPUSHX l:1 tail",
    "LPOP l:1",
    "RPOP l:1 2",
    "LPOP l:1 1",
    "LINSERT l:1 BEFORE c C",
    "LINSERT l:1 AFTER c cc",
    "LSET l:1 0 first",
    "LSET l:1 -1 last",
    "LREM l:1 1 d",
    "LREM l:1 0 nosuch",
    "LTRIM l:1 0 6",
    "RPUSH l:2 1 2 3",
    "LMOVE l:1 l:2 LEFT RIGHT",
    "LMOVE l:2 {b}l:3 RIGHT LEFT",
    "RPOPLPUSH l:2 l:1",
    "RPOPLPUSH l:1 l:1",
    "LMPOP 2 l:none l:2 LEFT COUNT 2",
    /* sets */
    "SADD st:1 a b c d e f g 1 2 3",
    "SADD st:2 c d e x y",
    "SADD st:int 1 2 3 4 5",
    "SREM st:1 f nosuch",
    "SPOP st:1",
    "SPOP st:1 2",
    "SPOP st:int 10",
    "SMOVE st:1 st:2 b",
    "SMOVE st:2 {c}st:3 x",
    "SINTERSTORE st:i st:1 st:2",
    "SUNIONSTORE st:u st:1 st:2 {c}st:3",
    "SDIFFSTORE st:d st:1 st:2",
    "SINTERSTORE st:empty st:1 nosuchkey",
    /* sorted sets */
    "ZADD z:1 1 a 2 b 3 c 4 d 5 e 6 f",
    "ZADD z:1 NX 10 a 7 g",
    "ZADD z:1 XX CH 11 b 99 nope",
    "ZADD z:1 GT 12 c",
    "ZADD z:1 LT 0.5 d",
    "ZADD z:1 INCR 5 e",
    "ZADD z:1 -inf minf 1e300 big",
    "ZINCRBY z:1 2.5 f",
    "ZINCRBY z:1 -1 newm",
    "ZREM z:1 g nosuch",
    "ZADD z:2 1 a 2 b 3 x 4 y 5 zz 6 w",
    "ZREMRANGEBYSCORE z:2 5 6",
    "ZREMRANGEBYRANK z:2 0 0",
    "ZADD z:3 0 a 0 b 0 c 0 d 0 e",
    "ZREMRANGEBYLEX z:3 [a [c",
    "ZPOPMIN z:1",
    "ZPOPMAX z:1 2",
    "ZUNIONSTORE {b}z:u 2 z:1 z:2 WEIGHTS 1 2",
    "ZINTERSTORE z:i 2 z:1 z:2 AGGREGATE MAX",
    "ZDIFFSTORE z:d 2 z:1 z:2",
    "ZRANGESTORE {c}z:r z:1 0 -1",
    "ZRANGESTORE z:r2 z:1 (1 +inf BYSCORE LIMIT 0 3",
    "ZMPOP 2 z:none z:2 MIN COUNT 2",
    "ZMPOP 1 z:3 MAX",
    /* hashes */
    "HSET h:1 f1 v1 f2 v2 f3 3",
    "HSETNX h:1 f1 x",
    "HSETNX h:1 f4 v4",
    "HDEL h:1 f2 nosuch",
    "HINCRBY h:1 f3 10",
    "HINCRBY h:1 f6 -5",
    "HINCRBYFLOAT h:1 f5 1.25",
    "HINCRBYFLOAT h:1 f5 1e2",
    "HMSET h:2 a 1 b 2 c 3",
    "HDEL h:2 a b c",
    /* streams */
    "XADD x:1 1-1 a 1",
    "XADD x:1 1-2 b 2",
    "XADD x:1 1-3 c 3 d 4",
    "XADD x:1 2-* e 5",
    "XADD x:1 * f 6",
    "XADD x:1 MAXLEN 10 * g 7",
    "XADD x:2 MAXLEN 3 3-1 a 1",
    "XADD x:2 MAXLEN 3 3-2 a 2",
    "XADD x:2 MAXLEN 3 3-3 a 3",
    "XADD x:2 MAXLEN 3 3-4 a 4",
    "XADD x:2 MAXLEN ~ 2 3-5 a 5",
    "XADD x:2 NOMKSTREAM 3-6 a 6",
    "XADD x:none NOMKSTREAM 1-1 a 1",
    "XDEL x:1 1-2",
    "XTRIM x:2 MAXLEN 3",
    "XTRIM x:2 MINID 3-5",
    "XGROUP CREATE x:1 g1 0",
    "XGROUP CREATE x:1 g2 $",
    "XGROUP CREATE x:3 g $ MKSTREAM",
    "XGROUP SETID x:1 g2 0",
    "XGROUP SETID x:1 g2 1-1 ENTRIESREAD 1",
    "XGROUP CREATECONSUMER x:1 g1 c3",
    "XREADGROUP GROUP g1 c1 COUNT 2 STREAMS x:1 >",
    "XREADGROUP GROUP g1 c2 COUNT 2 STREAMS x:1 >",
    "XREADGROUP GROUP g2 c1 NOACK COUNT 1 STREAMS x:1 >",
    "XACK x:1 g1 1-1",
    "XCLAIM x:1 g1 c2 0 1-3",
    "XCLAIM x:1 g1 c1 0 1-3 JUSTID",
    "XAUTOCLAIM x:1 g1 c3 0 0-0 COUNT 1",
    "XGROUP CREATECONSUMER x:1 g1 c4",
    "XGROUP DELCONSUMER x:1 g1 c4",
    "XGROUP CREATE x:1 g3 0",
    "XGROUP DESTROY x:1 g3",
    "XSETID x:3 5-5",
    /* bitmaps */
    "SETBIT b:1 7 1",
    "SETBIT b:1 100 1",
    "SETBIT b:1 7 0",
    "SETBIT {b}b:2 3 1",
    "BITFIELD b:3 SET u8 0 200 INCRBY u8 0 100",
    "BITFIELD b:3 OVERFLOW SAT INCRBY i16 8 40000 OVERFLOW FAIL INCRBY u4 0 100",
    "BITOP AND b:and b:1 {b}b:2",
    "BITOP OR b:or b:1 b:3",
    "BITOP XOR {c}b:xor b:1 b:3",
    "BITOP NOT b:not b:1",
    /* HyperLogLog */
    "PFADD hl:1 a b c d",
    "PFADD hl:2 c d e f",
    "PFADD hl:1 a",
    "PFMERGE {c}hl:m hl:1 hl:2",
    "PFMERGE hl:m2 hl:1",
    "PFCOUNT hl:1",
    "PFADD hl:2 g",
    "PFCOUNT hl:2 hl:1",
    /* geo */
    "GEOADD g:1 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
    "GEOADD g:1 NX CH 2.349014 48.864716 Paris",
    "GEOSEARCHSTORE {a}g:s g:1 FROMLONLAT 15 37 BYRADIUS 200 km ASC",
    "GEOSEARCHSTORE g:s2 g:1 FROMMEMBER Palermo BYBOX 400 400 km DESC COUNT 1 STOREDIST",
    "GEORADIUS g:1 15 37 300 km STORE g:r",
    "GEORADIUSBYMEMBER g:1 Palermo 500 km STOREDIST {b}g:rd",
    /* a transaction across slots and dbs */
    "MULTI",
    "SET {a}t:1 1",
    "INCR {b}t:2",
    "LPUSH {c}t:3 x",
    "SELECT 2",
    "SET t:db2 v",
    "HSET t:h f v",
    "SELECT 0",
    "ZADD t:z 1 a",
    "EXEC",
    /* a transaction of one slot, and one of reads only */
    "MULTI",
    "INCR {a}t:4",
    "SET {a}t:5 x",
    "RPUSH {a}t:6 y",
    "EXEC",
    "MULTI",
    "GET {a}t:5",
    "EXEC",
    /* a transaction of one slot that changes db, then a write in the first db */
    "MULTI",
    "SET {a}t:7 1",
    "SELECT 9",
    "SET {a}t:7 9",
    "EXEC",
    "SELECT 0",
    "INCR {a}t:7",
};

/* Plain SETs (joined into MSETs by ringsync) interleaved with what a merge
 * must not jump over: INCR and APPEND of the same key, SET with options,
 * a DEL across slots, the same key in another db. */
static void script_merge_run(struct redis_pipeline *p)
{
    for (int i = 0; i < WRITE_SCRIPT_MERGE_RUN_KEYS; i++) {
        redis_pipeline_append(p, "SET ms:%d %d", i, i);
        if (i % 3 == 0)
            redis_pipeline_append(p, "INCR ms:%d", i);
        if (i % 5 == 0)
            redis_pipeline_append(p, "SELECT 1");
        if (i % 5 == 0)
            redis_pipeline_append(p, "SET ms:%d db1", i);
        if (i % 5 == 0)
            redis_pipeline_append(p, "SELECT 0");
        if (i % 7 == 0 && i > 0)
            redis_pipeline_append(p, "DEL ms:%d {a}ms:%d", i - 1, i);
        if (i % 11 == 0)
            redis_pipeline_append(p, "SET ms:%d ttl EX 100000", i);
        if (i % 13 == 0)
            redis_pipeline_append(p, "APPEND ms:%d z", i);
        if (i % 17 == 0)
            redis_pipeline_append(p, "SET {a}ms:%d last", i);
    }
}

/* The client waiter blocks on block_cmd; serve_cmd, from the source's own
 * connection, serves it. Redis replicates the pop as the non-blocking
 * command it became. */
static void blocked_then_served(struct redis_fixture *src, redisContext *waiter,
                                const char *block_cmd, const char *serve_cmd)
{
    long long blocked_before = info_number(src->ctx, "clients", "blocked_clients");
    cr_assert(redisAppendCommand(waiter, block_cmd) == REDIS_OK);
    int done = 0;
    while (!done)
        cr_assert(redisBufferWrite(waiter, &done) == REDIS_OK, "%s: %s", block_cmd, waiter->errstr);
    long long deadline = fixture_now_ms() + 5000;
    while (info_number(src->ctx, "clients", "blocked_clients") <= blocked_before) {
        cr_assert(fixture_now_ms() < deadline, "%s did not block", block_cmd);
        sleep_ms(1);
    }
    redis_fixture_exec(src->ctx, serve_cmd);
    void *r = NULL;
    cr_assert(redisGetReply(waiter, &r) == REDIS_OK && r != NULL, "%s: %s", block_cmd,
              waiter->errstr);
    redisReply *rr = r;
    cr_assert(rr->type == REDIS_REPLY_ARRAY || rr->type == REDIS_REPLY_STRING,
              "%s served by %s: reply type %d (%s)", block_cmd, serve_cmd, rr->type,
              rr->type == REDIS_REPLY_ERROR ? rr->str : "");
    freeReplyObject(rr);
}

static void script_blocking_pops(struct redis_fixture *src)
{
    redisContext *w = redis_fixture_connect(src);
    blocked_then_served(src, w, "BLPOP bl:1 bl:2 10", "LPUSH bl:2 x");
    blocked_then_served(src, w, "BRPOP bl:3 10", "RPUSH bl:3 a b");
    blocked_then_served(src, w, "BLMOVE bl:4 {b}bl:5 LEFT RIGHT 10", "RPUSH bl:4 m");
    blocked_then_served(src, w, "BRPOPLPUSH bl:6 bl:7 10", "LPUSH bl:6 q");
    blocked_then_served(src, w, "BLMPOP 10 2 bl:8 bl:9 RIGHT COUNT 2", "RPUSH bl:9 1 2 3");
    blocked_then_served(src, w, "BZPOPMIN bz:1 10", "ZADD bz:1 1 a 2 b");
    blocked_then_served(src, w, "BZPOPMAX bz:2 10", "ZADD bz:2 1 a 2 b");
    blocked_then_served(src, w, "BZMPOP 10 1 bz:3 MIN COUNT 1", "ZADD bz:3 3 c 4 d");
    redis_fixture_exec(src->ctx, "XGROUP CREATE bx:1 g $ MKSTREAM");
    blocked_then_served(src, w, "XREADGROUP GROUP g c BLOCK 10000 STREAMS bx:1 >",
                        "XADD bx:1 9-1 f v");
    /* a waiter in another db */
    redis_fixture_exec(w, "SELECT 7");
    redis_fixture_exec(src->ctx, "SELECT 7");
    blocked_then_served(src, w, "BLPOP bl:db7 10", "RPUSH bl:db7 a b c");
    redis_fixture_exec(src->ctx, "SELECT 0");
    redisFree(w);
}

/* DUMP and RESTORE, with a relative and an absolute TTL, and REPLACE. */
static void script_restore(struct redis_fixture *src)
{
    redisReply *s = redis_fixture_command(src->ctx, "DUMP s:1");
    redisReply *z = redis_fixture_command(src->ctx, "DUMP z:1");
    cr_assert(s->type == REDIS_REPLY_STRING && z->type == REDIS_REPLY_STRING);
    redis_fixture_exec(src->ctx, "RESTORE s:restored 0 %b", s->str, s->len);
    redis_fixture_exec(src->ctx, "RESTORE {b}z:restored 100000000 %b", z->str, z->len);
    redis_fixture_exec(src->ctx, "RESTORE z:restored2 4102444800000 %b ABSTTL", z->str, z->len);
    redis_fixture_exec(src->ctx, "RESTORE s:7 0 %b REPLACE", s->str, s->len);
    freeReplyObject(s);
    freeReplyObject(z);
}

static const char lua_three_keys[] =
    "redis.call('set', KEYS[1], ARGV[1]); redis.call('incr', KEYS[2]); "
    "redis.call('rpush', KEYS[3], ARGV[2]); return 1";
static const char lua_select[] =
    "redis.call('select', 5); redis.call('set', KEYS[1], 'in5'); redis.call('select', 0); "
    "return redis.call('spop', KEYS[2])";
static const char lua_time[] =
    "local t = redis.call('time'); redis.call('set', KEYS[1], t[1] .. '.' .. t[2]); "
    "return redis.call('hincrby', KEYS[2], 'n', 1)";
static const char lua_evalsha[] =
    "redis.call('hset', KEYS[1], 'f', ARGV[1]); redis.call('zadd', KEYS[2], 1, 'm'); "
    "redis.call('del', KEYS[1]); redis.call('expire', KEYS[2], 100000); return 2";
static const char lua_read_only[] = "return redis.call('get', KEYS[1])";

static const char fn_lib[] =
    "#!lua name=tlib\n"
    "redis.register_function('tset', function(keys, args)\n"
    "  redis.call('set', keys[1], args[1]); return redis.call('incr', keys[2]) end)\n"
    "redis.register_function{function_name='tro', callback=function(keys, args)\n"
    "  return redis.call('get', keys[1]) end, flags={'no-writes'}}\n";
static const char fn_lib2[] = "#!lua name=tlib2\n"
                              "redis.register_function('t2', function(keys, args)\n"
                              "  return redis.call('del', keys[1]) end)\n";

static void script_lua_and_functions(struct redis_fixture *src)
{
    redisContext *c = src->ctx;
    redis_fixture_exec(c, "EVAL %s 3 {a}e:1 {b}e:2 {c}e:3 v1 v2", lua_three_keys);
    redis_fixture_exec(c, "SADD {b}e:set a b c");
    redis_fixture_exec(c, "EVAL %s 2 {a}e:5 {b}e:set", lua_select);
    redis_fixture_exec(c, "EVAL %s 2 {c}e:time {a}e:h", lua_time);
    redis_fixture_exec(c, "EVAL %s 1 {a}e:1", lua_read_only);
    redisReply *sha = redis_fixture_command(c, "SCRIPT LOAD %s", lua_evalsha);
    cr_assert(sha->type == REDIS_REPLY_STRING);
    redis_fixture_exec(c, "EVALSHA %s 2 {a}e:4 {b}e:6 x", sha->str);
    freeReplyObject(sha);

    redis_fixture_exec(c, "FUNCTION LOAD REPLACE %s", fn_lib);
    redis_fixture_exec(c, "FCALL tset 2 {a}f:1 {b}f:2 val");
    redis_fixture_exec(c, "FCALL_RO tro 1 {a}f:1");
    redis_fixture_exec(c, "FUNCTION LOAD REPLACE %s", fn_lib2);
    redis_fixture_exec(c, "SET {c}f:3 doomed");
    redis_fixture_exec(c, "FCALL t2 1 {c}f:3");
    redis_fixture_exec(c, "FUNCTION DELETE tlib2");
    /* FUNCTION RESTORE of a dump holding both libraries, then tlib2 gone again */
    redis_fixture_exec(c, "FUNCTION LOAD REPLACE %s", fn_lib2);
    redisReply *dump = redis_fixture_command(c, "FUNCTION DUMP");
    cr_assert(dump->type == REDIS_REPLY_STRING);
    redis_fixture_exec(c, "FUNCTION FLUSH");
    redis_fixture_exec(c, "FUNCTION RESTORE %b", dump->str, dump->len);
    freeReplyObject(dump);
    redis_fixture_exec(c, "FUNCTION DELETE tlib2");
}

/* Keys with PX 50 in dbs 0 and 6, then a wait until the source's active
 * expiry has deleted them all (and so replicated their DELs); the keys are
 * not touched meanwhile, which would expire them lazily instead. */
static void script_expiries(struct redis_fixture *src)
{
    redisContext *c = src->ctx;
    long long expired_before = info_number(c, "stats", "expired_keys");
    redis_fixture_exec(c, "SET e:px1 v PX %d", WRITE_SCRIPT_EXPIRE_PX);
    redis_fixture_exec(c, "HSET e:px2 f v");
    redis_fixture_exec(c, "PEXPIRE e:px2 %d", WRITE_SCRIPT_EXPIRE_PX);
    redis_fixture_exec(c, "SELECT 6");
    redis_fixture_exec(c, "RPUSH e:px3 a b");
    redis_fixture_exec(c, "PEXPIRE e:px3 %d", WRITE_SCRIPT_EXPIRE_PX);
    redis_fixture_exec(c, "SET e:px4 v PX %d", WRITE_SCRIPT_EXPIRE_PX);
    redis_fixture_exec(c, "SELECT 0");
    sleep_ms(WRITE_SCRIPT_EXPIRE_WAIT_MS);
    long long deadline = fixture_now_ms() + 3000;
    long long expired;
    while ((expired = info_number(c, "stats", "expired_keys")) < expired_before + 4) {
        cr_assert(fixture_now_ms() < deadline,
                  "the source's active expiry deleted %lld of the 4 keys with PX %d",
                  expired - expired_before, WRITE_SCRIPT_EXPIRE_PX);
        sleep_ms(20);
    }
}

/* Every db, then MOVE, SWAPDB and FLUSHDB. */
static void script_databases(struct redis_fixture *src)
{
    struct redis_pipeline p;
    redis_pipeline_init(&p, src->ctx, 0);
    for (int db = 0; db < MODEL_DBS; db++) {
        redis_pipeline_append(&p, "SELECT %d", db);
        redis_pipeline_append(&p, "SET dbk:%d v%d", db, db);
        redis_pipeline_append(&p, "INCRBY dbc %d", db + 1);
        redis_pipeline_append(&p, "RPUSH dbl a%d b", db);
        redis_pipeline_append(&p, "HSET dbh f %d", db);
        redis_pipeline_append(&p, "ZADD dbz %d m", db);
        redis_pipeline_append(&p, "SADD dbs %d", db);
        redis_pipeline_append(&p, "XADD dbx 1-%d f v", db + 1);
        redis_pipeline_append(&p, "SET dbttl v EX %d", 100000 + db);
    }
    redis_pipeline_append(&p, "SELECT 0");
    redis_pipeline_append(&p, "SET mv:1 x");
    redis_pipeline_append(&p, "MOVE mv:1 9");
    redis_pipeline_append(&p, "SET mv:2 y");
    redis_pipeline_append(&p, "MOVE mv:2 9");
    redis_pipeline_append(&p, "SWAPDB 1 2");
    redis_pipeline_append(&p, "SWAPDB 3 4");
    redis_pipeline_append(&p, "SELECT 3");
    redis_pipeline_append(&p, "SET after:swap 3");
    redis_pipeline_append(&p, "SELECT 5");
    redis_pipeline_append(&p, "FLUSHDB");
    redis_pipeline_append(&p, "SET after:flushdb 5");
    redis_pipeline_append(&p, "SELECT 8");
    redis_pipeline_append(&p, "FLUSHDB ASYNC");
    redis_pipeline_append(&p, "RPUSH after:flushdb 8");
    redis_pipeline_append(&p, "SELECT 0");
    redis_pipeline_flush(&p);
}

void write_script_run(struct redis_fixture *src)
{
    struct redis_pipeline p;
    redis_pipeline_init(&p, src->ctx, 0);
    for (size_t i = 0; i < sizeof(script_families) / sizeof(script_families[0]); i++)
        redis_pipeline_append(&p, script_families[i]);
    script_merge_run(&p);
    redis_pipeline_flush(&p);
    script_blocking_pops(src);
    script_restore(src);
    script_lua_and_functions(src);
    script_expiries(src);
    script_databases(src);
}
