/* store/series.c -- series ids and their registration (see series.h). */
#include "store/series.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "store/copybin.h"

static uint64_t fnv_names(uint64_t h, const char *site, const char *device,
                          const char *metric)
{
        const char *part[3] = {site, device, metric};

        for (int i = 0; i < 3; i++) {
                for (const unsigned char *p = (const unsigned char *)part[i];
                     *p; p++) {
                        h ^= *p;
                        h *= UINT64_C(0x100000001b3);
                }
                h *= UINT64_C(0x100000001b3);   /* the NUL separator */
        }
        return h;
}

static uint64_t mix64(uint64_t h)
{
        h ^= h >> 30;
        h *= UINT64_C(0xbf58476d1ce4e5b9);
        h ^= h >> 27;
        h *= UINT64_C(0x94d049bb133111eb);
        h ^= h >> 31;
        return h;
}

/* FNV-1a 64 over site NUL device NUL metric, then the splitmix64
 * finalizer; the top bit is dropped and 0 becomes 1. Stored in every
 * rollup row: never change it (docs/schema.md). */
int64_t store_series_id(const char *site, const char *device,
                        const char *metric)
{
        uint64_t h = mix64(fnv_names(UINT64_C(0xcbf29ce484222325), site,
                                     device, metric));

        h &= UINT64_C(0x7fffffffffffffff);
        return h ? (int64_t)h : 1;
}

/* the same walk from another basis, finalized differently */
uint64_t store_series_check(const char *site, const char *device,
                            const char *metric)
{
        uint64_t h = fnv_names(UINT64_C(0x84222325cbf29ce4), site, device,
                               metric);

        return mix64(h ^ UINT64_C(0x5851f42d4c957f2d)) + h;
}

/* ---- the set of registered ids ------------------------------------------ */

#define SET_MAX_USED ((size_t)2 << 20)

void store_series_set_init(store_series_set *s)
{
        memset(s, 0, sizeof(*s));
}

void store_series_set_free(store_series_set *s)
{
        free(s->slot);
        memset(s, 0, sizeof(*s));
}

void store_series_set_clear(store_series_set *s)
{
        if (s->cap)
                memset(s->slot, 0, s->cap * sizeof(*s->slot));
        s->used = 0;
}

static size_t set_home(const store_series_set *s, int64_t id)
{
        return (size_t)(((uint64_t)id * UINT64_C(0x9e3779b97f4a7c15)) >> 20) &
               (s->cap - 1);
}

int store_series_set_find(const store_series_set *s, int64_t id,
                          uint64_t *check)
{
        if (!s->cap)
                return 0;
        for (size_t i = set_home(s, id); s->slot[i].id;
             i = (i + 1) & (s->cap - 1)) {
                if (s->slot[i].id == id) {
                        *check = s->slot[i].check;
                        return 1;
                }
        }
        return 0;
}

/* doubles the table (at least 4096 slots), keeping every entry */
static void set_grow(store_series_set *s)
{
        struct store_series_slot *old = s->slot;
        size_t ocap = s->cap;

        s->cap = s->cap ? s->cap * 2 : 4096;
        s->slot = calloc(s->cap, sizeof(*s->slot));
        if (!s->slot)
                abort();
        s->used = 0;
        for (size_t i = 0; i < ocap; i++)
                if (old[i].id)
                        store_series_set_put(s, old[i].id, old[i].check);
        free(old);
}

void store_series_set_put(store_series_set *s, int64_t id, uint64_t check)
{
        size_t i;

        if (s->used >= SET_MAX_USED)
                store_series_set_clear(s);
        if ((s->used + 1) * 2 > s->cap)         /* load <= 1/2 */
                set_grow(s);
        for (i = set_home(s, id); s->slot[i].id; i = (i + 1) & (s->cap - 1))
                if (s->slot[i].id == id)
                        break;
        if (!s->slot[i].id)
                s->used++;
        s->slot[i].id = id;
        s->slot[i].check = check;
}

/* ---- registration ------------------------------------------------------- */

store_pg_rc store_series_prepare(PGconn *conn, tally_err *err)
{
        return store_pg_exec(conn,
                "CREATE TEMP TABLE IF NOT EXISTS store_series_stage ("
                " id bigint, site text, device text, metric text)",
                "series staging table", err);
}

static int64_t id_at(PGresult *res, int row)
{
        return strtoll(PQgetvalue(res, row, 0), NULL, 10);
}

/* binary COPY data (id, site, device, metric) of the series of nv whose
 * skip[i] is 0 (all of them when skip is NULL) */
static void copy_data(tally_buf *out, const store_series_new *nv, size_t n,
                      const unsigned char *skip)
{
        tally_buf_reset(out);
        store_copybin_header(out);
        for (size_t i = 0; i < n; i++) {
                if (skip && skip[i])
                        continue;
                store_copybin_tuple(out, 4);
                store_copybin_int8(out, nv[i].id);
                store_copybin_text(out, nv[i].site);
                store_copybin_text(out, nv[i].device);
                store_copybin_text(out, nv[i].metric);
        }
        store_copybin_trailer(out);
}

/* The usual way, cheaper than staging: one query for the ids already
 * registered (their names compared here), then the others copied
 * straight into tally.series, in one transaction. STORE_PG_UNIQUE: one
 * was registered meanwhile by someone else (rolled back; the caller
 * stages instead). bad[i]: registered under other names. */
static store_pg_rc register_direct(PGconn *conn, const store_series_new *nv,
                                   size_t n, unsigned char *bad,
                                   tally_buf *scratch, tally_err *err)
{
        enum { ABSENT = 0, OTHER_NAMES = 1, PRESENT = 2 };
        store_series_set where = {0};   /* id -> index in nv */
        const char *param;
        PGresult *res;
        store_pg_rc rc;
        size_t missing = n;

        tally_buf_reset(scratch);
        for (size_t i = 0; i < n; i++) {
                tally_buf_printf(scratch, "%c%" PRId64, i ? ',' : '{',
                                 nv[i].id);
                store_series_set_put(&where, nv[i].id, i);
        }
        tally_buf_append(scratch, "}", 2);
        param = (const char *)scratch->data;
        if ((rc = store_pg_exec(conn, "BEGIN", "series begin", err)))
                goto out;
        res = PQexecParams(conn, "SELECT id, site, device, metric"
                           " FROM tally.series WHERE id = ANY($1::bigint[])",
                           1, NULL, &param, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                rc = store_pg_fail(conn, res, "series lookup", err);
                PQclear(res);
                goto fail;
        }
        for (int r = 0; r < PQntuples(res); r++) {
                uint64_t i;

                if (!store_series_set_find(&where, id_at(res, r), &i))
                        continue;       /* not asked for: cannot happen */
                bad[i] = strcmp(PQgetvalue(res, r, 1), nv[i].site) ||
                         strcmp(PQgetvalue(res, r, 2), nv[i].device) ||
                         strcmp(PQgetvalue(res, r, 3), nv[i].metric) ?
                         OTHER_NAMES : PRESENT;
                missing--;
        }
        PQclear(res);
        if (missing) {
                copy_data(scratch, nv, n, bad);
                if ((rc = store_pg_copy(conn, "COPY tally.series (id, site,"
                                        " device, metric) FROM STDIN"
                                        " (FORMAT binary)", scratch,
                                        "series copy", err)))
                        goto fail;
        }
        if ((rc = store_pg_exec(conn, "COMMIT", "series commit", err)))
                goto fail;
        for (size_t i = 0; i < n; i++)
                bad[i] = bad[i] == OTHER_NAMES;
        goto out;
fail:
        if (PQstatus(conn) == CONNECTION_OK)
                PQclear(PQexec(conn, "ROLLBACK"));
out:
        store_series_set_free(&where);
        return rc;
}

/* One transaction: stage, insert the missing ones (RETURNING what was
 * inserted: ours by construction), then compare the names of the others
 * -- registered before, maybe by another process -- in a new statement,
 * whose snapshot sees what others committed meanwhile. A worker that
 * starts on a known database pays that comparison once per series. */
store_pg_rc store_series_register(PGconn *conn, const store_series_new *nv,
                                  size_t n, unsigned char *bad,
                                  tally_buf *scratch, tally_err *err)
{
        PGresult *res;
        store_pg_rc rc;
        size_t others = n;

        if (!n)
                return STORE_PG_OK;
        memset(bad, 0, n);
        rc = register_direct(conn, nv, n, bad, scratch, err);
        if (rc != STORE_PG_UNIQUE)
                return rc;
        memset(bad, 0, n);
        copy_data(scratch, nv, n, NULL);
        if ((rc = store_pg_exec(conn, "BEGIN; TRUNCATE store_series_stage",
                                "series begin", err)))
                goto fail;
        if ((rc = store_pg_copy(conn, "COPY store_series_stage FROM STDIN"
                                " (FORMAT binary)", scratch, "series copy",
                                err)))
                goto fail;
        res = PQexec(conn, "INSERT INTO tally.series (id, site, device, metric)"
                           " SELECT id, site, device, metric"
                           " FROM store_series_stage"
                           " ON CONFLICT (id) DO NOTHING RETURNING id");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                rc = store_pg_fail(conn, res, "series insert", err);
                PQclear(res);
                goto fail;
        }
        others -= (size_t)PQntuples(res);
        PQclear(res);
        if (others) {
                res = PQexec(conn, "SELECT n.id FROM store_series_stage n"
                                   " JOIN tally.series s ON s.id = n.id"
                                   " WHERE (s.site, s.device, s.metric)"
                                   " IS DISTINCT FROM"
                                   " (n.site, n.device, n.metric)");
                if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                        rc = store_pg_fail(conn, res, "series check", err);
                        PQclear(res);
                        goto fail;
                }
                for (int r = 0; r < PQntuples(res); r++)
                        for (size_t i = 0; i < n; i++)
                                if (nv[i].id == id_at(res, r))
                                        bad[i] = 1;
                PQclear(res);
        }
        if ((rc = store_pg_exec(conn, "COMMIT", "series commit", err)))
                goto fail;
        return STORE_PG_OK;
fail:
        if (PQstatus(conn) == CONNECTION_OK)
                PQclear(PQexec(conn, "ROLLBACK"));
        return rc;
}
