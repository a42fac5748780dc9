/*
 * A/B of two versions of src/actfast_vmath.h: same bits over all 2^32 float32 inputs,
 * and the time per element, old and new interleaved in one process.
 *
 * Why: a change that only restructures the math (a select written as a mask, a scaling
 * split differently) must leave every result bit unchanged, and whether it is faster
 * depends on what gcc makes of it, which a Python-level timing on a shared 2-core host
 * is too noisy to tell (+-20 %). This loop runs the header's inline functions with the
 * module's flags, so the vectoriser sees what it sees in the module.
 *
 *   mkdir -p /tmp/old && for f in src/[a-z]*.h; do git show HEAD:$f > /tmp/old/${f#src/}; done
 *   F="-O3 -march=x86-64-v3 -ffp-contract=off -fno-math-errno -fno-trapping-math \
 *      --param max-inline-insns-single=1000 --param inline-unit-growth=400 \
 *      --param large-function-growth=400"
 *   gcc $F -I/tmp/old -DAB_SIDE=old_ -c tools/vmath_ab.c -o /tmp/ab_old.o
 *   gcc $F -Isrc      -DAB_SIDE=new_ -c tools/vmath_ab.c -o /tmp/ab_new.o
 *   gcc -O2 -fopenmp tools/vmath_ab.c /tmp/ab_old.o /tmp/ab_new.o -o /tmp/ab
 *   /tmp/ab same [OPS]          # bits over all 2^32 x (dy = 1; six more dy on 1/61)
 *   /tmp/ab time [OPS] [LO HI]  # ns/element, 4096 x uniform in [LO, HI], one thread
 *
 * OPS: comma-separated names (default: all). NaN results compare equal whatever their
 * payload. Add a line to AB_KERNELS to cover another function.
 */
#include <stddef.h>

#define AB_KERNELS(X)                                                       \
    X(gelu, af_geluf(x))                                                    \
    X(gelu_grad, af_gelu_gradf(x, d))                                       \
    X(geglu, af_gegluf(x, d))                                               \
    X(geglu_dgate, af_geglu_dgatef(x, 0.37f, d))                            \
    X(gelu_tanh, af_gelu_tanhf(x))                                          \
    X(gelu_tanh_grad, af_gelu_tanh_gradf(x, d))                             \
    X(sigmoid, af_sigmoidf(x))                                              \
    X(sigmoid_grad, af_sigmoid_gradf(x, d))                                 \
    X(tanh, af_tanhf(x))                                                    \
    X(tanh_grad, af_tanh_gradf(x, d))                                       \
    X(log_sigmoid, af_log_sigmoidf(x))                                      \
    X(log_sigmoid_grad, af_log_sigmoid_gradf(x, d))                         \
    X(softplus, af_softplusf(x, 1.0f))                                      \
    X(softplus_b07, af_softplusf(x, 0.7f))                                  \
    X(softplus_grad, af_softplus_gradf(x, d, 1.0f))                         \
    X(softplus_grad_b25, af_softplus_gradf(x, d, 2.5f))                     \
    X(silu_grad, af_silu_gradf(x, d))                                       \
    X(silu_beta_grad, af_silu_beta_gradf(x, d, 1.5f, 0.0f))                 \
    X(swiglu_dgate, af_swiglu_dgatef(x, 0.37f, d, 1.0f))                    \
    X(mish_grad, af_mish_gradf(x, d))                                       \
    X(elu, af_alpha_expm1f(x, 1.0f))                                        \
    X(tanh_shrink, af_tanh_shrinkf(x))

#define AB_INDEX(name, expr) AB_##name,
enum { AB_KERNELS(AB_INDEX) N_OPS };

#ifdef AB_SIDE
/* ---- one side: the kernels of one header version, with a prefixed entry point ---- */
#include "actfast_vmath.h"
#define AB_CAT2(a, b) a##b
#define AB_CAT(a, b) AB_CAT2(a, b)
#define AB_CASE(name, expr)                                                 \
    case AB_##name:                                                         \
        for (size_t i = 0; i < n; i++) { float x = xs[i], d = dys[i]; (void)d; out[i] = (expr); } \
        return;
void AB_CAT(AB_SIDE, run)(int op, const float *xs, const float *dys, float *out, size_t n)
{
    switch (op) { AB_KERNELS(AB_CASE) }
}
#else
/* ---- the driver ---------------------------------------------------------------------- */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void old_run(int op, const float *xs, const float *dys, float *out, size_t n);
void new_run(int op, const float *xs, const float *dys, float *out, size_t n);

#define AB_NAME(name, expr) #name,
static const char *NAMES[] = { AB_KERNELS(AB_NAME) };

static int selected(const char *list, const char *name)
{
    if (!list) return 1;
    size_t k = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += k)
        if ((p == list || p[-1] == ',') && (p[k] == ',' || p[k] == '\0')) return 1;
    return 0;
}

#define BLOCK 65536
static long long differing(int op)
{
    static const float DY[] = {1.0f, 1e-30f, 1e30f, -3.4028235e38f, 1e-39f, -7.3e-12f, 0.37f};
    long long bad = 0;
#pragma omp parallel for reduction(+ : bad) schedule(dynamic)
    for (long long blk = 0; blk < (1LL << 32) / BLOCK; blk++) {
        float *x = malloc(4 * sizeof(float) * BLOCK);
        if (!x) { fprintf(stderr, "out of memory\n"); exit(2); }
        float *dy = x + BLOCK, *a = dy + BLOCK, *b = a + BLOCK;
        for (int k = 0; k < 7; k++) {
            if (k > 0 && blk % 61 != 0) continue;
            for (int i = 0; i < BLOCK; i++) {
                uint32_t u = (uint32_t)(blk * BLOCK + i);
                memcpy(&x[i], &u, 4);
                dy[i] = DY[k];
            }
            old_run(op, x, dy, a, BLOCK);
            new_run(op, x, dy, b, BLOCK);
            for (int i = 0; i < BLOCK; i++)
                bad += memcmp(&a[i], &b[i], 4) != 0 && !(a[i] != a[i] && b[i] != b[i]);
        }
        free(x);
    }
    return bad;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static int by_value(const void *p, const void *q)
{
    double a = *(const double *)p, b = *(const double *)q;
    return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "same") && strcmp(argv[1], "time"))) {
        fprintf(stderr, "usage: %s same|time [OPS] [LO HI]\nops:", argv[0]);
        for (int op = 0; op < N_OPS; op++) fprintf(stderr, " %s", NAMES[op]);
        fprintf(stderr, "\n");
        return 2;
    }
    const char *list = argc > 2 && strcmp(argv[2], "all") ? argv[2] : NULL;
    if (!strcmp(argv[1], "same")) {
        long long total = 0;
        for (int op = 0; op < N_OPS; op++) {
            if (!selected(list, NAMES[op])) continue;
            long long bad = differing(op);
            total += bad;
            printf("%-20s %lld results differ\n", NAMES[op], bad);
            fflush(stdout);
        }
        return total != 0;
    }
    enum { N = 4096, REPS = 15, CALLS = 200 };
    float lo = argc > 4 ? (float)atof(argv[3]) : -5.0f, hi = argc > 4 ? (float)atof(argv[4]) : 5.0f;
    static float x[N], dy[N], out[N];
    srand(1);
    for (int i = 0; i < N; i++) {
        x[i] = lo + (hi - lo) * (float)(rand() / (double)RAND_MAX);
        dy[i] = 0.1f + (float)(rand() / (double)RAND_MAX);
    }
    printf("ns/element, median of %d, x in [%g, %g]\n%-20s %8s %8s %8s\n", REPS, lo, hi, "op", "old", "new", "new/old");
    for (int op = 0; op < N_OPS; op++) {
        if (!selected(list, NAMES[op])) continue;
        double t[2][REPS];
        for (int r = 0; r < REPS; r++)
            for (int side = 0; side < 2; side++) {
                double t0 = now();
                for (int c = 0; c < CALLS; c++) (side ? new_run : old_run)(op, x, dy, out, N);
                t[side][r] = (now() - t0) / ((double)CALLS * N) * 1e9;
            }
        qsort(t[0], REPS, sizeof(double), by_value);
        qsort(t[1], REPS, sizeof(double), by_value);
        printf("%-20s %8.2f %8.2f %8.2f\n", NAMES[op], t[0][REPS / 2], t[1][REPS / 2], t[1][REPS / 2] / t[0][REPS / 2]);
    }
    return 0;
}
#endif
