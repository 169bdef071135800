/* spsc_ring.h - a bounded single-producer, single-consumer ring of pointers.
 *
 * One ring per ordered pair of threads (the T×T matrix of DESIGN.md §1): only
 * one thread ever pushes and only one ever pops, so no read-modify-write
 * atomics are needed. Each side caches the other's index and reloads it only
 * when the ring looks full (producer) or empty (consumer); pushes are made
 * visible in batches by spsc_ring_publish, one release store per batch.
 *
 *     producer thread                     consumer thread
 *     spsc_ring_push  (private tail)      spsc_ring_pop   (private head)
 *     spsc_ring_publish --tail (release)--> acquire: slots up to tail are written
 *                       <--head (release)-- spsc_ring_release: slots may be reused
 */
#ifndef RS_SPSC_RING_H
#define RS_SPSC_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define SPSC_RING_ALIGN 128 /* a cache line and its adjacent-line prefetch partner */

struct spsc_ring {
    /* producer's line */
    _Alignas(SPSC_RING_ALIGN) _Atomic uint32_t tail; /* published: slots below are filled */
    uint32_t tail_local;                             /* pushed, maybe not published yet */
    uint32_t head_cache;                             /* producer's last view of head */
    /* consumer's line */
    _Alignas(SPSC_RING_ALIGN) _Atomic uint32_t head; /* released: slots below are free */
    uint32_t head_local;                             /* popped, maybe not released yet */
    uint32_t tail_cache;                             /* consumer's last view of tail */
    /* shared, read-only after init */
    _Alignas(SPSC_RING_ALIGN) uint32_t mask;
    void **slots;
};

/* capacity must be a power of two. Returns 0 or -1 when out of memory. */
static inline int spsc_ring_init(struct spsc_ring *r, uint32_t capacity)
{
    if (capacity == 0 || (capacity & (capacity - 1)) != 0)
        return -1;
    r->slots = calloc(capacity, sizeof(void *));
    if (r->slots == NULL)
        return -1;
    atomic_init(&r->tail, 0);
    atomic_init(&r->head, 0);
    r->tail_local = r->head_cache = r->head_local = r->tail_cache = 0;
    r->mask = capacity - 1;
    return 0;
}

static inline void spsc_ring_deinit(struct spsc_ring *r)
{
    free(r->slots);
    r->slots = NULL;
}

/* Producer: adds p (not yet visible). False when the ring is full. */
static inline bool spsc_ring_push(struct spsc_ring *r, void *p)
{
    if (r->tail_local - r->head_cache > r->mask) {
        /* acquire: the consumer is done reading the slots it released */
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (r->tail_local - r->head_cache > r->mask)
            return false;
    }
    r->slots[r->tail_local & r->mask] = p;
    r->tail_local++;
    return true;
}

/* Producer: makes every push so far visible to the consumer. */
static inline void spsc_ring_publish(struct spsc_ring *r)
{
    /* release: the slot writes above happen before the consumer sees tail */
    atomic_store_explicit(&r->tail, r->tail_local, memory_order_release);
}

/* Consumer: the next item, or NULL when the ring is (as far as it knows) empty. */
static inline void *spsc_ring_pop(struct spsc_ring *r)
{
    if (r->head_local == r->tail_cache) {
        /* acquire: pairs with the producer's release in spsc_ring_publish */
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (r->head_local == r->tail_cache)
            return NULL;
    }
    return r->slots[r->head_local++ & r->mask];
}

/* Consumer: hands the popped slots back to the producer. */
static inline void spsc_ring_release(struct spsc_ring *r)
{
    /* release: our reads of the slots happen before the producer reuses them */
    atomic_store_explicit(&r->head, r->head_local, memory_order_release);
}

/* Either side: true when nothing is published and unpopped (a hint). */
static inline bool spsc_ring_is_empty(struct spsc_ring *r)
{
    return atomic_load_explicit(&r->tail, memory_order_acquire) ==
           atomic_load_explicit(&r->head, memory_order_acquire);
}

_Static_assert(sizeof(_Atomic uint32_t) == 4, "lock-free 32-bit atomics");

#endif
