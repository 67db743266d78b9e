#include "common/ckpt.h"

#include <stdlib.h>
#include <string.h>

struct tally_ckpt {
        tally_ckpt *next;
        long outstanding;
        int npos;
        tally_ckpt_pos *pos;
};

tally_ckpt *tally_ckpt_open(tally_ckpt_queue *q)
{
        if (!q->cur) {
                q->cur = calloc(1, sizeof(*q->cur));
                if (!q->cur)
                        abort();
        }
        return q->cur;
}

void tally_ckpt_sent(tally_ckpt *c)
{
        c->outstanding++;
}

void tally_ckpt_acked(tally_ckpt *c)
{
        c->outstanding--;
}

void tally_ckpt_seal(tally_ckpt_queue *q, const tally_ckpt_pos *pos, int n)
{
        tally_ckpt *c = q->cur;

        if (!c)
                return;
        c->pos = malloc((size_t)(n ? n : 1) * sizeof(*pos));
        if (!c->pos)
                abort();
        memcpy(c->pos, pos, (size_t)n * sizeof(*pos));
        c->npos = n;
        if (q->tail)
                q->tail->next = c;
        else
                q->head = c;
        q->tail = c;
        q->cur = NULL;
}

int tally_ckpt_pop_done(tally_ckpt_queue *q, tally_ckpt_pos **pos)
{
        int n = 0;

        *pos = NULL;
        while (q->head && q->head->outstanding == 0) {
                tally_ckpt *c = q->head;

                q->head = c->next;
                if (!q->head)
                        q->tail = NULL;
                free(*pos);
                *pos = c->pos;          /* later seals supersede */
                n = c->npos;
                free(c);
        }
        return n;
}

long tally_ckpt_pending(const tally_ckpt_queue *q)
{
        long n = q->cur ? q->cur->outstanding : 0;

        for (const tally_ckpt *c = q->head; c; c = c->next)
                n += c->outstanding;
        return n;
}

int tally_ckpt_wait_ms(const tally_ckpt_queue *q, int64_t last_commit_ms,
                       int64_t commit_ms, int64_t now_ms, int64_t limit_ms)
{
        int64_t t = limit_ms;

        if (q->head) {
                int64_t due = tally_ckpt_pending(q) > 0 ? 5 :
                              last_commit_ms + commit_ms - now_ms;
                if (due < t)
                        t = due;
        }
        return t < 0 ? 0 : (int)t;
}

void tally_ckpt_queue_free(tally_ckpt_queue *q)
{
        while (q->head) {
                tally_ckpt *c = q->head;
                q->head = c->next;
                free(c->pos);
                free(c);
        }
        if (q->cur) {
                free(q->cur->pos);
                free(q->cur);
        }
        q->cur = q->tail = NULL;
}
