/* Allocation hooks for mbedTLS: counting over calloc/free, or a first-fit arena in caller
 * memory. Process-wide because mbedTLS's allocator is (mbedtls_platform_set_calloc_free). */
#include "tether/heap.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mbedtls/platform.h"

#include "tls_internal.h"

/* Every block starts with a header of this size so payloads stay aligned as malloc's are. */
#define ALIGN       ((size_t) _Alignof(max_align_t))
#define ROUND_UP(n) (((n) + ALIGN - 1) & ~(ALIGN - 1))

typedef struct block_header {
    size_t size;      /* Payload capacity of this block (arena) or requested size (system). */
    size_t requested; /* Arena: bytes asked for; 0 marks a free block. */
} block_header;

#define HEADER ROUND_UP(sizeof(block_header))

static struct {
    bool installed;
    tether_heap_stats stats;
    uint8_t *arena;
    size_t arena_len;
} heap;

static int would_exceed_cap(size_t n)
{
    return heap.stats.cap != 0 && n > heap.stats.cap - heap.stats.in_use;
}

static void count_alloc(size_t n)
{
    heap.stats.in_use += n;
    heap.stats.allocations++;
    if (heap.stats.in_use > heap.stats.peak)
        heap.stats.peak = heap.stats.in_use;
}

static void *refuse(size_t n)
{
    heap.stats.failures++;
    heap.stats.last_failed_size = n;
    heap.stats.in_use_at_failure = heap.stats.in_use;
    return NULL;
}

static void *system_calloc(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return refuse(SIZE_MAX);
    size_t n = count * size;
    if (n > SIZE_MAX - HEADER || would_exceed_cap(n))
        return refuse(n);
    uint8_t *p = calloc(1, HEADER + n);
    if (p == NULL)
        return refuse(n);
    ((block_header *)(void *)p)->size = n;
    count_alloc(n);
    return p + HEADER;
}

static void system_free(void *ptr)
{
    if (ptr == NULL)
        return;
    uint8_t *p = (uint8_t *)ptr - HEADER;
    heap.stats.in_use -= ((block_header *)(void *)p)->size;
    heap.stats.frees++;
    free(p);
}

static block_header *arena_block(size_t offset)
{
    return (block_header *)(void *)(heap.arena + offset);
}

static void *arena_calloc(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return refuse(SIZE_MAX);
    size_t n = count * size;
    if (n == 0)
        n = 1; /* A distinct pointer for a zero-size request, as calloc may give. */
    if (n > heap.arena_len)
        return refuse(n);
    size_t need = ROUND_UP(n);
    for (size_t off = 0; off < heap.arena_len; off += HEADER + arena_block(off)->size) {
        block_header *b = arena_block(off);
        if (b->requested != 0 || b->size < need)
            continue;
        /* Split when the rest can hold a header and a minimal payload. */
        if (b->size >= need + HEADER + ALIGN) {
            block_header *rest = arena_block(off + HEADER + need);
            rest->size = b->size - need - HEADER;
            rest->requested = 0;
            b->size = need;
        }
        b->requested = n;
        size_t end = off + HEADER + b->size;
        if (end > heap.stats.arena_peak)
            heap.stats.arena_peak = end;
        count_alloc(n);
        uint8_t *payload = (uint8_t *)b + HEADER;
        memset(payload, 0, n);
        return payload;
    }
    return refuse(n);
}

static void arena_free(void *ptr)
{
    if (ptr == NULL)
        return;
    /* A block from before the switch to the arena goes back to the C library. */
    if ((uint8_t *)ptr < heap.arena || (uint8_t *)ptr >= heap.arena + heap.arena_len) {
        system_free(ptr);
        return;
    }
    block_header *freed = (block_header *)(void *)((uint8_t *)ptr - HEADER);
    heap.stats.in_use -= freed->requested;
    heap.stats.frees++;
    freed->requested = 0;
    /* Coalesce runs of free blocks in one pass: the arena holds few blocks. */
    block_header *prev_free = NULL;
    for (size_t off = 0; off < heap.arena_len;) {
        block_header *b = arena_block(off);
        size_t next = off + HEADER + b->size;
        if (b->requested == 0 && prev_free != NULL) {
            prev_free->size += HEADER + b->size;
        } else {
            prev_free = b->requested == 0 ? b : NULL;
        }
        off = next;
    }
}

void tether_heap_use_system(size_t cap)
{
    memset(&heap, 0, sizeof heap);
    heap.stats.cap = cap;
    heap.installed = true;
    mbedtls_platform_set_calloc_free(system_calloc, system_free);
}

void tether_heap_install_default(void)
{
    if (!heap.installed)
        tether_heap_use_system(0);
}

tether_status tether_heap_use_arena(void *buf, size_t len)
{
    if (buf == NULL)
        return TETHER_INVALID_ARGUMENT;
    /* Align the start; the usable length is whole alignment units. */
    uintptr_t start = ((uintptr_t)buf + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
    size_t lost = (size_t)(start - (uintptr_t)buf);
    if (len < lost + HEADER + ALIGN)
        return TETHER_INVALID_ARGUMENT;
    memset(&heap, 0, sizeof heap);
    heap.arena = (uint8_t *)start;
    heap.arena_len = (len - lost) & ~(ALIGN - 1);
    heap.stats.cap = heap.arena_len;
    heap.installed = true;
    arena_block(0)->size = heap.arena_len - HEADER;
    arena_block(0)->requested = 0;
    mbedtls_platform_set_calloc_free(arena_calloc, arena_free);
    return TETHER_OK;
}

void tether_heap_get_stats(tether_heap_stats *out)
{
    if (out != NULL)
        *out = heap.stats;
}

void tether_heap_reset_peak(void)
{
    heap.stats.peak = heap.stats.in_use;
}
