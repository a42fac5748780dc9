/*
 * Macros shared by actfast_vmath.h and the generated actfast_vmath_poly.h.
 *
 * AF_INLINE forces inlining: in the large kernel module gcc's inliner otherwise gives up
 * on some of the math (unit-growth limits), and a call left in a loop stops its
 * vectorisation. AF_FMA(F) is a fused multiply-add where the target has one; on the
 * x86-64 baseline fma() is a slow library call, so it is a*b + c there.
 */
#ifndef ACTFAST_INLINE_H
#define ACTFAST_INLINE_H

#if defined(__GNUC__)
#define AF_INLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define AF_INLINE static __forceinline
#else
#define AF_INLINE static inline
#endif

#if defined(__FMA__) || defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
#define AF_HAS_FMA 1
#define AF_FMAF(a, b, c) __builtin_fmaf((a), (b), (c))
#define AF_FMA(a, b, c) __builtin_fma((a), (b), (c))
#else
#define AF_FMAF(a, b, c) ((a) * (b) + (c))
#define AF_FMA(a, b, c) ((a) * (b) + (c))
#endif

#endif /* ACTFAST_INLINE_H */
