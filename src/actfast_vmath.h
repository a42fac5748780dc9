/*
 * Branch-free, vectorisable elementary functions for actfast (float and double).
 *
 * Included by actfast_math.h unless ACTFAST_USE_LIBM is defined. Every function is a
 * straight-line sequence of arithmetic, comparisons used as value selects (ternaries,
 * which gcc if-converts into blends/masks), and integer operations on the bits of the
 * exponent (through memcpy, which gcc turns into register moves). No loops, no tables,
 * no calls: gcc vectorises the ufunc loops that call them, at any -march.
 *
 * Methods (classical, written for this file; polynomial coefficients are our own
 * Chebyshev fits from tools/gen_vmath_coeffs.py, in actfast_vmath_poly.h):
 *  - exp: x = n ln2 + r, |r| <= ln2/2, n = rint(x/ln2) by the 1.5*2^p "shifter" trick;
 *    ln2 split in two (Cody-Waite) so that r is exact to working precision; exp(r) =
 *    1 + r + r^2 q(r); the result is scaled by 2^n as two factors 2^n1 * 2^n2 built from
 *    exponent bits, so that overflow gives inf and underflow rounds once, gradually,
 *    into the subnormals.
 *  - expm1: same reduction, 2^n * expm1(r) + (2^n - 1), with expm1(r) = r + r^2 q(r)
 *    (no cancellation for small |x|: for n = 0 the result is the polynomial itself).
 *  - log, log1p: x = 2^k m, m in [sqrt(1/2), sqrt(2)), f = m - 1 exact, s = f / (2 + f),
 *    log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)) (the fdlibm arrangement); log1p adds
 *    the rounding error of u = 1 + x as c/u.
 *  - tanh: odd polynomial for small |x| (< 0.625 in double, < 1 in float), 1 - 2/(exp(2|x|)
 *    + 1) above, sign restored with a bit operation.
 *  - sigmoid and its slope (float, FMA only): exp(-|x|) as a float pair, 1 + e as a
 *    Fast2Sum pair, one FMA-corrected quotient, and the last product (dy, or 4 for
 *    tanh') and scaling by 2^n rounded once; sigmoid, sigmoid', log_sigmoid', softplus'
 *    and tanh' within 0.78 ulp over all 2^32 inputs (see af__sigmoid_partsf).
 *  - erfc (computed in double; the float version rounds the double result once):
 *    erfc(y) = 1 - y P(y^2) for -0.5 < y < 0.25; otherwise erfc(|y|) = exp(-y^2) erfcx(|y|)
 *    with erfcx from Weideman's rational map (erfcx(y) = d/sqrt(pi) + 2 d^2 p(Z),
 *    d = 1/(L + y), Z = (L - y) d, L = 3), exp(-y^2) computed from the exact square
 *    y^2 = hi + lo, and erfc(y) = 2 - erfc(-y) for y < 0. The normal CDF af_ndtr(x)
 *    shares the code with y = -x/sqrt(2) and y^2 = x^2/2 taken exactly from x, so that
 *    the rounding of x/sqrt(2) does not enter the exponent (for x = -30 it would cost
 *    ~900 ulp).
 *
 * FMA: with hardware FMA (__FMA__, AArch64) AF_FMA is fma(), which gcc emits as one
 * instruction; on the x86-64 baseline fma() is a slow library call, so it is a*b + c.
 * The algorithms are correct either way (the Cody-Waite constants have enough
 * trailing zeros for the products to be exact without FMA).
 *
 * Special values (tested by bench/accuracy.py and the edge list there): NaN
 * propagates; exp(-inf) = 0, exp(inf) = inf; expm1(-inf) = -1; log(0) = -inf, log(x<0)
 * = NaN, log(inf) = inf; log1p(-1) = -inf, log1p(x<-1) = NaN; tanh(+-inf) = +-1;
 * erfc(-inf) = 2, erfc(inf) = 0; expm1, log1p, tanh keep the sign of zero.
 */
#ifndef ACTFAST_VMATH_H
#define ACTFAST_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "actfast_inline.h"
#include "actfast_vmath_poly.h"

/* ---- bit access ---------------------------------------------------------------- */

AF_INLINE uint32_t af__fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
AF_INLINE float af__ffrom(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
AF_INLINE uint64_t af__dbits(double f) { uint64_t u; memcpy(&u, &f, 8); return u; }
AF_INLINE double af__dfrom(uint64_t u) { double f; memcpy(&f, &u, 8); return f; }

#define AF__INFF ((float)INFINITY)
#define AF__INF ((double)INFINITY)
#define AF__NANF ((float)NAN)
#define AF__NAN ((double)NAN)

/* copysign through bits (fabs/copysign are single and/or ops; written out so that no
 * libm call can appear). */
AF_INLINE float af__copysignf(float mag, float sgn)
{
    return af__ffrom((af__fbits(mag) & 0x7fffffffu) | (af__fbits(sgn) & 0x80000000u));
}
AF_INLINE double af__copysign(double mag, double sgn)
{
    return af__dfrom((af__dbits(mag) & 0x7fffffffffffffffull) | (af__dbits(sgn) & 0x8000000000000000ull));
}

/*
 * c ? a : b as data flow (bit masks), not control flow. Where several selects test one
 * condition with much code between them (the sign of t in gelu_tanh', the clamps of
 * the exponent), gcc's jump threading duplicates that code into one copy per outcome,
 * folding the constants of each, and if-conversion then computes every copy in every
 * lane: more work per vector, and a folded copy can form subnormals (a microcode
 * assist per vector). A mask leaves the threader nothing to thread: gelu_tanh' float32
 * for x in [-5, 5] in a C loop on Sapphire Rapids, 4.4 -> 3.2 ns/element with AVX-512,
 * 11.1 -> 5.6 with AVX2. On Zen 3 (AVX2), the clamps and sign selects of the gelu core
 * as masks: gelu, gelu', geglu, geglu's dgate 0.72-0.85x the time, the sigmoid core's
 * 0.91-0.96x (log_sigmoid', sigmoid, softplus'). -fno-thread-jumps for the whole module
 * does the same for those kernels but slows most others (1.1-1.5x, up to 50x where a
 * cheap loop stops vectorising). A blend costs one instruction, a mask three under
 * AVX2: used where threading was seen.
 */
AF_INLINE float af__self(int c, float a, float b)
{
    uint32_t m = 0u - (uint32_t)(c != 0);
    return af__ffrom((af__fbits(a) & m) | (af__fbits(b) & ~m));
}

/* ---- 2^n scaling ------------------------------------------------------------------ */

/* 1.5 * 2^23: adding it rounds a float of magnitude < 2^22 to an integer, which then
 * sits in the low mantissa bits. */
#define AF__SHF 12582912.0f
#define AF__SHD 6755399441055744.0 /* 1.5 * 2^52 */

/* 2^n for an integral float n in [-126, 127]. */
AF_INLINE float af__pow2if(float n)
{
    int32_t i = (int32_t)(af__fbits(n + AF__SHF) - af__fbits(AF__SHF));
    return af__ffrom((uint32_t)(i + 127) << 23);
}
AF_INLINE double af__pow2i(double n)
{
    int64_t i = (int64_t)(af__dbits(n + AF__SHD) - af__dbits(AF__SHD));
    return af__dfrom((uint64_t)(i + 1023) << 52);
}

/* p * 2^n for an integral n with |n| <= 250 (float) / 2040 (double): two exact-range
 * factors, so that the only rounding is the last product (gradual underflow) and
 * overflow gives inf. */
AF_INLINE float af__ldexpf2(float p, float n)
{
    float n1 = (n * 0.5f + AF__SHF) - AF__SHF;   /* rint(n/2) */
    float n2 = n - n1;
    return (p * af__pow2if(n1)) * af__pow2if(n2);
}
/*
 * y 2^n for an integral n in [-189, 0] (the exponent a caller left over after scaling by
 * 2^max(n, -100)): 2^max(n, -94) first, then the rest. Both factors are normal and the
 * first product is exact unless the result is subnormal: one rounding wherever the
 * result is normal, at most two in the subnormal tail. The clamp is a mask (af__self): as a
 * select, gcc's jump threading copied the code after it into the clamped path, folded
 * y 2^-94 there, and if-conversion computed that copy in every lane, a subnormal and a
 * microcode assist per vector wherever y is small (gelu 6.5 -> 5.3 ns/element on Zen 3,
 * gelu_tanh' for |x| in [6, 8] 12.4 -> 4.6 on Sapphire Rapids).
 */
AF_INLINE float af__scale_downf(float y, float n)
{
    float n1 = af__self(n < -94.0f, -94.0f, n);
    return (y * af__pow2if(n1)) * af__pow2if(n - n1);
}
AF_INLINE double af__ldexp2(double p, double n)
{
    double n1 = (n * 0.5 + AF__SHD) - AF__SHD;
    double n2 = n - n1;
    return (p * af__pow2i(n1)) * af__pow2i(n2);
}

/* The limit of p 2^n as n -> -inf: p's signed zero, or p itself where p is inf or NaN.
 * Where a scaling exponent can fall below the range of a final product, the kernels
 * select this at the end instead of clamping the exponent to a constant: gcc's jump
 * threading copies the code after such a clamp into the clamped path, folds the
 * constant there, and the vector loop then computes that copy in every lane, a
 * subnormal product for ordinary inputs (a microcode assist per vector on AMD Zen and
 * many Intel cores: silu' took 2x the time; tools/underflow_scan.py). gelu's final
 * scaling had the same cause; it selects between one and two scaling factors instead,
 * since a huge dy leaves nonzero results below the range of one. */
AF_INLINE float af__zero_likef(float p)
{
    return af__ffrom(af__fbits(p) & 0x7fffffffu) < AF__INFF ? 0.0f * p : p;
}

/* ---- exp core -------------------------------------------------------------------- */

/* ln2 = LN2HI + LN2LO with LN2HI having trailing zeros (n * LN2HI exact for |n| < 2^11
 * in float, 2^20 in double). */
#define AF__LOG2EF 1.44269504088896341f
#define AF__LN2HIF 0.693145751953125f          /* 0x1.62e4p-1 */
#define AF__LN2LOF 1.42860682030941723212e-6f
#define AF__LOG2E 1.44269504088896338700
#define AF__LN2HI 6.93147180369123816490e-01   /* 0x1.62e42feep-1 (32 bits) */
#define AF__LN2LO 1.90821492927058770002e-10

/* exp(x + xl) = (1 + u) * 2^n, |x| <= ~1400 (double) / ~170 (float), |xl| << 1;
 * returns u = expm1(r) and n (as an integral float). */
AF_INLINE float af__expm1f_core(float x, float xl, float *n_out)
{
    float n = AF_FMAF(x, AF__LOG2EF, AF__SHF) - AF__SHF;
    float r = AF_FMAF(n, -AF__LN2HIF, x);
    r = AF_FMAF(n, -AF__LN2LOF, r) + xl;
    *n_out = n;
    return AF_FMAF(r * r, af__poly_expf(r), r);
}
AF_INLINE double af__expm1_core(double x, double xl, double *n_out)
{
    double n = AF_FMA(x, AF__LOG2E, AF__SHD) - AF__SHD;
    double r = AF_FMA(n, -AF__LN2HI, x);
    r = AF_FMA(n, -AF__LN2LO, r) + xl;
    *n_out = n;
    return AF_FMA(r * r, af__poly_exp(r), r);
}
/* Lower-degree variant (~1e-11 relative) for double computations that end in float. */
AF_INLINE double af__expm1_core_lite(double x, double xl, double *n_out)
{
    double n = AF_FMA(x, AF__LOG2E, AF__SHD) - AF__SHD;
    double r = AF_FMA(n, -AF__LN2HI, x);
    r = AF_FMA(n, -AF__LN2LO, r) + xl;
    *n_out = n;
    return AF_FMA(r * r, af__poly_exp_lite(r), r);
}

/* ---- exp ----------------------------------------------------------------------------- */

AF_INLINE float af_expf(float x)
{
    /* exp(89) overflows and exp(-104) < 2^-150 rounds to 0; NaN passes the clamps. */
    float xc = x > 89.0f ? 89.0f : x;
    xc = xc < -104.0f ? -104.0f : xc;
    float n;
    float u = af__expm1f_core(xc, 0.0f, &n);
    return af__ldexpf2(1.0f + u, n);
}

AF_INLINE double af_exp(double x)
{
    double xc = x > 710.0 ? 710.0 : x;
    xc = xc < -746.0 ? -746.0 : xc;
    double n;
    double u = af__expm1_core(xc, 0.0, &n);
    return af__ldexp2(1.0 + u, n);
}

/* For double computations whose result is rounded to float: shorter polynomial (~1e-11
 * relative), one-factor scaling, and the argument clamped to [-708, 709], so that
 * exp_lite(-inf) is ~1e-308 rather than 0 (0 after rounding to float) and exp_lite(inf)
 * is finite: callers only use it where that cannot show in a float result. */
AF_INLINE double af_exp_lite(double x)
{
    double xc = x > 709.0 ? 709.0 : x;
    xc = xc < -708.0 ? -708.0 : xc;
    double n;
    double u = af__expm1_core_lite(xc, 0.0, &n);
    return (1.0 + u) * af__pow2i(n);
}

/* m * exp(x + xl), the product formed before the final scaling by 2^n: one rounding where the
 * result is subnormal (x * exp(x) for x near -740 would otherwise multiply the
 * subnormal rounding error of exp(x) by |x|). m finite.
 * Below -1200 the result is 0 m, selected at the end; the argument is not also clamped
 * there: gcc then specialised the rest for the clamp's constant and the vector loop
 * computed that copy, a subnormal 2^-1731 product, in every lane (float64 silu 1.8x
 * slower for positive x; tools/underflow_scan.py). Lanes below -1200 compute garbage
 * that the select drops. */
AF_INLINE double af_expmul2(double x, double xl, double m)
{
    double xc = x > 710.0 ? 710.0 : x;
    double n;
    double u = af__expm1_core(xc, xl, &n);
    double r = af__ldexp2((1.0 + u) * m, n);
    return x < -1200.0 ? 0.0 * m : r;
}
/* m * exp(x + xl) for a double-double argument (|xl| <= ulp(x)). */
AF_INLINE double af_expmul(double x, double m) { return af_expmul2(x, 0.0, m); }

/* ---- expm1 -------------------------------------------------------------------------- */

AF_INLINE float af_expm1f(float x)
{
    /* Below -87 the result is -1 (to float precision) and 2^n stays normal. */
    float xc = x > 89.0f ? 89.0f : x;
    xc = xc < -87.0f ? -87.0f : xc;
    float n;
    float u = af__expm1f_core(xc, 0.0f, &n);
    float big = n > 127.0f ? 1.0f : 0.0f;        /* 2^128 itself is not a float */
    float s = af__pow2if(n - big);
    float r_big = (s * (1.0f + u)) * 2.0f;
    float r = AF_FMAF(s, u, s - 1.0f);
    r = big != 0.0f ? r_big : r;
    /* expm1(x) rounds to x below 2^-25; this also keeps -0. */
    return af__ffrom(af__fbits(x) & 0x7fffffffu) < 0x1p-25f ? x : r;
}

AF_INLINE double af__expm1_gen(double x, int lite)
{
    double xc = x > 710.0 ? 710.0 : x;
    xc = xc < -700.0 ? -700.0 : xc;
    double n;
    double u = lite ? af__expm1_core_lite(xc, 0.0, &n) : af__expm1_core(xc, 0.0, &n);
    double big = n > 1023.0 ? 1.0 : 0.0;
    double s = af__pow2i(n - big);
    double r_big = (s * (1.0 + u)) * 2.0;
    double r = AF_FMA(s, u, s - 1.0);
    r = big != 0.0 ? r_big : r;
    return af__dfrom(af__dbits(x) & 0x7fffffffffffffffull) < 0x1p-54 ? x : r;
}
AF_INLINE double af_expm1(double x) { return af__expm1_gen(x, 0); }
AF_INLINE double af_expm1_lite(double x) { return af__expm1_gen(x, 1); }

/* ---- log and log1p ---------------------------------------------------------------- */

/* log(u) + c for a positive normal u, and a small correction c. */
AF_INLINE float af__log_corrf(float u, float c, float kadj)
{
    uint32_t iy = af__fbits(u) - 0x3f3504f3u;          /* 0x3f3504f3 = sqrt(1/2) */
    float k = (float)((int32_t)iy >> 23) + kadj;
    float m = af__ffrom((iy & 0x007fffffu) + 0x3f3504f3u);   /* in [sqrt(1/2), sqrt(2)) */
    float f = m - 1.0f;                                 /* exact */
    float s = f / (2.0f + f);
    float z = s * s;
    float hfsq = 0.5f * f * f;
    float R = z * af__poly_logf(z);
    float lo = AF_FMAF(s, hfsq + R, AF_FMAF(k, AF__LN2LOF, c));
    return AF_FMAF(k, AF__LN2HIF, (f - hfsq) + lo);
}
AF_INLINE double af__log_corr(double u, double c, double kadj)
{
    uint64_t iy = af__dbits(u) - 0x3fe6a09e667f3bcdull;   /* sqrt(1/2) */
    /* The exponent field, as an integral double, by the shifter trick (no 64-bit
     * integer -> double conversion, which x86 has only with AVX-512DQ). */
    uint64_t e = 0x4338000000000000ull + ((iy >> 52) ^ 0x800ull) - 0x800ull;  /* bits of 1.5*2^52 + k */
    double k = (af__dfrom(e) - AF__SHD) + kadj;
    double m = af__dfrom((iy & 0x000fffffffffffffull) + 0x3fe6a09e667f3bcdull);
    double f = m - 1.0;
    double s = f / (2.0 + f);
    double z = s * s;
    double hfsq = 0.5 * f * f;
    double R = z * af__poly_log(z);
    double lo = AF_FMA(s, hfsq + R, AF_FMA(k, AF__LN2LO, c));
    return AF_FMA(k, AF__LN2HI, (f - hfsq) + lo);
}

AF_INLINE float af_logf(float x)
{
    int sub = x < 0x1p-126f;
    float xs = sub ? x * 0x1p23f : x;
    float r = af__log_corrf(xs, 0.0f, sub ? -23.0f : 0.0f);
    /* single-comparison selects: combined masks do not vectorise on SSE2 */
    r = x < AF__INFF ? r : x;                           /* inf, and NaN */
    return x > 0.0f ? r : (x == 0.0f ? -AF__INFF : (x < 0.0f ? AF__NANF : x));
}

AF_INLINE double af_log(double x)
{
    int sub = x < 0x1p-1022;
    double xs = sub ? x * 0x1p54 : x;
    double r = af__log_corr(xs, 0.0, sub ? -54.0 : 0.0);
    r = x < AF__INF ? r : x;
    return x > 0.0 ? r : (x == 0.0 ? -AF__INF : (x < 0.0 ? AF__NAN : x));
}

AF_INLINE float af_log1pf(float x)
{
    float u = 1.0f + x;
    /* the rounding error of u, exactly: 1 + x = u + c */
    float c = x > 1.0f ? 1.0f - (u - x) : x - (u - 1.0f);
    float r = af__log_corrf(u, c / u, 0.0f);
    r = x < AF__INFF ? r : x;
    r = x > -1.0f ? r : (x == -1.0f ? -AF__INFF : (x < -1.0f ? AF__NANF : x));
    return af__ffrom(af__fbits(x) & 0x7fffffffu) < 0x1p-25f ? x : r;
}

AF_INLINE double af_log1p(double x)
{
    double u = 1.0 + x;
    double c = x > 1.0 ? 1.0 - (u - x) : x - (u - 1.0);
    double r = af__log_corr(u, c / u, 0.0);
    r = x < AF__INF ? r : x;
    r = x > -1.0 ? r : (x == -1.0 ? -AF__INF : (x < -1.0 ? AF__NAN : x));
    return af__dfrom(af__dbits(x) & 0x7fffffffffffffffull) < 0x1p-54 ? x : r;
}

/* ---- tanh ------------------------------------------------------------------------------ */

AF_INLINE double af__tanh_gen(double x, int lite)
{
    double a = af__dfrom(af__dbits(x) & 0x7fffffffffffffffull);
    double z = a * a;
    double small = AF_FMA(a * z, lite ? af__poly_tanh_lite(z) : af__poly_tanh(z), a);
    double a2 = a > 22.0 ? 44.0 : 2.0 * a;
    double n;
    double u = lite ? af__expm1_core_lite(a2, 0.0, &n) : af__expm1_core(a2, 0.0, &n);
    double e = (1.0 + u) * af__pow2i(n);
    double big = 1.0 - 2.0 / (e + 1.0);
    return af__copysign(a < 0.625 ? small : big, x);
}
AF_INLINE double af_tanh(double x) { return af__tanh_gen(x, 0); }
/* ~1e-10 relative: for double computations rounded to float. */
AF_INLINE double af_tanh_lite(double x) { return af__tanh_gen(x, 1); }

/*
 * 1 - tanh(a) = 2 / (exp(2a) + 1) for a = |x| (NaN passes), in float: ~2 ulp (exp's
 * rounding and the division's). af_tanhf's branch beyond 1 and af_tanh_shrinkf's beyond
 * 1.4, where that error shrinks in the result. tanh(22) is 1 in float; the clamp keeps
 * exp finite (2 / (exp(44) + 1) ~ 1e-19 is below the ulp of anything it is added to).
 */
AF_INLINE float af__tanh_cof(float a)
{
    float a2 = a > 22.0f ? 44.0f : 2.0f * a;
    float n;
    float u = af__expm1f_core(a2, 0.0f, &n);
    float e = (1.0f + u) * af__pow2if(n);
    return 2.0f / (e + 1.0f);
}

/*
 * float tanh in float lanes (16 per AVX-512 vector, twice the double path's): the odd
 * polynomial a + a^3 T(a^2) for |x| < 1, 1 - 2/(exp(2|x|) + 1) above, where the result
 * is >= 0.76 and the rounding errors of exp and of the division shrink by 2/(e + 1).
 * The switch at 1 (rather than 0.625, 1.33 ulp there) is what keeps the big branch
 * within an ulp. Max error over all 2^32 inputs: 0.982 ulp with FMA (exhaustive, float64
 * reference; bench/accuracy.py). Without hardware FMA (the x86-64 baseline) the
 * polynomial's extra roundings reach 1.16 ulp, so there the double path (0.5 ulp) is
 * used instead.
 */
AF_INLINE float af_tanhf(float x)
{
#if defined(AF_HAS_FMA)
    float a = af__ffrom(af__fbits(x) & 0x7fffffffu);
    float z = a * a;
    float small = AF_FMAF(a * z, af__poly_tanhf(z), a);
    float big = 1.0f - af__tanh_cof(a);
    return af__copysignf(a < 1.0f ? small : big, x);
#else
    return (float)af_tanh_lite((double)x);
#endif
}

/* ---- sigmoid in float lanes ------------------------------------------------------------ */

/*
 * exp(z + zl) = 2^n (ph + pl), for z in [-200, 0] (NaN passes) and |zl| <= 2^-16: the
 * reduced exponential as an unevaluated float pair good to ~2^-32 relative, so that the
 * steps that use it (1 + e, a quotient, a final product) do not add exp's own rounding
 * to theirs. Why each piece:
 *  - r1 = z - n LN2HI is exact (FMA; n has <= 9 bits, LN2HI 16); the rounding error of
 *    r = r1 - n LN2LO is recovered exactly because r1 - r is exact (Sterbenz: |n LN2LO|
 *    <= 3e-4 << |r| wherever that error is not already below 2^-40), and folded, with zl,
 *    into rl (the error of LN2HI + LN2LO as ln2, < 2^-47 n, is negligible);
 *  - exp(r) = (1 + r) + r^2 P(r): the leading 1 + r is a Fast2Sum pair (|r| < 1), so
 *    the float rounding falls only on r^2 P(r) <= 0.07 (<= 0.01 ulp of the result);
 *    a second Fast2Sum renormalises the pair (|pl| <= ulp(ph)), which the quotients
 *    that use it need: their one correction step is exact only to second order in pl;
 *  - exp(r + rl) = exp(r) (1 + rl) to 2^-33: rl enters as rl * ph.
 * FMA only (the exactness of r1 and of the pair needs fused products).
 */
AF_INLINE float af__exp_pairf(float z, float zl, float *pl, float *n_out)
{
    float n = AF_FMAF(z, AF__LOG2EF, AF__SHF) - AF__SHF;
    float r1 = AF_FMAF(n, -AF__LN2HIF, z);
    float r = AF_FMAF(n, -AF__LN2LOF, r1);
    float rl = AF_FMAF(n, -AF__LN2LOF, r1 - r) + zl;
    float h1 = 1.0f + r;
    float lo = AF_FMAF(r * r, af__poly_expf(r), (1.0f - h1) + r);
    float ph = h1 + lo;                         /* renormalised: |pl| <= ulp(ph) */
    float l = (h1 - ph) + lo;
    *pl = AF_FMAF(rl, ph, l);
    *n_out = n;
    return ph;
}

/*
 * sigmoid(t), t = th + tl (|tl| <= 2^-16, 0 for plain float input), as 2^m (q0 + qc):
 * q0 the float quotient, qc its correction (|qc| <~ ulp(q0)), m = 0 for t >= 0, else n
 * (not clamped: callers scale by 2^m once, at the end, so that a subnormal result
 * rounds once). With e = exp(-|t|) = 2^n (ph + pl):
 *  - the denominator 1 + e is the exact Fast2Sum pair dh + dl (e <= 1), plus pl;
 *  - the numerator is 1 (t >= 0) or the unscaled pair ph + pl (t < 0);
 *  - q0 = num_h / dh, corrected once with the FMA residual: qc = (num - q0 d) / dh,
 *    where num_h - q0 dh is exact. The error of q0 + qc is then ~2^-46 relative plus
 *    the ~2^-32 of the pair: the only rounding that counts is the caller's last one.
 * z is clamped at -200: beyond, 1 + e = 1 and 2^n e underflows for any float caller.
 */
/*
 * The denominator 1 + e = dh + *dl of sigmoid(t), e = exp(-|t|) = 2^n (ph + pl) (the
 * exact Fast2Sum pair, plus pl), for t = th + tl; also returns ph, pl, n and s1 =
 * 2^max(n, -100). Shared by af__sigmoid_partsf and af_gelu_tanh_gradf.
 */
AF_INLINE float af__one_plus_expf(float th, float tl, float *dl, float *ph_out, float *pl_out, float *n_out,
                                  float *s1)
{
    int pos = th >= 0.0f;                       /* selects and clamps: see af__self */
    float z = af__self(pos, -th, th);
    float zl = af__self(pos, -tl, tl);
    z = af__self(z < -200.0f, -200.0f, z);
    float pl, n;
    float ph = af__exp_pairf(z, zl, &pl, &n);
    /* e = 2^n (ph + pl); below 2^-100 it no longer shows in 1 + e, so n is clamped
     * there (2^n1 stays normal, and callers reuse it as the first factor of 2^n). */
    float n1 = af__self(n < -100.0f, -100.0f, n);
    float sd = af__pow2if(n1);
    *s1 = sd;
    float eh = ph * sd, el = pl * sd;
    float dh = 1.0f + eh;
    *dl = ((1.0f - dh) + eh) + el;
    *ph_out = ph;
    *pl_out = pl;
    *n_out = n;
    return dh;
}

AF_INLINE float af__sigmoid_partsf(float th, float tl, float *qc, float *m, float *s1)
{
    int pos = th >= 0.0f;
    float dl, ph, pl, n;
    float dh = af__one_plus_expf(th, tl, &dl, &ph, &pl, &n, s1);
    float rcp = 1.0f / dh;
    float nh = af__self(pos, 1.0f, ph), nl = af__self(pos, 0.0f, pl);
    float q0 = nh * rcp;
    float res = AF_FMAF(-q0, dh, nh) + AF_FMAF(-q0, dl, nl);
    *qc = res * rcp;
    *m = af__self(pos, 0.0f, n);
    return q0;
}

/*
 * sigmoid in float lanes: the corrected quotient of af__sigmoid_partsf, rounded once
 * (and scaled by 2^m after, exactly or, in the subnormal tail x < -87.3, with one more
 * rounding of a value already within 2^-24 of its ulp grid). Without hardware FMA the
 * double path (e / (1 + e) in double, rounded once).
 */
AF_INLINE float af_sigmoidf(float x)
{
#if defined(AF_HAS_FMA)
    float qc, m, s1;
    float q0 = af__sigmoid_partsf(x, 0.0f, &qc, &m, &s1);
    /* 2^n = s1 2^(n - n1): q s1 is exact (q > 0.17, s1 >= 2^-100); the second factor
     * rounds once, in the subnormal tail (where n - n1 < -100 the result is 0 anyway). */
    float q = q0 + qc;
    float n2 = m - (m < -100.0f ? -100.0f : m);
    float y = (q * s1) * af__pow2if(n2 < -100.0f ? -100.0f : n2);
    return x >= 0.0f ? q : y;
#else
    double xd = (double)x;
    double e = af_exp_lite(-af__copysign(xd, 1.0));
    return (float)((xd >= 0.0 ? 1.0 : e) / (1.0 + e));
#endif
}

/*
 * m sigmoid(t) for t = th + tl (a float pair, |tl| <= 2^-16; NaN passes): the
 * corrected quotient of af__sigmoid_partsf, 2^n (q0 + qc), times m as
 * fma(m, q0', m qc') with q' = q s1, s1 = 2^max(n, -100): m q0' cannot overflow
 * (sigmoid < 1, or q' < 2^-99) and rounds once; the rest of 2^n (>= 2^-189) is applied
 * last (af__scale_downf), one more rounding in the subnormal tail only.
 * m exp(t) is representable down to t = -192 for |m| near FLT_MAX (below the range of
 * exp in float): that is why af__one_plus_expf clamps at -200, not -104. m = +-inf: the low
 * product is dropped (inf * qc would be NaN for qc = 0).
 */
AF_INLINE float af__msigmoidf(float m, float th, float tl)
{
    float qc, n, s1;
    float q0 = af__sigmoid_partsf(th, tl, &qc, &n, &s1);
    float t = af__self(th >= 0.0f, 1.0f, s1);   /* n = 0 for t >= 0 */
    float ml = af__ffrom(af__fbits(m) & 0x7fffffffu) < AF__INFF ? m : 0.0f;
    float y = AF_FMAF(m, q0 * t, ml * (qc * t));
    return af__scale_downf(y, n - af__self(n < -100.0f, -100.0f, n)); /* n - n1 in [-189, 0] */
}

/* dy * sigmoid(-x) (log_sigmoid'), in float lanes with FMA; else in double. */
AF_INLINE float af_log_sigmoid_gradf(float x, float dy)
{
#if defined(AF_HAS_FMA)
    return af__msigmoidf(dy, -x, 0.0f);
#else
    double xd = -(double)x;
    double e = af_exp_lite(-af__copysign(xd, 1.0));
    return (float)((double)dy * ((xd >= 0.0 ? 1.0 : e) / (1.0 + e)));
#endif
}

/* dy * sigmoid(beta x) (softplus' below the threshold): beta x as the exact float pair
 * (bh, fma(beta, x, -bh)) where bh is finite; in float lanes with FMA, else in double. */
AF_INLINE float af_softplus_gradf(float x, float dy, float beta)
{
#if defined(AF_HAS_FMA)
    float bh = beta * x;
    /* where beta x is huge (or x inf: inf - inf, an invalid flag even in an unused
     * lane) the low part is not needed: it is taken from x = 0 there */
    float xg = af__ffrom(af__fbits(bh) & 0x7fffffffu) < 0x1p100f ? x : 0.0f;
    float bg = beta * xg;
    float bl = AF_FMAF(beta, xg, -bg);
    return af__msigmoidf(dy, bh, bl);
#else
    double b = (double)beta * (double)x;
    double e = af_exp_lite(-af__copysign(b, 1.0));
    return (float)((double)dy * ((b >= 0.0 ? 1.0 : e) / (1.0 + e)));
#endif
}

/*
 * dy * sigmoid'(x) = dy e / (1 + e)^2, e = exp(-|x|) = 2^n (ph + pl), in float lanes.
 * (1 + e)^2 is the pair Dh + Dl from the Fast2Sum pair of 1 + e (exact square by FMA);
 * q0 = ph / Dh from the one reciprocal of dh (q0 = ph rcp^2, ~1.5 ulp), corrected by
 * the FMA residual, which brings it to ~2^-46. dy enters as fma(dy, q0, dy qc), one
 * rounding.
 */
AF_INLINE float af__sigmoid_slopef(float a, float dy, float k)
{
    /* k sigmoid'(a) dy for a = |x| (NaN passes) and k = 1 or 4 (exact scalings of q). */
    float z = a > 200.0f ? -200.0f : -a;
    float pl, n;
    float ph = af__exp_pairf(z, 0.0f, &pl, &n);
    /* 2^n = s1 2^(n - m1): s1 scales e for 1 + e (below 2^-60 e does not show there)
     * and q before dy multiplies it (sigmoid' <= 1/4: dy q s1 cannot overflow); the
     * rest is applied last, one rounding in the subnormal tail. */
    float m1 = n < -60.0f ? -60.0f : n;
    float s1 = af__pow2if(m1);
    float eh = ph * s1, el = pl * s1;
    float dh = 1.0f + eh;
    float dl = ((1.0f - dh) + eh) + el;
    float Dh = dh * dh;
    float Dl = AF_FMAF(dh, dh, -Dh) + 2.0f * dh * dl;
    float rcp = 1.0f / dh;
    float r2 = rcp * rcp;
    float q0 = ph * r2;
    float res = AF_FMAF(-q0, Dh, ph) + AF_FMAF(-q0, Dl, pl);
    float qc = res * r2;
    /* dy = +-inf: the low product would be inf * qc (NaN for qc = 0) */
    float dyl = af__ffrom(af__fbits(dy) & 0x7fffffffu) < AF__INFF ? dy : 0.0f;
    float ks = k * s1;
    float g = AF_FMAF(dy, q0 * ks, dyl * (qc * ks));
    return af__ldexpf2(g, n - m1);              /* n - m1 in [-229, 0] */
}

AF_INLINE float af_sigmoid_gradf(float x, float dy)
{
#if defined(AF_HAS_FMA)
    return af__sigmoid_slopef(af__ffrom(af__fbits(x) & 0x7fffffffu), dy, 1.0f);
#else
    double e = af_exp_lite(-af__copysign((double)x, 1.0));
    return (float)((double)dy * (e / ((e * (e + 2.0)) + 1.0)));
#endif
}

/*
 * dy * tanh'(x) = dy (1 - tanh(x)^2) = 4 dy sigmoid'(2x) = dy 4e / (1 + e)^2 with
 * e = exp(-2|x|): the float-lane sigmoid slope above, the factor 4 applied exactly to
 * its quotient (4 sigmoid' <= 1, so dy times it cannot overflow either). 2|x| is exact
 * (or inf, where the result is 0 as the limit). Without FMA: in double, rounded once.
 */
AF_INLINE float af_tanh_gradf(float x, float dy)
{
#if defined(AF_HAS_FMA)
    return af__sigmoid_slopef(2.0f * af__ffrom(af__fbits(x) & 0x7fffffffu), dy, 4.0f);
#else
    double e = af_exp_lite(-2.0 * af__copysign((double)x, 1.0));
    return (float)((double)dy * ((4.0 * e) / ((e * (e + 2.0)) + 1.0)));
#endif
}

/* ---- tanh_shrink in float lanes -------------------------------------------------------- */

/*
 * tanh_shrink(x) = x - tanh(x), odd, in float lanes (FMA only: the pairs need fused
 * products; the .pxd keeps its double path elsewhere, selected on AF_FLOAT_LANES).
 *  - |x| <= 1.4: x^3 g(z), g = (x - tanh x) / x^3 = G0 + s (G1 + s Q(s)), s = z - Z0,
 *    z = x^2 (af__poly_tanh_shrinkf: two pieces, split at 0.9). x^3 is the pair c + cl
 *    (the roundings of z and of x z recovered by FMA) and z enters s with its low part
 *    zl; the result is fma(c, G0, tail), one rounding, where the tail gathers what is
 *    below ulp(c G0): c s q (q = G1 + s Q), the low parts of G0 and G1, and cl g. So the
 *    float roundings of s, q and c s only fall on c s q, <= 15% of the result.
 *    Below 2^-32 the low parts would be subnormal (x^3 < 2^-96): x is scaled by 2^32
 *    first and the result by 2^-96 after (one more rounding, in the subnormal range
 *    only); g is g(0) there, s = -Z0.
 *  - |x| > 1.4: (|x| - 1) + (1 - tanh|x|), af__tanh_cof's 2 / (exp(2|x|) + 1). |x| - 1
 *    is exact and >= 0.4, the cofunction < 0.115 and >= 8 times smaller in ulp than the
 *    result (which is > 0.51 there), so its ~2 ulp cost <= 0.25 ulp.
 * The small branch takes |x| clamped at 1.4 (no inf - inf in the lanes that discard it).
 * Max error over all 2^32 inputs: see tools/exhaustive_f32.c (<= 1 ulp).
 */
AF_INLINE float af_tanh_shrinkf(float x)
{
    float a = af__ffrom(af__fbits(x) & 0x7fffffffu);
    int tiny = a < 0x1p-32f;
    int up = a >= AF__TSHF_SPLIT;
    float as = (a < AF__TSHF_A ? a : AF__TSHF_A) * (tiny ? 0x1p32f : 1.0f);
    float z = as * as, zl = AF_FMAF(as, as, -z);
    float z0 = af__tshf_z0(up);
    float s = (tiny ? 0.0f : z) - z0 + (tiny ? 0.0f : zl);
    float g0, g0l, g1, g1l;
    float q2 = af__poly_tanh_shrinkf(s, up, &g0, &g0l, &g1, &g1l);
    float q = AF_FMAF(s, q2, g1);
    float c = as * z, cl = AF_FMAF(as, z, -c) + as * zl;
    float cs = c * s;
    float tail = AF_FMAF(cs, q, AF_FMAF(cs, g1l, AF_FMAF(c, g0l, cl * AF_FMAF(s, q, g0))));
    float small = AF_FMAF(c, g0, tail) * (tiny ? 0x1p-96f : 1.0f);
    float big = (a - 1.0f) + af__tanh_cof(a);
    return af__copysignf(a <= AF__TSHF_A ? small : big, x);
}

/* ---- softplus family in float lanes (softplus, log_sigmoid, silu', ...) ---------------- */

/*
 * AF_FLOAT_LANES: 1 where the float-lane functions of this section are used (hardware
 * FMA: their pairs need fused products). Elsewhere (the x86-64 baseline) the .pxd keeps
 * its double computation, selected on this constant at compile time (`if
 * AF_FLOAT_LANES:` folds away), so that no double formula is written twice; the
 * functions below still compile there, unused.
 */
#ifndef AF_FLOAT_LANES
#if defined(AF_HAS_FMA)
#define AF_FLOAT_LANES 1
#else
#define AF_FLOAT_LANES 0
#endif
#endif

/*
 * log1p(exp(z + zl)) for z <= 0 (NaN passes; z is clamped at -200 here), |zl| <= 2^-16,
 * as 2^m (h + *lo): the pair good to ~2^-29 relative, so that the caller's last
 * operations (the division by beta, the sum with x) round once. With e = exp(z + zl) =
 * 2^n (ph + pl) (af__exp_pairf):
 *  - e >= 2^-12 (n >= -12; m = 0): 1 + e is the Fast2Sum pair dh + dl (e <= 1);
 *    dh = 2^k (1 + f) with k = 1 from sqrt2 on, f exact (Sterbenz), so that
 *    log(dh + dl) = k ln2 + log1p(f) + dl/dh (dl/dh < 2^-24: second order 2^-49).
 *    log1p(f) = f - f^2/2 + s (f^2/2 + R(s^2)), s = f / (2 + f) (the fdlibm arrangement
 *    of af__log_corrf), with f - f^2/2 an exact pair (f^2/2 exact by FMA, Fast2Sum since
 *    f^2/2 < |f|): the float roundings fall only on the third term, <= 0.045 |log1p f|
 *    for |f| <= 0.414, i.e. <= 2^-28 of the result; k ln2 + (f - f^2/2) is one more
 *    Fast2Sum (|f - f^2/2| < 0.35 < ln2);
 *  - e < 2^-12 (m = n): log1p(e) = e (1 - e/2 + e^2/3) to 2^-39, in units of 2^n, so
 *    that a subnormal result is scaled once, at the end (1 + e would lose e's low bits).
 */
AF_INLINE float af__log1p_expf(float z, float zl, float *lo, float *m_out)
{
    z = z < -200.0f ? -200.0f : z;
    float pl, n;
    float ph = af__exp_pairf(z, zl, &pl, &n);
    float sc = af__pow2if(n < -126.0f ? -126.0f : n);
    float eh = ph * sc, el = pl * sc;
    float dh = 1.0f + eh;
    float dl = ((1.0f - dh) + eh) + el;
    float k = dh >= 1.41421356f ? 1.0f : 0.0f;
    float f = (k != 0.0f ? 0.5f * dh : dh) - 1.0f;
    float s = f / (2.0f + f);
    float zz = s * s;
    float R = zz * af__poly_logf(zz);
    float hf = 0.5f * f;
    float h = hf * f;
    float hl = AF_FMAF(hf, f, -h);
    float A = f - h;
    float Al = ((f - A) - h) - hl;
    float T = s * (h + R);
    float Lh = AF_FMAF(k, AF__LN2HIF, A);        /* k LN2HI exact: 0 or LN2HI */
    float L1 = (AF_FMAF(k, AF__LN2HIF, -Lh) + A);
    float Ll = L1 + (Al + (T + AF_FMAF(k, AF__LN2LOF, dl / dh)));
    /* tail: 2^n (ph + pl - ph eps), eps = E/2 - E^2/3 (E < 2^-12; below 2^-126 it is
     * taken from 2^-126, where it is far below pl anyway) */
    float eps = eh * AF_FMAF(eh, -0.333333343f, 0.5f);
    int tail = n < -12.0f;
    *lo = tail ? AF_FMAF(-ph, eps, pl) : Ll;
    *m_out = tail ? n : 0.0f;
    return tail ? ph : Lh;
}

/*
 * softplus(x; beta) = max(b, 0)/beta + log1p(exp(-|b|))/beta, b = beta x, below the
 * threshold (the caller's select), in float lanes with FMA. b is the exact pair
 * (bh, fma(beta, x, -bh)), as in af_softplus_gradf; for b > 0, max(b, 0)/beta is x
 * itself (no rounding). L = 2^m (Lh + Ll) from af__log1p_expf; L/beta is the pair
 * q + qc with q = Lh ib (ib = 1/beta, a loop invariant) and the FMA residual
 * (exact to 2^-48) for qc; x + q is a TwoSum pair, and the result rounds once:
 * error 0.5 ulp + the ~2^-28 of the pair. 2^m (m < 0 only for e < 2^-12) is applied as
 * s1 = 2^max(m, -100) before the division and the rest last (a subnormal result, b < -87:
 * one more rounding of a value within 2^-24 of its ulp grid, as af__msigmoidf); for
 * b > 0 the rest is dropped (L/beta < 2^-100/beta next to x = b/beta, b > 69).
 * x = +-inf: x itself (the low parts are taken from 0 there: inf - inf).
 */
AF_INLINE float af__softplusf(float x, float beta, float ib)
{
    float bh = beta * x;
    /* the low part within exp_pairf's 2^-16 (see af__beta_xf) */
    float xg = af__ffrom(af__fbits(bh) & 0x7fffffffu) < 0x1p8f ? x : 0.0f;
    float bl = AF_FMAF(beta, xg, -(beta * xg));
    int pos = bh > 0.0f;
    float Ll, m;
    float Lh = af__log1p_expf(pos ? -bh : bh, pos ? -bl : bl, &Ll, &m);
    float m1 = m < -100.0f ? -100.0f : m;
    float s1 = af__pow2if(m1);
    float Ah = Lh * s1, Al = Ll * s1;
    float q = Ah * ib;
    float qc = (AF_FMAF(-q, beta, Ah) + Al) * ib;
    float xs = pos ? x : 0.0f;
    float xf = af__ffrom(af__fbits(xs) & 0x7fffffffu) < AF__INFF ? xs : 0.0f;
    float S = xf + q;
    float bb = S - xf;
    float t = (xf - (S - bb)) + (q - bb);
    float y = S + (t + qc);
    y = af__scale_downf(y, pos ? 0.0f : m - m1); /* m - m1 in [-189, 0] */
    return xs == xf ? y : xs;
}

/* softplus(x; beta) below the threshold (1/beta is a loop invariant). */
AF_INLINE float af_softplusf(float x, float beta) { return af__softplusf(x, beta, 1.0f / beta); }

/* log_sigmoid(x) = -softplus(-x) (beta = 1: the division folds away). */
AF_INLINE float af_log_sigmoidf(float x) { return -af__softplusf(-x, 1.0f, 1.0f); }

/*
 * m1 m2 as the exact pair mh + *ml (FMA) times 2^*k, each factor scaled by 2^-64 above
 * 2^60 and by 2^64 below 2^-60 (k in [-128, 128]): the pair then neither overflows
 * where a result that multiplies it by a factor <= 1.1 need not, nor loses its low part
 * in the subnormals (swiglu: value times silu or silu', whose double path forms the
 * product in double). The low part is 0 where mh is not finite.
 */
AF_INLINE float af__scale_expf(float m)
{
    float a = af__ffrom(af__fbits(m) & 0x7fffffffu);
    return a > 0x1p60f ? -64.0f : (a < 0x1p-60f ? 64.0f : 0.0f);
}
AF_INLINE float af__prod_pairf(float m1, float m2, float *ml, float *k)
{
    float k1 = af__scale_expf(m1), k2 = af__scale_expf(m2);
    float m1s = m1 * af__pow2if(k1), m2s = m2 * af__pow2if(k2);
    float mh = m1s * m2s;
    *ml = af__ffrom(af__fbits(mh) & 0x7fffffffu) < AF__INFF ? AF_FMAF(m1s, m2s, -mh) : 0.0f;
    *k = -(k1 + k2);
    return mh;
}

/*
 * (mh + ml) 2^k silu'(t) for t = th + tl (k from af__prod_pairf, or 0) (|tl| <= 2^-16 ulp-sized; NaN passes), with
 * silu'(t) = s (1 + t (1 - s)) written through e = exp(-|t|) = 2^n (ph + pl) and
 * d = 1 + e (the Fast2Sum pair of af__sigmoid_slopef) so that nothing cancels but the
 * root's own sum:
 *  - t >= 0: (1 + e c) / d^2, c = 1 + t (a TwoSum pair); e c <= 1, so 1 + e c is a
 *    Fast2Sum pair, all terms positive;
 *  - t < 0: 2^n (ph + pl) (c + e) / d^2: c + e is the one sum that cancels (at the root
 *    t = -1.2785); as a TwoSum of the pairs c and e it is exact to the ~2^-32 relative
 *    error of e, which is ~2^-34 absolute there: far below the root convention's ulp of 1.
 * The quotient is q0 = N rcp^2 corrected once with the FMA residual (as
 * af__sigmoid_slopef), the multiplier enters as fma(mh, q0', mh qc' + ml q0'), one
 * rounding (ml: the exact low part of a product dy * value, swiglu's); for t < 0 the
 * factor 2^n is split as in af__sigmoid_slopef (s1 = 2^max(n, -60) before the product,
 * the rest last: one rounding in the subnormal tail). t is clamped to [-200, 88]: silu'
 * is 1 in float from 17 on and 0 below -200 (the clamp also keeps t = -inf from giving
 * inf * 0).
 */
AF_INLINE float af__silu_slopef(float th, float tl, float mh, float ml, float k)
{
    float t = th > 88.0f ? 88.0f : th;
    t = t < -200.0f ? -200.0f : t;
    tl = t == th ? tl : 0.0f;
    int pos = t >= 0.0f;
    float pl, n;
    float ph = af__exp_pairf(pos ? -t : t, pos ? -tl : tl, &pl, &n);
    float m1 = n < -60.0f ? -60.0f : n;
    float s1 = af__pow2if(m1);
    float eh = ph * s1, el = pl * s1;
    float dh = 1.0f + eh;
    float dl = ((1.0f - dh) + eh) + el;
    float Dh = dh * dh;
    float Dl = AF_FMAF(dh, dh, -Dh) + 2.0f * dh * dl;
    float ch = 1.0f + t;                        /* c = 1 + t, TwoSum */
    float cb = ch - 1.0f;
    float cl = ((1.0f - (ch - cb)) + (t - cb)) + tl;
    /* t >= 0: N = 1 + e c */
    float Ph = eh * ch;
    float Pl = AF_FMAF(eh, ch, -Ph) + AF_FMAF(eh, cl, el * ch);
    float Np = 1.0f + Ph;
    float Npl = ((1.0f - Np) + Ph) + Pl;
    /* t < 0: N = (ph + pl) (c + e), in units of 2^n */
    float Sh = ch + eh;
    float sb = Sh - ch;
    float Sl = ((ch - (Sh - sb)) + (eh - sb)) + (cl + el);
    float Nn = ph * Sh;
    float Nnl = AF_FMAF(ph, Sh, -Nn) + AF_FMAF(ph, Sl, pl * Sh);
    float Nh = pos ? Np : Nn, Nl = pos ? Npl : Nnl;
    float rcp = 1.0f / dh;
    float r2 = rcp * rcp;
    float q0 = Nh * r2;
    float res = AF_FMAF(-q0, Dh, Nh) + AF_FMAF(-q0, Dl, Nl);
    float qc = res * r2;
    /* mh = +-inf: the low products would be inf * 0 */
    float mf = af__ffrom(af__fbits(mh) & 0x7fffffffu) < AF__INFF ? mh : 0.0f;
    float ks = pos ? 1.0f : s1;
    float qk = q0 * ks;
    float g = AF_FMAF(mh, qk, AF_FMAF(mf, qc * ks, ml * qk));
    /* n - m1 in [-229, 0], k in [-128, 128]; below -250 the result is 0 (|g| < 2^70),
     * selected rather than clamped (af__zero_likef; the clamped copy was g 2^-125
     * 2^-125 in every lane). Lanes below -250 scale by garbage that the select drops. */
    float e = (pos ? 0.0f : n - m1) + k;
    float r = af__ldexpf2(g, e);
    return e < -250.0f ? af__zero_likef(g) : r;
}

/* dy silu'(x) */
AF_INLINE float af_silu_gradf(float x, float dy)
{
    return af__silu_slopef(x, 0.0f, dy, 0.0f, 0.0f);
}

/* beta x as the pair (th, *tl) for beta = bh + bl (bl = 0 for a float beta): exact
 * with FMA up to bl x. The low part is taken from x = 0 from |th| = 2^8 on: the
 * consumers clamp beta x at -200 (or 88) but not the low part, which must stay within
 * af__exp_pairf's 2^-16 (and for x = inf would be inf - inf). beta = 0 gives 0 also
 * for x = +-inf (silu is then x / 2), NaN for NaN x: as silu_beta_x in the .pxd. */
AF_INLINE float af__beta_xf(float x, float bh, float bl, float *tl)
{
    float th = bh * x;
    float xg = af__ffrom(af__fbits(th) & 0x7fffffffu) < 0x1p8f ? x : 0.0f;
    *tl = AF_FMAF(bh, xg, -(bh * xg)) + bl * xg;
    /* th is NaN only for NaN x or 0 x with x = +-inf (beta = 0): a per-element test. The
     * select on the loop-invariant bh == 0 that stood here left gcc a loop to unswitch,
     * too big for it once swiglu's dy value pair joined: swiglu' with beta != 1 ran
     * scalar (48 ns/element float32 on Zen 3). */
    return th == th ? th : (x == x ? 0.0f : x);
}

/* dy silu'(beta x) for beta = bh + bl (the double beta split into floats, loop
 * invariants) */
AF_INLINE float af_silu_beta_gradf(float x, float dy, float bh, float bl)
{
    float tl;
    float th = af__beta_xf(x, bh, bl, &tl);
    return af__silu_slopef(th, tl, dy, 0.0f, 0.0f);
}

/*
 * swiglu's dgate = dy value silu'(beta gate) (beta a float: bl = 0 in the pair of beta
 * gate): dy value as the exact pair of af__prod_pairf, so that the float result rounds
 * once as the double path's.
 */
AF_INLINE float af_swiglu_dgatef(float gate, float value, float dy, float beta)
{
    float tl;
    float th = af__beta_xf(gate, beta, 0.0f, &tl);
    float ml, k;
    float mh = af__prod_pairf(value, dy, &ml, &k);
    return af__silu_slopef(th, tl, mh, ml, k);
}

/*
 * mish's t = tanh(softplus(x)) = A / D, as float pairs, from u = exp(-|x|) = 2^n (ph + pl)
 * (af__exp_pairf) and U = u 2^(m1 - n) = s1 (ph + pl), s1 = 2^max(n, -60) (U is u where
 * it shows next to 1 or 2; below 2^-60 it stands in for it only where it does not show):
 *  - x < 0 (u = e^x): t = u (u + 2) / (u (u + 2) + 2); A is (ph + pl) P in units of
 *    2^n (the factor 2^n is the caller's to apply, last), P = U + 2 a Fast2Sum pair,
 *    D = U P + 2;
 *  - x >= 0 (u = e^-x): t = (1 + 2u) / (1 + 2u + 2u^2), A = 1 + 2U and B = 2U^2 exact
 *    pairs, D = A + B (Fast2Sum: A >= B).
 * Neither form has a cancelling sum; the pairs carry the ~2^-32 of u and ~2^-46 of their
 * own, so that the quotient (corrected once by the caller) is good to ~2^-31.
 * x is clamped to [-200, 88] (exp_pairf's range); callers use xc for the x of the
 * formulas. *Q = U + 1 as a Fast2Sum pair, *B the pair 2U^2 (for mish'). (mish itself,
 * x A / D from these pairs with one rounding, measured 0.80 ulp but ~10-20% slower than
 * the double path, which the .pxd keeps.)
 */
typedef struct { float h, l; } af__pairf;

AF_INLINE af__pairf af__pair_mulf(af__pairf a, af__pairf b)
{
    float h = a.h * b.h;
    af__pairf r = {h, AF_FMAF(a.h, b.h, -h) + AF_FMAF(a.h, b.l, a.l * b.h)};
    return r;
}
AF_INLINE af__pairf af__pair_addf(af__pairf a, af__pairf b)
{
    /* TwoSum of the high parts (no ordering needed), low parts added */
    float h = a.h + b.h;
    float bb = h - a.h;
    af__pairf r = {h, ((a.h - (h - bb)) + (b.h - bb)) + (a.l + b.l)};
    return r;
}

AF_INLINE void af__mish_partsf(float x, af__pairf *A, af__pairf *D, af__pairf *P, af__pairf *Q,
                               af__pairf *B, af__pairf *pu, float *n_out, float *m1_out, float *s1_out)
{
    float xc = x > 88.0f ? 88.0f : x;
    xc = xc < -200.0f ? -200.0f : xc;
    int pos = xc >= 0.0f;
    float pl, n;
    float ph = af__exp_pairf(pos ? -xc : xc, 0.0f, &pl, &n);
    float m1 = n < -60.0f ? -60.0f : n;
    float s1 = af__pow2if(m1);
    float eh = ph * s1, el = pl * s1;
    af__pairf U = {eh, el}, u = {ph, pl};
    /* x < 0 */
    float p2 = 2.0f + eh;
    af__pairf Pp = {p2, ((2.0f - p2) + eh) + el};
    af__pairf An = af__pair_mulf(u, Pp);
    af__pairf UP = af__pair_mulf(U, Pp);
    float dn = UP.h + 2.0f;
    af__pairf Dn = {dn, ((2.0f - dn) + UP.h) + UP.l};
    /* x >= 0 */
    float a1 = 1.0f + 2.0f * eh;
    af__pairf Ap = {a1, ((1.0f - a1) + 2.0f * eh) + 2.0f * el};
    float b2 = 2.0f * eh * eh;
    af__pairf Bp = {b2, AF_FMAF(2.0f * eh, eh, -b2) + 4.0f * eh * el};
    float dp = a1 + b2;
    af__pairf Dp = {dp, ((a1 - dp) + b2) + (Ap.l + Bp.l)};
    float q1 = 1.0f + eh;
    af__pairf Qp = {q1, ((1.0f - q1) + eh) + el};
    A->h = pos ? Ap.h : An.h;
    A->l = pos ? Ap.l : An.l;
    D->h = pos ? Dp.h : Dn.h;
    D->l = pos ? Dp.l : Dn.l;
    *P = Pp;
    *Q = Qp;
    *B = Bp;
    *pu = u;
    *n_out = pos ? 0.0f : n;                    /* the caller's last factor: 2^(n - m1) */
    *m1_out = pos ? 0.0f : m1;
    *s1_out = pos ? 1.0f : s1;
}

/*
 * dy mish'(x), mish' = t + x s (1 - t^2) = N / D^2 over the pairs of af__mish_partsf:
 *  - x < 0: N = u ((u + 2) D + 4x (u + 1)) (1 - t^2 = 4 (u + 1)^2 / D^2, s = u / (1 + u));
 *    the sum cancels at the root x = -1.1920, where both terms are ~6.2 and exact pairs
 *    (products by FMA, 4x exact): the error there is ~2^-40 absolute, far below the
 *    root convention's ulp of 1; the leading u is (ph + pl), 2^n applied last;
 *  - x >= 0: N = A D + 2x B (1 + u) (1 - t^2 = 4u^2 (1 + u)^2 / D^2, s = 1 / (1 + u)),
 *    all terms positive.
 * N / D^2 is corrected once (D^2 the exact square pair of Dh plus 2 Dh Dl), dy enters
 * with one rounding as in af__silu_slopef. x is clamped to [-200, 88] (mish' is 1 from
 * 10 on in float, 0 below -200).
 */
AF_INLINE float af_mish_gradf(float x, float dy)
{
    af__pairf A, D, P, Q, B, u;
    float n, m1, s1;
    af__mish_partsf(x, &A, &D, &P, &Q, &B, &u, &n, &m1, &s1);
    float xc = x > 88.0f ? 88.0f : x;
    xc = xc < -200.0f ? -200.0f : xc;
    int pos = xc >= 0.0f;
    /* x < 0 */
    af__pairf X4 = {4.0f * xc, 0.0f};
    af__pairf G = af__pair_addf(af__pair_mulf(P, D), af__pair_mulf(X4, Q));
    af__pairf Nn = af__pair_mulf(u, G);
    /* x >= 0 */
    af__pairf X2 = {2.0f * xc, 0.0f};
    af__pairf Np = af__pair_addf(af__pair_mulf(A, D), af__pair_mulf(af__pair_mulf(X2, B), Q));
    float Nh = pos ? Np.h : Nn.h, Nl = pos ? Np.l : Nn.l;
    float D2h = D.h * D.h;
    float D2l = AF_FMAF(D.h, D.h, -D2h) + 2.0f * D.h * D.l;
    float rcp = 1.0f / D2h;
    float q0 = Nh * rcp;
    float qc = (AF_FMAF(-q0, D2h, Nh) + AF_FMAF(-q0, D2l, Nl)) * rcp;
    float dyf = af__ffrom(af__fbits(dy) & 0x7fffffffu) < AF__INFF ? dy : 0.0f;
    float g = AF_FMAF(dy, q0 * s1, dyf * (qc * s1));
    return af__ldexpf2(g, n - m1);
}


/* ---- expm1 scaled, in float lanes ------------------------------------------------------- */

/*
 * alpha expm1(x) for float x, as elu's x <= 0 branch, in float lanes with FMA: with
 * exp(x) = 2^n (ph + pl) (af__exp_pairf) and E = 2^n ph (exact, n clamped at -64 where
 * E no longer shows next to 1), expm1 = (E - 1) + 2^n pl where E - 1 is the exact
 * Fast2Sum pair h + l (E < 2; for n = 0, E in [0.7, 1.42] and E - 1 is exact by
 * Sterbenz, so the small-x case needs no branch: pl then holds r + r^2 P(r) - (ph - 1)
 * exactly up to the rounding of r^2 P, and expm1 keeps its relative accuracy down to
 * the subnormals). alpha enters as fma(alpha, h, alpha l): one rounding. x = +-0 gives
 * alpha x (the sign of zero, as the double path).
 */
AF_INLINE float af_alpha_expm1f(float x, float alpha)
{
#if defined(AF_HAS_FMA)
    float z = x < -104.0f ? -104.0f : x;        /* expm1 is -1 in float below -17.4 */
    z = z > 0.0f ? 0.0f : z;                    /* callers use x > 0 otherwise */
    float pl, n;
    float ph = af__exp_pairf(z, 0.0f, &pl, &n);
    /* n is clamped at -64, not lower: E < 2^-64 no longer shows next to 1 (h = -1, and
     * alpha l is below alpha 2^-63), and gcc's jump threading computes the clamped
     * copy in every lane of the vector loop; at -126 that copy's E was subnormal, a
     * microcode assist per vector (elu for x > 0 took 2.4x the time on Zen 3). */
    float s = af__pow2if(n < -64.0f ? -64.0f : n);
    float E = ph * s;
    float h = E - 1.0f;
    float l = (E - (h + 1.0f)) + pl * s;
    /* n = 0 (|x| < 0.35): the pair's absolute error (~2^-24 r^2 / 2) would be up to 4x
     * larger in ulps of the small result; there expm1(r) = r + r^2/2 + r^3 P1(r) with
     * r^2 exact (FMA) and r + r^2/2 a Fast2Sum pair. P1 = (P - 1/2) / r from the
     * coefficients of af__poly_expf (its constant term is 1/2 in float). */
    float rr = z * z;
    float rrl = AF_FMAF(z, z, -rr);
    float t = 0.5f * rr;
    float hs = z + t;
    float P1 = AF_FMAF(z, AF_FMAF(z, AF_FMAF(z, AF_FMAF(z, 1.98919813e-4f, 1.39345419e-3f),
                       8.33331002e-3f), 4.16664568e-2f), 1.66666667e-1f);
    float ls = ((z - hs) + t) + AF_FMAF(z * rr, P1, 0.5f * rrl);
    int small = n == 0.0f;
    h = small ? hs : h;
    l = small ? ls : l;
    float y = AF_FMAF(alpha, h, alpha * l);
    return x == 0.0f ? alpha * x : y;
#else
    return (float)((double)alpha * af_expm1_lite((double)x));
#endif
}

/* ---- hard_sigmoid family in float lanes ------------------------------------------------- */

/*
 * hard_sigmoid(x) = clamp(t(x), 0, 1), t(u) = (u + c) / d with d = 1/alpha and c = beta d,
 * for the parameters the .pxd's hard_float_params accepts once per call: d, c and b = c/d
 * floats exactly, b >= 1/2, and |d RN(1/d) - 1| <= 2^-25 (PyTorch's d = 6, c = 3, b = 1/2:
 * 2^-25; ONNX's 5, 2.5, 1/2: 2^-26). b d = c exactly, so t(u) = b + u/d; as the
 * unevaluated sum s + *tl:
 *  - q = RN(u RN(1/d)), no division, for hard_sigmoid: a faithful u/d, and where u/d is
 *    a float, q is it (the product is off by |u/d| 2^-25 at most, under half an ulp);
 *    hard_swish and hard_swish' take q = RN(u/d) (one division: with the product's
 *    larger remainder, x t next to the lower kink measured 0.667 ulp);
 *  - r = u - q d, exact (FMA, q faithful), so u/d = q + r/d;
 *  - b + q = s + e exactly, Fast2Sum: between the kinks q runs from -b to 1 - b, and
 *    |1 - b| <= b (b >= 1/2); hard_swish' sums 2q and takes TwoSum;
 *  - *tl = e + r/d rounded, r/d taken as r RN(1/d).
 * Ties: where t is exactly half-way between two floats (x = 3k 2^-24 gives (x + 3)/6 =
 * 1/2 + k 2^-25), and where x t is (3, or 5 for ONNX, then divides the odd part of x),
 * x/d is a float, so r = 0 and *tl = e exactly: hard_sigmoid's last sum is s + e, whose
 * tie the hardware breaks as the exact value's (hard_swish's x s + x e: measured). Elsewhere the
 * error of *tl (~2^-24 of a term below an ulp of s) stays under the distance to the
 * nearest midpoint for hard_sigmoid (that distance is at least ulp(x)/6 or ulp(t)/6):
 * over all 2^32 inputs its results are those of the double formula (x + c)/d rounded to
 * float, bit for bit (tools/exhaustive_f32.c, diff=0). x t has midpoints closer than
 * that (2^-28 ulp at x = 2.3e-5): hard_swish differs from x (x + c)/d in double rounded
 * to float at 5 (PyTorch's) and 7 (ONNX's) of the 2^32 inputs, by one ulp, 0.5 + 2e-8
 * ulp from the exact value.
 * x is clamped to the kinks k0 = -c (t = 0) and k1 = d - c (t = 1, a float too) first:
 * the arithmetic then never sees inf or a huge |x| (no overflow, no inf - inf), the
 * clamped ends give t = 0 and 1 exactly, and NaN passes through the clamp.
 */
AF_INLINE float af__hard_tf(float u, float d, float b, int divide, int two_sum, float *tl)
{
    float id = 1.0f / d;                /* a loop invariant, hoisted */
    float q = divide ? u / d : u * id;
    float r = AF_FMAF(-q, d, u);
    float s = b + q;
    float bb = s - b;
    float e = two_sum ? (b - (s - bb)) + (q - bb) : q - bb;
    *tl = AF_FMAF(r, id, e);
    return s;
}

/* x clamped to the kinks' interval (NaN passes); *k0, *k1: the kinks t = 0 and t = 1 */
AF_INLINE float af__hard_clampf(float x, float d, float b, float *k0, float *k1)
{
    float c = b * d;                    /* exact (the .pxd's condition) */
    float lo, hi;
    *k0 = -c;
    *k1 = d - c;                        /* exact too */
    lo = d > 0.0f ? *k0 : *k1;
    hi = d > 0.0f ? *k1 : *k0;
    /* two selects in turn: nested, gcc tests each condition and its negation (NaN) */
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}

AF_INLINE float af_hard_sigmoidf(float x, float d, float b)
{
    float k0, k1, tl;
    float s = af__hard_tf(af__hard_clampf(x, d, b, &k0, &k1), d, b, 0, 0, &tl);
    return s + tl;
}

/* x t(x): 0 at and beyond k0, x at and beyond k1 (x itself, which the clamped product
 * would not give), the product x (s + tl) with one rounding (x s exact inside the FMA)
 * in between; -0 gives -0. */
AF_INLINE float af_hard_swishf(float x, float d, float b)
{
    float k0, k1, tl;
    float xc = af__hard_clampf(x, d, b, &k0, &k1);
    float s = af__hard_tf(xc, d, b, 1, 0, &tl);
    float y = AF_FMAF(xc, s, xc * tl);
    y = xc == k1 ? x : y;
    return xc == k0 ? 0.0f : y;
}

/* dy (2 alpha x + beta) between the kinks, as dy t(2x) (2x exact after the clamp): 0 at
 * and beyond k0, dy at and beyond k1 (PyTorch's hardswish_backward), NaN x gives NaN.
 * Where dy brings a factor 3 (or 5) a tie may break the other way than the exact value
 * would: <= 0.5 ulp plus ~2^-24. */
AF_INLINE float af_hard_swish_gradf(float x, float dy, float d, float b)
{
    float k0, k1, tl;
    float xc = af__hard_clampf(x, d, b, &k0, &k1);
    float s = af__hard_tf(2.0f * xc, d, b, 1, 1, &tl);
    float y = AF_FMAF(dy, s, dy * tl);
    y = xc == k1 ? dy : y;
    return xc == k0 ? 0.0f : y;
}

/* ---- erfc and the normal CDF (double arithmetic) ---------------------------------------- */

#define AF__ERFCX_L 3.0
#define AF__RSQRTPI 0.56418958354775628695   /* 1/sqrt(pi) */

/*
 * scale * erfc(y), given y and y^2 = hi + lo (lo the exact rounding error of hi), for
 * scale = 1 (half = 0) or 1/2 (half = 1). lite selects the shorter polynomials (about
 * 1e-11 relative: enough for results rounded to float).
 */
AF_INLINE double af__erfc_gen(double y, double hi, double lo, double half, double mul, double addc, int lite)
{
    /* -0.5 < y < 0.25: 1 - y P(y^2); no cancellation worse than a factor 1.4. */
    double P = lite ? af__poly_erf_lite(hi) : af__poly_erf(hi);
    double rA = AF_FMA(-y, P, 1.0);
    /* |y| >= 0.25: exp(-y^2) erfcx(|y|). Beyond 27.5 erfc underflows to 0 in double. */
    double a = af__dfrom(af__dbits(y) & 0x7fffffffffffffffull);
    double ac = a > 27.5 ? 27.5 : a;
    double sL = AF__ERFCX_L + ac;
    double d = 1.0 / sL;
    double Z = (AF__ERFCX_L - ac) * d;
    double p = lite ? af__poly_erfcx_lite(Z) : af__poly_erfcx(Z);
    double ex = d * AF_FMA(2.0 * d, p, AF__RSQRTPI);
    /* d carries the roundings of L + a and of 1/(L + a) into the result linearly; take
     * them out: 1/(L + a) = d (1 + eps), eps = (1 - d sL) - d (L + a - sL). */
    double sLerr = ac > AF__ERFCX_L ? (ac - sL) + AF__ERFCX_L : (AF__ERFCX_L - sL) + ac;
    double eps = AF_FMA(-d, sL, 1.0) - d * sLerr;
    ex = AF_FMA(ex, eps, ex);
    double hc = hi > 800.0 ? 800.0 : hi;         /* exp(-800) is 0; NaN passes */
    double lc = hi > 800.0 ? 0.0 : lo;
    double n;
    double u = lite ? af__expm1_core_lite(-hc, -lc, &n) : af__expm1_core(-hc, -lc, &n);
    /* mul * scale * erfc(|y|): mul enters before the last scaling, so that a result in
     * the subnormal range is rounded once (gelu = x Phi(x) in the far tail). */
    double eu = AF_FMA(ex, u, ex);                      /* (1 + u) ex, one rounding */
    /* + addc * exp(-y^2), also summed before the scaling (gelu' = Phi + x phi). */
    double two = half != 0.0 ? 1.0 : 2.0;
    /* the common factor 1 + u (and its error) applied once, after the sum */
    double eB = af__ldexp2(addc != 0.0 ? AF_FMA(ex, mul, addc * (3.0 - two)) * (1.0 + u) : eu * mul, n - half);
    double eBm = af__ldexp2(eu, n - half);
    double g = addc * af__ldexp2(1.0 + u, n);             /* addc exp(-y^2) */
    eB = hi > 800.0 ? 0.0 * mul : eB;             /* mul may be huge (gelu at -1e300) */
    double rB = y >= 0.0 ? eB : mul * (two - eBm) + g;
    double sc = half != 0.0 ? 0.5 : 1.0;
    /* -0.5 < y < 0.25 as one comparison (combined masks do not vectorise on SSE2) */
    return af__dfrom(af__dbits(y + 0.125) & 0x7fffffffffffffffull) < 0.375 ? (sc * rA) * mul + g : rB;
}

/* Exact square: x*x = hi + lo (needs FMA or Dekker's split). */
AF_INLINE double af__sq_lo(double x, double hi)
{
#if defined(__FMA__) || defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
    return __builtin_fma(x, x, -hi);
#else
    const double c = 134217729.0;               /* 2^27 + 1 */
    double t = c * x;
    double xh = t - (t - x), xl = x - xh;
    return ((xh * xh - hi) + 2.0 * xh * xl) + xl * xl;
#endif
}

AF_INLINE double af__erfc_d(double x, int lite)
{
    /* No clamp needed: where x*x overflows (lo is then NaN), af__erfc_gen uses neither. */
    double hi = x * x;
    return af__erfc_gen(x, hi, af__sq_lo(x, hi), 0.0, 1.0, 0.0, lite);
}

/* Phi(x) = erfc(-x/sqrt2)/2 with the exponent -x^2/2 taken exactly from x. */
AF_INLINE double af__ndtr_d(double x, double mul, double addc, int lite)
{
    double hi = x * x;
    double lo = af__sq_lo(x, hi);
    return af__erfc_gen(x * -0.70710678118654752440, 0.5 * hi, 0.5 * lo, 1.0, mul, addc, lite);
}

AF_INLINE double af_erfc(double x) { return af__erfc_d(x, 0); }
AF_INLINE float af_erfcf(float x) { return (float)af__erfc_d((double)x, 1); }
AF_INLINE double af_ndtr(double x) { return af__ndtr_d(x, 1.0, 0.0, 0); }
AF_INLINE float af_ndtrf(float x) { return (float)af__ndtr_d((double)x, 1.0, 0.0, 1); }
/* For float activations computed in double: the double result, short polynomials. */
AF_INLINE double af_ndtr_lite(double x) { return af__ndtr_d(x, 1.0, 0.0, 1); }
/* x * Phi(x) (gelu without its inf rule), the product formed before the final scaling. */
AF_INLINE double af_xndtr(double x) { return af__ndtr_d(x, x, 0.0, 0); }
AF_INLINE double af_xndtr_lite(double x) { return af__ndtr_d(x, x, 0.0, 1); }
/* Phi(x) + x phi(x) (gelu'), the sum formed before the final scaling (subnormal tail). */
AF_INLINE double af_ndtr_xpdf(double x) { return af__ndtr_d(x, 1.0, 0.39894228040143267794 * x, 0); }

/* The rounding error of a*b (exact with FMA; Dekker's product without). */
AF_INLINE double af__prod_lo(double a, double b, double p)
{
#if defined(__FMA__) || defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
    return __builtin_fma(a, b, -p);
#else
    const double c = 134217729.0;
    double ta = c * a, tb = c * b;
    double ah = ta - (ta - a), al = a - ah, bh = tb - (tb - b), bl = b - bh;
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
#endif
}
/* a*b = p + af_mul_lo(a, b, p) exactly, p = a*b rounded (finite a, b, p). */
AF_INLINE double af_mul_lo(double a, double b, double p) { return af__prod_lo(a, b, p); }

/*
 * u2 = 2 sqrt(2/pi) (x + 0.044715 x^3) as hi + *lo (double-double), for gelu_tanh in
 * double: in the tail x * sigmoid(u2) ~ x exp(u2) with |u2| ~ 600 at x = -20, and
 * rounding u2 to double alone would cost ~300 ulp. |x| <= 1e4.
 */
AF_INLINE double af_gelu_tanh_u2(double x, double *lo)
{
    const double ah = 0.044715, al = 2.1960211427085595e-18;
    const double ch = 1.5957691216057308, cl = -9.96930880911092e-17;
    double x2h = x * x, x2l = af__sq_lo(x, x2h);
    double x3h = x2h * x, x3l = af__prod_lo(x2h, x, x3h) + x2l * x;
    double ph = ah * x3h, pl = af__prod_lo(ah, x3h, ph) + (ah * x3l + al * x3h);
    double sh = x + ph, bb = sh - x;
    double sl = ((x - (sh - bb)) + (ph - bb)) + pl;
    double uh = ch * sh, ul = af__prod_lo(ch, sh, uh) + (ch * sl + cl * sh);
    double h = uh + ul;
    *lo = ul - (h - uh);
    return h;
}

/* ==== softmax rows in float lanes (softmax, log_softmax, softmin; _kernels.pyx.tp) ====
 *
 * softmax: y = e / s with each e = exp(x - m) kept as a float pair (scaled by 2^64) and
 * 1/s as a float pair from the double sum, the product rounded once; log_softmax:
 * (x - m) - L with L = log(sum exp(x - m)) taken once per row in double, subtracted
 * exactly and rounded once. m is the row maximum. No division per element. Why not
 * the plain exp(x - m) / s in float: x - m rounds (by up to 2^-18 for |x - m| ~ 100,
 * which exp turns into a relative error of 2^-18, 30+ ulp), and exp, the stored e and
 * the quotient each round again.
 *  - x - m is carried as an exact float pair (TwoSum), handed to af__exp_pairf's low
 *    input (softmax) or followed by a second TwoSum with L's float pair (log_softmax);
 *  - the sum for L takes the pair 2^n (ph + pl) of each term, in double (hi) and a
 *    second double sum (lo); entries equal to m are counted, not summed, so that
 *    L = log1p((k - 1) + S') keeps its relative accuracy when one entry dominates
 *    (log_softmax of that entry is -L, near 0);
 *  - lanes where x - m is below the range (x = -inf, masked entries, exp < 2^-150) are
 *    computed on (0, 0) and replaced by 0 after, so that no inf - inf is ever formed
 *    (an invalid flag even in an unused lane).
 * Without hardware FMA (the x86-64 baseline, where af__exp_pairf's pairs are not exact)
 * the terms and the outputs are computed in double (af_exp_lite, 1e-11 relative) and
 * rounded once: the same results to within the rounding of the last bit. */
#include <stddef.h>                             /* ptrdiff_t */

/* exp(x - m) for log_softmax's row sum, as th + *tl (0 where x == m, which the caller counts, and
 * where x - m < -69: below 2^-99 a term does not show in a sum >= 1). x <= m, m finite. */
AF_INLINE float af_smx_termf(float x, float m, float *tl)
{
    float d = x - m;
    int ok = d > -69.0f;                        /* false for x = -inf */
#if defined(AF_HAS_FMA)
    float xs = ok ? x : m;
    float zh = xs - m;                          /* TwoSum: x - m = zh + zl exactly */
    float bb = zh - xs;
    float zl = (xs - (zh - bb)) + (-m - bb);
    float pl, n;
    float ph = af__exp_pairf(zh, zl, &pl, &n);
    float sc = af__pow2if(n);                   /* n in [-100, 0] */
    float h = ph * sc, l = pl * sc;
#else
    double e = af_exp_lite((double)(ok ? x : m) - (double)m);
    float h = (float)e;
    float l = (float)(e - (double)h);
#endif
    int keep = ok && d != 0.0f;
    *tl = keep ? l : 0.0f;
    return keep ? h : 0.0f;
}

/* exp(x - m) 2^64 as the float pair h + *l, for softmax, which stores the terms (h in the
 * output, l in a scratch row) and scales them by 1/sum in a last pass: the factor 2^64
 * keeps every term that can show in a float result (x - m >= -104) a normal float, low
 * part included, so that no subnormal rounding enters before the last product; below
 * -104 the term is 0. x <= m, m finite. */
AF_INLINE float af_smx_term64f(float x, float m, float *l)
{
    float d = x - m;
    int ok = d > -104.0f;                       /* false for x = -inf */
#if defined(AF_HAS_FMA)
    float xs = ok ? x : m;
    float zh = xs - m;                          /* TwoSum: x - m = zh + zl exactly */
    float bb = zh - xs;
    float zl = (xs - (zh - bb)) + (-m - bb);
    float pl, n;
    float ph = af__exp_pairf(zh, zl, &pl, &n);
    float sc = af__pow2if(n + 64.0f);           /* n + 64 in [-87, 64] */
    float h = ph * sc, lo = pl * sc;
#else
    double e = af_exp_lite((double)(ok ? x : m) - (double)m) * 0x1p64;
    float h = (float)e;
    float lo = (float)(e - (double)h);
#endif
    *l = ok ? lo : 0.0f;
    return ok ? h : 0.0f;
}

/* (h + l)(rh + rl) 2^-32 rounded once (up to ~2^-48 relative): a stored softmax term
 * times the pair rh + rl = 2^32 / sum. The product is formed 2^32 above the result so that
 * its small terms (~2^-24 of it) stay normal down to results of 2^-126 (formed at the
 * result's own scale they would round to the subnormal grid: 1.4 ulp measured there);
 * the final 2^-32 is exact for a normal result and rounds once more for a subnormal one. */
AF_INLINE float af_smx_scalef(float h, float l, float rh, float rl)
{
#if defined(AF_HAS_FMA)
    return AF_FMAF(h, rh, AF_FMAF(h, rl, l * rh)) * 0x1p-32f;
#else
    return (float)(((double)h + (double)l) * ((double)rh + (double)rl) * 0x1p-32);
#endif
}

/* The pair rh + rl = 2^32 / s for the sum s (>= 2^64) of the scaled terms. */
AF_INLINE void af_smx_rcpf(double s, float *rh, float *rl)
{
    double r = 0x1p32 / s;
    float h = (float)r;
    *rh = h;
    *rl = (float)(r - (double)h);
}

/* log_softmax: (x - m) - (lh + ll), rounded once; -inf for x = -inf. x - m = s1 + e1 and
 * s1 - lh = s2 + e2 are exact TwoSums, so the only roundings before the last are those
 * of the small e1 + e2 - ll and of L's pair (2^-48 relative): where x = m the result is
 * -(lh + ll) rounded once, L's own relative accuracy (subtracting m + L as one float
 * pair instead rounds its low part at the ulp of m: 0.73 ulp measured). */
AF_INLINE float af_smx_logf(float x, float m, float lh, float ll)
{
    float d = x - m;
    int ok = d > -AF__INFF;
    float xs = ok ? x : m;
    float s1 = xs - m;
    float b1 = s1 - xs;
    float e1 = (xs - (s1 - b1)) + (-m - b1);
    float s2 = s1 - lh;
    float b2 = s2 - s1;
    float e2 = (s1 - (s2 - b2)) + (-lh - b2);
    float r = s2 + ((e1 + e2) - ll);
    return ok ? r : d;
}

/* L = log1p((k - 1) + s) for the double sum s of the terms below the maximum and the
 * count k >= 1 of entries at it, as the float pair lh + ll. */
AF_INLINE void af_smx_lsef(double s, double k, float *lh, float *ll)
{
    double l = af_log1p((k - 1.0) + s);
    float h = (float)l;
    *lh = h;
    *ll = (float)(l - (double)h);
}

/* The maximum of a contiguous row (of -x where sgn = 0x80000000, softmin), NaN if it
 * holds a NaN: 32 running maxima (a single one is a chain of dependent selects that gcc
 * does not vectorise without -ffast-math), combined in a fixed order. The comparisons are
 * quiet (isgreater; != is quiet already): a NaN entry raises no invalid flag. */
AF_INLINE float af_smx_maxf(const float *x, ptrdiff_t n, uint32_t sgn)
{
    float mx[32], nn[32];
    ptrdiff_t i = 0;
    int k, nan = 0;
    for (k = 0; k < 32; k++) { mx[k] = -AF__INFF; nn[k] = 0.0f; }
    for (; i + 32 <= n; i += 32)
        for (k = 0; k < 32; k++) {
            float v = af__ffrom(af__fbits(x[i + k]) ^ sgn);
            mx[k] = isgreater(v, mx[k]) ? v : mx[k];
            nn[k] = v != v ? v : nn[k];
        }
    for (; i < n; i++) {
        float v = af__ffrom(af__fbits(x[i]) ^ sgn);
        mx[0] = isgreater(v, mx[0]) ? v : mx[0];
        nn[0] = v != v ? v : nn[0];
    }
    float m = mx[0];
    for (k = 1; k < 32; k++) m = isgreater(mx[k], m) ? mx[k] : m;
    for (k = 0; k < 32; k++) nan |= nn[k] != nn[k];
    return nan ? AF__NANF : m;
}

/* sum(h) + sum(l) of the term buffers: h in double, l (the low parts, ~2^-24 h) in float,
 * each in 32 lanes (a single vector of accumulators would wait on the 4-cycle latency of
 * each add), combined in a fixed order (the result does not depend on threads). */
AF_INLINE double af_smx_sum2f(const float *h, const float *l, ptrdiff_t n)
{
    double s[32];
    float t[32];
    ptrdiff_t i = 0;
    int k;
    for (k = 0; k < 32; k++) { s[k] = 0.0; t[k] = 0.0f; }
    for (; i + 32 <= n; i += 32)
        for (k = 0; k < 32; k++) { s[k] += (double)h[i + k]; t[k] += l[i + k]; }
    for (; i < n; i++) { s[0] += (double)h[i]; t[0] += l[i]; }
    for (k = 16; k > 0; k >>= 1) {
        int j;
        for (j = 0; j < k; j++) { s[j] += s[j + k]; t[j] += t[j + k]; }
    }
    return s[0] + (double)t[0];
}
/* <a, b> and sum(a) in double for the gradients' row reductions (float32 only; the
 * float64 ones keep af_dot_d / af_sum_d): 32 lanes, as af_smx_sum2f, where
 * af_dot_f's 8 wait on one vector add chain (float64 results do not change). */
AF_INLINE double af_smx_dotf(const float *a, const float *b, ptrdiff_t n)
{
    double s[32];
    ptrdiff_t i = 0;
    int k;
    for (k = 0; k < 32; k++) s[k] = 0.0;
    for (; i + 32 <= n; i += 32)
        for (k = 0; k < 32; k++) s[k] += (double)a[i + k] * (double)b[i + k];
    for (; i < n; i++) s[0] += (double)a[i] * (double)b[i];
    for (k = 16; k > 0; k >>= 1) {
        int j;
        for (j = 0; j < k; j++) s[j] += s[j + k];
    }
    return s[0];
}
AF_INLINE double af_smx_sumf(const float *a, ptrdiff_t n)
{
    double s[32];
    ptrdiff_t i = 0;
    int k;
    for (k = 0; k < 32; k++) s[k] = 0.0;
    for (; i + 32 <= n; i += 32)
        for (k = 0; k < 32; k++) s[k] += (double)a[i + k];
    for (; i < n; i++) s[0] += (double)a[i];
    for (k = 16; k > 0; k >>= 1) {
        int j;
        for (j = 0; j < k; j++) s[j] += s[j + k];
    }
    return s[0];
}
/* ==== end of softmax rows ==== */
/* ==== gelu family in float lanes (float32 gelu, gelu', gelu_tanh, gelu_tanh') ============ */
/*
 * float32 gelu = x Phi(x), gelu' = Phi(x) + x phi(x), gelu_tanh = x sigmoid(t) and
 * gelu_tanh' = sigmoid(t) (1 + k (1 - sigmoid(t))), t = c x (1 + b x^2), k = c x (1 + 3b x^2),
 * in float lanes (16 per AVX-512 vector) with FMA, within 0.78 ulp over all 2^32 inputs
 * (tools/exhaustive_f32.c); without FMA in double, rounded once, as before.
 *
 * Final results are m y with y a float pair rounded once, fma(m, yh, m yl) (m = x or dy),
 * so the pair must be good to ~2^-26 relative: every term that a plain float rounding
 * would spoil is carried as a pair.
 *  - gelu: with a = |x|, Q(a) = Phi(-a) = exp(-a^2/2) R(a), R = erfcx(a/sqrt2)/2 smooth
 *    and in [0.02, 0.5]; x < 0: x 2^n E R, x >= 0: x (1 - 2^n E R) (E R <= 1/2, so the
 *    Fast2Sum 1 - q is exact and nothing cancels). exp(-a^2/2) comes from the exact square
 *    a^2 = hh + hl (FMA) as the pair of af__exp_pairf: rounding a^2 (or x/sqrt2) alone
 *    would cost ~a^2 ulp in the tail (170 at x = -13).
 *  - gelu' = 2^n E (R - a/sqrt(2 pi)) for x < 0 and 1 - that for x >= 0: the same pair
 *    with a k subtracted exactly (two-product and a Fast2Sum on the larger of the two).
 *    Near the root x = -0.7518 the difference cancels, but as pairs: absolute error
 *    ~2^-40, far inside the ulp(1) of the root convention.
 *  - gelu_tanh: x sigmoid(t) = af__msigmoidf(x, th, tl) with t as a float pair: the
 *    relative error of t is amplified by |t| (up to 200 where dy * result is nonzero),
 *    so t is formed from exact products (~2^-44).
 *  - the subnormal tail (x < -13.1 for gelu) takes one more rounding, of a value already
 *    within 2^-24 of its ulp grid, as in af__msigmoidf (0.75 ulp there).
 */

#if defined(AF_HAS_FMA)
/*
 * R(a) = erfcx(a/sqrt2)/2 = exp(a^2/2) Q(a) for a in [0, 20] (NaN passes), as a float pair
 * good to ~2^-29 (0.25 ulp of float at most near a = 0, ~0.02 elsewhere). R falls from
 * 0.5 to 0.02: a polynomial for R itself would carry errors of its leading terms; with
 * d = 1/(1 + a), C = R (1 + a) varies by 5% on the head a < 2 (a polynomial in a) and by
 * 21% on the tail (a polynomial in d, the map that turns erfcx's 1/a decay into a smooth
 * function), so Horner's rule in float adds <= ~0.1 ulp to its leading pair term.
 * The division: 1 + a is the exact pair (sh, sl) and 1/(1 + a) = d (1 + eps) to second
 * order (the FMA residual); R = d (1 + eps) C. The tail polynomial is evaluated at the
 * rounded d and d - DM: their errors (eps, ttl) enter through C'(d) ~ T1 + 2 t Q; the
 * head's t = a - 1 rounds for a < 1/2 (thl, entered with the slope P, ~0.25 ulp left at
 * a -> 0 where P is only the secant: see tools/gen_vmath_coeffs.py).
 */
AF_INLINE float af__gelu_rf(float a, float *rl)
{
    float sh = 1.0f + a;
    float sl = a > 1.0f ? (a - sh) + 1.0f : (1.0f - sh) + a;
    float d = 1.0f / sh;
    float eps = AF_FMAF(-d, sh, 1.0f) - d * sl;
    /* head, a < A0: C = c0 + t P(t), t = a - AM */
    float th = a - AF__GELU_AM;
    float thl = (-AF__GELU_AM - th) + a;
    float P = af__gelu_headf(th);
    float ph = th * P;
    float hh = AF__GELU_H0 + ph;
    float hl = ((AF__GELU_H0 - hh) + ph) + AF_FMAF(thl, P, AF__GELU_H0L);
    /* tail: C = c0 + c1 t + t^2 Q(t), t = d - DM */
    float tt = d - AF__GELU_DM;
    float ttl = (-AF__GELU_DM - tt) + d;
    float Q = af__gelu_tailf(tt);
    float c1 = AF__GELU_T1 * tt;
    float c1l = AF_FMAF(AF__GELU_T1, tt, -c1);
    float q = (tt * tt) * Q;
    float dc = AF_FMAF(2.0f * tt, Q, AF__GELU_T1);
    float gh = AF__GELU_T0 + c1;
    float gl = ((AF__GELU_T0 - gh) + c1) + ((c1l + AF_FMAF(AF__GELU_T1L, tt, AF__GELU_T0L)) + AF_FMAF(dc, AF_FMAF(d, eps, ttl), q));
    int head = a < AF__GELU_A0;
    float c0 = af__self(head, hh, gh), c0l = af__self(head, hl, gl);
    float ch = c0 + c0l;
    float cl = (c0 - ch) + c0l;
    float rh = d * ch;
    *rl = AF_FMAF(d, ch, -rh) + d * AF_FMAF(ch, eps, cl);
    return rh;
}

/*
 * m Phi(x) (grad = 0; m = x is gelu) or m (Phi(x) + x phi(x)) (grad = 1; m = dy is
 * gelu'), times v where gated (geglu: m Phi v as (m Phi) v, so that m v cannot overflow
 * where the result does not), NaN passes, m = +-inf gives +-inf (the low product dropped: inf * 0 would be
 * NaN). a is clamped at 20: exp(-200) times FLT_MAX underflows, so every result beyond is
 * 0 (x < 0) or m (x > 0) anyway. 2^n = s1 2^(n - n1), s1 = 2^max(n, -100): q = 2^n1 P is
 * exact and normal; for x >= 0, 2^n1 > 2^n only where q < 2^-100 is invisible next to 1.
 */
AF_INLINE float af__gelu_coref(float x, float m, float v, int grad, int gated)
{
    float a = af__ffrom(af__fbits(x) & 0x7fffffffu);
    a = af__self(a > 20.0f, 20.0f, a);           /* selects: see af__self */
    float hh = a * a;
    float hl = AF_FMAF(a, a, -hh);
    float pl, n;
    float ph = af__exp_pairf(-0.5f * hh, -0.5f * hl, &pl, &n);
    float dl;
    float dh = af__gelu_rf(a, &dl);
    if (grad) {
        float kh = a * AF__RSQRT2PIF;
        float kl = AF_FMAF(a, AF__RSQRT2PIF, -kh) + a * AF__RSQRT2PIF_LO;
        float sh = dh - kh;
        float err = dh >= kh ? (dh - sh) - kh : dh - (sh + kh);
        dl = err + (dl - kl);
        dh = sh;
    }
    float Ph = ph * dh;
    float Pl = AF_FMAF(ph, dh, -Ph) + AF_FMAF(ph, dl, pl * dh);
    float n1 = af__self(n < -100.0f, -100.0f, n);
    float s1 = af__pow2if(n1);
    float qh = Ph * s1, ql = Pl * s1;
    float oh = 1.0f - qh;
    float ol = ((1.0f - oh) - qh) - ql;
    int pos = x >= 0.0f;
    float yh = af__self(pos, oh, qh), yl = af__self(pos, ol, ql);
    float mg = af__ffrom(af__fbits(m) & 0x7fffffffu) < AF__INFF ? m : 0.0f;
    float y;
    if (!gated) {                               /* v unused */
        y = AF_FMAF(m, yh, mg * yl);
    } else {
        /* two multipliers (the gated units: m y v), m y as a pair, rounded once with v */
        float zh = m * yh;
        float zl = AF_FMAF(mg, yh, -(mg * yh)) + mg * yl;
        float vg = af__ffrom(af__fbits(v) & 0x7fffffffu) < AF__INFF ? v : 0.0f;
        y = AF_FMAF(v, zh, vg * zl);
    }
    /* n - n1 in [-189, 0]; below -126 only where a huge dy leaves a nonzero result */
    return af__scale_downf(y, af__self(pos, 0.0f, n - n1));
}

/* c x (1 + b x^2), c = 2 sqrt(2/pi), as a float pair (th, *lo) normalised (|lo| <= ulp/2)
 * for af__msigmoidf; xx + xxl = x^2 exactly, b = bh + bl and c as float pairs: every
 * product is an FMA two-product, 1 + b x^2 a Fast2Sum on the larger term (b x^2 exceeds 1
 * for |x| > 4.7); relative error ~2^-44. */
AF_INLINE float af__gelu_tanh_argf(float x, float xx, float xxl, float bh, float bl, float *lo)
{
    float p = bh * xx;
    float pe = AF_FMAF(bh, xx, -p) + AF_FMAF(bh, xxl, bl * xx);
    float wh = 1.0f + p;
    float wl = (p > 1.0f ? (p - wh) + 1.0f : (1.0f - wh) + p) + pe;
    float g = x * wh;
    float gl = AF_FMAF(x, wh, -g) + x * wl;
    float th = AF__GELU_CF * g;
    float tl = AF_FMAF(AF__GELU_CF, g, -th) + AF_FMAF(AF__GELU_CF, gl, AF__GELU_CF_LO * g);
    float h = th + tl;
    *lo = (th - h) + tl;
    return h;
}
#endif

AF_INLINE float af_geluf(float x)
{
#if defined(AF_HAS_FMA)
    float y = af__gelu_coref(x, x, 1.0f, 0, 0);
#else
    float y = (float)af_xndtr_lite((double)x);
#endif
    return x == -AF__INFF ? 0.0f : y;
}

/* gelu' dy; without FMA Phi + x phi in double (af_ndtr_xpdf; its cancellation near the
 * root costs ~1e-16 absolute, nothing in float), clamped at +-40 (the limits 0 and 1). */
AF_INLINE float af_gelu_gradf(float x, float dy)
{
#if defined(AF_HAS_FMA)
    return af__gelu_coref(x, dy, 1.0f, 1, 0);
#else
    double xd = (double)x;
    double g = af_ndtr_xpdf(xd > 40.0 ? 40.0 : (xd < -40.0 ? -40.0 : xd));
    return (float)((double)dy * g);
#endif
}

/* geglu in float32: gelu(gate) value, and its two gradients dy value gelu'(gate) and
 * dy gelu(gate) (af_gegluf(gate, dy)), each rounded once (the product of the two
 * multipliers is a pair). gate = -inf: 0 times value. */
AF_INLINE float af_gegluf(float gate, float value)
{
#if defined(AF_HAS_FMA)
    float y = af__gelu_coref(gate, gate, value, 0, 1);
#else
    float y = (float)(af_xndtr_lite((double)gate) * (double)value);
#endif
    return gate == -AF__INFF ? 0.0f * value : y;
}
AF_INLINE float af_geglu_dgatef(float gate, float value, float dy)
{
#if defined(AF_HAS_FMA)
    return af__gelu_coref(gate, dy, value, 1, 1);
#else
    double g = (double)gate;
    return (float)(((double)dy * (double)value) * af_ndtr_xpdf(g > 40.0 ? 40.0 : (g < -40.0 ? -40.0 : g)));
#endif
}

/* x sigmoid(t): |x| is clamped at 14 for t (t(14) = 218: sigmoid is 1 in float, and
 * FLT_MAX exp(-200) underflows), x itself is the multiplier; -inf gives the limit 0. */
AF_INLINE float af_gelu_tanhf(float x)
{
    float xc = af__self(x > 14.0f, 14.0f, x);      /* selects: see af__self */
    xc = af__self(xc < -14.0f, -14.0f, xc);
#if defined(AF_HAS_FMA)
    float xx = xc * xc, xxl = AF_FMAF(xc, xc, -xx);
    float tl;
    float th = af__gelu_tanh_argf(xc, xx, xxl, AF__GELU_BF, AF__GELU_BF_LO, &tl);
    float y = af__msigmoidf(x, th, tl);
#else
    double xd = (double)xc;
    double t = (2.0 * 0.79788456080286535588) * (xd + 0.044715 * xd * xd * xd);
    double e = af_exp_lite(-af__copysign(t, 1.0));
    float y = (float)((t >= 0.0 ? (double)x : (double)x * e) / (1.0 + e));
#endif
    return x == -AF__INFF ? 0.0f : y;
}

/*
 * dy gelu_tanh' = dy S (1 + k F), S = sigmoid(t), F = 1 - S, e = exp(-|t|) = 2^n (ph + pl):
 * with r = 1/(1 + e) (reciprocal of the Fast2Sum pair, FMA-corrected) and P = (ph + pl) r,
 * t < 0: S = 2^n P, F = r; t >= 0: S = r, F = 2^n P. k F and 1 + k F are pairs (1 + k F
 * cancels near the root x = -0.7525: its error stays ~2^-40 absolute), and the product
 * S (1 + k F) a pair rounded once with dy; 2^n is applied last for t < 0 as in
 * af__msigmoidf. Without FMA: the same formula in double, rounded once.
 */
AF_INLINE float af_gelu_tanh_gradf(float x, float dy)
{
    float xc = af__self(x > 14.0f, 14.0f, x);      /* selects: see af__self */
    xc = af__self(xc < -14.0f, -14.0f, xc);
#if defined(AF_HAS_FMA)
    float xx = xc * xc, xxl = AF_FMAF(xc, xc, -xx);
    float tl, kl;
    float th = af__gelu_tanh_argf(xc, xx, xxl, AF__GELU_BF, AF__GELU_BF_LO, &tl);
    float kh = af__gelu_tanh_argf(xc, xx, xxl, AF__GELU_B3F, AF__GELU_B3F_LO, &kl);
    int pos = th >= 0.0f;
    float dl, ph, pl, n, s1;
    float dh = af__one_plus_expf(th, tl, &dl, &ph, &pl, &n, &s1);
    float m1 = af__self(n < -100.0f, -100.0f, n);
    float r0 = 1.0f / dh;
    float rr = (AF_FMAF(-r0, dh, 1.0f) - r0 * dl) * r0;
    float Ph = ph * r0;
    float Pl = AF_FMAF(ph, r0, -Ph) + AF_FMAF(ph, rr, pl * r0);
    float fh = af__self(pos, Ph * s1, r0), fl = af__self(pos, Pl * s1, rr);
    float sh = af__self(pos, r0, Ph), sl = af__self(pos, rr, Pl);
    float kf = kh * fh;
    float kfl = AF_FMAF(kh, fh, -kf) + AF_FMAF(kh, fl, kl * fh);
    float wh = 1.0f + kf;
    float ak = af__ffrom(af__fbits(kf) & 0x7fffffffu);
    float wl = (ak > 1.0f ? (kf - wh) + 1.0f : (1.0f - wh) + kf) + kfl;
    float gh = sh * wh;
    float gl = AF_FMAF(sh, wh, -gh) + AF_FMAF(sh, wl, sl * wh);
    float t1 = af__self(pos, 1.0f, s1);
    float dyg = af__ffrom(af__fbits(dy) & 0x7fffffffu) < AF__INFF ? dy : 0.0f;
    float y = AF_FMAF(dy, gh * t1, dyg * (gl * t1));
    return af__scale_downf(y, af__self(pos, 0.0f, n - m1));
#else
    double xd = (double)xc;
    double t = (2.0 * 0.79788456080286535588) * (xd + 0.044715 * xd * xd * xd);
    double k = xd * ((2.0 * 0.79788456080286535588) * (1.0 + (3.0 * 0.044715) * xd * xd));
    double e = af_exp_lite(-af__copysign(t, 1.0));
    double r = 1.0 / (1.0 + e);
    double g = t >= 0.0 ? r * (1.0 + k * (e * r)) : (e * r) * (1.0 + k * r);
    return (float)((double)dy * g);
#endif
}
/* ==== end of the gelu family ============================================================ */

#endif /* ACTFAST_VMATH_H */
