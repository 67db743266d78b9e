/* store/registrar.c -- series registration ahead of the batch (see
 * registrar.h). */
#include "store/registrar.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "store/pg.h"

/* offers waiting together make one registration round trip set; a round
 * taken as soon as one offer arrives would register a few series at a
 * time while the worker reads thousands */
#define GATHER 1024
#define GATHER_WAIT_MS 2

struct offer {
        int64_t id;
        uint64_t check;
        char *names;                    /* site NUL device NUL metric NUL */
};

struct done {
        int64_t id;
        uint64_t check;
};

struct store_registrar {
        char *conninfo;
        char who[32];
        PGconn *conn;                   /* registrar thread only */
        pthread_t th;
        int started;
        pthread_mutex_t mu;
        pthread_cond_t wake;            /* to the registrar: offers, stop */
        pthread_cond_t idle;            /* to the worker: a round is done */
        struct offer *pending;          /* under mu */
        size_t npending, cap_pending;
        struct done *done;              /* under mu */
        size_t ndone, cap_done;
        int busy, stop;                 /* under mu */
        store_series_set offered;       /* worker thread only */
};

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
        if (need <= *cap)
                return p;
        *cap = *cap ? *cap * 2 : 1024;
        if (*cap < need)
                *cap = need;
        p = realloc(p, *cap * size);
        if (!p)
                abort();
        return p;
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
        clock_gettime(CLOCK_REALTIME, ts);
        ts->tv_nsec += (long)(ms % 1000) * 1000000;
        ts->tv_sec += ms / 1000 + ts->tv_nsec / 1000000000;
        ts->tv_nsec %= 1000000000;
}

/* Registers one round; returns how many of them went to done[] (the
 * caller appends them under the mutex). Failures leave the series to
 * the worker's own registration. */
static size_t register_round(store_registrar *r, const struct offer *o,
                             size_t n, struct done *out)
{
        store_series_new *nv = malloc(n * sizeof(*nv));
        unsigned char *bad = malloc(n);
        tally_buf scratch = TALLY_BUF_INIT;
        tally_err err;
        size_t nout = 0;
        store_pg_rc rc;

        if (!nv || !bad)
                abort();
        for (size_t i = 0; i < n; i++) {
                const char *site = o[i].names;
                const char *device = site + strlen(site) + 1;

                nv[i] = (store_series_new){o[i].id, site, device,
                                           device + strlen(device) + 1};
        }
        if (!r->conn) {
                r->conn = store_pg_connect(r->conninfo, &err);
                if (r->conn && store_series_prepare(r->conn, &err)) {
                        PQfinish(r->conn);
                        r->conn = NULL;
                }
                if (!r->conn) {
                        tally_log_debug("registrar_skipped", "who=%s error=\"%s\"",
                                        r->who, err.msg);
                        goto out;
                }
        }
        rc = store_series_register(r->conn, nv, n, bad, &scratch, &err);
        if (rc != STORE_PG_OK) {
                tally_log_debug("registrar_skipped", "who=%s error=\"%s\"",
                                r->who, err.msg);
                if (PQstatus(r->conn) != CONNECTION_OK) {
                        PQfinish(r->conn);
                        r->conn = NULL;
                }
                goto out;
        }
        for (size_t i = 0; i < n; i++)
                if (!bad[i])
                        out[nout++] = (struct done){o[i].id, o[i].check};
out:
        tally_buf_free(&scratch);
        free(nv);
        free(bad);
        return nout;
}

static void *registrar_main(void *arg)
{
        store_registrar *r = arg;
        struct offer *take = NULL;
        struct done *res = NULL;
        size_t cap_take = 0, cap_res = 0;

        pthread_mutex_lock(&r->mu);
        for (;;) {
                size_t n, nres;

                while (!r->stop && !r->npending)
                        pthread_cond_wait(&r->wake, &r->mu);
                if (r->stop)
                        break;
                if (r->npending < GATHER) {
                        struct timespec ts;

                        deadline_in(&ts, GATHER_WAIT_MS);
                        while (!r->stop && r->npending < GATHER &&
                               pthread_cond_timedwait(&r->wake, &r->mu,
                                                      &ts) != ETIMEDOUT)
                                ;
                }
                n = r->npending;
                take = grow(take, &cap_take, n, sizeof(*take));
                memcpy(take, r->pending, n * sizeof(*take));
                r->npending = 0;
                r->busy = 1;
                pthread_mutex_unlock(&r->mu);

                res = grow(res, &cap_res, n, sizeof(*res));
                nres = register_round(r, take, n, res);
                for (size_t i = 0; i < n; i++)
                        free(take[i].names);

                pthread_mutex_lock(&r->mu);
                if (nres) {
                        r->done = grow(r->done, &r->cap_done, r->ndone + nres,
                                       sizeof(*r->done));
                        memcpy(r->done + r->ndone, res, nres * sizeof(*res));
                        r->ndone += nres;
                }
                r->busy = 0;
                pthread_cond_broadcast(&r->idle);
        }
        pthread_mutex_unlock(&r->mu);
        free(take);
        free(res);
        return NULL;
}

store_registrar *store_registrar_start(const char *conninfo, const char *who)
{
        store_registrar *r = calloc(1, sizeof(*r));

        if (!r)
                abort();
        r->conninfo = strdup(conninfo);
        if (!r->conninfo)
                abort();
        snprintf(r->who, sizeof(r->who), "%s-registrar", who);
        pthread_mutex_init(&r->mu, NULL);
        pthread_cond_init(&r->wake, NULL);
        pthread_cond_init(&r->idle, NULL);
        store_series_set_init(&r->offered);
        if (pthread_create(&r->th, NULL, registrar_main, r)) {
                store_registrar_free(r);
                return NULL;
        }
        r->started = 1;
        return r;
}

void store_registrar_offer(store_registrar *r, int64_t id, uint64_t check,
                           const char *site, const char *device,
                           const char *metric)
{
        size_t ls = strlen(site) + 1, ld = strlen(device) + 1,
               lm = strlen(metric) + 1;
        uint64_t seen;
        char *names;

        if (store_series_set_find(&r->offered, id, &seen))
                return;
        store_series_set_put(&r->offered, id, check);
        names = malloc(ls + ld + lm);
        if (!names)
                abort();
        memcpy(names, site, ls);
        memcpy(names + ls, device, ld);
        memcpy(names + ls + ld, metric, lm);
        pthread_mutex_lock(&r->mu);
        r->pending = grow(r->pending, &r->cap_pending, r->npending + 1,
                          sizeof(*r->pending));
        r->pending[r->npending++] = (struct offer){id, check, names};
        if (r->npending == 1 || r->npending == GATHER)
                pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->mu);
}

void store_registrar_collect(store_registrar *r, store_series_set *known)
{
        pthread_mutex_lock(&r->mu);
        if (r->npending)
                pthread_cond_signal(&r->wake);
        while (r->npending || r->busy)
                pthread_cond_wait(&r->idle, &r->mu);
        for (size_t i = 0; i < r->ndone; i++)
                store_series_set_put(known, r->done[i].id, r->done[i].check);
        r->ndone = 0;
        pthread_mutex_unlock(&r->mu);
}

void store_registrar_free(store_registrar *r)
{
        if (!r)
                return;
        if (r->started) {
                pthread_mutex_lock(&r->mu);
                r->stop = 1;
                pthread_cond_signal(&r->wake);
                pthread_mutex_unlock(&r->mu);
                pthread_join(r->th, NULL);
        }
        for (size_t i = 0; i < r->npending; i++)
                free(r->pending[i].names);
        free(r->pending);
        free(r->done);
        PQfinish(r->conn);
        store_series_set_free(&r->offered);
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->wake);
        pthread_cond_destroy(&r->idle);
        free(r->conninfo);
        free(r);
}
