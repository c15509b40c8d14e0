/* tensor/random.c: the one seeded generator, Philox-4x32-10 (counter based, key = seed). A fill
 * of n elements takes the counters offset .. offset + n/per - 1: element i uses counter
 * offset + i/per, where per = elements drawn from one counter's 4 words, so a result depends on
 * the seed and the fills before it, never on the thread count. */
#include "tide.h"

#include <math.h>
#include <string.h>

static uint64_t seed = 0x5eed, offset;

void td_manual_seed(uint64_t s) {
    seed = s;
    offset = 0;
}

uint64_t td_seed(void) {
    return seed;
}

void td_rng_get_state(uint64_t st[2]) {
    st[0] = seed;
    st[1] = offset;
}

void td_rng_set_state(const uint64_t st[2]) {
    seed = st[0];
    offset = st[1];
}

/* Random123's Philox4x32 with 10 rounds; the counter's high 64 bits are always 0. */
static inline void philox(uint64_t ctr, uint64_t key, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* philox() on LANES consecutive counters, lane-inner so the rounds vectorise (64-bit lanes
 * holding 32-bit words: the widening multiply then maps onto vpmuludq). */
#define LANES 16
static inline void philox_block(uint64_t ctr, uint64_t key, uint32_t w[LANES][4]) {
    uint64_t c0[LANES], c1[LANES], c2[LANES] = {0}, c3[LANES] = {0};
    uint64_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int l = 0; l < LANES; l++) {
        c0[l] = (uint32_t)(ctr + (uint64_t)l);
        c1[l] = (uint32_t)((ctr + (uint64_t)l) >> 32);
    }
    for (int r = 0; r < 10; r++) {
#pragma omp simd
        for (int l = 0; l < LANES; l++) {
            uint64_t p0 = 0xD2511F53u * c0[l], p1 = 0xCD9E8D57u * c2[l];
            uint64_t n0 = (p1 >> 32) ^ c1[l] ^ k0, n2 = (p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = p1 & 0xffffffffu;
            c3[l] = p0 & 0xffffffffu;
            c0[l] = n0;
            c2[l] = n2;
        }
        k0 = (k0 + 0x9E3779B9u) & 0xffffffffu;
        k1 = (k1 + 0xBB67AE85u) & 0xffffffffu;
    }
    for (int l = 0; l < LANES; l++) {
        w[l][0] = (uint32_t)c0[l], w[l][1] = (uint32_t)c1[l];
        w[l][2] = (uint32_t)c2[l], w[l][3] = (uint32_t)c3[l];
    }
}

/* Reserves n counters for one fill: the next fill starts after them. */
static uint64_t take(uint64_t n) {
    uint64_t base = offset;
    offset += n;
    return base;
}

enum { UNIFORM, NORMAL, RANDINT, BERNOULLI };

typedef struct gen {
    int kind, per; /* per: elements drawn from one counter (4 words) */
    td_dtype dt;   /* of the contiguous buffer written */
    double a, b;   /* lo, hi / mean, std */
    int64_t lo;    /* randint */
    uint64_t span; /* randint: hi - lo + 1; 0 means all 2^64 values */
    uint64_t thr;  /* bernoulli: a word below thr gives 1 */
    uint64_t base, key;
} gen;

static inline uint64_t bits53(uint32_t hi, uint32_t lo) {
    return ((uint64_t)(hi >> 5) << 26) | (lo >> 6);
}

static inline void store_int(void *out, td_dtype dt, int64_t i, int64_t v) {
    switch (dt) {
    case TD_FLOAT32:
        ((float *)out)[i] = (float)v;
        break;
    case TD_FLOAT64:
        ((double *)out)[i] = (double)v;
        break;
    case TD_INT64:
        ((int64_t *)out)[i] = v;
        break;
    case TD_UINT8:
        ((uint8_t *)out)[i] = (uint8_t)v;
        break;
    case TD_INT8:
        ((int8_t *)out)[i] = (int8_t)v;
        break;
    default:
        ((bool *)out)[i] = v != 0;
        break;
    }
}

/* Writes elements i .. i+k-1 (k <= g->per) from the 4 words w of counter i / g->per: a whole
 * block is computed (fixed trip counts vectorise), the tail of the last one is dropped. */
static inline void emit(const gen *g, void *out, int64_t i, int k, const uint32_t *w) {
    float f[4];
    double d[2];
    int64_t v[4];
    switch (g->kind * TD_NDTYPES + (g->kind < RANDINT ? (int)g->dt : 0)) {
    case UNIFORM *TD_NDTYPES + TD_FLOAT32: {
        float lo = (float)g->a, span = (float)(g->b - g->a);
        for (int j = 0; j < 4; j++) f[j] = lo + span * ((float)(w[j] >> 8) * 0x1p-24f);
        memcpy((float *)out + i, f, (size_t)k * sizeof *f);
        return;
    }
    case UNIFORM *TD_NDTYPES + TD_FLOAT64:
        for (int j = 0; j < 2; j++)
            d[j] = g->a + (g->b - g->a) * ((double)bits53(w[2 * j], w[2 * j + 1]) * 0x1p-53);
        memcpy((double *)out + i, d, (size_t)k * sizeof *d);
        return;
    case NORMAL *TD_NDTYPES + TD_FLOAT32: /* Box-Muller: words (0,1) and (2,3) give 2 each */
        for (int j = 0; j < 4; j += 2) {
            float u1 = (float)((w[j] >> 8) + 1) * 0x1p-24f, u2 = (float)(w[j + 1] >> 8) * 0x1p-24f;
            float r = sqrtf(-2.0f * logf(u1)) * (float)g->b, th = 6.2831853f * u2;
            f[j] = (float)g->a + r * cosf(th);
            f[j + 1] = (float)g->a + r * sinf(th);
        }
        memcpy((float *)out + i, f, (size_t)k * sizeof *f);
        return;
    case NORMAL *TD_NDTYPES + TD_FLOAT64: {
        double u1 = (double)(bits53(w[0], w[1]) + 1) * 0x1p-53;
        double u2 = (double)bits53(w[2], w[3]) * 0x1p-53;
        double r = sqrt(-2.0 * log(u1)) * g->b, th = 6.283185307179586 * u2;
        d[0] = g->a + r * cos(th);
        d[1] = g->a + r * sin(th);
        memcpy((double *)out + i, d, (size_t)k * sizeof *d);
        return;
    }
    case RANDINT *TD_NDTYPES: /* Lemire's multiply-shift: bias below span / 2^64 */
        for (int j = 0; j < 2; j++) {
            uint64_t r = ((uint64_t)w[2 * j] << 32) | w[2 * j + 1];
            uint64_t off = g->span ? (uint64_t)(((unsigned __int128)r * g->span) >> 64) : r;
            v[j] = (int64_t)((uint64_t)g->lo + off);
        }
        break;
    default: /* BERNOULLI */
        for (int j = 0; j < 4; j++) v[j] = w[j] < g->thr;
        break;
    }
    for (int j = 0; j < k; j++) store_int(out, g->dt, i + j, v[j]);
}

/* Counters per chunk between interrupt polls; each chunk runs on all threads. */
#define CHUNK ((int64_t)1 << 20) /* a multiple of LANES */

static int run(gen *g, td_tensor *t) {
    static const char *const names[] = {"uniform_", "normal_", "randint", "bernoulli_"};
    if (td_check_writable(names[g->kind], t) < 0) return -1;
    int64_t n = td_numel(t);
    int64_t nc = (n + g->per - 1) / g->per;
    td_tensor *buf = t;
    if (!td_is_contiguous(t) && !(buf = td_empty(t->shape, t->ndim, t->dtype))) return -1;
    g->dt = buf->dtype;
    g->base = take((uint64_t)nc);
    g->key = seed;
    void *out = td_data(buf);
    int rc = 0;
    for (int64_t c0 = 0; c0 < nc && rc == 0; c0 += CHUNK) {
        int64_t c1 = c0 + CHUNK < nc ? c0 + CHUNK : nc;
#pragma omp parallel for schedule(static) if ((c1 - c0) * g->per >= TD_PAR_GRAIN)
        for (int64_t cb = c0; cb < c1; cb += LANES) {
            uint32_t w[LANES][4];
            philox_block(g->base + (uint64_t)cb, g->key, w);
            for (int l = 0; l < LANES && cb + l < c1; l++) {
                int64_t i = (cb + l) * g->per;
                emit(g, out, i, (int)(n - i < g->per ? n - i : g->per), w[l]);
            }
        }
        rc = td_poll_interrupt();
    }
    if (buf != t) {
        if (rc == 0) rc = td_copy_into(t, buf);
        td_release(buf);
    }
    if (rc == 0) td_bump_version(t);
    return rc;
}

int td_fill_uniform(td_tensor *t, double lo, double hi) {
    if (!td_dtype_is_float(t->dtype))
        return td_error("uniform: expected a float32 or float64 tensor, got %s",
                        td_dtype_name(t->dtype));
    if (!isfinite(lo) || !isfinite(hi) || hi < lo)
        return td_error("uniform: expected finite lo <= hi, got [%g, %g)", lo, hi);
    gen g = {.kind = UNIFORM, .per = t->dtype == TD_FLOAT64 ? 2 : 4, .a = lo, .b = hi};
    return run(&g, t);
}

int td_fill_normal(td_tensor *t, double mean, double std) {
    if (!td_dtype_is_float(t->dtype))
        return td_error("normal: expected a float32 or float64 tensor, got %s",
                        td_dtype_name(t->dtype));
    if (!isfinite(mean) || !isfinite(std) || std < 0)
        return td_error("normal: expected a finite mean and std >= 0, got mean %g, std %g", mean,
                        std);
    gen g = {.kind = NORMAL, .per = t->dtype == TD_FLOAT64 ? 2 : 4, .a = mean, .b = std};
    return run(&g, t);
}

int td_fill_randint(td_tensor *t, int64_t lo, int64_t hi) {
    if (hi < lo)
        return td_error("randint: empty range [%lld, %lld] (expected lo <= hi)", (long long)lo,
                        (long long)hi);
    int64_t max = t->dtype == TD_BOOL ? 1 : t->dtype == TD_UINT8 ? 255 : t->dtype == TD_INT8 ? 127 : INT64_MAX;
    int64_t min = t->dtype == TD_BOOL || t->dtype == TD_UINT8 ? 0 : t->dtype == TD_INT8 ? -128 : INT64_MIN;
    if (lo < min || hi > max)
        return td_error("randint: range [%lld, %lld] does not fit a %s tensor", (long long)lo,
                        (long long)hi, td_dtype_name(t->dtype));
    gen g = {.kind = RANDINT, .per = 2, .lo = lo, .span = (uint64_t)hi - (uint64_t)lo + 1};
    return run(&g, t);
}

int td_fill_bernoulli(td_tensor *t, double p) {
    if (!(p >= 0 && p <= 1)) return td_error("bernoulli: expected p in [0, 1], got %g", p);
    gen g = {.kind = BERNOULLI, .per = 4, .thr = (uint64_t)(p * 0x1p32)};
    return run(&g, t);
}

/* Fisher-Yates on counters base.. of key `key`: the global stream's, or a private one. */
static td_tensor *randperm(int64_t n, uint64_t key, bool global) {
    if (n < 0) {
        td_error("randperm: expected n >= 0, got %lld", (long long)n);
        return NULL;
    }
    td_tensor *t = td_empty(&n, 1, TD_INT64);
    if (!t) return NULL;
    int64_t *p = td_data(t);
    for (int64_t i = 0; i < n; i++) p[i] = i + 1; /* 1-based, like every index tensor */
    uint64_t base = global ? take((uint64_t)(n + 1) / 2) : 0;
    uint32_t w[4] = {0};
    for (int64_t d = 0; d < n - 1; d++) { /* Fisher-Yates from the end; draw d: 2 words */
        if (d % 2 == 0) philox(base + (uint64_t)d / 2, key, w);
        if (d % CHUNK == 0 && td_poll_interrupt() < 0) {
            td_release(t);
            return NULL;
        }
        int64_t i = n - 1 - d;
        uint64_t r = ((uint64_t)w[2 * (d % 2)] << 32) | w[2 * (d % 2) + 1];
        int64_t j = (int64_t)(((unsigned __int128)r * (uint64_t)(i + 1)) >> 64), tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
    }
    return t;
}

td_tensor *td_randperm(int64_t n) {
    return randperm(n, seed, true);
}

td_tensor *td_randperm_seeded(int64_t n, uint64_t key) {
    return randperm(n, key, false);
}
