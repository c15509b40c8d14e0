/* tensor/ops/reduce_kern.h: reduce.c's typed kernels, included once per dtype with T, ACC (double
 * for floats, int64_t for integers), UACC (what sums and products run in: double, or uint64_t so
 * that integers wrap in two's complement, as in PyTorch, where int64_t would overflow), ISNAN
 * and SFX defined. Sizes: a row is n elements s apart; a
 * column block is B outputs side by side over n rows s apart; CH cuts long rows into fixed chunks.
 * Max/min take the first extreme element, and NaN beats every number (PyTorch's rule). */
#define F(name) RCAT(name, SFX)

typedef struct {
    ACC v;
    int64_t at; /* 0-based position along the reduced run (max/min) */
} F(part);

/* one chunk of a row: n >= 1 elements */
static F(part) F(row)(int k, const T *x, int64_t n, int64_t s, double c, bool want_at) {
    F(part) p = {0, 0};
    ACC a = 0;
    UACC u = 0;
    switch (k) {
    case K_SUM:
        if (s == 1) {
#pragma omp simd reduction(+ : u)
            for (int64_t j = 0; j < n; j++) u += (UACC)x[j];
        } else {
            for (int64_t j = 0; j < n; j++) u += (UACC)x[j * s];
        }
        a = (ACC)u;
        break;
    case K_SUMSQ:
#pragma omp simd reduction(+ : u)
        for (int64_t j = 0; j < n; j++) u += (UACC)x[j * s] * (UACC)x[j * s];
        a = (ACC)u;
        break;
    case K_SQDEV: {
        double d2 = 0;
        for (int64_t j = 0; j < n; j++) {
            double d = (double)x[j * s] - c;
            d2 += d * d;
        }
        a = (ACC)d2;
        break;
    }
    case K_EXPDEV: {
        double e = 0;
        for (int64_t j = 0; j < n; j++) e += exp((double)x[j * s] - c);
        a = (ACC)e;
        break;
    }
    case K_PROD:
        u = 1;
        for (int64_t j = 0; j < n; j++) u *= (UACC)x[j * s];
        a = (ACC)u;
        break;
    default: { /* K_MAX, K_MIN */
        T m = x[0];
        int64_t at = 0;
        bool mx = k == K_MAX;
        if (s == 1 && !want_at) { /* vectorised; NaNs are looked for separately */
            int nan = 0;
            if (mx) {
#pragma omp simd reduction(max : m) reduction(| : nan)
                for (int64_t j = 0; j < n; j++) {
                    m = x[j] > m ? x[j] : m;
                    nan |= ISNAN(x[j]);
                }
            } else {
#pragma omp simd reduction(min : m) reduction(| : nan)
                for (int64_t j = 0; j < n; j++) {
                    m = x[j] < m ? x[j] : m;
                    nan |= ISNAN(x[j]);
                }
            }
            for (int64_t j = 0; nan && j < n; j++)
                if (ISNAN(x[j])) {
                    m = x[j];
                    break;
                }
        } else {
            for (int64_t j = 1; j < n; j++) {
                T v = x[j * s];
                if ((mx ? v > m : v < m) || (ISNAN(v) && !ISNAN(m))) m = v, at = j;
            }
        }
        p.at = at;
        a = (ACC)m;
        break;
    }
    }
    p.v = a;
    return p;
}

/* b follows a along the run */
static F(part) F(combine)(int k, F(part) a, F(part) b) {
    switch (k) {
    case K_PROD:
        a.v = (ACC)((UACC)a.v * (UACC)b.v);
        return a;
    case K_MAX:
        return (b.v > a.v || (ISNAN(b.v) && !ISNAN(a.v))) ? b : a;
    case K_MIN:
        return (b.v < a.v || (ISNAN(b.v) && !ISNAN(a.v))) ? b : a;
    default:
        a.v = (ACC)((UACC)a.v + (UACC)b.v);
        return a;
    }
}

static void F(put)(const sink *sk, int64_t o, ACC v, int64_t at) {
    if (sk->at) sk->at[o] = at + 1;
    if (!sk->out) return;
    switch (sk->odt) {
    case TD_FLOAT32:
        ((float *)sk->out)[o] = (float)finish(sk, o, (double)v);
        break;
    case TD_FLOAT64:
        ((double *)sk->out)[o] = finish(sk, o, (double)v);
        break;
    case TD_INT64:
        ((int64_t *)sk->out)[o] = (int64_t)v;
        break;
    case TD_UINT8:
        ((uint8_t *)sk->out)[o] = (uint8_t)v;
        break;
    case TD_INT8:
        ((int8_t *)sk->out)[o] = (int8_t)v;
        break;
    default:
        ((bool *)sk->out)[o] = v != 0;
        break;
    }
}

/* B outputs side by side over n >= 1 rows: the layout of a sum over dim 1 of an N x L matrix */
static void F(col)(int k, const T *x, int64_t n, int64_t s, int64_t B, ACC *acc, int64_t *at,
                   const double *c) {
    switch (k) {
    case K_SUM:
    case K_SUMSQ:
    case K_PROD:
        for (int64_t j = 0; j < B; j++) acc[j] = k == K_PROD ? 1 : 0;
        for (int64_t r = 0; r < n; r++) {
            const T *row = x + r * s;
            if (k == K_SUM)
                for (int64_t j = 0; j < B; j++) acc[j] = (ACC)((UACC)acc[j] + (UACC)row[j]);
            else if (k == K_SUMSQ)
                for (int64_t j = 0; j < B; j++)
                    acc[j] = (ACC)((UACC)acc[j] + (UACC)row[j] * (UACC)row[j]);
            else
                for (int64_t j = 0; j < B; j++) acc[j] = (ACC)((UACC)acc[j] * (UACC)row[j]);
        }
        break;
    case K_SQDEV:
    case K_EXPDEV: {
        double d[COLB];
        for (int64_t j = 0; j < B; j++) d[j] = 0;
        for (int64_t r = 0; r < n; r++) {
            const T *row = x + r * s;
            if (k == K_SQDEV)
                for (int64_t j = 0; j < B; j++)
                    d[j] += ((double)row[j] - c[j]) * ((double)row[j] - c[j]);
            else
                for (int64_t j = 0; j < B; j++) d[j] += exp((double)row[j] - c[j]);
        }
        for (int64_t j = 0; j < B; j++) acc[j] = (ACC)d[j];
        break;
    }
    default: { /* K_MAX, K_MIN */
        bool mx = k == K_MAX;
        for (int64_t j = 0; j < B; j++) acc[j] = (ACC)x[j], at[j] = 0;
        for (int64_t r = 1; r < n; r++) {
            const T *row = x + r * s;
            for (int64_t j = 0; j < B; j++) {
                ACC v = (ACC)row[j], m = acc[j];
                if ((mx ? v > m : v < m) || (ISNAN(v) && !ISNAN(m))) acc[j] = v, at[j] = r;
            }
        }
        break;
    }
    }
}

typedef struct {
    const plan *pl;
    int k;
    const sink *sk;
    int64_t nb, nch; /* column blocks per kept row; chunks per reduced run */
    F(part) * part;
} F(job);

static void F(col_unit)(void *vj, int64_t u) { /* COLB outputs side by side */
    const F(job) *j = vj;
    const plan *pl = j->pl;
    ACC acc[COLB];
    int64_t at[COLB], L = pl->ks[pl->nk - 1];
    int64_t o0 = u / j->nb * L + u % j->nb * COLB, B = L - u % j->nb * COLB;
    if (B > COLB) B = COLB;
    F(col)
    (j->k, (const T *)pl->x + kept_offset(pl, o0), pl->n, pl->s, B, acc, at,
     j->sk->c ? j->sk->c + o0 : NULL);
    for (int64_t q = 0; q < B; q++) F(put)(j->sk, o0 + q, acc[q], at[q]);
}

static void F(row_unit)(void *vj, int64_t o) { /* one output, its run in one piece */
    const F(job) *j = vj;
    const plan *pl = j->pl;
    F(part)
    p = F(row)(j->k, (const T *)pl->x + kept_offset(pl, o), pl->n, pl->s,
               j->sk->c ? j->sk->c[o] : 0, j->sk->at != NULL);
    F(put)(j->sk, o, p.v, p.at);
}

static void F(chunk_unit)(void *vj, int64_t u) { /* one fixed chunk of a long run */
    const F(job) *j = vj;
    const plan *pl = j->pl;
    int64_t o = u / j->nch, b = u % j->nch * CH, e = b + CH < pl->n ? b + CH : pl->n;
    j->part[u] = F(row)(j->k, (const T *)pl->x + kept_offset(pl, o) + b * pl->s, e - b, pl->s,
                        j->sk->c ? j->sk->c[o] : 0, j->sk->at != NULL);
    j->part[u].at += b;
}

/* Runs kind k over the plan into the sink; 0 or -1 + error (interrupt, allocation). */
static int F(reduce)(const plan *pl, int k, const sink *sk) {
    int64_t n = pl->n, nout = pl->nout, work = nout * (n ? n : 1);
    F(job) j = {pl, k, sk, 0, (n + CH - 1) / CH, NULL};
    if (nout == 0) return 0;
    if (n == 0) { /* identities; max/min of nothing was refused by the shape rule */
        ACC id = (k == K_PROD || k == K_MIN) ? 1 : 0;
        for (int64_t o = 0; o < nout; o++) F(put)(sk, o, id, 0);
        return 0;
    }
    if (col_layout(pl)) {
        int64_t L = pl->ks[pl->nk - 1];
        j.nb = (L + COLB - 1) / COLB;
        td_run_units(nout / L * j.nb, work, F(col_unit), &j);
        return td_poll_interrupt();
    }
    if (j.nch == 1) {
        td_run_units(nout, work, F(row_unit), &j);
        return td_poll_interrupt();
    }
    if (!(j.part = td_malloc(sizeof *j.part * (size_t)(nout * j.nch)))) return -1;
    td_run_units(nout * j.nch, work, F(chunk_unit), &j);
    for (int64_t o = 0; o < nout && !td_interrupted; o++) {
        F(part) p = j.part[o * j.nch];
        for (int64_t c = 1; c < j.nch; c++) p = F(combine)(k, p, j.part[o * j.nch + c]);
        F(put)(sk, o, p.v, p.at);
    }
    td_free(j.part);
    return td_poll_interrupt();
}

#undef F
