#include "ingest/json_arena.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_OFF 1
#endif
#endif

#define CHUNK_MIN (64 * 1024)
#define KEEP_MAX (1024 * 1024)  /* bytes kept between messages */

typedef struct chunk {
        struct chunk *next;
        size_t size, used;
        _Alignas(16) unsigned char data[];
} chunk;

typedef struct arena {
        int open;
        chunk *head;            /* current chunk first */
} arena;

static _Thread_local arena tl_arena;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void *arena_malloc(size_t n)
{
        arena *a = &tl_arena;
        chunk *c = a->head;

        if (!a->open)
                return malloc(n);
        n = (n + 15) & ~(size_t)15;
        if (!c || c->size - c->used < n) {
                size_t size = n > CHUNK_MIN ? n : CHUNK_MIN;

                c = malloc(sizeof(*c) + size);
                if (!c)
                        return NULL;
                c->size = size;
                c->used = 0;
                c->next = a->head;
                a->head = c;
        }
        c->used += n;
        return c->data + c->used - n;
}

static int arena_owns(const arena *a, const void *p)
{
        for (const chunk *c = a->head; c; c = c->next)
                if ((const unsigned char *)p >= c->data &&
                    (const unsigned char *)p < c->data + c->size)
                        return 1;
        return 0;
}

static void arena_free(void *p)
{
        /* arena memory goes at close; anything else was malloc'd */
        if (p && !(tl_arena.open && arena_owns(&tl_arena, p)))
                free(p);
}

static void arena_set_funcs(void)
{
        json_set_alloc_funcs(arena_malloc, arena_free);
}

void ingest_json_arena_install(void)
{
#ifndef ARENA_OFF
        pthread_once(&arena_once, arena_set_funcs);
#else
        (void)arena_once;
        (void)arena_set_funcs;
#endif
}

void ingest_json_arena_open(void)
{
#ifndef ARENA_OFF
        tl_arena.open = 1;
#endif
}

void ingest_json_arena_close(void)
{
        arena *a = &tl_arena;
        size_t kept = 0;
        chunk **pc = &a->head;

        a->open = 0;
        /* keep the first chunks for the next message, drop the rest */
        while (*pc) {
                chunk *c = *pc;

                if (kept + c->size > KEEP_MAX && kept) {
                        *pc = c->next;
                        free(c);
                        continue;
                }
                kept += c->size;
                c->used = 0;
                pc = &c->next;
        }
}

void ingest_json_free(void *p)
{
        json_malloc_t m;
        json_free_t f;

        json_get_alloc_funcs(&m, &f);
        f(p);
}
