/* common/ckpt.h -- checkpoints of at-least-once stages. Everything a
 * worker produces between two seals belongs to one checkpoint; the seal
 * records the positions to commit (partition, next offset, a value for the
 * commit metadata). Checkpoints complete in order, once every record they
 * contain is acknowledged; only completed positions may be committed.
 * Owned by one worker thread (delivery reports are served by that thread's
 * own rd_kafka_poll), so nothing here is locked. */
#pragma once
#include <stdint.h>

typedef struct tally_ckpt_pos {
        int32_t partition;
        int64_t offset;                 /* next offset to read after restart */
        int64_t value;                  /* goes into the commit metadata */
} tally_ckpt_pos;

typedef struct tally_ckpt tally_ckpt;

typedef struct tally_ckpt_queue {
        tally_ckpt *cur;                /* open, not sealed yet */
        tally_ckpt *head, *tail;        /* sealed, oldest first */
} tally_ckpt_queue;

/* The open checkpoint (created on first use): pass it as msg_opaque and
 * call tally_ckpt_sent once per record produced. */
tally_ckpt *tally_ckpt_open(tally_ckpt_queue *q);
void tally_ckpt_sent(tally_ckpt *c);
/* From the delivery report of a record produced with c as opaque. */
void tally_ckpt_acked(tally_ckpt *c);
/* Seals the open checkpoint (if any) with a copy of pos[0..n). */
void tally_ckpt_seal(tally_ckpt_queue *q, const tally_ckpt_pos *pos, int n);
/* Pops every completed checkpoint at the head; *pos gets the newest
 * completed positions (malloc'd or NULL: the caller frees it in any case).
 * Returns their count. */
int tally_ckpt_pop_done(tally_ckpt_queue *q, tally_ckpt_pos **pos);
/* Records not yet acknowledged in sealed and open checkpoints. */
long tally_ckpt_pending(const tally_ckpt_queue *q);
/* How long a worker may wait for input before the queue needs it again:
 * ~5 ms while sealed records wait for their acknowledgement, until
 * last_commit_ms + commit_ms while acknowledged checkpoints wait for a
 * commit; at most limit_ms, never below 0. */
int tally_ckpt_wait_ms(const tally_ckpt_queue *q, int64_t last_commit_ms,
                       int64_t commit_ms, int64_t now_ms, int64_t limit_ms);
void tally_ckpt_queue_free(tally_ckpt_queue *q);
