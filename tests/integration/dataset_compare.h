/* dataset_compare.h - a destination against its oracle (a native replica of
 * the source, or the source itself): DEBUG DIGEST, key by key through
 * redis_model, and FUNCTION LIST. Shared by the stream and capture tests. */
#ifndef RS_TEST_DATASET_COMPARE_H
#define RS_TEST_DATASET_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis_fixture.h"
#include "redis_model.h"

struct dataset_comparison {
    bool same_digest, same_functions;
    size_t differences; /* keys (and libraries) the model comparison found */
    size_t keys_compared, target_keys, oracle_keys;
    char digests[160];
    struct model_diff *diff; /* its report names the keys */
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

/* Changes one key on dst (db 7's dbk:7, which fill_sample and the write
 * script leave there) and fails unless both comparisons see exactly it:
 * proof that the comparison can fail. */
void assert_comparison_catches_a_change(struct redis_fixture *dst, struct redis_fixture *oracle);

#endif
