/* ingest/json_arena.h -- jansson's allocations come from a per-thread bump
 * arena while the decoder works on one message, and are released all at
 * once when it is done: jansson builds and frees a tree of small objects
 * per message, and malloc/free were a fifth of ingest's CPU.
 *
 * json_arena_install sets jansson's (process-wide) allocation functions
 * once; outside an open arena they are plain malloc/free, so other jansson
 * users in the process are unaffected. Each thread has its own arena
 * (thread-local), reused from message to message. Under AddressSanitizer
 * the arena is off, so the sanitizer sees every allocation. */
#pragma once

void ingest_json_arena_install(void);
/* This thread's jansson allocations come from its arena from now on. */
void ingest_json_arena_open(void);
/* Releases everything allocated since open (memory is kept for reuse;
 * objects still referenced must not be used after this). */
void ingest_json_arena_close(void);
/* Frees memory that jansson allocated (e.g. json_dumps output). */
void ingest_json_free(void *p);
