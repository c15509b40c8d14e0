/* tests/c/test_optim.c: the fused optimizer updates of tensor/optim.c against a naive float64
 * transcription of PyTorch's formulas (several steps, every option), on strided parameters and
 * gradients, across threads (bit-identical), and their error paths (nothing written). */
#include "ref.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

enum { SGD, ADAM, RMSPROP, ADAGRAD };

/* One naive step of element i: b[] are the state buffers in td_*_step's order. */
static void naive(int kind, double *p, double g, double **b, int64_t i, const td_optim_hp *h) {
    double d = h->maximize ? -g : g;
    if (!(kind == ADAM && h->decoupled) && h->weight_decay != 0) d += h->weight_decay * p[i];
    switch (kind) {
    case SGD:
        if (b[0]) {
            b[0][i] = h->init_buf ? d : b[0][i] * h->momentum + (1 - h->dampening) * d;
            d = h->nesterov ? d + h->momentum * b[0][i] : b[0][i];
        }
        p[i] -= h->lr * d;
        break;
    case ADAM: {
        if (h->decoupled) p[i] *= 1 - h->lr * h->weight_decay;
        b[0][i] = h->beta1 * b[0][i] + (1 - h->beta1) * d;
        b[1][i] = h->beta2 * b[1][i] + (1 - h->beta2) * d * d;
        double v = b[1][i];
        if (b[2]) v = b[2][i] = fmax(b[2][i], v);
        double bc1 = 1 - pow(h->beta1, (double)h->step), bc2 = 1 - pow(h->beta2, (double)h->step);
        p[i] -= h->lr / bc1 * b[0][i] / (sqrt(v) / sqrt(bc2) + h->eps);
        break;
    }
    case RMSPROP: {
        b[0][i] = h->alpha * b[0][i] + (1 - h->alpha) * d * d;
        double avg = b[0][i];
        if (b[1]) {
            b[1][i] = h->alpha * b[1][i] + (1 - h->alpha) * d;
            avg -= b[1][i] * b[1][i];
        }
        avg = sqrt(avg) + h->eps;
        if (b[2]) {
            b[2][i] = h->momentum * b[2][i] + d / avg;
            p[i] -= h->lr * b[2][i];
        } else {
            p[i] -= h->lr * d / avg;
        }
        break;
    }
    case ADAGRAD:
        b[0][i] += d * d;
        p[i] -= h->lr / (1 + (double)(h->step - 1) * h->lr_decay) * d / (sqrt(b[0][i]) + h->eps);
        break;
    }
}

static int step(int kind, td_tensor *p, td_tensor *g, td_tensor **b, const td_optim_hp *h) {
    switch (kind) {
    case SGD:
        return td_sgd_step(p, g, b[0], h);
    case ADAM:
        return td_adam_step(p, g, b[0], b[1], b[2], h);
    case RMSPROP:
        return td_rmsprop_step(p, g, b[0], b[1], b[2], h);
    default:
        return td_adagrad_step(p, g, b[0], h);
    }
}

static double at(const td_tensor *t, int64_t i) { /* element i in row-major order */
    int64_t idx[TD_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) idx[d] = i % t->shape[d], i /= t->shape[d];
    return td_get(t, idx);
}

typedef struct {
    const char *name;
    int kind, nbuf;
    bool used[3];
    td_optim_hp h;
} config;

static const config configs[] = {
    {"sgd", SGD, 0, {0}, {.lr = 0.1}},
    {"sgd momentum",
     SGD,
     1,
     {1},
     {.lr = 0.1, .momentum = 0.9, .dampening = 0.2, .weight_decay = 0.01}},
    {"sgd nesterov",
     SGD,
     1,
     {1},
     {.lr = 0.05, .momentum = 0.8, .nesterov = true, .maximize = true}},
    {"adam", ADAM, 2, {1, 1}, {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8}},
    {"adam amsgrad",
     ADAM,
     3,
     {1, 1, 1},
     {.lr = 0.02, .beta1 = 0.8, .beta2 = 0.9, .eps = 1e-6, .weight_decay = 0.1}},
    {"adamw",
     ADAM,
     2,
     {1, 1},
     {.lr = 0.01,
      .beta1 = 0.9,
      .beta2 = 0.99,
      .eps = 1e-8,
      .weight_decay = 0.1,
      .decoupled = true}},
    {"rmsprop", RMSPROP, 1, {1}, {.lr = 0.01, .alpha = 0.99, .eps = 1e-8}},
    {"rmsprop centered momentum",
     RMSPROP,
     3,
     {1, 1, 1},
     {.lr = 0.01, .alpha = 0.9, .eps = 1e-8, .momentum = 0.5, .weight_decay = 0.1}},
    {"rmsprop momentum",
     RMSPROP,
     3,
     {1, 0, 1},
     {.lr = 0.01, .alpha = 0.9, .eps = 1e-3, .momentum = 0.5}},
    {"adagrad", ADAGRAD, 1, {1}, {.lr = 0.1, .lr_decay = 0.05, .eps = 1e-10, .weight_decay = 0.2}},
};

/* Runs 4 steps of c on a parameter in layout lay with a gradient in layout glay, against the
 * naive update; returns the largest relative difference. */
static double check_config(const config *c, td_dtype dt, int lay, int glay) {
    int64_t shape[2] = {7, 33};
    int64_t n = shape[0] * shape[1];
    td_tensor *p = ref_rand(shape, 2, dt, lay, -2, 2), *b[3] = {NULL};
    double *rp = calloc((size_t)n, sizeof *rp), *rb[3] = {NULL};
    for (int64_t i = 0; i < n; i++) rp[i] = at(p, i);
    for (int j = 0; j < 3; j++) {
        if (!c->used[j]) continue;
        b[j] = c->kind == ADAGRAD ? td_full(shape, 2, dt, 0.5) : td_zeros(shape, 2, dt);
        rb[j] = calloc((size_t)n, sizeof *rb[j]);
        for (int64_t i = 0; i < n; i++) rb[j][i] = c->kind == ADAGRAD ? 0.5 : 0;
    }
    double err = 0;
    for (int s = 1; s <= 4; s++) {
        td_tensor *g = ref_rand(shape, 2, dt, glay, -1, 1);
        td_optim_hp h = c->h;
        h.step = s;
        h.init_buf = s == 1;
        cr_assert_eq(step(c->kind, p, g, b, &h), 0, "%s: %s", c->name, td_errmsg());
        for (int64_t i = 0; i < n; i++) naive(c->kind, rp, at(g, i), rb, i, &h);
        td_release(g);
    }
    for (int64_t i = 0; i < n; i++) err = fmax(err, fabs(at(p, i) - rp[i]) / (1 + fabs(rp[i])));
    td_release(p);
    free(rp);
    for (int j = 0; j < 3; j++) td_release(b[j]), free(rb[j]);
    return err;
}

Test(optim, every_update_matches_the_naive_formulas) {
    static const int lays[][2] = {
        {L_CONTIG, L_CONTIG}, {L_TRANSPOSED, L_NARROWED}, {L_NARROWED, L_TRANSPOSED}};
    td_manual_seed(7);
    for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++)
        for (int dt = TD_FLOAT32; dt <= TD_FLOAT64; dt++)
            for (int l = 0; l < 3; l++) {
                double e = check_config(&configs[k], (td_dtype)dt, lays[l][0], lays[l][1]);
                double tol = dt == TD_FLOAT32 ? 2e-5 : 1e-12;
                cr_assert(e < tol, "%s %s p %s g %s: off by %g", configs[k].name,
                          td_dtype_name((td_dtype)dt), ref_layout_name[lays[l][0]],
                          ref_layout_name[lays[l][1]], e);
            }
}

Test(optim, threads_give_identical_bits) {
    int64_t n = 300001; /* above the grain, not a multiple of the chunk alignment */
    td_optim_hp h = {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .step = 1};
    td_tensor *p[2], *m[2], *v[2], *vm[2];
    td_manual_seed(11);
    td_tensor *g = ref_rand(&n, 1, TD_FLOAT32, L_CONTIG, -1, 1);
    td_tensor *p0 = ref_rand(&n, 1, TD_FLOAT32, L_CONTIG, -1, 1);
    int saved = td_get_num_threads();
    for (int t = 0; t < 2; t++) {
        td_set_num_threads(t + 1);
        p[t] = td_empty(&n, 1, TD_FLOAT32);
        cr_assert_eq(td_copy_into(p[t], p0), 0);
        m[t] = td_zeros(&n, 1, TD_FLOAT32), v[t] = td_zeros(&n, 1, TD_FLOAT32);
        vm[t] = td_zeros(&n, 1, TD_FLOAT32);
        for (h.step = 1; h.step <= 3; h.step++)
            cr_assert_eq(td_adam_step(p[t], g, m[t], v[t], vm[t], &h), 0, "%s", td_errmsg());
    }
    td_set_num_threads(saved);
    cr_assert(p[0] != p[1]);
    cr_assert_eq(memcmp(td_data(p[0]), td_data(p[1]), (size_t)n * 4), 0);
    cr_assert_eq(memcmp(td_data(vm[0]), td_data(vm[1]), (size_t)n * 4), 0);
    for (int t = 0; t < 2; t++)
        td_release(p[t]), td_release(m[t]), td_release(v[t]), td_release(vm[t]);
    td_release(g), td_release(p0);
}

Test(optim, bumps_versions_and_records_nothing) {
    int64_t n = 5;
    td_tensor *p = td_full(&n, 1, TD_FLOAT64, 1), *g = td_full(&n, 1, TD_FLOAT64, 2);
    td_tensor *buf = td_zeros(&n, 1, TD_FLOAT64);
    p->requires_grad = true;
    uint64_t vp = p->storage->version, vg = g->storage->version, vb = buf->storage->version;
    td_optim_hp h = {.lr = 0.5, .momentum = 0.9, .init_buf = true};
    cr_assert_eq(td_sgd_step(p, g, buf, &h), 0, "%s", td_errmsg());
    cr_assert_eq(p->storage->version, vp + 1);
    cr_assert_eq(buf->storage->version, vb + 1);
    cr_assert_eq(g->storage->version, vg);
    cr_assert_null(p->grad_fn);
    cr_assert_eq(((double *)td_data(p))[4], 0.0); /* 1 - 0.5 * 2 */
    cr_assert_eq(((double *)td_data(buf))[0], 2.0);
    int64_t z = 0;
    td_tensor *e = td_zeros(&z, 1, TD_FLOAT32), *eg = td_zeros(&z, 1, TD_FLOAT32);
    h = (td_optim_hp){.lr = 0.5};
    cr_assert_eq(td_sgd_step(e, eg, NULL, &h), 0, "empty parameters are fine");
    td_release(p), td_release(g), td_release(buf), td_release(e), td_release(eg);
}

static void expect_error(int rc, const char *want) {
    cr_assert_eq(rc, -1);
    cr_assert(strstr(td_errmsg(), want), "expected '%s' in: %s", want, td_errmsg());
}

Test(optim, errors_leave_everything_unwritten) {
    int64_t n = 4, n3 = 3, s22[2] = {2, 2};
    td_tensor *p = td_full(&n, 1, TD_FLOAT32, 1), *g = td_full(&n, 1, TD_FLOAT32, 1);
    td_tensor *m = td_zeros(&n, 1, TD_FLOAT32), *v = td_zeros(&n, 1, TD_FLOAT32);
    td_tensor *i64 = td_zeros(&n, 1, TD_INT64), *g3 = td_zeros(&n3, 1, TD_FLOAT32);
    td_tensor *v64 = td_zeros(&n, 1, TD_FLOAT64), *v22 = td_zeros(s22, 2, TD_FLOAT32);
    td_tensor *big = td_zeros(s22, 2, TD_FLOAT32);
    int64_t sh2[1] = {2}, str2[1] = {2};
    td_tensor *strided = td_view_of(big, sh2, str2, 1, 0); /* elements 0 and 2 */
    td_optim_hp h = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .step = 1};
    uint64_t ver = p->storage->version;
    expect_error(td_adam_step(i64, g, m, v, NULL, &h),
                 "Adam: parameters must be float32 or float64");
    expect_error(td_adam_step(p, g3, m, v, NULL, &h),
                 "Adam: gradient of shape 3 for a parameter of shape 4");
    expect_error(td_adam_step(p, g, m, v64, NULL, &h),
                 "state buffer 2 is a float64 tensor of shape 4");
    expect_error(td_adam_step(p, g, m, v22, NULL, &h), "of the parameter's shape 4");
    expect_error(td_adam_step(p, g, m, g, NULL, &h), "shares memory");
    expect_error(td_adam_step(p, g, NULL, v, NULL, &h),
                 "Adam: exp_avg and exp_avg_sq buffers are required");
    h.decoupled = true, h.lr = -1;
    expect_error(td_adam_step(p, g, m, v, NULL, &h), "AdamW: lr must be >= 0, got -1");
    h.lr = 0.1, h.step = 0;
    expect_error(td_adam_step(p, g, m, v, NULL, &h), "AdamW: step must be >= 1, got 0");
    h = (td_optim_hp){.lr = 0.1, .momentum = 0.9};
    expect_error(td_sgd_step(p, g, NULL, &h), "SGD: a momentum buffer is needed exactly when");
    h.momentum = 0.5;
    expect_error(td_rmsprop_step(p, g, m, NULL, NULL, &h), "RMSprop: a momentum buffer is needed");
    expect_error(td_rmsprop_step(p, g, NULL, NULL, NULL, &h),
                 "RMSprop: a square_avg buffer is required");
    h.step = 1;
    int64_t s2 = 2;
    td_tensor *p2 = td_zeros(&s2, 1, TD_FLOAT32), *g2 = td_zeros(&s2, 1, TD_FLOAT32);
    expect_error(td_adagrad_step(p2, g2, strided, &h), "(not contiguous)");
    cr_assert_eq(p->storage->version, ver);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(((float *)td_data(p))[i], 1.0f);
        cr_assert_eq(((float *)td_data(m))[i], 0.0f);
    }
    td_release(p), td_release(g), td_release(m), td_release(v), td_release(i64), td_release(g3);
    td_release(v64), td_release(v22), td_release(big), td_release(strided), td_release(p2);
    td_release(g2);
}

Test(optim, gradient_aliasing_the_parameter_is_read_first) {
    int64_t n = 3;
    td_tensor *p = td_full(&n, 1, TD_FLOAT64, 2);
    td_optim_hp h = {.lr = 0.25};
    cr_assert_eq(td_sgd_step(p, p, NULL, &h), 0, "%s", td_errmsg());
    for (int i = 0; i < 3; i++) cr_assert_eq(((double *)td_data(p))[i], 1.5);
    td_release(p);
}
