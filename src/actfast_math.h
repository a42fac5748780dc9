/*
 * The elementary functions the activations are built from, for float and double.
 *
 * This is the one place where exp, expm1, log1p, log, tanh and erfc are chosen. Every
 * activation in _activations.pxd composes these, so swapping an implementation here
 * (libm, or a branch-free polynomial that the compiler vectorises) changes every kernel
 * at once and nothing else has to move.
 *
 * Contract of each function: IEEE semantics for NaN (propagates), +-inf (the limit) and
 * +-0, no spurious overflow for any finite input, and the accuracy stated by
 * bench/accuracy.py.
 */
#ifndef ACTFAST_MATH_H
#define ACTFAST_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* Our own vectorisable implementations (actfast_vmath.h) are the default; build with
 * -DACTFAST_USE_LIBM (e.g. ACTFAST_CFLAGS=-DACTFAST_USE_LIBM) to get the C library's
 * scalar functions instead, for comparison or on a platform where they misbehave. */
#if !defined(ACTFAST_USE_LIBM) && !defined(ACTFAST_USE_VMATH)
#define ACTFAST_USE_VMATH 1
#endif

#if defined(ACTFAST_USE_VMATH)
#include "actfast_vmath.h"
#else
static inline float af_expf(float x) { return expf(x); }
static inline double af_exp(double x) { return exp(x); }
static inline float af_expm1f(float x) { return expm1f(x); }
static inline double af_expm1(double x) { return expm1(x); }
static inline float af_log1pf(float x) { return log1pf(x); }
static inline double af_log1p(double x) { return log1p(x); }
static inline float af_logf(float x) { return logf(x); }
static inline double af_log(double x) { return log(x); }
static inline float af_tanhf(float x) { return tanhf(x); }
static inline double af_tanh(double x) { return tanh(x); }
static inline float af_erfcf(float x) { return erfcf(x); }
static inline double af_erfc(double x) { return erfc(x); }
/* The normal CDF; libm has no such function, and erfc(-x/sqrt2) loses accuracy in the
 * tail through the rounding of x/sqrt2 (the vmath version avoids that). */
static inline float af_ndtrf(float x) { return (float)(0.5 * erfc(-(double)x * 0.70710678118654752440)); }
static inline double af_ndtr(double x) { return 0.5 * erfc(-x * 0.70710678118654752440); }
static inline double af_ndtr_lite(double x) { return af_ndtr(x); }
static inline double af_xndtr(double x) { return x * af_ndtr(x); }
static inline double af_exp_lite(double x) { return exp(x); }
static inline double af_mul_lo(double a, double b, double p) { return fma(a, b, -p); }
static inline double af_expmul2(double x, double xl, double m) { return m * exp(x + xl); }
static inline double af_gelu_tanh_u2(double x, double *lo)
{
    *lo = 0.0;
    return 1.5957691216057308 * (x + 0.044715 * x * x * x);
}
static inline double af_ndtr_xpdf(double x) { return af_ndtr(x) + x * (0.39894228040143267794 * exp(-0.5 * x * x)); }
static inline double af_tanh_lite(double x) { return tanh(x); }
static inline double af_expm1_lite(double x) { return expm1(x); }
static inline double af_expmul(double x, double m) { return m * exp(x); }
static inline double af_xndtr_lite(double x) { return x * af_ndtr(x); }
/* sigmoid and dy * sigmoid' for float input: in double, rounded once. */
static inline float af_sigmoidf(float x)
{
    double e = exp(-fabs((double)x));
    return (float)((x >= 0 ? 1.0 : e) / (1.0 + e));
}
static inline float af_sigmoid_gradf(float x, float dy)
{
    double e = exp(-fabs((double)x));
    return (float)((double)dy * (e / (e * (e + 2.0) + 1.0)));
}
static inline float af_log_sigmoid_gradf(float x, float dy)
{
    double e = exp(-fabs((double)x));
    return (float)((double)dy * ((x <= 0 ? 1.0 : e) / (1.0 + e)));
}
static inline float af_softplus_gradf(float x, float dy, float beta)
{
    double b = (double)beta * (double)x;
    double e = exp(-fabs(b));
    return (float)((double)dy * ((b >= 0 ? 1.0 : e) / (1.0 + e)));
}
static inline float af_alpha_expm1f(float x, float alpha) { return (float)((double)alpha * expm1((double)x)); }
/* softplus family: the .pxd uses its double computations (these are not called) */
#define AF_FLOAT_LANES 0
static inline float af_softplusf(float x, float beta)
{
    double b = (double)beta * (double)x;
    return (float)(((b > 0 ? b : 0.0) + log1p(exp(-fabs(b)))) / (double)beta);
}
static inline float af_log_sigmoidf(float x)
{
    double xd = (double)x;
    return (float)((xd < 0 ? xd : 0.0) - log1p(exp(-fabs(xd))));
}
static inline float af_silu_gradf(float x, float dy)
{
    double s = 1.0 / (1.0 + exp(-(double)x));
    return (float)((double)dy * (s * (1.0 + (double)x * (1.0 - s))));
}
static inline float af_silu_beta_gradf(float x, float dy, float bh, float bl)
{
    return af_silu_gradf((float)(((double)bh + (double)bl) * (double)x), dy);
}
static inline float af_swiglu_dgatef(float gate, float value, float dy, float beta)
{
    return af_silu_gradf(beta * gate, 1.0f) * dy * value;
}
static inline float af_mish_gradf(float x, float dy)
{
    double xd = (double)x, t = tanh(log1p(exp(xd))), s = 1.0 / (1.0 + exp(-xd));
    return (float)((double)dy * (t + xd * s * (1.0 - t * t)));
}
/* hard_sigmoid family: the .pxd uses its double computations (these are not called) */
static inline float af_hard_sigmoidf(float x, float d, float b) { return (float)(((double)x + (double)(b * d)) / d); }
static inline float af_hard_swishf(float x, float d, float b) { return x * af_hard_sigmoidf(x, d, b); }
static inline float af_hard_swish_gradf(float x, float dy, float d, float b) { return dy * af_hard_sigmoidf(2 * x, d, b); }
static inline float af_tanh_gradf(float x, float dy)
{
    double e = exp(-2.0 * fabs((double)x));
    return (float)((double)dy * ((4.0 * e) / (e * (e + 2.0) + 1.0)));
}
/* tanh_shrink: the .pxd uses its double computation (AF_FLOAT_LANES 0: not called) */
static inline float af_tanh_shrinkf(float x) { return (float)((double)x - tanh((double)x)); }
/* ---- softmax rows (float): the double forms of actfast_vmath.h's af_smx_* ---- */
static inline float af_smx_termf(float x, float m, float *tl)
{
    int keep = x - m > -69.0f && x != m;
    double e = exp((double)(keep ? x : m) - (double)m);
    float h = (float)e;
    *tl = keep ? (float)(e - (double)h) : 0.0f;
    return keep ? h : 0.0f;
}
static inline float af_smx_term64f(float x, float m, float *l)
{
    int ok = x - m > -104.0f;
    double e = exp((double)(ok ? x : m) - (double)m) * 18446744073709551616.0;
    float h = (float)e;
    *l = ok ? (float)(e - (double)h) : 0.0f;
    return ok ? h : 0.0f;
}
static inline float af_smx_scalef(float h, float l, float rh, float rl)
{
    return (float)(((double)h + (double)l) * ((double)rh + (double)rl) * 2.3283064365386963e-10);
}
static inline void af_smx_rcpf(double s, float *rh, float *rl)
{
    double r = 4294967296.0 / s;
    *rh = (float)r;
    *rl = (float)(r - (double)*rh);
}
static inline float af_smx_logf(float x, float m, float lh, float ll)
{
    return (float)((((double)x - (double)m) - (double)lh) - (double)ll);
}
static inline void af_smx_lsef(double s, double k, float *lh, float *ll)
{
    double l = log1p((k - 1.0) + s);
    *lh = (float)l;
    *ll = (float)(l - (double)*lh);
}
static inline float af_smx_maxf(const float *x, ptrdiff_t n, uint32_t sgn)
{
    float m = -(float)INFINITY;
    int nan = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        float v = sgn ? -x[i] : x[i];
        nan |= v != v;
        m = isgreater(v, m) ? v : m;
    }
    return nan ? (float)NAN : m;
}
static inline double af_smx_sum2f(const float *h, const float *l, ptrdiff_t n)
{
    double s = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) s += (double)h[i] + (double)l[i];
    return s;
}
static inline double af_smx_dotf(const float *a, const float *b, ptrdiff_t n)
{
    double s = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}
static inline double af_smx_sumf(const float *a, ptrdiff_t n)
{
    double s = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) s += (double)a[i];
    return s;
}
/* ---- end of softmax rows ---- */
/* ---- gelu family (float input; libm, in double, rounded once) ---- */
static inline float af_geluf(float x)
{
    return x == -INFINITY ? 0.0f : (float)(0.5 * (double)x * erfc(-(double)x * 0.70710678118654752440));
}
static inline float af_gelu_gradf(float x, float dy)
{
    double xd = x > 40.0f ? 40.0 : (x < -40.0f ? -40.0 : (double)x);
    return (float)((double)dy * af_ndtr_xpdf(xd));
}
static inline float af_gegluf(float gate, float value)
{
    return gate == -INFINITY ? 0.0f * value : (float)((double)af_geluf(gate) * (double)value);
}
static inline float af_geglu_dgatef(float gate, float value, float dy)
{
    double g = gate > 40.0f ? 40.0 : (gate < -40.0f ? -40.0 : (double)gate);
    return (float)(((double)dy * (double)value) * af_ndtr_xpdf(g));
}
static inline float af_gelu_tanhf(float x)
{
    double xd = x > 14.0f ? 14.0 : (x < -14.0f ? -14.0 : (double)x);
    double t = 1.5957691216057308 * (xd + 0.044715 * xd * xd * xd);
    double e = exp(-fabs(t));
    return x == -INFINITY ? 0.0f : (float)((t >= 0.0 ? (double)x : (double)x * e) / (1.0 + e));
}
static inline float af_gelu_tanh_gradf(float x, float dy)
{
    double xd = x > 14.0f ? 14.0 : (x < -14.0f ? -14.0 : (double)x);
    double t = 1.5957691216057308 * (xd + 0.044715 * xd * xd * xd);
    double k = xd * (1.5957691216057308 * (1.0 + 0.134145 * xd * xd));
    double e = exp(-fabs(t)), r = 1.0 / (1.0 + e);
    return (float)((double)dy * (t >= 0.0 ? r * (1.0 + k * (e * r)) : (e * r) * (1.0 + k * r)));
}
#endif

/* a*b + c, fused where the target has FMA (elsewhere fma() is a slow library call). */
#if defined(__FMA__) || defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
static inline double af_fma(double a, double b, double c) { return __builtin_fma(a, b, c); }
#else
static inline double af_fma(double a, double b, double c) { return a * b + c; }
#endif

static inline float af_fabsf(float x) { return fabsf(x); }
static inline double af_fabs(double x) { return fabs(x); }

/*
 * Sums for softmax, in double with eight independent accumulators: a single running sum
 * is a chain of dependent additions (4 cycles each), and without -ffast-math the
 * compiler may not reassociate it; eight chains let it use vector adds. The order of
 * the additions is fixed, so the result does not depend on the thread count.
 */
#define AF_DEFINE_SUMS(T, SUF)                                                          \
static inline double af_sum_##SUF(const T *a, ptrdiff_t n)                              \
{                                                                                       \
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                             \
    ptrdiff_t i = 0, k;                                                                 \
    for (; i + 8 <= n; i += 8)                                                          \
        for (k = 0; k < 8; k++) s[k] += (double)a[i + k];                               \
    for (; i < n; i++) s[0] += (double)a[i];                                            \
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));           \
}                                                                                       \
static inline double af_dot_##SUF(const T *a, const T *b, ptrdiff_t n)                  \
{                                                                                       \
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                             \
    ptrdiff_t i = 0, k;                                                                 \
    for (; i + 8 <= n; i += 8)                                                          \
        for (k = 0; k < 8; k++) s[k] += (double)a[i + k] * (double)b[i + k];            \
    for (; i < n; i++) s[0] += (double)a[i] * (double)b[i];                             \
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));           \
}
AF_DEFINE_SUMS(float, f)
AF_DEFINE_SUMS(double, d)
#undef AF_DEFINE_SUMS

#endif /* ACTFAST_MATH_H */
