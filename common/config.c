#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static char *config_strdup(const char *s)
{
        char *p = strdup(s);

        if (!p)
                abort();
        return p;
}

int tally_duration_parse(const char *s, int64_t *ms)
{
        char *end;
        long long v;
        int64_t mul = 1;

        errno = 0;
        if (!*s || !isdigit((unsigned char)*s))
                return -1;
        v = strtoll(s, &end, 10);
        if (errno)
                return -1;
        if (!*end || !strcmp(end, "ms"))
                mul = 1;
        else if (!strcmp(end, "s"))
                mul = 1000;
        else if (!strcmp(end, "m"))
                mul = 60000;
        else if (!strcmp(end, "h"))
                mul = 3600000;
        else if (!strcmp(end, "d"))
                mul = 86400000;
        else
                return -1;
        if (v > INT64_MAX / mul)
                return -1;
        *ms = v * mul;
        return 0;
}

static int config_windows_parse(const char *s, tally_windows *w)
{
        char tmp[256];
        char *save = NULL, *tok;

        if (strlen(s) >= sizeof(tmp))
                return -1;
        strcpy(tmp, s);
        w->n = 0;
        /* strtok would skip empty entries: "1m,,1h" and "1m," are errors */
        if (!*s || s[strlen(s) - 1] == ',' || strstr(s, ",,") || *s == ',')
                return -1;
        for (tok = strtok_r(tmp, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
                int64_t ms;

                if (w->n == TALLY_WINDOWS_MAX || !*tok ||
                    tally_duration_parse(tok, &ms) || ms < 1000)
                        return -1;
                if (w->n && (ms <= w->ms[w->n - 1] || ms % w->ms[0]))
                        return -1;
                w->ms[w->n++] = ms;
        }
        return w->n ? 0 : -1;
}

/* Sets one option from text. */
static int config_set(const tally_opt *o, void *cfg, const char *val,
                      const char *origin, tally_err *err)
{
        char *at = (char *)cfg + o->offset;
        char *end;
        long long v;
        int64_t ms;

        switch (o->type) {
        case TALLY_OPT_STR:
                free(*(char **)at);
                *(char **)at = config_strdup(val);
                return 0;
        case TALLY_OPT_INT:
                errno = 0;
                v = strtoll(val, &end, 10);
                if (errno || !*val || *end ||
                    !(isdigit((unsigned char)*val) || *val == '-'))
                        return tally_err_set(err, "bad_config",
                                "%s: '%s' is not an integer", origin,
                                o->secret ? "***" : val);
                if ((o->min || o->max) && (v < o->min || v > o->max))
                        return tally_err_set(err, "bad_config",
                                "%s: %lld is out of range [%lld, %lld]",
                                origin, v, (long long)o->min,
                                (long long)o->max);
                *(int64_t *)at = v;
                return 0;
        case TALLY_OPT_DURATION:
                if (tally_duration_parse(val, &ms))
                        return tally_err_set(err, "bad_config",
                                "%s: '%s' is not a duration (e.g. 500ms, 5s, 2m, 1h)",
                                origin, o->secret ? "***" : val);
                if ((o->min || o->max) && (ms < o->min || ms > o->max))
                        return tally_err_set(err, "bad_config",
                                "%s: %s is out of range [%lldms, %lldms]",
                                origin, o->secret ? "***" : val, (long long)o->min,
                                (long long)o->max);
                *(int64_t *)at = ms;
                return 0;
        case TALLY_OPT_BOOL:
                if (!strcmp(val, "1") || !strcasecmp(val, "true") ||
                    !strcasecmp(val, "yes"))
                        *(int *)at = 1;
                else if (!strcmp(val, "0") || !strcasecmp(val, "false") ||
                         !strcasecmp(val, "no"))
                        *(int *)at = 0;
                else
                        return tally_err_set(err, "bad_config",
                                "%s: '%s' is not a boolean (true/false)",
                                origin, val);
                return 0;
        case TALLY_OPT_WINDOWS:
                if (config_windows_parse(val, (tally_windows *)at))
                        return tally_err_set(err, "bad_config",
                                "%s: '%s' is not a window list: ascending durations >= 1s, each a multiple of the first, at most %d",
                                origin, val, TALLY_WINDOWS_MAX);
                return 0;
        }
        return tally_err_set(err, "bad_config", "%s: unknown type", origin);
}

static void config_env_name(const tally_opt *o, char *out, size_t n)
{
        const char *name = o->name;
        size_t i = 0;

        if (o->env) {
                snprintf(out, n, "%s", o->env);
                return;
        }
        i = (size_t)snprintf(out, n, "TALLY_");
        for (; *name && i + 1 < n; name++)
                out[i++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
        out[i] = '\0';
}

static void kafka_add(tally_kafka_props *kp, const char *key, size_t klen,
                      const char *val)
{
        tally_kv *kv = realloc(kp->kv, (kp->n + 1) * sizeof(*kv));

        if (!kv)
                abort();
        kp->kv = kv;
        kv[kp->n].key = strndup(key, klen);
        kv[kp->n].val = config_strdup(val);
        if (!kv[kp->n].key)
                abort();
        kp->n++;
}

/* "key=value" -> property; returns -1 when there is no '=' */
static int kafka_add_kv(tally_kafka_props *kp, const char *s)
{
        const char *eq = strchr(s, '=');

        if (!eq || eq == s)
                return -1;
        kafka_add(kp, s, (size_t)(eq - s), eq + 1);
        return 0;
}

static const tally_opt *config_find(const tally_opt *opts, size_t n,
                                    const char *name, size_t len)
{
        for (size_t i = 0; i < n; i++)
                if (strlen(opts[i].name) == len &&
                    !strncmp(opts[i].name, name, len))
                        return &opts[i];
        return NULL;
}

void tally_config_usage(FILE *out, const char *prog, const char *about,
                        const tally_opt *opts, size_t nopts, int takes_kafka)
{
        char env[96];

        fprintf(out, "Usage: %s [options]\n%s\n\nOptions (flag, environment, default):\n",
                prog, about);
        for (size_t i = 0; i < nopts; i++) {
                config_env_name(&opts[i], env, sizeof(env));
                fprintf(out, "  --%-20s %-24s default: %s\n      %s%s\n",
                        opts[i].name, env,
                        opts[i].def ? (opts[i].secret && *opts[i].def ?
                                       "(set)" : (*opts[i].def ? opts[i].def : "\"\""))
                                    : "(none)",
                        opts[i].help, opts[i].secret ? " (secret: never logged)" : "");
        }
        if (takes_kafka)
                fprintf(out, "  -X key=value               TALLY_KAFKA_<KEY>        "
                        "librdkafka property (e.g. -X security.protocol=SASL_SSL;\n"
                        "      TALLY_KAFKA_SASL_MECHANISM=PLAIN sets sasl.mechanism)\n");
        fprintf(out, "  --help                     print this help\n");
}

static int config_parse(const char *prog, const char *about,
                        const tally_opt *opts, size_t nopts, void *cfg,
                        tally_kafka_props *kafka, int argc, char **argv,
                        tally_err *err)
{
        char env[96];

        /* defaults, then environment */
        for (size_t i = 0; i < nopts; i++) {
                const char *v;

                if (opts[i].def &&
                    config_set(&opts[i], cfg, opts[i].def, opts[i].name, err))
                        return -1;
                config_env_name(&opts[i], env, sizeof(env));
                v = getenv(env);
                if (v && config_set(&opts[i], cfg, v, env, err))
                        return -1;
        }
        if (kafka) {
                for (char **e = environ; e && *e; e++) {
                        char key[256];
                        const char *eq = strchr(*e, '=');
                        size_t klen, j;

                        if (strncmp(*e, "TALLY_KAFKA_", 12) || !eq)
                                continue;
                        klen = (size_t)(eq - (*e + 12));
                        if (!klen || klen >= sizeof(key))
                                return tally_err_set(err, "bad_config",
                                        "%.*s: not a librdkafka property name",
                                        (int)(eq - *e), *e);
                        for (j = 0; j < klen; j++) {
                                char c = (*e)[12 + j];
                                key[j] = c == '_' ? '.' :
                                        (char)tolower((unsigned char)c);
                        }
                        kafka_add(kafka, key, klen, eq + 1);
                }
        }
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *val = NULL, *eq;
                const tally_opt *o;
                size_t len;

                if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
                        tally_config_usage(stdout, prog, about, opts, nopts,
                                           kafka != NULL);
                        return 1;
                }
                if (!strcmp(a, "-X")) {
                        if (!kafka)
                                return tally_err_set(err, "bad_config",
                                        "-X: %s takes no librdkafka properties", prog);
                        if (i + 1 >= argc || kafka_add_kv(kafka, argv[i + 1]))
                                return tally_err_set(err, "bad_config",
                                        "-X: expected key=value");
                        i++;
                        continue;
                }
                if (strncmp(a, "--", 2))
                        return tally_err_set(err, "bad_config",
                                "unexpected argument '%s' (see --help)", a);
                a += 2;
                eq = strchr(a, '=');
                len = eq ? (size_t)(eq - a) : strlen(a);
                o = config_find(opts, nopts, a, len);
                if (!o)
                        return tally_err_set(err, "bad_config",
                                "--%.*s: unknown option (see --help)", (int)len, a);
                if (eq)
                        val = eq + 1;
                else if (o->type == TALLY_OPT_BOOL &&
                         (i + 1 >= argc || argv[i + 1][0] == '-'))
                        val = "true";
                else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2))
                        val = argv[++i];
                else
                        return tally_err_set(err, "bad_config",
                                "--%s: missing value", o->name);
                snprintf(env, sizeof(env), "--%s", o->name);
                if (config_set(o, cfg, val, env, err))
                        return -1;
        }
        return 0;
}

int tally_config_parse(const char *prog, const char *about,
                       const tally_opt *opts, size_t nopts, void *cfg,
                       tally_kafka_props *kafka, int argc, char **argv,
                       tally_err *err)
{
        int rc = config_parse(prog, about, opts, nopts, cfg, kafka, argc,
                              argv, err);

        /* --help or an error: the caller exits at once; nothing is kept */
        if (rc)
                tally_config_free(opts, nopts, cfg, kafka);
        return rc;
}

void tally_config_free(const tally_opt *opts, size_t nopts, void *cfg,
                       tally_kafka_props *kafka)
{
        for (size_t i = 0; i < nopts; i++) {
                if (opts[i].type == TALLY_OPT_STR) {
                        char **p = (char **)((char *)cfg + opts[i].offset);
                        free(*p);
                        *p = NULL;
                }
        }
        if (kafka) {
                for (size_t i = 0; i < kafka->n; i++) {
                        free(kafka->kv[i].key);
                        free(kafka->kv[i].val);
                }
                free(kafka->kv);
                kafka->kv = NULL;
                kafka->n = 0;
        }
}

void tally_kafka_props_prepend(tally_kafka_props *k,
                               const char *const (*d)[2], size_t n)
{
        tally_kv *kv = realloc(k->kv, (k->n + n) * sizeof(*kv));

        if (!kv)
                abort();
        memmove(kv + n, kv, k->n * sizeof(*kv));
        for (size_t i = 0; i < n; i++) {
                kv[i].key = strdup(d[i][0]);
                kv[i].val = strdup(d[i][1]);
                if (!kv[i].key || !kv[i].val)
                        abort();
        }
        k->kv = kv;
        k->n += n;
}
