/* fuzz_checkpoint_job.c - checkpoint_job_valid (--job-id) against a plain
 * model: 1 to CHECKPOINT_JOB_MAX - 1 characters of [A-Za-z0-9._:/-].
 *
 * Input: the job id, up to the first NUL. It must be accepted exactly when
 * the model accepts it; a refusal is RS_E_FORMAT with a message that ends
 * within err.msg. The id is read from a buffer of exactly its length and
 * NUL, so a read past the NUL is an ASan report.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_checkpoint_job: check failed: %s (%s:%d)\n", #c, __FILE__,       \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool model_valid(const char *job, size_t len)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789._:/-";
    if (len == 0 || len > CHECKPOINT_JOB_MAX - 1)
        return false;
    for (size_t i = 0; i < len; i++)
        if (memchr(allowed, job[i], sizeof(allowed) - 1) == NULL)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t len = nul != NULL ? (size_t)(nul - data) : size;
    char *job = malloc(len + 1);
    CHECK(job != NULL);
    memcpy(job, data, len);
    job[len] = '\0';

    struct rs_error err;
    memset(&err, 0xa5, sizeof(err));
    int rc = checkpoint_job_valid(job, &err);
    CHECK(rc == 0 || rc == -EINVAL);
    CHECK((rc == 0) == model_valid(job, len));
    if (rc != 0) {
        CHECK(err.code == RS_E_FORMAT);
        CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL && err.msg[0] != '\0');
    }
    free(job);
    return 0;
}
