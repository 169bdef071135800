/* test_checkpoint.c - the records' forms (src/CHECKPOINTS.md): a standalone
 * lane record, a cluster's record script and its candidate keys (the slot's
 * own, then slots near it that the node serves), the form a transaction
 * answered ASK takes for the importing node (the slot's record only where it
 * exists, a slot that node serves, a key of its own), job ids. The bytes are
 * read back with hiredis's reader, as a server would. */
#include <criterion/criterion.h>

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cluster_topology.h"
#include "slot.h"

/* The commands in p[0..n): each an array of bulk strings. */
struct cmds {
    redisReply *r[16];
    size_t n;
};

static void parse(const char *p, size_t n, struct cmds *out)
{
    redisReader *rd = redisReaderCreate();
    cr_assert(redisReaderFeed(rd, p, n) == REDIS_OK);
    out->n = 0;
    void *r;
    while (redisReaderGetReply(rd, &r) == REDIS_OK && r != NULL) {
        cr_assert(out->n < 16);
        redisReply *rep = r;
        cr_assert(rep->type == REDIS_REPLY_ARRAY, "not a command array");
        out->r[out->n++] = rep;
    }
    cr_assert(rd->pos == rd->len, "bytes left over: not whole RESP commands");
    redisReaderFree(rd);
}

static void cmds_free(struct cmds *c)
{
    for (size_t i = 0; i < c->n; i++)
        freeReplyObject(c->r[i]);
}

static const char *arg(const struct cmds *c, size_t cmd, size_t i)
{
    cr_assert(cmd < c->n && i < c->r[cmd]->elements, "no argument %zu of command %zu", i, cmd);
    return c->r[cmd]->element[i]->str;
}

/* The slot a candidate "[+]{tag}[@s|#o]" records, and its form. */
static unsigned cand_slot(const char *cand, char *kind, unsigned *tag_slot)
{
    const char *open = cand[0] == '+' ? cand + 1 : cand;
    const char *close = strchr(open, '}');
    cr_assert(open[0] == '{' && close != NULL, "candidate '%s' has no hash tag", cand);
    *tag_slot = slot_of_key(open, (size_t)(close + 1 - open));
    *kind = cand[0] == '+' ? '+' : close[1];
    return close[1] == '@' ? (unsigned)strtoul(close + 2, NULL, 10) : *tag_slot;
}

/* Masters 0 and 1: slots 0..99 and 200..16383 to master 0, 100..199 to 1. */
static void topology(struct cluster_topology *t)
{
    cluster_topology_init(t);
    for (unsigned s = 0; s < SLOT_COUNT; s++)
        t->slot_owner[s] = s >= 100 && s < 200 ? 2 : 1;
}

Test(checkpoint, a_standalone_lane_record_is_a_set_then_exec)
{
    struct checkpoint cp;
    cr_assert(checkpoint_init(&cp, "job-1", false, 2) == 0);
    char buf[1024];
    char *e = checkpoint_put_end(&cp, buf, 3, 77, 12345);
    cr_assert((size_t)(e - buf) <= checkpoint_end_size(&cp));
    struct cmds c;
    parse(buf, (size_t)(e - buf), &c);
    cr_assert_eq(c.n, 2);
    cr_assert_str_eq(arg(&c, 0, 0), "SET");
    cr_assert_str_eq(arg(&c, 0, 1), "ringsync:cp:job-1:L1/2"); /* lane 3 of 2 workers: worker 1 */
    cr_assert_str_eq(arg(&c, 0, 2), "12345");
    cr_assert_str_eq(arg(&c, 1, 0), "EXEC");
    cmds_free(&c);
    checkpoint_deinit(&cp);
}

Test(checkpoint, a_cluster_record_is_a_keyless_script_with_the_slot_then_nearby_slots)
{
    struct cluster_topology t;
    topology(&t);
    struct checkpoint cp;
    cr_assert(checkpoint_init(&cp, "127.0.0.1:6379", true, 2) == 0);
    checkpoint_set_topology(&cp, &t);
    const unsigned slots[] = {0, 50, 99, 150, 199, 16383};
    for (size_t k = 0; k < sizeof(slots) / sizeof(slots[0]); k++) {
        unsigned slot = slots[k];
        unsigned node = slot >= 100 && slot < 200 ? 1 : 0;
        char buf[4096];
        char *e = checkpoint_put_end(&cp, buf, node * 2 + 1, slot, 987654321);
        cr_assert((size_t)(e - buf) <= checkpoint_end_size(&cp), "slot %u: past the room", slot);
        struct cmds c;
        parse(buf, (size_t)(e - buf), &c);
        cr_assert_eq(c.n, 2);
        cr_assert_str_eq(arg(&c, 0, 0), "EVAL");
        cr_assert_str_eq(arg(&c, 0, 2), "0", "the script declares no key: it routes nothing");
        cr_assert_str_eq(arg(&c, 0, 3), "987654321");
        cr_assert_str_eq(arg(&c, 0, 4), "ringsync:cp:127.0.0.1:6379:");
        cr_assert_str_eq(arg(&c, 1, 0), "EXEC");
        size_t nc = c.r[0]->elements - 5;
        cr_assert_eq(nc, 3, "slot %u: the slot's record and two near it", slot);
        char kind;
        unsigned tag_slot;
        cr_assert_eq(cand_slot(arg(&c, 0, 5), &kind, &tag_slot), slot);
        cr_assert(kind == '\0' && tag_slot == slot, "slot %u: first the slot's own record", slot);
        for (size_t i = 1; i < nc; i++) {
            cr_assert_eq(cand_slot(arg(&c, 0, 5 + i), &kind, &tag_slot), slot);
            cr_assert_eq(kind, '@');
            cr_assert(tag_slot != slot && t.slot_owner[tag_slot] == node + 1,
                      "slot %u: candidate %s is not in another slot of node %u", slot,
                      arg(&c, 0, 5 + i), node);
            unsigned d = tag_slot > slot ? tag_slot - slot : slot - tag_slot;
            if (d > SLOT_COUNT / 2)
                d = SLOT_COUNT - d;
            cr_assert(d <= 2 || (slot == 99 || slot == 150), "slot %u: %u is not near", slot,
                      tag_slot);
        }
        cmds_free(&c);
    }
    checkpoint_deinit(&cp);
    cluster_topology_deinit(&t);
}

/* MULTI INCR k <record> EXEC, as a checkpoint transaction goes out. */
static size_t tx_block(const struct checkpoint *cp, char *buf, unsigned lane, unsigned slot,
                       uint64_t offset)
{
    int n = snprintf(buf, 256, "*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n");
    char *e = checkpoint_put_end(cp, buf + n, lane, slot, offset);
    return (size_t)(e - buf);
}

Test(checkpoint, a_transaction_answered_ask_writes_only_what_the_importing_node_may)
{
    struct cluster_topology t;
    topology(&t);
    struct checkpoint cp;
    cr_assert(checkpoint_init(&cp, "j", true, 1) == 0);
    checkpoint_set_topology(&cp, &t);
    unsigned slot = slot_of_key("k", 1);
    char block[4096], out[8192];
    size_t len = tx_block(&cp, block, 0, slot, 4242);

    /* to node 1 (it serves 100..199): the slot's record where it exists, a
     * slot of node 1, a key of this command's own */
    ssize_t n = checkpoint_ask_form(&cp, block, len, 1, slot, out, sizeof(out));
    cr_assert(n > 0, "a checkpoint transaction is rewritten");
    struct cmds c;
    parse(out, (size_t)n, &c);
    cr_assert_eq(c.n, 4);
    cr_assert_str_eq(arg(&c, 0, 0), "MULTI");
    cr_assert_str_eq(arg(&c, 1, 0), "INCR");
    cr_assert_str_eq(arg(&c, 1, 1), "k");
    cr_assert_str_eq(arg(&c, 2, 0), "EVAL");
    cr_assert_str_eq(arg(&c, 2, 3), "4242");
    cr_assert_str_eq(arg(&c, 3, 0), "EXEC");
    cr_assert_eq(c.r[2]->elements, 5 + 3);
    char kind;
    unsigned tag_slot;
    cr_assert_eq(cand_slot(arg(&c, 2, 5), &kind, &tag_slot), slot);
    cr_assert(kind == '+' && tag_slot == slot, "first: the slot's record, only where it exists");
    cr_assert_eq(cand_slot(arg(&c, 2, 6), &kind, &tag_slot), slot);
    cr_assert(kind == '@' && t.slot_owner[tag_slot] == 2, "then a slot node 1 serves");
    cr_assert_eq(cand_slot(arg(&c, 2, 7), &kind, &tag_slot), slot);
    cr_assert(kind == '#' && tag_slot == slot && strstr(arg(&c, 2, 7), "#4242") != NULL,
              "last: a key of this command alone, named by its offset");
    cmds_free(&c);

    /* to a node that serves nothing: no slot of its own to keep it in */
    n = checkpoint_ask_form(&cp, block, len, 5, slot, out, sizeof(out));
    cr_assert(n > 0);
    parse(out, (size_t)n, &c);
    cr_assert_eq(c.r[2]->elements, 5 + 2);
    cr_assert_eq(cand_slot(arg(&c, 2, 5), &kind, &tag_slot), slot);
    cr_assert_eq(kind, '+');
    cr_assert_eq(cand_slot(arg(&c, 2, 6), &kind, &tag_slot), slot);
    cr_assert_eq(kind, '#');
    cmds_free(&c);

    /* a transaction without a record (a source's, checkpoints off) goes as it is */
    static const char plain[] = "*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n"
                                "*1\r\n$4\r\nEXEC\r\n";
    cr_assert_eq(checkpoint_ask_form(&cp, plain, sizeof(plain) - 1, 1, slot, out, sizeof(out)), -1);
    /* nor a room too small */
    cr_assert_eq(checkpoint_ask_form(&cp, block, len, 1, slot, out, 64), -1);
    checkpoint_deinit(&cp);
    cluster_topology_deinit(&t);
}

Test(checkpoint, job_ids_are_checked)
{
    struct rs_error err = {0};
    cr_assert_eq(checkpoint_job_valid("127.0.0.1:6379/0", &err), 0);
    cr_assert_lt(checkpoint_job_valid("", &err), 0);
    cr_assert_lt(checkpoint_job_valid("a b", &err), 0);
    cr_assert(strstr(err.msg, "character 2") != NULL, "%s", err.msg);
    cr_assert_lt(checkpoint_job_valid("a{b}", &err), 0);
}
