/*
 * Platform glue for the kernels: OpenMP queries that compile without OpenMP, the
 * floating-point status clear that every ufunc loop ends with, and float16 <-> float32
 * conversion for the float16 loops. Nothing here is on a hot vector path.
 */
#ifndef ACTFAST_PLATFORM_H
#define ACTFAST_PLATFORM_H

#include <fenv.h>
#include <stdint.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
static inline int af_omp_available(void) { return 1; }
static inline int af_omp_max_threads(void) { return omp_get_max_threads(); }
#else
static inline int af_omp_available(void) { return 0; }
static inline int af_omp_max_threads(void) { return 1; }
#endif

/*
 * The vector loops evaluate both sides of a select and discard one (that is what makes
 * them branch-free), so a lane that is thrown away may raise overflow or invalid flags.
 * NumPy turns flags left after a loop into RuntimeWarnings; activations have no
 * overflow of their own, so each loop clears the calling thread's flags when it ends.
 */
#if defined(AF_KEEP_UNDERFLOW_FLAG)
/* A diagnostic build (tools/underflow_scan.py): the underflow flag survives the loop, so
 * that NumPy's errstate(under="raise") shows which kernels form subnormal intermediates
 * for ordinary inputs (each one costs a microcode assist on many x86 cores). */
static inline void af_clear_fp_status(void) { feclearexcept(FE_ALL_EXCEPT & ~FE_UNDERFLOW); }
#else
static inline void af_clear_fp_status(void) { feclearexcept(FE_ALL_EXCEPT); }
#endif

static inline uint32_t af_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float af_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* IEEE binary16 -> binary32: exact. */
static inline float af_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = h & 0x7fffu;
    uint32_t bits;
    if (em >= 0x7c00u) {            /* inf or NaN: keep the payload */
        bits = 0x7f800000u | ((em & 0x3ffu) << 13);
    } else if (em >= 0x0400u) {     /* normal: rebias the exponent by 127 - 15 */
        bits = (em << 13) + (112u << 23);
    } else {                        /* zero or subnormal: em * 2^-24 is exact in float */
        bits = af_f32_bits((float)em * 5.9604644775390625e-08f);
    }
    return af_f32_from_bits(bits | sign);
}

/* binary32 -> binary16, round to nearest even, overflow to inf, NaN stays NaN. */
static inline uint16_t af_float_to_half(float f)
{
    uint32_t u = af_f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    uint16_t h;
    if (a >= 0x47800000u) {                 /* |f| >= 65536, inf or NaN */
        h = (a > 0x7f800000u) ? (uint16_t)(0x7e00u | ((a >> 13) & 0x3ffu)) : 0x7c00u;
    } else if (a < 0x38800000u) {           /* below 2^-14: subnormal half or zero */
        /* Adding 0.5 (2^-1) aligns the binary point so that the float adder rounds the
         * value to a multiple of 2^-24 with round-to-nearest-even; the low mantissa
         * bits are then the subnormal half. */
        float t = af_f32_from_bits(a) + 0.5f;
        h = (uint16_t)(af_f32_bits(t) - 0x3f000000u);
    } else {                                /* normal: round the 13 dropped bits */
        uint32_t odd = (a >> 13) & 1u;
        a += 0xc8000fffu + odd;             /* rebias (-112 << 23) plus rounding bias */
        h = (uint16_t)(a >> 13);            /* a carry into the exponent gives inf */
    }
    return (uint16_t)(h | sign);
}

#endif /* ACTFAST_PLATFORM_H */
