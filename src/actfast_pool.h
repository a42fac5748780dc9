/*
 * actfast's own worker pool: the calling thread plus helpers that claim chunks of a
 * job one at a time, and sleep soon after the work is gone.
 *
 * Why not an OpenMP parallel region (what the kernels used until 0.1): our users call
 * actfast between NumPy matrix products, and NumPy's OpenBLAS keeps its workers
 * busy-waiting for ~0.1 s after every call (research notes, dense-threads.md). On a
 * machine with as many cores as threads, an OpenMP region then has to wait, at its
 * closing barrier, for a team thread that is sharing a core with a spinning BLAS worker
 * (a scheduler time slice, milliseconds); and libgomp's own idle team spins in turn
 * and slows the next BLAS call. Measured on 2 cores (Zen 4 VM, MLP 784-512-512-10 SGD
 * step, batch 256, float32, NumPy matmuls and actfast activations): 2.89x slower than
 * NumPy alone with OpenMP regions, 1.02x with this pool for relu, 0.39x for gelu.
 *
 * So the pool is built to never wait for a thread that has not turned up:
 * - the job is cut into chunks; every thread, the caller included, claims the next
 *   chunk with one compare-and-swap, so a helper that arrives late finds less (or
 *   nothing) to do, and the caller does the rest itself;
 * - the caller waits only for chunks that were claimed and are still running;
 * - an idle helper pause-spins for 50 us (back-to-back kernel calls find it awake) and
 *   then sleeps on a condition variable, off the core the next BLAS call needs
 *   (af_pool_wait says why this and not another policy);
 * - one job at a time: a second Python thread that calls while the pool is busy (or a
 *   nested call) runs its work on its own thread.
 * The pool does not change how any other library in the process waits or spins.
 *
 * The state of a job is one 64-bit word (generation | thread count | chunks | next
 * chunk), so a helper that wakes up late can never claim a chunk of a job that has
 * already finished: its compare-and-swap carries the generation it saw. The job's
 * function, context and sizes are read only after a successful claim, and the caller
 * does not return (and so does not reuse them) before every claimed chunk is done.
 *
 * Where there are no POSIX threads (Windows) but OpenMP is, af_pool_run is an OpenMP
 * loop with dynamic chunks; without either it runs the job on the calling thread.
 * The helpers exist only in the process that made them: after fork, the child's pool
 * is reset (and actfast runs the child single-threaded anyway).
 */
#ifndef ACTFAST_POOL_H
#define ACTFAST_POOL_H

#include <stddef.h>
#include <stdint.h>

/* fn(ctx, lo, hi) does items [lo, hi) of a job. */
typedef void (*af_chunk_fn)(void *ctx, Py_ssize_t lo, Py_ssize_t hi);

#define AF_POOL_MAX_THREADS 255
#define AF_POOL_MAX_CHUNKS ((1 << 18) - 1)

static inline Py_ssize_t af_pool_fit_chunk(Py_ssize_t n, Py_ssize_t chunk)
{
    /* More chunks than the state word can count: make them larger (multiples of 64). */
    if (chunk < 1) chunk = 1;
    if ((n + chunk - 1) / chunk > AF_POOL_MAX_CHUNKS)
        chunk = (((n + AF_POOL_MAX_CHUNKS - 1) / AF_POOL_MAX_CHUNKS) + 63) & ~(Py_ssize_t)63;
    return chunk;
}

#if defined(_OPENMP) && !defined(_WIN32)
#define AF_POOL_KIND "actfast pool (pthreads)"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AF_PAUSE() _mm_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define AF_PAUSE() __asm__ __volatile__("yield")
#else
#define AF_PAUSE() ((void)0)
#endif

/* state = generation (20 bits) | threads (8) | chunks (18) | next chunk (18). */
#define AF_NEXT_BITS 18
#define AF_NCH_SHIFT 18
#define AF_NT_SHIFT 36
#define AF_GEN_SHIFT 44
#define AF_FIELD(s, shift, bits) (((s) >> (shift)) & ((UINT64_C(1) << (bits)) - 1))
#define AF_NEXT(s) AF_FIELD(s, 0, 18)
#define AF_NCH(s) AF_FIELD(s, AF_NCH_SHIFT, 18)
#define AF_NT(s) AF_FIELD(s, AF_NT_SHIFT, 8)
#define AF_GEN(s) AF_FIELD(s, AF_GEN_SHIFT, 20)

typedef struct {
    _Atomic uint64_t state;
    _Atomic int done;          /* chunks of the current job that are finished */
    _Atomic int busy;          /* a caller owns the pool */
    _Atomic int sleepers;      /* helpers waiting on cv */
    _Atomic long spin_ns;      /* how long an idle helper spins before it sleeps */
    af_chunk_fn fn;            /* the job: set before it is published, read after a claim */
    void *ctx;
    Py_ssize_t n, chunk;
    int created;               /* helpers started (changed only by the caller that owns it) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} af_pool_t;

static af_pool_t af_pool = {
    .state = 0, .done = 0, .busy = 0, .sleepers = 0, .spin_ns = 50000,
    .fn = NULL, .ctx = NULL, .n = 0, .chunk = 1, .created = 0,
    .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
};

static inline long af_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/* Claims and runs chunks of generation gen until none is left (s: a recent state). */
static void af_pool_work(uint64_t s, uint64_t gen)
{
    af_pool_t *P = &af_pool;
    for (;;) {
        uint64_t next = AF_NEXT(s);
        if (AF_GEN(s) != gen || next >= AF_NCH(s))
            return;
        if (atomic_compare_exchange_weak_explicit(&P->state, &s, s + 1, memory_order_acquire,
                                                  memory_order_acquire)) {
            Py_ssize_t lo = (Py_ssize_t)next * P->chunk;
            Py_ssize_t hi = lo + P->chunk < P->n ? lo + P->chunk : P->n;
            P->fn(P->ctx, lo, hi);
            atomic_fetch_add_explicit(&P->done, 1, memory_order_release);
            s = atomic_load_explicit(&P->state, memory_order_acquire);
        }
    }
}

/*
 * A helper's wait for a job newer than generation seen: pause-spin for spin_ns, then
 * sleep on the condition variable. Measured with bench/pool_spin.py (Zen 4 VM, 2 cores,
 * medians of 6-8 rounds, us): 1M float32 sigmoid / relu alone; the same right after
 * PyTorch calls (its OpenMP team then spins); and (256, 1024) right after NumPy's
 * (256x1024)@(1024x1024), itself 2.8-3.0 ms alone:
 *                        alone       after torch   matmul + sigmoid, + relu
 *   sleep at once        595 / 79    616 / 85      3261, 3110
 *   pause-spin 20 us     557 / 59    606 / 65      3335, 3133
 *   pause-spin 50 us     553 / 63    563 / 63      3254, 3128
 *   pause-spin 100 us    552 / 58    554 / 59      3250, 3101
 *   yield-spin 50 us     555 / 54   1054 / 95      3114, 2882
 * (OpenMP regions, actfast 0.1: 559 / 62 alone.) Sleeping at once makes every call wait
 * for the helper to wake, slow where an idle vCPU halts; a sched_yield() spin hands the
 * core to any non-yielding spinner there (PyTorch's team, an OpenBLAS worker), so the
 * helper stops helping; a short pause-spin does neither and costs the next BLAS call
 * nothing measurable.
 */
static uint64_t af_pool_wait(uint64_t seen)
{
    af_pool_t *P = &af_pool;
    uint64_t s;
    long deadline = af_now_ns() + atomic_load_explicit(&P->spin_ns, memory_order_relaxed);
    for (unsigned i = 1;; i++) {
        s = atomic_load_explicit(&P->state, memory_order_acquire);
        if (AF_GEN(s) != seen)
            return s;
        AF_PAUSE();
        if ((i & 63) == 0 && af_now_ns() > deadline)
            break;
    }
    pthread_mutex_lock(&P->mu);
    atomic_fetch_add(&P->sleepers, 1);
    while (AF_GEN(s = atomic_load(&P->state)) == seen)
        pthread_cond_wait(&P->cv, &P->mu);
    atomic_fetch_sub(&P->sleepers, 1);
    pthread_mutex_unlock(&P->mu);
    return s;
}

static void *af_pool_helper(void *arg)
{
    /* arg packs this helper's index (1-based, low 8 bits) and the generation current
     * when it was started. */
    uintptr_t a = (uintptr_t)arg;
    uint64_t idx = a & 0xff, seen = a >> 8;
    sigset_t all;
    /* Signals (Ctrl-C) are for the Python thread, which handles them; never this one. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        uint64_t s = af_pool_wait(seen);
        seen = AF_GEN(s);
        if (idx < AF_NT(s))
            af_pool_work(s, seen);
    }
    return NULL;
}

static void af_pool_after_fork_child(void)
{
    /* The helpers did not survive the fork. */
    af_pool_t *P = &af_pool;
    P->created = 0;
    atomic_store(&P->sleepers, 0);
    atomic_store(&P->busy, 0);
    pthread_mutex_init(&P->mu, NULL);
    pthread_cond_init(&P->cv, NULL);
}

static inline void af_pool_init(void) { pthread_atfork(NULL, NULL, af_pool_after_fork_child); }
static inline void af_pool_set_spin_ns(long ns) { atomic_store(&af_pool.spin_ns, ns < 0 ? 0 : ns); }
static inline long af_pool_get_spin_ns(void) { return atomic_load(&af_pool.spin_ns); }
static inline int af_pool_helpers(void) { return af_pool.created; }

/*
 * Runs fn over [0, n) in chunks of `chunk` items on up to nt threads (the caller is
 * one of them) and returns when all of it is done. Items are never split differently
 * for a different thread count, so results that depend on the chunking (sums per
 * chunk) do not depend on which thread ran what.
 */
static void af_pool_run(af_chunk_fn fn, void *ctx, Py_ssize_t n, Py_ssize_t chunk, int nt)
{
    af_pool_t *P = &af_pool;
    Py_ssize_t nchunks;
    uint64_t old, gen, s;
    int expected = 0, spins = 0;
    if (n <= 0)
        return;
    chunk = af_pool_fit_chunk(n, chunk);
    nchunks = (n + chunk - 1) / chunk;
    if (nt > AF_POOL_MAX_THREADS) nt = AF_POOL_MAX_THREADS;
    if (nt > nchunks) nt = (int)nchunks;
    if (nt <= 1 || !atomic_compare_exchange_strong(&P->busy, &expected, 1)) {
        fn(ctx, 0, n);
        return;
    }
    old = atomic_load(&P->state);
    while (P->created < nt - 1) {
        pthread_t th;
        pthread_attr_t attr;
        int ok;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        ok = pthread_create(&th, &attr, af_pool_helper,
                            (void *)(((uintptr_t)AF_GEN(old) << 8) | (uintptr_t)(P->created + 1))) == 0;
        pthread_attr_destroy(&attr);
        if (!ok)
            break;
        P->created++;
    }
    if (nt > P->created + 1)
        nt = P->created + 1;
    P->fn = fn;
    P->ctx = ctx;
    P->n = n;
    P->chunk = chunk;
    atomic_store_explicit(&P->done, 0, memory_order_relaxed);
    gen = (AF_GEN(old) + 1) & ((UINT64_C(1) << 20) - 1);
    s = (gen << AF_GEN_SHIFT) | ((uint64_t)nt << AF_NT_SHIFT) | ((uint64_t)nchunks << AF_NCH_SHIFT);
    atomic_store(&P->state, s);
    if (atomic_load(&P->sleepers) > 0) {
        pthread_mutex_lock(&P->mu);
        pthread_cond_broadcast(&P->cv);
        pthread_mutex_unlock(&P->mu);
    }
    af_pool_work(s, gen);
    /* Only chunks that a helper claimed and is still running are left. */
    while (atomic_load_explicit(&P->done, memory_order_acquire) < nchunks) {
        if (++spins < 2000)
            AF_PAUSE();
        else
            sched_yield();
    }
    atomic_store_explicit(&P->busy, 0, memory_order_release);
}

#else
/* No helpers of our own: nothing to start, tune or count. */
static inline void af_pool_init(void) {}
static inline void af_pool_set_spin_ns(long ns) { (void)ns; }
static inline long af_pool_get_spin_ns(void) { return 0; }
static inline int af_pool_helpers(void) { return 0; }

#if defined(_OPENMP)
#define AF_POOL_KIND "OpenMP (dynamic chunks)"
#include <omp.h>

static void af_pool_run(af_chunk_fn fn, void *ctx, Py_ssize_t n, Py_ssize_t chunk, int nt)
{
    int c, nchunks;
    if (n <= 0)
        return;
    chunk = af_pool_fit_chunk(n, chunk);
    nchunks = (int)((n + chunk - 1) / chunk);
    if (nt <= 1 || nchunks <= 1 || omp_in_parallel()) {
        fn(ctx, 0, n);
        return;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (c = 0; c < nchunks; c++) {
        Py_ssize_t lo = (Py_ssize_t)c * chunk;
        fn(ctx, lo, lo + chunk < n ? lo + chunk : n);
    }
}
#else
#define AF_POOL_KIND "none (serial build)"

static void af_pool_run(af_chunk_fn fn, void *ctx, Py_ssize_t n, Py_ssize_t chunk, int nt)
{
    (void)chunk;
    (void)nt;
    if (n > 0)
        fn(ctx, 0, n);
}
#endif
#endif

#endif /* ACTFAST_POOL_H */
