/* job.c - the shared state of one sync job. */
#include "job.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int job_init(struct job *job, unsigned nworkers)
{
    memset(job, 0, sizeof(*job));
    job->nworkers = nworkers;
    pthread_mutex_init(&job->fail_mu, NULL);
    size_t n = (size_t)nworkers * nworkers;
    job->to = aligned_alloc(SPSC_RING_ALIGN, n * sizeof(struct spsc_ring));
    job->back = aligned_alloc(SPSC_RING_ALIGN, n * sizeof(struct spsc_ring));
    if (job->to == NULL || job->back == NULL) {
        job_deinit(job);
        return -ENOMEM;
    }
    memset(job->to, 0, n * sizeof(struct spsc_ring));
    memset(job->back, 0, n * sizeof(struct spsc_ring));
    for (size_t i = 0; i < n; i++)
        if (spsc_ring_init(&job->to[i], JOB_RING_SLOTS) < 0 ||
            spsc_ring_init(&job->back[i], JOB_RING_SLOTS) < 0) {
            job_deinit(job);
            return -ENOMEM;
        }
    return 0;
}

void job_deinit(struct job *job)
{
    size_t n = (size_t)job->nworkers * job->nworkers;
    for (size_t i = 0; i < n; i++) {
        if (job->to)
            spsc_ring_deinit(&job->to[i]);
        if (job->back)
            spsc_ring_deinit(&job->back[i]);
    }
    free(job->to);
    free(job->back);
    job->to = job->back = NULL;
    pthread_mutex_destroy(&job->fail_mu);
}

/* The first failure wins; lost marks it as a lost destination link. */
static void vfail(struct job *job, bool lost, const char *fmt, va_list ap)
{
    pthread_mutex_lock(&job->fail_mu);
    if (!atomic_load(&job->failed)) {
        vsnprintf(job->fail_msg, sizeof(job->fail_msg), fmt, ap);
        if (lost)
            atomic_store(&job->dest_lost, 1);
        atomic_store(&job->failed, 1);
    }
    pthread_mutex_unlock(&job->fail_mu);
}

void job_fail_lost(struct job *job, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(job, true, fmt, ap);
    va_end(ap);
}

void job_fail(struct job *job, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(job, false, fmt, ap);
    va_end(ap);
}
