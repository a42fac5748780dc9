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
 * NaN must give NaN. diff= counts the results other than the reference rounded to float
 * (for the hard_sigmoid family, whose references are the .pxd's double formulas, 0 means
 * bit for bit those formulas). Without -march (no FMA) the helpers take their double paths.
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
/* -- the exp family in double, rounded once (celu, celu' with x * (1/alpha); elu', selu,
 * selu' as before), for their figures: p = alpha (selu: p scales the default alpha) -- */
#define SELU_A 1.6732632423543772848170429916717
#define SELU_S 1.0507009873554804934193349852946
static double r_celu(double x, double p) { double a = (double)(float)p; return x > 0 ? x : a * expm1(x / a); }
static double r_celu_grad(double x, double p) { return x > 0 ? 1.0 : exp(x / (double)(float)p); }
static double r_elu_grad(double x, double p) { return x > 0 ? 1.0 : (double)(float)p * exp(x); }
static double r_selu(double x, double p) { return x > 0 ? SELU_S * x : SELU_S * (p * SELU_A) * expm1(x); }
static double r_selu_grad(double x, double p) { return x > 0 ? SELU_S : SELU_S * (p * SELU_A) * exp(x); }
/* softplus family (softplus, log_sigmoid, silu', mish', swiglu's dgate); without FMA the
 * module uses the .pxd's double paths for these (AF_FLOAT_LANES = 0): check them with FMA */
static double r_softplus(double x, double p)
{
    double b = (double)(float)p * x;        /* exact */
    if ((float)b > 20.0f) return x;         /* the threshold, compared in float */
    return ((b > 0 ? b : 0) + log1p(exp(-fabs(b)))) / (double)(float)p;
}
static double r_log_sigmoid(double x, double p) { (void)p; return (x < 0 ? x : 0) - log1p(exp(-fabs(x))); }
static double r_silu_grad(double x, double p)
{
    (void)p;                                /* s (1 + x (1 - s)) through e = exp(-|x|) */
    double e = exp(-fabs(x)), d = (1 + e) * (1 + e);
    if (isinf(x)) return x > 0 ? 1 : 0;
    return x >= 0 ? (1 + e * (1 + x)) / d : e * ((1 + x) + e) / d;
}
static double r_silu_beta_grad(double x, double p) { return r_silu_grad(p * x, 0); }
/* swiglu's dgate with the value p (exact in float) and dy = 1: p silu'(x) */
static double r_swiglu_dgate(double x, double p) { return (double)(float)p * r_silu_grad(x, 0); }
static double r_mish_grad(double x, double p)
{
    /* t + x s (1 - t^2), s and 1 - t^2 without cancellation */
    (void)p;
    if (isinf(x)) return x > 0 ? 1 : 0;
    double sp = x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    double t = tanh(sp), c = 1 / cosh(sp);
    double s = x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
    return t + x * s * (c * c);
}

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

/* tanh_shrink: x - tanh x without cancellation, the Taylor series for |x| < 0.3 (12 terms:
 * the next is < 1e-18 of the sum), x - tanh(x) beyond (5 bits lost at 0.3, 48 left);
 * tanh_shrink' = tanh(x)^2 */
static double r_tanh_shrink(double x, double p)
{
    (void)p;
    static const double c[] = {0.33333333333333333333, -0.13333333333333333333, 0.053968253968253968254,
                               -0.021869488536155202822, 0.0088632355299021965689, -0.0035921280365724810169,
                               0.0014558343870513182682, -0.00059002744094558598138, 0.00023912911424355248149,
                               -0.000096915379569294503256, 0.000039278323883316834053, -0.000015918905069328964741};
    if (fabs(x) >= 0.3) return x - tanh(x);
    double z = x * x, s = 0;
    for (int k = 11; k >= 0; k--) s = s * z + c[k];
    return x * z * s;
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
static float f_celu(float x, double p)
{
    float a = (float)p;
    double v = (double)a * af_expm1_lite((double)x * (1.0 / (double)a));
    return x > 0.0f ? x : (float)v;
}
static float f_celu_grad(float x, double p)
{
    double v = 1.0 * af_exp_lite((double)x * (1.0 / (double)(float)p));
    return x > 0.0f ? 1.0f : (float)v;
}
static float f_elu_grad(float x, double p)
{
    double v = 1.0 * ((double)(float)p * af_exp_lite((double)x));
    return x > 0.0f ? 1.0f : (float)v;
}
static float f_selu(float x, double p)
{
    double v = (SELU_S * (p * SELU_A)) * af_expm1_lite((double)x);
    return (float)(x > 0.0f ? SELU_S * (double)x : v);
}
static float f_selu_grad(float x, double p)
{
    double v = 1.0 * ((SELU_S * (p * SELU_A)) * af_exp_lite((double)x));
    return (float)(x > 0.0f ? SELU_S : v);
}

/* ---- softmax rows: exp (af_expf, the former softmax term) and exp_pair (exp(x) as
 * af__exp_pairf's pair 2^n (ph + pl) rounded once, the core of the float32 softmax
 * terms, measured on x <= 0, its domain there: for x > 0 it returns the float of the
 * reference, so that the maximum is that of x <= 0) ---- */
static double r_exp(double x, double p) { (void)p; return exp(x); }
static double r_exp_pair(double x, double p) { (void)p; return exp(x); }
static float f_exp(float x, double p) { (void)p; return af_expf(x); }
static float f_exp_pair(float x, double p)
{
    (void)p;
#if defined(AF_HAS_FMA)
    float z = x < -104.0f ? -104.0f : x;
    z = z > 0.0f ? 0.0f : z;                    /* NaN passes */
    float pl, n;
    float ph = af__exp_pairf(z, 0.0f, &pl, &n);
    float y = af__ldexpf2(ph + pl, n);
    return x > 0.0f ? (float)exp((double)x) : (x < -104.0f ? 0.0f : y);
#else
    return (float)exp((double)x);
#endif
}
/* ---- end of softmax rows ---- */
/* softplus family */
static float f_softplus(float x, double p)
{
    float b = (float)p;
    return b * x > 20.0f ? x : af_softplusf(x, b);
}
static float f_log_sigmoid(float x, double p) { (void)p; return af_log_sigmoidf(x); }
static float f_silu_grad(float x, double p) { (void)p; return af_silu_gradf(x, 1.0f); }
static float f_swiglu_dgate(float x, double p) { return af_swiglu_dgatef(x, (float)p, 1.0f, 1.0f); }
static float f_mish_grad(float x, double p) { (void)p; return af_mish_gradf(x, 1.0f); }
static float f_silu_beta_grad(float x, double p)
{
    float bh = (float)p, bl = (float)(p - (double)bh);
    return af_silu_beta_gradf(x, 1.0f, bh, bl);
}

static float f_gelu(float x, double p) { (void)p; return af_geluf(x); }
static float f_gelu_grad(float x, double p) { (void)p; return af_gelu_gradf(x, 1.0f); }
static float f_gelu_tanh(float x, double p) { (void)p; return af_gelu_tanhf(x); }
static float f_gelu_tanh_grad(float x, double p) { (void)p; return af_gelu_tanh_gradf(x, 1.0f); }
static float f_tanh_shrink(float x, double p) { (void)p; return af_tanh_shrinkf(x); }

/* hard_sigmoid family (p = alpha, beta = 1/2: PyTorch's 1/6, ONNX's 0.2): the double
 * formulas of src/_activations.pxd, (x + c)/d and x (x + c)/d with d = 1/alpha, c = beta d,
 * so that diff= counts the results that are not those formulas rounded to float */
static double r_hard_sigmoid(double x, double p)
{
    double d = 1.0 / p, u = (x + 0.5 * d) / d;
    return u < 0 ? 0 : (u > 1 ? 1 : u);
}
static double r_hard_swish(double x, double p)
{
    double d = 1.0 / p, c = 0.5 * d;
    return x <= -c ? 0 : (x >= d - c ? x : (x * (x + c)) / d);
}
static double r_hard_swish_grad(double x, double p)
{
    double d = 1.0 / p, c = 0.5 * d;
    return isnan(x) ? x : (x <= -c ? 0 : (x >= d - c ? 1 : (2 * x + c) / d));
}
/* d and b = c/d as the .pxd's hard_float_params gives them */
static float hard_d(double p) { return (float)(1.0 / p); }
static float hard_b(double p) { return (float)((0.5 * (1.0 / p)) / (1.0 / p)); }
static float f_hard_sigmoid(float x, double p) { return af_hard_sigmoidf(x, hard_d(p), hard_b(p)); }
static float f_hard_swish(float x, double p) { return af_hard_swishf(x, hard_d(p), hard_b(p)); }
static float f_hard_swish_grad(float x, double p) { return af_hard_swish_gradf(x, 1.0f, hard_d(p), hard_b(p)); }

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
    /* silu_beta_grad is silu'(beta x): its root is silu''s over beta */
    double root = strcmp(op->name, "silu_beta_grad") == 0 ? op->root / p : op->root;
    unsigned long long count = 0, diff = 0;
    long long n_chunks = (long long)(((1ull << 32) + stride * CHUNK - 1) / (stride * CHUNK));
#pragma omp parallel
    {
        float xs[CHUNK], ys[CHUNK];
        double lw = 0, lx = 0;
        unsigned long long lc = 0, ld = 0;
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
                double r = ref(x, p);
                double e = err_of(ys[i], r, x, root);
                float rf = (float)r;
                ld += memcmp(&ys[i], &rf, 4) != 0 && !(isnan(r) && isnan(ys[i]));
                if (e > lw) { lw = e; lx = x; }
            }
            lc += k;
        }
#pragma omp critical
        {
            if (lw > worst || (lw == worst && fabs(lx) < fabs(wx))) { worst = lw; wx = lx; }
            count += lc;
            diff += ld;
        }
    }
    printf("%-22s p=%-6g n=%-11llu max_ulp=%.4f at x=%.9g diff=%llu\n", op->name, p, count, worst, wx, diff);
    fflush(stdout);
}

/* ---- the ops: one loop each; one line per op here (name, default parameter, root of
 * f' or NAN) --------------------------------------------------------------------------- */

#define ALL_OPS(X) \
    X(sigmoid, 0, NAN) \
    X(sigmoid_grad, 0, NAN) \
    X(tanh, 0, NAN) \
    X(tanh_grad, 0, NAN) \
    X(log_sigmoid_grad, 0, NAN) \
    X(softplus_grad, 1.0, NAN) \
    X(elu, 1.0, NAN) \
    X(celu, 1.0, NAN) \
    X(celu_grad, 1.0, NAN) \
    X(elu_grad, 1.0, NAN) \
    X(selu, 1.0, NAN) \
    X(selu_grad, 1.0, NAN) \
    /* softmax rows */ \
    X(exp, 0, NAN) \
    X(exp_pair, 0, NAN) \
    /* softplus family; silu_beta_grad's root is divided by beta: see run_with */ \
    X(softplus, 1.0, NAN) \
    X(log_sigmoid, 0, NAN) \
    X(silu_grad, 0, -1.2784645427610738) \
    X(swiglu_dgate, 1.7, -1.2784645427610738) \
    X(mish_grad, 0, -1.1919942) \
    X(silu_beta_grad, 1.5, -1.2784645427610738) \
    /* gelu family */ \
    X(gelu, 0, NAN) \
    X(gelu_grad, 0, AF_ROOT_GELU_GRAD_HI) \
    X(gelu_tanh, 0, NAN) \
    X(gelu_tanh_grad, 0, AF_ROOT_GELU_TANH_GRAD_HI) \
    /* tanh_shrink (float lanes with FMA only: AF_FLOAT_LANES, as the softplus family) */ \
    X(tanh_shrink, 0, NAN) \
    /* hard_sigmoid family (p = alpha; ONNX's: hard_sigmoid:0.2) */ \
    X(hard_sigmoid, 0.16666666666666666, NAN) \
    X(hard_swish, 0.16666666666666666, NAN) \
    X(hard_swish_grad, 0.16666666666666666, NAN)

#define RUN_FOR(NAME, P, ROOT) \
    static void run_##NAME(const op_t *op, double p, unsigned long long stride) \
    { run_with(op, f_##NAME, r_##NAME, p, stride); }
ALL_OPS(RUN_FOR)
#define OP(NAME, P, ROOT) {#NAME, P, ROOT, run_##NAME},
static const op_t OPS[] = { ALL_OPS(OP) };
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
