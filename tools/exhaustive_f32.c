/*
 * Exhaustive ULP check of the float32 float-lane math over all 2^32 inputs.
 *
 * Why a C program: bench/accuracy.py goes through the built module and NumPy, ~300 s
 * per op for all 2^32 inputs on 2 cores; this loop runs the same inline functions of
 * actfast_vmath.h, compiled with the module's flags, against a double reference from
 * libm in ~10-40 s per op. The module's loops only call these functions (see
 * src/_activations.pxd); bench/accuracy.py --stride 97 through the module reproduces
 * the figures of this program at the points they share, and the test suite checks every
 * compiled variant on dense samples of bit patterns.
 *
 *   gcc -O3 -march=x86-64-v4 -fopenmp -ffp-contract=off -fno-math-errno \
 *       -fno-trapping-math -Isrc tools/exhaustive_f32.c -lm -o /tmp/exh
 *   /tmp/exh all                  # every op, all 2^32 bit patterns
 *   /tmp/exh --stride 97 sigmoid,elu:0.1
 *
 * "op:p" sets the op's first parameter (alpha, beta). Convention (issue 11): error in ULP
 * of the float32 result at the reference (subnormal spacing below the normal range);
 * for a gradient whose f' has a root, within 0.5 of the root the error is in ULP of
 * max(|f'|, 1); a reference past float32's range must give the overflowed result (inf);
 * NaN must give NaN. Without -march (no FMA) the helpers take their double paths.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "actfast_vmath.h"

typedef float (*f32_fn)(float x, double p);
typedef double (*ref_fn)(double x, double p);

typedef struct op_s op_t;
struct op_s {
    const char *name;
    double p;       /* default parameter */
    double root;    /* root of f' (NAN: none) */
    void (*run)(const op_t *op, double p, unsigned long long stride);
};

/* ---- references in double (libm), in forms that do not cancel ------------------------ */

static double r_sigmoid(double x, double p) { (void)p; return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }
static double r_sigmoid_grad(double x, double p) { (void)p; double e = exp(-fabs(x)); return e / ((1 + e) * (1 + e)); }
static double r_tanh(double x, double p) { (void)p; return tanh(x); }
static double r_tanh_grad(double x, double p) { (void)p; return 4 * r_sigmoid_grad(2 * x, 0); }
static double r_log_sigmoid_grad(double x, double p) { (void)p; return r_sigmoid(-x, 0); }
static double r_softplus_grad(double x, double p) { double b = (double)(float)p; return b * x > 20 ? 1.0 : r_sigmoid(b * x, 0); }
static double r_elu(double x, double p) { return x > 0 ? x : (double)(float)p * expm1(x); }

/* gelu family (float lanes: af_geluf, af_gelu_gradf, af_gelu_tanhf, af_gelu_tanh_gradf):
 * gelu through erfc (no cancellation for x < 0), the tanh form through exp(-|t|) */
static double r_gelu(double x, double p) { (void)p; return x == -INFINITY ? 0.0 : 0.5 * x * erfc(-x * M_SQRT1_2); }
static double r_gelu_grad(double x, double p)
{
    (void)p;
    if (isinf(x)) return x > 0 ? 1.0 : 0.0;
    return 0.5 * erfc(-x * M_SQRT1_2) + x * exp(-0.5 * x * x) * (0.5 * M_2_SQRTPI * M_SQRT1_2);
}
static double r_gelu_tanh_parts(double x, double *s, double *sm)
{
    double t = 2.0 * sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
    double e = exp(-fabs(t));
    *s = (t >= 0 ? 1.0 : e) / (1.0 + e);          /* sigmoid(t) */
    *sm = (t >= 0 ? e : 1.0) / (1.0 + e);         /* 1 - sigmoid(t) */
    return t;
}
static double r_gelu_tanh(double x, double p)
{
    (void)p;
    if (x == -INFINITY) return 0.0;
    double s, sm;
    r_gelu_tanh_parts(x, &s, &sm);
    return x * s;
}
static double r_gelu_tanh_grad(double x, double p)
{
    (void)p;
    if (isinf(x)) return x > 0 ? 1.0 : 0.0;
    double s, sm;
    r_gelu_tanh_parts(x, &s, &sm);
    double k = 2.0 * sqrt(2.0 / M_PI) * x * (1.0 + 3.0 * 0.044715 * x * x);
    return s * (1.0 + k * sm);
}

/* ---- the float-lane functions, composed as src/_activations.pxd composes them ---------- */

static float f_sigmoid(float x, double p) { (void)p; return af_sigmoidf(x); }
static float f_sigmoid_grad(float x, double p) { (void)p; return af_sigmoid_gradf(x, 1.0f); }
static float f_tanh(float x, double p) { (void)p; return af_tanhf(x); }
static float f_tanh_grad(float x, double p) { (void)p; return af_tanh_gradf(x, 1.0f); }
static float f_log_sigmoid_grad(float x, double p) { (void)p; return af_log_sigmoid_gradf(x, 1.0f); }
static float f_softplus_grad(float x, double p)
{
    float b = (float)p;
    return b * x > 20.0f ? 1.0f : af_softplus_gradf(x, 1.0f, b);
}
static float f_elu(float x, double p) { return x > 0.0f ? x : af_alpha_expm1f(x, (float)p); }

static float f_gelu(float x, double p) { (void)p; return af_geluf(x); }
static float f_gelu_grad(float x, double p) { (void)p; return af_gelu_gradf(x, 1.0f); }
static float f_gelu_tanh(float x, double p) { (void)p; return af_gelu_tanhf(x); }
static float f_gelu_tanh_grad(float x, double p) { (void)p; return af_gelu_tanh_gradf(x, 1.0f); }


/* ---- the measurement ------------------------------------------------------------------- */

static inline double ulp_at(double v)
{
    /* 2^(exponent of v - 23), at least 2^-149: from the bits (frexp is a call) */
    uint64_t u;
    memcpy(&u, &v, 8);
    int64_t e = (int64_t)((u >> 52) & 0x7ff) - 1023;
    e = e < -126 ? -126 : e;
    uint64_t r = (uint64_t)(e - 23 + 1023) << 52;
    double d;
    memcpy(&d, &r, 8);
    return d;
}

static inline double err_of(float y, double r, double x, double root)
{
    if (isnan(r) || isnan(y)) return (isnan(r) && isnan(y)) ? 0 : INFINITY;
    float rf = (float)r;                    /* past float32's range: inf */
    if (isinf(rf) || isinf(y)) return y == rf ? 0 : INFINITY;
    double scale = fabs(r);
    if (!isnan(root) && fabs(x - root) < 0.5 && scale < 1) scale = 1;
    return fabs((double)y - r) / ulp_at(scale);
}

#define CHUNK 4096

/* always inlined into one loop per op (RUN_FOR below), so that the float-lane function
 * is inlined and vectorised as in the module, not called through a pointer */
static inline __attribute__((always_inline)) void
run_with(const op_t *op, f32_fn f, ref_fn ref, double p, unsigned long long stride)
{
    double worst = 0, wx = 0;
    unsigned long long count = 0;
    long long n_chunks = (long long)(((1ull << 32) + stride * CHUNK - 1) / (stride * CHUNK));
#pragma omp parallel
    {
        float xs[CHUNK], ys[CHUNK];
        double lw = 0, lx = 0;
        unsigned long long lc = 0;
#pragma omp for schedule(dynamic, 64)
        for (long long c = 0; c < n_chunks; c++) {
            int k = 0;
            for (; k < CHUNK; k++) {
                unsigned long long b = ((unsigned long long)c * CHUNK + k) * stride;
                if (b >= (1ull << 32)) break;
                uint32_t u = (uint32_t)b;
                memcpy(&xs[k], &u, 4);
            }
            for (int i = 0; i < k; i++) ys[i] = f(xs[i], p);
            for (int i = 0; i < k; i++) {
                double x = xs[i];
                double e = err_of(ys[i], ref(x, p), x, op->root);
                if (e > lw) { lw = e; lx = x; }
            }
            lc += k;
        }
#pragma omp critical
        {
            if (lw > worst || (lw == worst && fabs(lx) < fabs(wx))) { worst = lw; wx = lx; }
            count += lc;
        }
    }
    printf("%-22s p=%-6g n=%-11llu max_ulp=%.4f at x=%.9g\n", op->name, p, count, worst, wx);
    fflush(stdout);
}

/* ---- the ops: one loop each (add a line to both lists) ------------------------------- */

#define RUN_FOR(NAME) \
    static void run_##NAME(const op_t *op, double p, unsigned long long stride) \
    { run_with(op, f_##NAME, r_##NAME, p, stride); }
#define OP(NAME, P, ROOT) {#NAME, P, ROOT, run_##NAME}
RUN_FOR(sigmoid)
RUN_FOR(sigmoid_grad)
RUN_FOR(tanh)
RUN_FOR(tanh_grad)
RUN_FOR(log_sigmoid_grad)
RUN_FOR(softplus_grad)
RUN_FOR(elu)
RUN_FOR(gelu)
RUN_FOR(gelu_grad)
RUN_FOR(gelu_tanh)
RUN_FOR(gelu_tanh_grad)
static const op_t OPS[] = {
    OP(sigmoid, 0, NAN),
    OP(sigmoid_grad, 0, NAN),
    OP(tanh, 0, NAN),
    OP(tanh_grad, 0, NAN),
    OP(log_sigmoid_grad, 0, NAN),
    OP(softplus_grad, 1.0, NAN),
    OP(elu, 1.0, NAN),
    OP(gelu, 0, NAN),
    OP(gelu_grad, 0, AF_ROOT_GELU_GRAD_HI),
    OP(gelu_tanh, 0, NAN),
    OP(gelu_tanh_grad, 0, AF_ROOT_GELU_TANH_GRAD_HI),
};
#define N_OPS (sizeof OPS / sizeof OPS[0])

int main(int argc, char **argv)
{
    unsigned long long stride = 1;
    int a = 1;
    if (a + 1 < argc && strcmp(argv[a], "--stride") == 0) { stride = strtoull(argv[a + 1], 0, 10); a += 2; }
    if (a >= argc || stride == 0) {
        fprintf(stderr, "usage: %s [--stride S] all|op[:param][,op...]\nops:", argv[0]);
        for (size_t i = 0; i < N_OPS; i++) fprintf(stderr, " %s", OPS[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    int all = strcmp(argv[a], "all") == 0;
    char *list = argv[a];
    for (size_t i = 0; i < N_OPS; i++) {
        if (all) OPS[i].run(&OPS[i], OPS[i].p, stride);
    }
    if (all) return 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(0, ",")) {
        char *colon = strchr(tok, ':');
        if (colon) *colon = 0;
        size_t i = 0;
        while (i < N_OPS && strcmp(OPS[i].name, tok) != 0) i++;
        if (i == N_OPS) { fprintf(stderr, "unknown op %s\n", tok); return 2; }
        OPS[i].run(&OPS[i], colon ? atof(colon + 1) : OPS[i].p, stride);
    }
    return 0;
}
