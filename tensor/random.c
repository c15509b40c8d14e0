/* tensor/random.c: the one seeded generator, Philox-4x32-10 (counter based). Element i of a
 * fill uses counter (offset + i/4, stream), lane i%4, so a result depends on the seed and the
 * fill order only, never on the thread count; each fill advances offset past what it used. */
#include <math.h>

#include "tide.h"

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

static void philox(uint64_t ctr, uint64_t key, uint32_t out[4]) {
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

/* Draws n uint32 words (4 per counter) for a fill and advances the offset. */
static uint32_t word(uint64_t base, int64_t i) {
    uint32_t w[4];
    philox(base + (uint64_t)(i / 4), seed, w);
    return w[i % 4];
}

static uint64_t take(int64_t nwords) {
    uint64_t base = offset;
    offset += (uint64_t)(nwords + 3) / 4;
    return base;
}

static double unit(uint64_t base, int64_t i, td_dtype dt) {
    if (dt == TD_FLOAT64) { /* 53 random bits from two words */
        uint64_t hi = word(base, 2 * i) >> 5, lo = word(base, 2 * i + 1) >> 6;
        return (double)(hi * 67108864u + lo) * 0x1p-53;
    }
    return (double)(word(base, i) >> 8) * 0x1p-24;
}

/* Fills contiguous values through td_set in element order (any layout). */
static int fill(td_tensor *t, int kind, double a, double b) {
    int64_t n = td_numel(t), idx[TD_MAX_DIMS] = {0};
    int per = t->dtype == TD_FLOAT64 ? 2 : 1;
    uint64_t base = take(n * per * (kind == 1 ? 2 : 1));
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (kind == 0) {
            v = a + (b - a) * unit(base, i, t->dtype);
        } else if (kind == 1) { /* Box-Muller on uniforms 2i, 2i+1 */
            double u1 = 1.0 - unit(base, 2 * i, t->dtype), u2 = unit(base, 2 * i + 1, t->dtype);
            v = a + b * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        } else {
            uint64_t span = (uint64_t)(b - a) + 1;
            uint64_t r = ((uint64_t)word(base, 2 * i) << 32) | word(base, 2 * i + 1);
            v = a + (double)(r % span);
        }
        td_set(t, idx, v);
        for (int d = t->ndim - 1; d >= 0 && ++idx[d] == t->shape[d]; d--) idx[d] = 0;
    }
    return 0;
}

int td_fill_uniform(td_tensor *t, double lo, double hi) {
    if (!td_dtype_is_float(t->dtype)) return td_error("rand: expected a float dtype");
    return fill(t, 0, lo, hi);
}

int td_fill_normal(td_tensor *t, double mean, double std) {
    if (!td_dtype_is_float(t->dtype)) return td_error("randn: expected a float dtype");
    return fill(t, 1, mean, std);
}

int td_fill_randint(td_tensor *t, int64_t lo, int64_t hi) {
    if (hi < lo) return td_error("randint: empty range [%lld, %lld]", (long long)lo, (long long)hi);
    return fill(t, 2, (double)lo, (double)hi);
}

td_tensor *td_randperm(int64_t n) {
    td_tensor *t = td_empty(&n, 1, TD_INT64);
    if (!t) return NULL;
    int64_t *p = t->storage->data;
    for (int64_t i = 0; i < n; i++) p[i] = i + 1; /* 1-based, like every index tensor */
    uint64_t base = take(2 * n);
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        uint64_t r = ((uint64_t)word(base, 2 * i) << 32) | word(base, 2 * i + 1);
        int64_t j = (int64_t)(r % (uint64_t)(i + 1)), tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
    }
    return t;
}
