/* vm/dist/reducer.c: DataParallel's gradient averaging. Parameters are grouped into buckets of
 * about bucket_bytes, in reverse order (backward produces the last layers' gradients first). The
 * grad hook of tensor/autograd.c reports each parameter whose .grad is complete: it is copied
 * into its bucket, and a full bucket starts an MPI_Iallreduce while backward goes on (every
 * finished node tests the requests, which is what moves Open MPI's non-blocking collectives).
 * Buckets start in the same order on every rank: MPI matches non-blocking collectives by order.
 * When the pass ends, the remaining buckets start, all are waited for, scaled by 1/size and
 * copied back into the .grad of their parameters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"

#define TDL_REDUCER "tide.dist.Reducer"

typedef struct slot {
    td_tensor *p;    /* the parameter (one ref) */
    td_tensor *view; /* its place in the bucket, shaped like p (one ref) */
    int bucket;
    bool ready;      /* its gradient arrived in this pass */
} slot;

typedef struct bucket {
    td_tensor *buf;  /* 1-D, the dtype of its parameters (one ref) */
    int64_t len;     /* elements */
    int count;       /* its slots */
    int ready;       /* of which ready in this pass */
} bucket;

typedef struct reducer {
    slot *slots;          /* in bucket order */
    int nslots, hint;     /* hint: just after the slot found last (the next one is usually next) */
    bucket *b;
    MPI_Request *reqs;    /* [nb], MPI_REQUEST_NULL until started and once complete */
    int nb, next;         /* next: the first bucket not started in this pass */
    bool active;          /* a parameter got its gradient in this pass */
    int early, last_early; /* buckets started before the pass ended: this pass, the last one */
    struct reducer *link; /* the live reducers */
} reducer;

static reducer *live;

/* A gradient exchange that fails leaves the ranks' models apart, and the hook cannot raise a
 * Lua error from inside backward: stop the job with the reason. */
static void fatal(const char *what, const char *why) {
    fprintf(stderr, "tide.dist: rank %d of %d: DataParallel: %s: %s\n", dist_w.rank + 1,
            dist_w.size, what, why);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static void start_ready(reducer *r) {
    while (r->next < r->nb && r->b[r->next].ready == r->b[r->next].count) {
        td_tensor *buf = r->b[r->next].buf;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, dist_capi->data(buf), (int)dist_capi->numel(buf),
                                dist_mpi_type(buf->dtype), MPI_SUM, MPI_COMM_WORLD,
                                &r->reqs[r->next]);
        if (rc != MPI_SUCCESS) fatal("MPI_Iallreduce", "failed");
        r->next++;
    }
}

static void on_ready(reducer *r, td_tensor *leaf) {
    int i = r->hint, k = 0;
    while (k < r->nslots && r->slots[i].p != leaf) i = (i + 1) % r->nslots, k++;
    if (k == r->nslots || r->slots[i].ready) return;
    r->hint = (i + 1) % r->nslots;
    slot *s = &r->slots[i];
    s->ready = r->active = true;
    if (dist_capi->copy_into(s->view, leaf->grad) < 0) fatal("copying a gradient", dist_capi->errmsg());
    if (++r->b[s->bucket].ready == r->b[s->bucket].count) {
        int before = r->next;
        start_ready(r);
        r->early += r->next - before;
    }
}

static void on_node(reducer *r) {
    int done;
    if (r->next > 0) MPI_Testall(r->next, r->reqs, &done, MPI_STATUSES_IGNORE);
}

/* MPI_Waitall spins on the core: when the other rank is late because it shares this core (more
 * ranks than idle cores, a busy machine), spinning only delays it. After a short spin this polls
 * every 20 us and sleeps in between (a step lasts milliseconds: the cost is noise). */
static void wait_all(reducer *r) {
    struct timespec nap = {0, 20000};
    for (int polls = 0;; polls++) {
        int done = 0;
        if (MPI_Testall(r->nb, r->reqs, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
            fatal("MPI_Iallreduce", "failed (a rank died?)");
        if (done) return;
        if (polls >= 200) nanosleep(&nap, NULL);
    }
}

/* The pass ended: parameters that got no gradient this pass send their .grad if they have one
 * (accumulated earlier) or zeros, so every rank starts the same buckets. */
static void on_end(reducer *r) {
    if (!r->active) return;
    for (int i = 0; i < r->nslots; i++) {
        slot *s = &r->slots[i];
        if (s->ready) continue;
        if (s->p->grad) {
            if (dist_capi->copy_into(s->view, s->p->grad) < 0)
                fatal("copying a gradient", dist_capi->errmsg());
        } else {
            memset(dist_capi->data(s->view), 0,
                   (size_t)dist_capi->numel(s->view) * dist_item(s->view->dtype));
        }
        r->b[s->bucket].ready++;
    }
    start_ready(r);
    wait_all(r);
    for (int k = 0; k < r->nb; k++) {
        dist_scale(r->b[k].buf, 1.0 / dist_w.size);
        r->b[k].ready = 0;
    }
    for (int i = 0; i < r->nslots; i++) {
        slot *s = &r->slots[i];
        td_tensor *p = s->p;
        s->ready = false;
        if (!p->requires_grad) continue; /* frozen after wrapping: it sent zeros, takes nothing */
        if (!p->grad && !(p->grad = dist_capi->empty(p->shape, p->ndim, p->dtype)))
            fatal("making a gradient", dist_capi->errmsg());
        if (dist_capi->copy_into(p->grad, s->view) < 0)
            fatal("copying a gradient back", dist_capi->errmsg());
        dist_capi->bump_version(p->grad);
    }
    r->next = 0;
    r->active = false;
    r->last_early = r->early;
    r->early = 0;
}

static void on_grad(td_hook_event ev, td_tensor *leaf, void *ud) {
    (void)ud;
    for (reducer *r = live; r; r = r->link) {
        if (ev == TD_HOOK_READY)
            on_ready(r, leaf);
        else if (ev == TD_HOOK_NODE)
            on_node(r);
        else
            on_end(r);
    }
}

static void reducer_free(reducer *r) {
    for (reducer **q = &live; *q; q = &(*q)->link)
        if (*q == r) {
            *q = r->link;
            break;
        }
    if (!live) dist_capi->set_grad_hook(NULL, NULL);
    for (int i = 0; i < r->nslots; i++) {
        dist_capi->release(r->slots[i].p);
        dist_capi->release(r->slots[i].view);
    }
    for (int k = 0; k < r->nb; k++) dist_capi->release(r->b[k].buf);
    free(r->slots);
    free(r->b);
    free(r->reqs);
    free(r);
}

static int l_reducer_gc(lua_State *L) {
    reducer **u = luaL_checkudata(L, 1, TDL_REDUCER);
    if (*u) reducer_free(*u);
    *u = NULL;
    return 0;
}

/* r:stats() -> {buckets =, parameters =, overlapped = buckets started during the last backward} */
static int l_reducer_stats(lua_State *L) {
    reducer *r = *(reducer **)luaL_checkudata(L, 1, TDL_REDUCER);
    if (!r) return luaL_error(L, "Reducer:stats: the reducer was released");
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, r->nb);
    lua_setfield(L, -2, "buckets");
    lua_pushinteger(L, r->nslots);
    lua_setfield(L, -2, "parameters");
    lua_pushinteger(L, r->last_early);
    lua_setfield(L, -2, "overlapped");
    return 1;
}

/* The ranks must hold the same parameters in the same order: a hash of dtypes and shapes. */
static void check_same(lua_State *L, const reducer *r) {
    uint64_t h[3] = {(uint64_t)r->nslots, 0, 1469598103934665603ULL}; /* count, values, FNV-1a */
    for (int i = 0; i < r->nslots; i++) {
        const td_tensor *p = r->slots[i].p;
        h[1] += (uint64_t)dist_capi->numel(p);
        int64_t key[TD_MAX_DIMS + 2] = {p->dtype, p->ndim};
        memcpy(key + 2, p->shape, sizeof(int64_t) * (size_t)p->ndim);
        for (size_t j = 0; j < sizeof key; j++) h[2] = (h[2] ^ ((unsigned char *)key)[j]) * 1099511628211ULL;
    }
    uint64_t *all = lua_newuserdatauv(L, sizeof h * (size_t)dist_w.size, 0);
    if (MPI_Allgather(h, 3, MPI_UINT64_T, all, 3, MPI_UINT64_T, MPI_COMM_WORLD) != MPI_SUCCESS)
        luaL_error(L, "dist.DataParallel: MPI failed comparing the models of the ranks");
    for (int k = 1; k < dist_w.size; k++)
        if (memcmp(all + 3 * k, all, sizeof h) != 0)
            luaL_error(L, "dist.DataParallel: the models differ between ranks: rank 1 has %d "
                          "parameters (%I values), rank %d has %d (%I values)%s",
                       (int)all[0], (lua_Integer)all[1], k + 1, (int)all[3 * k],
                       (lua_Integer)all[3 * k + 1],
                       all[0] == all[3 * k] && all[1] == all[3 * k + 1] ? " of other shapes" : "");
    lua_pop(L, 1);
}

/* dist._reducer(params, bucket_bytes) -> a Reducer averaging the gradients of params (a list of
 * float tensors requiring grad) after each backward, until it is collected. */
static int l_reducer(lua_State *L) {
    const char *fn = "dist.DataParallel";
    dist_checkinit(L, fn);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Number cap = luaL_checknumber(L, 2);
    if (!dist_w.mpi || dist_w.size < 2) return luaL_error(L, "%s: a reducer needs 2 ranks", fn);
    int n = (int)luaL_len(L, 1);
    reducer **u = lua_newuserdatauv(L, sizeof *u, 0);
    *u = NULL;
    luaL_setmetatable(L, TDL_REDUCER);
    reducer *r = *u = calloc(1, sizeof *r);
    if (!r || !(r->slots = calloc((size_t)n + 1, sizeof *r->slots)) ||
        !(r->b = calloc((size_t)n + 1, sizeof *r->b)) ||
        !(r->reqs = malloc(sizeof *r->reqs * ((size_t)n + 1))))
        return luaL_error(L, "%s: out of memory", fn);
    for (int i = 0; i < n; i++) { /* reverse order: the gradients of the last layers come first */
        lua_geti(L, 1, n - i);
        td_tensor *p = dist_capi->checktensor(L, -1);
        if (p->dtype != TD_FLOAT32 && p->dtype != TD_FLOAT64)
            return luaL_error(L, "%s: parameter %d is %s (expected float32 or float64)", fn,
                              n - i, dist_capi->dtype_name(p->dtype));
        if (dist_capi->numel(p) > (1 << 30))
            return luaL_error(L, "%s: parameter %d has over 2^30 values", fn, n - i);
        dist_capi->retain(p);
        r->slots[r->nslots++].p = p;
        lua_pop(L, 1);
    }
    check_same(L, r);
    /* buckets: cut where the dtype changes or the next parameter would pass cap bytes */
    for (int i = 0; i < n; i++) {
        td_tensor *p = r->slots[i].p;
        size_t item = dist_item(p->dtype), bytes = (size_t)dist_capi->numel(p) * item;
        bucket *b = r->nb ? &r->b[r->nb - 1] : NULL;
        td_tensor *first = b ? r->slots[i - b->count].p : NULL;
        if (!b || first->dtype != p->dtype ||
            (double)((size_t)b->len * item + bytes) > cap ||
            b->len + dist_capi->numel(p) > (1 << 30))
            b = &r->b[r->nb++];
        r->slots[i].bucket = r->nb - 1;
        b->len += dist_capi->numel(p);
        b->count++;
    }
    for (int k = 0, i = 0; k < r->nb; k++) {
        td_tensor *p0 = r->slots[i].p;
        int64_t off = 0;
        if (!(r->b[k].buf = dist_capi->empty(&r->b[k].len, 1, p0->dtype)))
            return luaL_error(L, "%s: %s", fn, dist_capi->errmsg());
        r->reqs[k] = MPI_REQUEST_NULL;
        for (int j = 0; j < r->b[k].count; j++, i++) {
            td_tensor *p = r->slots[i].p;
            int64_t stride[TD_MAX_DIMS], s = 1;
            for (int d = p->ndim - 1; d >= 0; d--) stride[d] = s, s *= p->shape[d];
            if (!(r->slots[i].view = dist_capi->view_of(r->b[k].buf, p->shape, stride, p->ndim, off)))
                return luaL_error(L, "%s: %s", fn, dist_capi->errmsg());
            off += s;
        }
    }
    r->link = live;
    live = r;
    dist_capi->set_grad_hook(on_grad, NULL);
    return 1;
}

void dist_register_reducer(lua_State *L) {
    luaL_newmetatable(L, TDL_REDUCER);
    lua_pushcfunction(L, l_reducer_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    lua_pushcfunction(L, l_reducer_stats);
    lua_setfield(L, -2, "stats");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_reducer);
    lua_setfield(L, -2, "_reducer");
}
