/* tests/c/test_random.c: the Philox generator against Random123's known answer, determinism,
 * independence from the thread count, and the moments of every distribution within 5 sigma. */
#include "../../tensor/tide.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static td_tensor *vec(int64_t n, td_dtype dt) {
    td_tensor *t = td_empty(&n, 1, dt);
    cr_assert_not_null(t, "%s", td_errmsg());
    return t;
}

static double at(const td_tensor *t, int64_t i) {
    return td_get(t, &i);
}

/* mean and unbiased variance of a 1-D tensor */
static void moments(const td_tensor *t, double *mean, double *var) {
    int64_t n = td_numel(t);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) s += at(t, i);
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) s2 += (at(t, i) - *mean) * (at(t, i) - *mean);
    *var = s2 / (double)(n - 1);
}

Test(random, philox_matches_random123_known_answer) {
    /* counter 0, key 0 -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8 (Random123 kat_vectors); a
     * full-range randint adds the raw 64-bit draw (w0:w1, then w2:w3) to INT64_MIN */
    td_manual_seed(0);
    td_tensor *t = vec(2, TD_INT64);
    cr_assert_eq(td_fill_randint(t, INT64_MIN, INT64_MAX), 0);
    const int64_t *p = td_data(t);
    cr_assert_eq((uint64_t)p[0], 0xE627E8D5E169C58Dull);
    cr_assert_eq((uint64_t)p[1], 0x3C57AC4C9B00DBD8ull);
    td_release(t);
}

Test(random, same_seed_same_numbers) {
    td_tensor *a = vec(1000, TD_FLOAT32), *b = vec(1000, TD_FLOAT32), *c = vec(1000, TD_FLOAT32);
    td_manual_seed(42);
    td_fill_normal(a, 0, 1);
    td_fill_normal(c, 0, 1); /* the next fill continues the stream */
    td_manual_seed(42);
    td_fill_normal(b, 0, 1);
    cr_assert_eq(memcmp(td_data(a), td_data(b), 4000), 0);
    cr_assert_neq(memcmp(td_data(a), td_data(c), 4000), 0);
    td_manual_seed(43);
    td_fill_normal(b, 0, 1);
    cr_assert_neq(memcmp(td_data(a), td_data(b), 4000), 0);
    td_release(a), td_release(b), td_release(c);
}

Test(random, state_round_trips) {
    td_tensor *a = vec(77, TD_FLOAT64), *b = vec(77, TD_FLOAT64);
    uint64_t st[2];
    td_manual_seed(7);
    td_fill_uniform(a, 0, 1);
    td_rng_get_state(st);
    td_fill_uniform(a, 0, 1);
    td_rng_set_state(st);
    td_fill_uniform(b, 0, 1);
    cr_assert_eq(memcmp(td_data(a), td_data(b), 77 * 8), 0);
    cr_assert_eq(td_seed(), 7);
    td_release(a), td_release(b);
}

/* Every fill kind on 1, then 4 threads, must give the same bytes (sizes above the grain). */
Test(random, thread_count_does_not_change_results) {
    const int64_t n = 3 * TD_PAR_GRAIN + 5;
    const td_dtype dts[] = {TD_FLOAT32, TD_FLOAT64, TD_INT64, TD_UINT8};
    for (int kind = 0; kind < 4; kind++)
        for (int d = 0; d < 4; d++) {
            td_dtype dt = dts[d];
            if (kind < 2 && !td_dtype_is_float(dt)) continue;
            td_tensor *r[2];
            for (int k = 0; k < 2; k++) {
                td_set_num_threads(k ? 4 : 1);
                td_manual_seed(99);
                r[k] = vec(n, dt);
                int rc = kind == 0   ? td_fill_uniform(r[k], -1, 1)
                         : kind == 1 ? td_fill_normal(r[k], 0, 1)
                         : kind == 2 ? td_fill_randint(r[k], 0, 200)
                                     : td_fill_bernoulli(r[k], 0.25);
                cr_assert_eq(rc, 0, "%s", td_errmsg());
            }
            cr_assert_eq(memcmp(td_data(r[0]), td_data(r[1]), (size_t)n * td_dtype_size(dt)), 0,
                         "kind %d dtype %s differs across thread counts", kind, td_dtype_name(dt));
            td_release(r[0]), td_release(r[1]);
        }
    td_set_num_threads(1);
    td_manual_seed(5);
    td_tensor *p1 = td_randperm(100000);
    td_set_num_threads(4);
    td_manual_seed(5);
    td_tensor *p4 = td_randperm(100000);
    cr_assert_eq(memcmp(td_data(p1), td_data(p4), 800000), 0);
    td_release(p1), td_release(p4);
}

/* A strided tensor draws in its logical (row-major) order, like a contiguous one. */
Test(random, strided_fill_follows_logical_order) {
    int64_t s[2] = {4, 3}, ts[2] = {3, 4}, tst[2] = {1, 3};
    td_tensor *base = td_zeros(s, 2, TD_FLOAT32);
    td_tensor *view = td_view_of(base, ts, tst, 2, 0), *ref = td_empty(ts, 2, TD_FLOAT32);
    td_manual_seed(11);
    cr_assert_eq(td_fill_uniform(view, 0, 1), 0);
    td_manual_seed(11);
    td_fill_uniform(ref, 0, 1);
    for (int64_t i = 0; i < 3; i++)
        for (int64_t j = 0; j < 4; j++) {
            int64_t idx[2] = {i, j};
            cr_assert_eq(td_get(view, idx), td_get(ref, idx));
        }
    cr_assert_gt(base->storage->version, 0);
    td_release(base), td_release(view), td_release(ref);
}

Test(random, uniform_moments) {
    const int64_t n = 1 << 20;
    double m, v;
    td_manual_seed(1);
    td_tensor *f = vec(n, TD_FLOAT32), *d = vec(n, TD_FLOAT64);
    td_fill_uniform(f, 0, 1);
    moments(f, &m, &v);
    /* sd of the mean: sqrt(1/12/n) = 2.8e-4; of the variance: ~ sqrt(1/180/n) = 7.3e-5 */
    cr_assert(fabs(m - 0.5) < 1.5e-3, "mean %g", m);
    cr_assert(fabs(v - 1.0 / 12) < 4e-4, "var %g", v);
    td_fill_uniform(d, -2, 3);
    moments(d, &m, &v);
    cr_assert(fabs(m - 0.5) < 5 * sqrt(25.0 / 12 / (double)n), "mean %g", m);
    cr_assert(fabs(v - 25.0 / 12) < 0.01, "var %g", v);
    double lo = 1, hi = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = at(f, i);
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
    }
    cr_assert(lo >= 0 && lo < 1e-4 && hi < 1 && hi > 1 - 1e-4, "range [%g, %g]", lo, hi);
    td_release(f), td_release(d);
}

Test(random, normal_moments_and_shape) {
    const int64_t n = 1 << 20;
    const td_dtype dts[2] = {TD_FLOAT32, TD_FLOAT64};
    for (int k = 0; k < 2; k++) {
        double m, v;
        td_manual_seed(2);
        td_tensor *t = vec(n, dts[k]);
        cr_assert_eq(td_fill_normal(t, 1, 2), 0);
        moments(t, &m, &v);
        cr_assert(fabs(m - 1) < 5 * 2 / sqrt((double)n), "mean %g", m);
        cr_assert(fabs(v - 4) < 5 * 4 * sqrt(2.0 / (double)n), "var %g", v);
        int64_t in1 = 0, in2 = 0;
        double k4 = 0;
        for (int64_t i = 0; i < n; i++) {
            double z = (at(t, i) - 1) / 2;
            in1 += fabs(z) < 1;
            in2 += fabs(z) < 2;
            k4 += z * z * z * z;
        }
        /* P(|z| < 1) = 0.682689, P(|z| < 2) = 0.954500, E z^4 = 3 */
        cr_assert(fabs((double)in1 / (double)n - 0.682689) < 5 * 4.6e-4, "%g",
                  (double)in1 / (double)n);
        cr_assert(fabs((double)in2 / (double)n - 0.954500) < 5 * 2.1e-4, "%g",
                  (double)in2 / (double)n);
        cr_assert(fabs(k4 / (double)n - 3) < 0.05, "kurtosis %g", k4 / (double)n);
        td_release(t);
    }
}

Test(random, randint_is_inclusive_and_uniform) {
    const int64_t n = 80000;
    td_manual_seed(3);
    td_tensor *t = vec(n, TD_INT64);
    cr_assert_eq(td_fill_randint(t, -3, 4), 0);
    int64_t count[8] = {0};
    const int64_t *p = td_data(t);
    for (int64_t i = 0; i < n; i++) {
        cr_assert(p[i] >= -3 && p[i] <= 4, "value %lld", (long long)p[i]);
        count[p[i] + 3]++;
    }
    for (int k = 0; k < 8; k++) /* expected 10000 each, sd ~ 93.5 */
        cr_assert(llabs(count[k] - 10000) < 470, "value %d drawn %lld times", k - 3,
                  (long long)count[k]);
    cr_assert_eq(td_fill_randint(t, 5, 5), 0);
    cr_assert_eq(p[0], 5);
    cr_assert_eq(p[n - 1], 5);
    td_release(t);
}

Test(random, randint_rejects_bad_ranges) {
    td_tensor *t = vec(3, TD_UINT8), *f = vec(3, TD_INT64);
    cr_assert_eq(td_fill_randint(f, 3, 2), -1);
    cr_assert(strstr(td_errmsg(), "randint: empty range [3, 2]"), "%s", td_errmsg());
    cr_assert_eq(td_fill_randint(t, 0, 256), -1);
    cr_assert(strstr(td_errmsg(), "does not fit a uint8 tensor"), "%s", td_errmsg());
    cr_assert_eq(td_fill_uniform(f, 0, 1), -1);
    cr_assert(strstr(td_errmsg(), "got int64"), "%s", td_errmsg());
    td_tensor *g = vec(3, TD_FLOAT32);
    cr_assert_eq(td_fill_normal(g, 0, -1), -1);
    cr_assert(strstr(td_errmsg(), "std -1"), "%s", td_errmsg());
    cr_assert_eq(td_fill_uniform(g, 1, 0), -1);
    cr_assert_eq(td_fill_bernoulli(g, 1.5), -1);
    cr_assert(strstr(td_errmsg(), "p in [0, 1], got 1.5"), "%s", td_errmsg());
    cr_assert_eq(td_fill_bernoulli(g, NAN), -1);
    td_release(t), td_release(f), td_release(g);
}

Test(random, bernoulli_rate) {
    const int64_t n = 1 << 20;
    double m, v;
    td_manual_seed(4);
    td_tensor *t = vec(n, TD_FLOAT32), *b = vec(n, TD_BOOL);
    td_fill_bernoulli(t, 0.3);
    moments(t, &m, &v);
    cr_assert(fabs(m - 0.3) < 5 * sqrt(0.21 / (double)n), "rate %g", m);
    for (int64_t i = 0; i < n; i++) cr_assert(at(t, i) == 0 || at(t, i) == 1);
    td_fill_bernoulli(b, 1);
    moments(b, &m, &v);
    cr_assert_eq(m, 1);
    td_fill_bernoulli(b, 0);
    moments(b, &m, &v);
    cr_assert_eq(m, 0);
    td_release(t), td_release(b);
}

Test(random, randperm_is_a_uniform_permutation) {
    td_manual_seed(6);
    td_tensor *p = td_randperm(1000);
    cr_assert_not_null(p);
    cr_assert_eq(p->dtype, TD_INT64);
    char seen[1001] = {0};
    const int64_t *d = td_data(p);
    for (int i = 0; i < 1000; i++) {
        cr_assert(d[i] >= 1 && d[i] <= 1000, "value %lld", (long long)d[i]);
        cr_assert(!seen[d[i]], "value %lld twice", (long long)d[i]);
        seen[d[i]] = 1;
    }
    td_release(p);
    int64_t count[6] = {0}; /* 3! orderings: 60000 draws, 10000 each, sd ~ 91 */
    for (int k = 0; k < 60000; k++) {
        td_tensor *q = td_randperm(3);
        const int64_t *e = td_data(q);
        count[(e[0] - 1) * 2 + (e[1] > e[2])]++;
        td_release(q);
    }
    for (int k = 0; k < 6; k++)
        cr_assert(llabs(count[k] - 10000) < 460, "%lld", (long long)count[k]);
    td_tensor *z = td_randperm(0);
    cr_assert_eq(td_numel(z), 0);
    td_release(z);
    cr_assert_null(td_randperm(-2));
    cr_assert(strstr(td_errmsg(), "randperm: expected n >= 0, got -2"), "%s", td_errmsg());
}
