/* dataset_compare.h - a destination against its oracle (a native replica of
 * the source, or the source itself): DEBUG DIGEST, key by key through
 * redis_model, and FUNCTION LIST. Shared by the stream and capture tests. */
#ifndef RS_TEST_DATASET_COMPARE_H
#define RS_TEST_DATASET_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster_fixture.h"
#include "redis_fixture.h"
#include "redis_model.h"

struct dataset_comparison {
    bool same_digest, same_functions;
    size_t differences; /* keys (and libraries) the model comparison found */
    size_t keys_compared, target_keys, oracle_keys;
    char digests[160];
    struct model_diff *diff; /* its report names the keys */
    /* dataset_compare_cluster only (zero otherwise): */
    size_t oracle_keys_outside_db0; /* a cluster has db 0 only: must be 0 */
    char oracle_dbs_outside[160];   /* "db 1: 5 keys, db 3: 1 key" */
    char masters[256];              /* the masters read: "node 0 127.0.0.1:p, ..." */
    bool has_key_digests;           /* per-key DEBUG DIGEST-VALUE compared (both allow DEBUG) */
    /* dataset_compare_clusters only ("" otherwise): */
    char oracle_masters[256]; /* the oracle cluster's masters read, as in masters */
};

/* Compares dst with oracle. Consumers' seen/active times are left out
 * (XCLAIM stamps the clock of the server that runs it), and no key may be
 * missing as expired: the callers' loads leave none that could expire while
 * the comparison reads. Free with dataset_comparison_deinit. */
/* Clears every stream consumer's seen and active times in m: a server that
 * runs XCLAIM or native commands stamps them with its own clock. */
void dataset_forget_consumer_times(struct redis_model *m);

/* Expiries on the target are this much later than the oracle's (ringsync's
 * --expiry-margin, while it still follows): dataset_compare takes it off the
 * target's before comparing. 0 (the default): compared as they are. */
void dataset_set_target_expiry_shift(int64_t ms);

/* The server's DEBUG DIGEST into buf. */
void dataset_digest(redisContext *c, char *buf, size_t cap);

void dataset_compare(struct redis_fixture *dst, struct redis_fixture *oracle,
                     struct dataset_comparison *c);
void dataset_comparison_deinit(struct dataset_comparison *c);

/* Fails the test unless dst equals oracle (oracle_name says which, for the
 * message; what says when). */
void assert_dataset_equals(struct redis_fixture *dst, struct redis_fixture *oracle,
                           const char *oracle_name, const char *what);

/* ---------------------------------------------------------- a cluster target
 *
 * The target is a Redis Cluster (cluster_fixture.h): its data set is db 0 of
 * the masters that serve slots *now* (cluster_fixture_view_take asks node 0,
 * or the first node that answers, so a failover or a resharding is
 * followed), read into one model (redis_model_from_cluster). The oracle is a
 * standalone server (a native replica of the source, or the source): its db 0
 * only; keys in its other dbs make the comparison fail saying so, since no
 * cluster could hold them. Compared: the model key by key (values, TTLs less
 * dataset_set_target_expiry_shift, consumers' times left out), every key's
 * DEBUG DIGEST-VALUE on the master serving its slot against the oracle's (a
 * second opinion that does not go through the model; skipped, and said so
 * in `digests`, when either side refuses DEBUG), and the function libraries
 * (every master must hold the oracle's). */
void dataset_compare_cluster(const struct cluster_fixture *dst, struct redis_fixture *oracle,
                             struct dataset_comparison *c);

/* Keys of the cluster in the slots of `slots` (16384 flags; NULL: none)
 * were moved by MIGRATE, which sends a key's TTL relative and has the new
 * owner add it to its own clock: their expiries come out a few milliseconds
 * later than the source's. dataset_compare_cluster takes such an expiry
 * (after dataset_set_target_expiry_shift's is taken off) as the oracle's when
 * it is at most ms later, never earlier, and logs how many it took so. The
 * mask is read, not copied: it must outlive the comparisons. NULL or 0 (the
 * default): compared exactly. */
void dataset_set_migrated_expiry_tolerance(const bool *slots, int64_t ms);

/* Fails the test unless the cluster dst holds exactly db 0 of oracle (and
 * the oracle nothing elsewhere); the message names the masters read, the
 * keys that differ and how. oracle_name and what as for assert_dataset_equals. */
void assert_cluster_equals(const struct cluster_fixture *dst, struct redis_fixture *oracle,
                           const char *oracle_name, const char *what);

/* Changes key (a string the cluster holds) on the master serving its slot
 * now (SET ... KEEPTTL) and fails unless dataset_compare_cluster then sees
 * exactly that one key differ, in the model and in the per-key digests when
 * they are compared: proof that the cluster comparison can fail. */
void assert_cluster_comparison_catches_a_change(const struct cluster_fixture *dst,
                                                struct redis_fixture *oracle, const char *key);

/* ------------------------------------------------ servers behind a proxy
 *
 * The target is n standalone servers sharing one key space (the servers
 * behind a proxy, proxy_fixture.h): db 0 of each read into one model
 * (redis_model_from_servers), compared with the oracle's as
 * dataset_compare_cluster compares a cluster's (the oracle's db 0 only, keys
 * elsewhere counted in oracle_keys_outside_db0; expiries exact after
 * dataset_set_target_expiry_shift's; consumers' times left out), each key's
 * DEBUG DIGEST-VALUE on the first server holding it against the oracle's, and
 * the function libraries. `masters` names the servers ("server 0
 * 127.0.0.1:p, ..."). A key held by several servers counts once here, with
 * the first one's value: where the keys are is the caller's to judge, from
 * placement (NULL: not wanted), filled with every key of the union and which
 * servers hold it. */
#define DATASET_MAX_SERVERS 8

struct dataset_placement {
    size_t nkeys;
    struct model_bytes *keys; /* sorted by bytes, owned copies */
    unsigned *held;           /* per key: bit i set when servers[i] holds it */
};

void dataset_compare_servers(struct redis_fixture *const *servers, size_t n,
                             struct redis_fixture *oracle, struct dataset_comparison *c,
                             struct dataset_placement *placement);

void dataset_placement_deinit(struct dataset_placement *p);

/* ------------------------------------------------ a cluster as the oracle
 *
 * Both sides are Redis Clusters (a cluster source copied into a cluster
 * destination, with any number of masters on each side): each is read into
 * one model by redis_model_from_cluster from the masters serving slots now
 * (as dataset_compare_cluster reads its target), and the two models are
 * compared as above (expiry shift, migration tolerance and consumers' times
 * as there); each key's DEBUG DIGEST-VALUE is taken on the master serving
 * its slot on each side; the function libraries of one master of each. The
 * oracle_keys_outside_db0 fields stay zero (neither side has other dbs). */
void dataset_compare_clusters(const struct cluster_fixture *dst,
                              const struct cluster_fixture *oracle, struct dataset_comparison *c);

/* Fails the test unless the cluster dst holds exactly what the cluster
 * oracle holds; the message names both sides' masters, the keys that differ
 * and how. oracle_name and what as for assert_dataset_equals. */
void assert_clusters_equal(const struct cluster_fixture *dst, const struct cluster_fixture *oracle,
                           const char *oracle_name, const char *what);

/* assert_cluster_comparison_catches_a_change with a cluster oracle. */
void assert_clusters_comparison_catches_a_change(const struct cluster_fixture *dst,
                                                 const struct cluster_fixture *oracle,
                                                 const char *key);

/* Changes one key on dst (db 7's dbk:7, which fill_sample and the write
 * script leave there) and fails unless both comparisons see exactly it:
 * proof that the comparison can fail. */
void assert_comparison_catches_a_change(struct redis_fixture *dst, struct redis_fixture *oracle);

#endif
