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
 * Exact product x*x = hi + lo. With hardware FMA, lo is one fma; without it (the x86-64
 * baseline, where fma() is a slow library call) Dekker's split gives the same lo.
 */
#if defined(__FMA__) || defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
static inline float af_sq_lof(float x, float hi) { return fmaf(x, x, -hi); }
static inline double af_sq_lo(double x, double hi) { return fma(x, x, -hi); }
#else
static inline float af_sq_lof(float x, float hi)
{
    const float c = 4097.0f;                    /* 2^12 + 1 splits 24 bits into 12 + 12 */
    float t = c * x;    /* this branch has no hardware fma, so nothing is contracted */
    float xh = t - (t - x), xl = x - xh;
    return ((xh * xh - hi) + 2.0f * xh * xl) + xl * xl;
}
static inline double af_sq_lo(double x, double hi)
{
    const double c = 134217729.0;               /* 2^27 + 1 splits 53 bits into 26 + 27 */
    double t = c * x;
    double xh = t - (t - x), xl = x - xh;
    return ((xh * xh - hi) + 2.0 * xh * xl) + xl * xl;
}
#endif

/*
 * exp(-x*x/2) without the error of rounding x*x first: for |x| = 10 that rounding alone
 * would cost ~50 ulp in float. exp(-(hi+lo)/2) = exp(-hi/2) * (1 - lo/2), |lo| <= ulp(hi)/2.
 * Above the underflow point the x*x split would overflow, so the result is clamped to 0.
 */
static inline float af_gaussf(float x)
{
    float a = fabsf(x);
    a = a > 20.0f ? 20.0f : a;                  /* exp(-200) is 0 in float; NaN stays */
    float hi = a * a;
    float lo = af_sq_lof(a, hi);
    return af_expf(-0.5f * hi) * (1.0f - 0.5f * lo);
}
static inline double af_gauss(double x)
{
    double a = fabs(x);
    a = a > 40.0 ? 40.0 : a;                    /* exp(-800) is 0 in double; NaN stays */
    double hi = a * a;
    double lo = af_sq_lo(a, hi);
    return af_exp(-0.5 * hi) * (1.0 - 0.5 * lo);
}

#endif /* ACTFAST_MATH_H */
