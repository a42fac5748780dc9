# cython: language_level=3
"""Per-element math of every activation and of its vector-Jacobian product.

Design
------
Each activation is a pair of ``cdef inline`` functions over the fused type
``floating`` (float and double are both computed natively):

* ``NAME(x, params...)`` is the forward value, and
* ``NAME_grad(x, dy, params...)`` is ``dy * f'(x)``, the product backprop needs, fused.

They are branch-free: conditions are written as ternary selects, which gcc
if-converts, so the contiguous loops of ``_kernels.pyx.tp`` (and the dense layer's
epilogue) vectorise around them. The elementary functions (exp, expm1, log1p, erfc,
tanh) come from ``actfast_math.h``; this file only composes them, in forms chosen for
accuracy:

* sigmoid and its relatives use ``e = exp(-|x|) <= 1``, so nothing overflows and the
  small tail is computed as ``e / (1 + e)`` instead of ``1 - (something near 1)``;
* gelu uses ``x * erfc(-x/sqrt2) / 2``: the textbook ``1 + erf(x/sqrt2)`` cancels for
  negative x (1.7e7 ulp in float near x = -8.3 in NumPy and PyTorch);
* tanh-approximate gelu uses ``1 + tanh(u) = 2 sigmoid(2u)``, which does not cancel;
* derivatives that are ``1 - s^2`` or ``s (1 - s)`` are rewritten through ``e`` too.

Conventions follow ``torch.nn.functional``: the value at a kink is the one PyTorch
uses (relu'(0) = 0, elu'(0) = alpha), parameters and defaults are PyTorch's. Where the
formula would give ``inf * 0`` at +-inf, the limit is returned. NaN in x propagates to
the value and to the gradient.

Constants are cast with ``<floating>``: a bare Cython float literal is a C double and
would silently compute a float kernel in double.
"""

cdef extern from "actfast_math.h" nogil:
    float af_expf(float x)
    double af_exp(double x)
    float af_expm1f(float x)
    double af_expm1(double x)
    float af_log1pf(float x)
    double af_log1p(double x)
    float af_logf(float x)
    double af_log(double x)
    float af_tanhf(float x)
    double af_tanh(double x)
    float af_erfcf(float x)
    double af_erfc(double x)
    float af_fabsf(float x)
    double af_fabs(double x)
    float af_ndtrf(float x)
    double af_ndtr(double x)
    double af_ndtr_lite(double x)
    double af_xndtr(double x)
    double af_xndtr_lite(double x)
    double af_exp_lite(double x)
    double af_expm1_lite(double x)
    double af_expmul(double x, double m)
    double af_tanh_lite(double x)
    double af_ndtr_xpdf(double x)
    double af_expmul2(double x, double xl, double m)
    double af_mul_lo(double a, double b, double p)
    double af_gelu_tanh_u2(double x, double *lo)
    float af_sigmoidf(float x)
    float af_sigmoid_gradf(float x, float dy)
    float af_tanh_gradf(float x, float dy)
    float af_log_sigmoid_gradf(float x, float dy)
    float af_softplus_gradf(float x, float dy, float beta)
    float af_alpha_expm1f(float x, float alpha)
    # softplus family in float lanes (actfast_vmath.h, "softplus family"), used where
    # AF_FLOAT_LANES (a compile-time constant: hardware FMA) is 1
    int AF_FLOAT_LANES
    float af_softplusf(float x, float beta)
    float af_log_sigmoidf(float x)
    float af_silu_gradf(float x, float dy)
    float af_silu_beta_gradf(float x, float dy, float bh, float bl)
    float af_swiglu_dgatef(float gate, float value, float dy, float beta)
    float af_mish_gradf(float x, float dy)
    # gelu family in float lanes (with FMA; double inside otherwise)
    float af_geluf(float x)
    float af_gelu_gradf(float x, float dy)
    float af_gelu_tanhf(float x)
    float af_gelu_tanh_gradf(float x, float dy)
    # tanh_shrink in float lanes (with FMA; the double path below otherwise)
    float af_tanh_shrinkf(float x)
    # hard_sigmoid family in float lanes, for the parameters hard_float_params accepts
    float af_hard_sigmoidf(float x, float d, float b)
    float af_hard_swishf(float x, float d, float b)
    float af_hard_swish_gradf(float x, float dy, float d, float b)

cdef extern from "actfast_vmath_poly.h" nogil:
    # Taylor expansions of the derivatives about their negative roots (double-double root).
    double af__root_gelu_grad(double t)
    double af__root_silu_grad(double t)
    double af__root_mish_grad(double t)
    double af__root_gelu_tanh_grad(double t)
    double AF_ROOT_GELU_GRAD_HI, AF_ROOT_GELU_GRAD_LO, AF_ROOT_SILU_GRAD_HI, AF_ROOT_SILU_GRAD_LO
    double AF_ROOT_MISH_GRAD_HI, AF_ROOT_MISH_GRAD_LO, AF_ROOT_GELU_TANH_GRAD_HI, AF_ROOT_GELU_TANH_GRAD_LO
    double af_fma(double a, double b, double c)
    double af__poly_tanh_shrink(double s)
    double af__poly_tanh_shrink_lite(double s)
    double AF_TANH_SHRINK_C, AF_TANH_SHRINK_Z0

from cython cimport floating
from libc.math cimport INFINITY, sqrt, nextafterf

# ---------------------------------------------------------------------------------------
# Elementary functions, dispatched on the fused type at compile time.
# ---------------------------------------------------------------------------------------

cdef inline floating f_exp(floating x) noexcept nogil:
    if floating is float:
        return af_expf(x)
    else:
        return af_exp(x)


cdef inline floating f_log(floating x) noexcept nogil:
    if floating is float:
        return af_logf(x)
    else:
        return af_log(x)


cdef inline floating f_abs(floating x) noexcept nogil:
    if floating is float:
        return af_fabsf(x)
    else:
        return af_fabs(x)

cdef inline bint f_isinf(floating x) noexcept nogil:
    return f_abs(x) == <floating>INFINITY


# ---------------------------------------------------------------------------------------
# Piecewise-linear family
# ---------------------------------------------------------------------------------------

cdef inline floating relu(floating x) noexcept nogil:
    return <floating>0 if x <= 0 else x

cdef inline floating relu_grad(floating x, floating dy) noexcept nogil:
    return dy if x > 0 else (x if x != x else <floating>0)

cdef inline floating relu6(floating x) noexcept nogil:
    return hard_tanh(x, <floating>0, <floating>6)

cdef inline floating relu6_grad(floating x, floating dy) noexcept nogil:
    return hard_tanh_grad(x, dy, <floating>0, <floating>6)

cdef inline floating leaky_relu(floating x, floating negative_slope) noexcept nogil:
    return x if x > 0 else x * negative_slope

cdef inline floating leaky_relu_grad(floating x, floating dy, floating negative_slope) noexcept nogil:
    return dy if x > 0 else (x if x != x else dy * negative_slope)

cdef inline floating hard_tanh(floating x, floating min_val, floating max_val) noexcept nogil:
    # Written so that NaN falls through both comparisons and is returned.
    return min_val if x < min_val else (max_val if x > max_val else x)

cdef inline floating hard_tanh_grad(floating x, floating dy, floating min_val, floating max_val) noexcept nogil:
    return (dy if (x > min_val and x < max_val) else <floating>0) if x == x else x

cdef inline double hard_sigmoid_u(double x, double alpha, double beta) noexcept nogil:
    """alpha x + beta as (x + beta / alpha) * alpha, written (x + beta d) / d with d =
    1 / alpha: for PyTorch's alpha = 1/6, beta = 1/2 (d = 6) that is (x + 3) / 6 exactly,
    its relu6(x + 3) / 6, and ONNX's 0.2, 0.5 give (x + 2.5) / 5. d and beta d are loop
    invariants; alpha = 0 is refused by the Python layer."""
    cdef double d = 1.0 / alpha
    return (x + beta * d) / d

# The kinks, where alpha x + beta is 0 and 1: -3 and 3 for the defaults, exactly. The
# gradients compare x with them (x < 3 is not the same as (x + 3) / 6 < 1 in double).
cdef inline double hard_sigmoid_kink0(double alpha, double beta) noexcept nogil:
    return -beta * (1.0 / alpha)

cdef inline double hard_sigmoid_kink1(double alpha, double beta) noexcept nogil:
    return (1.0 - beta) * (1.0 / alpha)

cdef inline bint hard_sigmoid_at_most_0(double x, double alpha, double beta) noexcept nogil:
    """alpha x + beta <= 0, tested on x (mirrored for alpha < 0)."""
    cdef double k = hard_sigmoid_kink0(alpha, beta)
    return x <= k if alpha > 0 else x >= k

cdef inline bint hard_sigmoid_at_least_1(double x, double alpha, double beta) noexcept nogil:
    """alpha x + beta >= 1, tested on x."""
    cdef double k = hard_sigmoid_kink1(alpha, beta)
    return x >= k if alpha > 0 else x <= k

# float input compares with the kinks in float lanes (double compares halve the vector
# width: hard_sigmoid_grad took 2.2x the time): x <= k exactly when x <= the largest
# float <= k, and so on. The bounds are loop invariants.
cdef inline float float_at_most(double k) noexcept nogil:
    cdef float f = <float>k
    return nextafterf(f, -INFINITY) if <double>f > k else f

cdef inline float float_at_least(double k) noexcept nogil:
    cdef float f = <float>k
    return nextafterf(f, INFINITY) if <double>f < k else f

# float input runs in float lanes (af_hard_*f of actfast_vmath.h, with FMA) when d = 1/alpha,
# c = beta d, b = c / d and the upper kink d - c are floats exactly, b >= 1/2 and RN(1/d)
# is within 2^-25 of 1/d (actfast_vmath.h says why): PyTorch's d = 6, c = 3, b = 1/2 and
# ONNX's 5, 2.5, 1/2. Other parameters keep the double formulas.
# The test depends on the parameters only: the float32 spans test it once and run the
# loop in two copies (FLOAT_LANES_IF in _kernels.pyx.tp), in each of which gcc folds the
# test here and vectorises one path. It is one value, the comparisons joined with `&`:
# `and`'s short-circuit branches are not folded that way. 2^-24 <= |d| <= 2^24 keeps
# 1/d, u/d and the kinks far from underflow and overflow.
cdef inline bint hard_float_params(double alpha, double beta, float *d, float *b) noexcept nogil:
    cdef double dd = 1.0 / alpha
    cdef double c = beta * dd
    d[0] = <float>dd
    b[0] = <float>(c / dd)
    cdef float inv = <float>(1.0 / dd)      # RN(1/d) when d is a float
    return ((AF_FLOAT_LANES != 0) & (d[0] == dd) & (<double>b[0] * dd == c) & (<float>c == c)
            & (<float>(dd - c) == dd - c) & (b[0] >= 0.5)
            & (af_fabs(dd * inv - 1.0) <= 2.98023223876953125e-08)
            & (af_fabs(dd) >= 5.9604644775390625e-08) & (af_fabs(dd) <= 16777216.0))

cdef inline bint hard_float_lanes(double alpha, double beta) noexcept nogil:
    # hard_float_params's test alone (for _kernels.pyx.tp's FLOAT_LANES_IF)
    cdef float d, b
    return hard_float_params(alpha, beta, &d, &b)

cdef inline floating hard_sigmoid(floating x, double alpha, double beta) noexcept nogil:
    # clamp(alpha x + beta, 0, 1); float input in float lanes (see hard_float_params), or
    # in double (x + 3 is then exact and the division rounds once).
    cdef float d, b
    if floating is float:
        if hard_float_params(alpha, beta, &d, &b):
            return af_hard_sigmoidf(x, d, b)
        return <float>hard_tanh[double](hard_sigmoid_u(x, alpha, beta), 0.0, 1.0)
    else:
        return hard_tanh(hard_sigmoid_u(x, alpha, beta), 0.0, 1.0)

cdef inline floating hard_sigmoid_grad(floating x, floating dy, double alpha, double beta) noexcept nogil:
    # dy * alpha strictly between the kinks, 0 at and beyond them (PyTorch: -3 < x < 3).
    cdef double k0 = hard_sigmoid_kink0(alpha, beta), k1 = hard_sigmoid_kink1(alpha, beta)
    cdef double lo = k0 if k0 < k1 else k1
    cdef double hi = k1 if k0 < k1 else k0
    cdef bint inside
    if floating is float:
        inside = (x > float_at_most(lo)) & (x < float_at_least(hi))
    else:
        inside = (x > lo) & (x < hi)
    return (<floating>(dy * alpha) if inside else <floating>0) if x == x else x

cdef inline floating hard_swish(floating x, double alpha, double beta) noexcept nogil:
    # x * clamp(alpha x + beta, 0, 1). The selects keep -inf from giving -inf * 0, and
    # give x itself from the upper kink on. In between, float input is computed in
    # double as x (x + beta d) / d, d = 1 / alpha: x (x + 3) is exact there, so the
    # result rounds once. (x * relu6(x + 3) / 6 in float would overflow for
    # |x| > FLT_MAX / 6.)
    cdef double xd = x
    cdef double d = 1.0 / alpha
    cdef double mid
    cdef float df, bf
    if floating is float:
        if hard_float_params(alpha, beta, &df, &bf):
            return af_hard_swishf(x, df, bf)
        mid = (xd * (xd + beta * d)) / d
    else:
        mid = x * ((x + beta * d) / d)
    return <floating>0 if hard_sigmoid_at_most_0(xd, alpha, beta) else (
        x if hard_sigmoid_at_least_1(xd, alpha, beta) else <floating>mid)

cdef inline floating hard_swish_grad(floating x, floating dy, double alpha, double beta) noexcept nogil:
    # PyTorch's kinks: 0 up to -3, x/3 + 1/2 strictly between -3 and 3, 1 from 3 on; in
    # general 0 where alpha x + beta <= 0, 2 alpha x + beta up to the upper kink, 1 from
    # it on. (2x + beta d) / d rather than 2 alpha x + beta, which cancels near the root
    # (x = -1.5 for the defaults: 65536 ulp in float).
    cdef double d = 1.0 / alpha
    cdef double slope = (2.0 * <double>x + beta * d) / d
    cdef double k0 = hard_sigmoid_kink0(alpha, beta), k1 = hard_sigmoid_kink1(alpha, beta)
    cdef bint zero, one
    cdef float k0_lo = float_at_most(k0), k0_hi = float_at_least(k0)   # computed unconditionally:
    cdef float k1_lo = float_at_most(k1), k1_hi = float_at_least(k1)   # then they are hoisted
    cdef float df, bf
    if floating is float:
        if hard_float_params(alpha, beta, &df, &bf):
            return af_hard_swish_gradf(x, dy, df, bf)
    if x != x:
        return x
    if floating is float:
        zero = (x <= k0_lo) if alpha > 0 else (x >= k0_hi)
        one = (x >= k1_hi) if alpha > 0 else (x <= k1_lo)
        return <float>0 if zero else (dy if one else <float>(dy * slope))
    else:
        return <double>0 if hard_sigmoid_at_most_0(x, alpha, beta) else (
            dy if hard_sigmoid_at_least_1(x, alpha, beta) else dy * slope)

cdef inline floating softsign(floating x) noexcept nogil:
    cdef floating r
    cdef double rd
    if floating is float:
        rd = <double>x / (1.0 + af_fabs(x))       # float input: one rounding
        return (<float>1 if x > 0 else <float>-1) if f_isinf(x) else <float>rd
    else:
        r = x / (1.0 + f_abs(x))
        return (<double>1 if x > 0 else <double>-1) if f_isinf(x) else r

cdef inline floating softsign_grad(floating x, floating dy) noexcept nogil:
    # float: in double (one rounding, and (1 + |x|)^2 cannot overflow); double: two
    # divisions, so that the square does not overflow for |x| > 1e154.
    cdef double dd
    cdef floating d
    if floating is float:
        dd = 1.0 + f_abs(x)
        return <float>(dy / (dd * dd))
    else:
        d = <floating>1 + f_abs(x)
        return (dy / d) / d

# ---------------------------------------------------------------------------------------
# threshold and the shrink family (torch.nn.functional.threshold, hardshrink, softshrink)
# ---------------------------------------------------------------------------------------

cdef inline floating threshold(floating x, floating threshold, floating value) noexcept nogil:
    # PyTorch's `x <= threshold ? value : x`: NaN fails the comparison and is returned.
    return value if x <= threshold else x

cdef inline floating threshold_grad(floating x, floating dy, floating threshold, floating value) noexcept nogil:
    # 0 at the kink x == threshold, as PyTorch's threshold_backward; NaN x propagates.
    return dy if x > threshold else (x if x != x else <floating>0)

cdef inline floating hard_shrink(floating x, floating lambd) noexcept nogil:
    # PyTorch: 0 on [-lambd, lambd] (both ends included), x elsewhere; NaN passes.
    return <floating>0 if (x >= -lambd and x <= lambd) else x

cdef inline floating hard_shrink_grad(floating x, floating dy, floating lambd) noexcept nogil:
    # 1 outside [-lambd, lambd], 0 on it (the kinks too), as PyTorch's hardshrink_backward.
    return (<floating>0 if (x >= -lambd and x <= lambd) else dy) if x == x else x

cdef inline floating soft_shrink(floating x, floating lambd) noexcept nogil:
    # PyTorch: x - lambd above lambd, x + lambd below -lambd, else 0 (+0, as ONNX's Shrink
    # and PyTorch's float64 kernel; its float32 kernel's x * 0 keeps the sign), and NaN
    # passes. One rounding: the result is the difference of two numbers of the dtype.
    return x - lambd if x > lambd else (x + lambd if x < -lambd else (<floating>0 if x == x else x))

cdef inline floating soft_shrink_grad(floating x, floating dy, floating lambd) noexcept nogil:
    # The same as hard_shrink_grad (PyTorch's softshrink_backward); gcc folds the two
    # identical loops into one (identical code folding), so tools/vec_report.py finds no
    # report of its own for this one.
    return (<floating>0 if (x >= -lambd and x <= lambd) else dy) if x == x else x

# ---------------------------------------------------------------------------------------
# squareplus (jax.nn.squareplus): (x + sqrt(x^2 + b)) / 2
# ---------------------------------------------------------------------------------------

# The scale k of squareplus's inputs: 2^-600 where x^2 or b could overflow (|x| > 2^500,
# b > 2^1000), 2^600 where both are so small that x^2 could underflow (|x| < 2^-500 and
# b < 2^-1000), else 1. f is homogeneous, f(k x; k^2 b) = k f(x; b), and scaling by a
# power of 2 is exact (2^500 = 3.27e150, 2^1000 = 1.07e301, 2^600 = 4.15e180). Written
# inline with | and & on the comparisons (no short-circuit branches): with `or` and a
# helper function the loops did not vectorise.

cdef inline double squareplus_d(double x, double b) noexcept nogil:
    # (x + s) / 2 with s = sqrt(x^2 + b) where x >= -s/2 (at most a factor 2 lost to
    # cancellation there); below, the sum cancels and the same value is b / (2 (s - x)),
    # whose terms are positive. In the scaled variables xs = k x, ss = k s; b k (not
    # b k^2) is what the second form needs, which keeps it from underflowing when only
    # x is huge.
    cdef double a = af_fabs(x)
    cdef bint big = (a > 3.273390607896142e150) | (b > 1.0715086071862673e301)
    cdef bint tiny = (a < 3.054936363499605e-151) & (b < 9.332636185032189e-302)
    cdef double k = 2.409919865102884e-181 if big else (4.149515568880993e180 if tiny else 1.0)
    cdef double half_k = 2.0747577844404965e180 if big else (1.204959932551442e-181 if tiny else 0.5)
    cdef double xs = x * k
    cdef double ss = sqrt(af_fma(xs, xs, (b * k) * k))
    cdef double pos = (xs + ss) * half_k                    # (x + s) / 2, exact scaling
    cdef double neg = (0.5 * (b * k)) / (ss - xs)
    cdef double v = neg if 2.0 * xs < -ss else pos          # NaN: pos is NaN
    return 0.0 if x == -INFINITY else v                     # the limit (pos: -inf + inf)

cdef inline floating squareplus(floating x, floating b) noexcept nogil:
    # float input: computed in double (nothing can overflow there) and rounded once.
    if floating is float:
        return <float>squareplus_d(x, b)
    else:
        return squareplus_d(x, b)

cdef inline double squareplus_grad_d(double x, double b) noexcept nogil:
    # f'(x) = 1/2 + (x / s) / 2 (the scaling leaves x / s unchanged) where x >= -s/2: no
    # cancellation, and the error of s is damped by |x| / s. Below, f'(x) = f(x) / s
    # with the cancellation-free form of f. At x = 0 with b = 0 (s = 0) the value is
    # 1/2, the limit b -> 0 of f'(0); at +inf the limit 1.
    cdef double a = af_fabs(x)
    cdef bint big = (a > 3.273390607896142e150) | (b > 1.0715086071862673e301)
    cdef bint tiny = (a < 3.054936363499605e-151) & (b < 9.332636185032189e-302)
    cdef double k = 2.409919865102884e-181 if big else (4.149515568880993e180 if tiny else 1.0)
    cdef double xs = x * k
    cdef double ss = sqrt(af_fma(xs, xs, (b * k) * k))
    cdef double mid = 0.5 + 0.5 * (xs / ss)
    cdef double neg = (((0.5 * (b * k)) / (ss - xs)) / ss) * k
    cdef double d = neg if 2.0 * xs < -ss else mid
    d = 0.5 if ss == 0 else d
    return (1.0 if x > 0 else 0.0) if af_fabs(x) == INFINITY else d

cdef inline floating squareplus_grad(floating x, floating dy, floating b) noexcept nogil:
    if floating is float:
        return <float>(dy * squareplus_grad_d(x, b))
    else:
        return dy * squareplus_grad_d(x, b)

# ---------------------------------------------------------------------------------------
# The transcendental activations are written once, in double (the _d functions below,
# which take a compile-time flag `lite`); float input is converted to double, computed
# there and rounded once. That keeps every float32 result within about 0.5 ulp, with no
# accumulation of the roundings of a float composition (e * r in float sigmoid costs
# 2.6 ulp) and no loss in subnormal float results. `lite` selects shorter exp
# polynomials (~1e-11 relative), plenty for a float result; the gradients that cancel
# near a root (silu', mish', gelu', gelu_tanh') use the full double functions.
# Exceptions, in float lanes where the CPU has FMA (double path otherwise): tanh,
# sigmoid, sigmoid', log_sigmoid', softplus', tanh', elu, gelu, gelu', gelu_tanh',
# tanh_shrink (af_*f in actfast_vmath.h, <= 1 ulp over all 2^32 inputs).
# ---------------------------------------------------------------------------------------

cdef inline double d_exp(double x, bint lite) noexcept nogil:
    return af_exp_lite(x) if lite else af_exp(x)

cdef inline double d_expm1(double x, bint lite) noexcept nogil:
    return af_expm1_lite(x) if lite else af_expm1(x)

cdef inline bint d_isinf(double x) noexcept nogil:
    return af_fabs(x) == INFINITY

cdef inline double d_sigmoid(double x, bint lite) noexcept nogil:
    # One division with a selected numerator.
    cdef double e = d_exp(-af_fabs(x), lite)
    return (1.0 if x >= 0 else e) / (1.0 + e)

cdef inline double d_xsigmoid(double x, double m, bint lite) noexcept nogil:
    """m * sigmoid(x); for x < 0 the product m * exp(x) is rounded once (subnormal tails)."""
    cdef double e = d_exp(-af_fabs(x), lite)
    if lite:    # float results: no subnormal double can show, one exp is enough
        return (m if x >= 0 else m * e) / (1.0 + e)
    return (m if x >= 0 else af_expmul(x, m)) / (1.0 + e)

cdef inline double d_sigmoid_slope(double x, bint lite) noexcept nogil:
    """sigmoid(x) * (1 - sigmoid(x)) = e / (1 + e)^2, e = exp(-|x|); (1 + e)^2 as one
    fused e (e + 2) + 1 (fewer roundings than e * r * r: 3.7 -> 1.x ulp in double)."""
    cdef double e = d_exp(-af_fabs(x), lite)
    return e / af_fma(e, e + 2.0, 1.0)

# ---------------------------------------------------------------------------------------
# Exponential family
# ---------------------------------------------------------------------------------------

cdef inline double elu_d(double x, double alpha, bint lite) noexcept nogil:
    cdef double v = alpha * d_expm1(x, lite)
    return x if x > 0 else v

cdef inline floating elu(floating x, floating alpha) noexcept nogil:
    # float: alpha expm1(x) in float lanes where FMA exists (see af_alpha_expm1f).
    if floating is float:
        return x if x > 0 else af_alpha_expm1f(x, alpha)
    else:
        return elu_d(x, alpha, False)

cdef inline double elu_grad_d(double x, double dy, double alpha, bint lite) noexcept nogil:
    # PyTorch takes the x <= 0 side at the kink: elu'(0) = alpha.
    cdef double v = dy * (alpha * d_exp(x, lite))
    return dy if x > 0 else v

cdef inline floating elu_grad(floating x, floating dy, floating alpha) noexcept nogil:
    if floating is float:
        return <float>elu_grad_d(x, dy, alpha, True)
    else:
        return elu_grad_d(x, dy, alpha, False)

cdef inline floating selu(floating x, double alpha, double scale) noexcept nogil:
    # scale * elu(x, alpha); the parameters are doubles (see _kernels.pyx.tp), so the
    # defaults are the exact constants, not their float32 roundings.
    cdef double v
    if floating is float:
        v = (scale * alpha) * af_expm1_lite(x)
        return <float>(scale * x if x > 0 else v)
    else:
        v = (scale * alpha) * af_expm1(x)
        return scale * x if x > 0 else v

cdef inline floating selu_grad(floating x, floating dy, double alpha, double scale) noexcept nogil:
    cdef double v
    if floating is float:
        v = dy * ((scale * alpha) * af_exp_lite(x))
        return <float>(dy * scale if x > 0 else v)
    else:
        v = dy * ((scale * alpha) * af_exp(x))
        return dy * scale if x > 0 else v

# float celu and celu': x / alpha as x * (1 / alpha) in double, the reciprocal a loop
# invariant: no division per element (a double division per 8 lanes was most of the time
# of celu'), and the product's relative error (<= 2^-52) does not show in a float result.

cdef inline floating celu(floating x, floating alpha) noexcept nogil:
    cdef double v
    if floating is float:
        v = alpha * af_expm1_lite(<double>x * (1.0 / <double>alpha))
        return x if x > 0 else <float>v
    else:
        v = alpha * af_expm1(x / alpha)
        return x if x > 0 else v

cdef inline floating celu_grad(floating x, floating dy, floating alpha) noexcept nogil:
    cdef double v
    if floating is float:
        v = dy * af_exp_lite(<double>x * (1.0 / <double>alpha))
        return dy if x > 0 else <float>v
    else:
        v = dy * af_exp(x / alpha)
        return dy if x > 0 else v

# ---------------------------------------------------------------------------------------
# Sigmoid family
# ---------------------------------------------------------------------------------------

cdef inline floating sigmoid(floating x) noexcept nogil:
    # float: in float lanes where FMA exists (corrected quotient, see af_sigmoidf), else
    # in double and rounded once.
    if floating is float:
        return af_sigmoidf(x)
    else:
        return d_sigmoid(x, False)

cdef inline floating sigmoid_grad(floating x, floating dy) noexcept nogil:
    if floating is float:
        return af_sigmoid_gradf(x, dy)
    else:
        return dy * d_sigmoid_slope(x, False)

cdef inline double log_sigmoid_d(double x, bint lite) noexcept nogil:
    # -softplus(-x) = min(x, 0) - log1p(exp(-|x|))
    return (x if x < 0 else 0.0) - af_log1p(d_exp(-af_fabs(x), lite))

cdef inline floating log_sigmoid(floating x) noexcept nogil:
    if floating is float:
        # float lanes with FMA (af_log_sigmoidf, <= 0.77 ulp), else in double
        return af_log_sigmoidf(x) if AF_FLOAT_LANES else <float>log_sigmoid_d(x, True)
    else:
        return log_sigmoid_d(x, False)

cdef inline floating log_sigmoid_grad(floating x, floating dy) noexcept nogil:
    # d/dx log(sigmoid(x)) = sigmoid(-x)
    if floating is float:
        return af_log_sigmoid_gradf(x, dy)     # float lanes with FMA
    else:
        return dy * d_sigmoid(-x, False)

cdef inline double silu_beta_x(double x, double beta) noexcept nogil:
    # beta x for the gradients, with beta = 0 giving 0 also for x = +-inf (silu is then
    # x / 2) and NaN for a NaN x (silu'(0) = 1/2 would hide it). Rounded in
    # double, also for float input; exact for beta = 1 (and any beta of at most 29
    # significant bits times a float).
    # (bitwise &: a short-circuit `and` is a branch, and the loop would not vectorise)
    return 0.0 if ((beta == 0) & (x == x)) else beta * x

cdef inline double silu_beta_x_lo(double x, double beta, double b) noexcept nogil:
    # The rounding error of b = beta x, so that b + lo is beta x exactly (double input;
    # a float times beta only rounds in double). 0 where Dekker's split could overflow:
    # b is then in no tail that needs it, or beyond -1200 where the result is 0.
    cdef bint small = (af_fabs(x) < 1e290) & (af_fabs(beta) < 1e290)
    return af_mul_lo(beta, x, b) if small else 0.0

cdef inline double silu_d(double x, double beta, bint lite) noexcept nogil:
    # x * sigmoid(beta x); where beta x = -inf (x infinite, beta of the other sign) the
    # limit 0 instead of inf * 0. For double input beta x is taken as b + bl (exact):
    # in the tail, x exp(beta x), rounding b alone would cost |b| ulp (up to ~700).
    # beta = 0 gives b = 0 (x / 2), also for x = +-inf. Unlike silu_beta_x, no NaN test:
    # x multiplies the result, so a NaN passes anyway, and the per-element test cost
    # the float32 forward 0.7 ns of its 2.2 (loop-invariant tests cost nothing).
    cdef double b = beta * x if beta != 0 else 0.0
    cdef double e, num
    if lite:
        return 0.0 if b == -INFINITY else d_xsigmoid(b, x, True)
    e = af_exp(-af_fabs(b))
    num = x if b >= 0 else af_expmul2(b, silu_beta_x_lo(x, beta, b), x)
    return 0.0 if b == -INFINITY else num / (1.0 + e)

cdef inline floating silu_beta(floating x, double beta) noexcept nogil:
    # float: in double, rounded once (<= 0.5 ulp, the bound tests/test_params.py holds it
    # to). In float lanes (x sigmoid(beta x) from af__msigmoidf) it measured 0.76 ulp and
    # ~10% faster: not taken.
    if floating is float:
        return <float>silu_d(x, beta, True)
    else:
        return silu_d(x, beta, False)

cdef inline floating silu(floating x) noexcept nogil:
    # beta = 1, a constant: silu_d folds to x sigmoid(x) (see PARAM_VARIANTS).
    return silu_beta(x, 1.0)

cdef inline double silu_grad_d(double x, double xl) noexcept nogil:
    # silu'(x + xl), xl the low part of a double-double argument (0 for silu itself).
    # s (1 + x (1 - s)) = (1 + e + x e') / (1 + e)^2 with e = exp(-|x|) and e' = e for
    # x >= 0, 1 for x < 0, times exp(x) for x < 0 (rounded once, see af_expmul).
    # Cancels near the root x = -1.2785; computed in double for float input too.
    cdef double e = af_exp(-af_fabs(x))
    cdef double den = af_fma(e, e + 2.0, 1.0)          # (1 + e)^2, one rounding
    cdef double pos = af_fma(x, e, 1.0 + e) / den
    cdef double neg = af_expmul2(x, xl, ((1.0 + x) + e) / den)
    cdef double d = pos if x >= 0 else neg
    # Near the root the closed form cancels: Taylor series in t = x - root there.
    cdef double t = ((x - AF_ROOT_SILU_GRAD_HI) - AF_ROOT_SILU_GRAD_LO) + xl
    d = af__root_silu_grad(t) if af_fabs(t) < 0.75 else d
    return (1.0 if x > 0 else 0.0) if af_fabs(x) == INFINITY else d

cdef inline floating silu_beta_grad(floating x, floating dy, double beta) noexcept nogil:
    # d/dx x sigmoid(beta x) = silu'(beta x): the derivative of silu at the scaled input,
    # which for double input is taken as the double-double b + bl (see silu_d).
    cdef double b = silu_beta_x(x, beta)
    cdef float bh = <float>beta             # float lanes: beta as the float pair bh + bl
    cdef float bl = <float>(beta - bh)
    if floating is float:
        if AF_FLOAT_LANES:
            return af_silu_beta_gradf(x, dy, bh, bl)     # (<= 0.76 ulp)
        return <float>(dy * silu_grad_d(b, 0.0))
    else:
        return dy * silu_grad_d(b, silu_beta_x_lo(x, beta, b))

cdef inline floating silu_grad(floating x, floating dy) noexcept nogil:
    # float: in float lanes with FMA (af_silu_gradf, <= 0.77 ulp), else as silu_beta_grad
    if floating is float:
        if AF_FLOAT_LANES:
            return af_silu_gradf(x, dy)
    return silu_beta_grad(x, dy, 1.0)

cdef inline double softplus_d(double x, double beta, double threshold, bint lite) noexcept nogil:
    # PyTorch: x where beta*x > threshold, else log1p(exp(beta*x)) / beta, written as
    # max(bx, 0) + log1p(exp(-|bx|)) so that no threshold can make exp overflow.
    cdef double bx = beta * x
    cdef double sp = ((bx if bx > 0 else 0.0) + af_log1p(d_exp(-af_fabs(bx), lite))) / beta
    return x if bx > threshold else sp

cdef inline floating softplus(floating x, floating beta, floating threshold) noexcept nogil:
    if floating is float:
        # PyTorch compares beta * x, rounded to float, with the threshold. Below it, float
        # lanes with FMA (af_softplusf, <= 0.76 ulp), else in double, rounded once.
        return x if beta * x > threshold else (
            af_softplusf(x, beta) if AF_FLOAT_LANES else <float>softplus_d(x, beta, threshold, True))
    else:
        return softplus_d(x, beta, threshold, False)

cdef inline floating softplus_grad(floating x, floating dy, floating beta, floating threshold) noexcept nogil:
    if floating is float:
        return dy if beta * x > threshold else af_softplus_gradf(x, dy, beta)   # float lanes with FMA
    else:
        return dy if beta * x > threshold else dy * d_sigmoid(beta * x, False)

cdef inline double mish_d(double x, bint lite) noexcept nogil:
    # x * tanh(softplus(x)); with n = exp(x), tanh(log1p(n)) = n(n+2) / (n(n+2) + 2),
    # which has no cancellation. Above x = 20 the ratio is 1 in double. x * n is rounded
    # once (af_expmul) for the subnormal tail.
    cdef double xc = 20.0 if x > 20 else x
    cdef double n = d_exp(xc, lite)
    cdef double p = n * (n + 2.0)
    cdef double v = (x * n if lite else af_expmul(xc, x)) * ((n + 2.0) / af_fma(n, n + 2.0, 2.0))
    v = x if x > 20 else v        # t = 1 there; x * exp(20) could overflow
    return 0.0 if x == -INFINITY else v

cdef inline floating mish(floating x) noexcept nogil:
    if floating is float:
        # in double, rounded once (<= 0.5 ulp): a float-lane mish (t as a corrected pair
        # quotient, 0.80 ulp) measured ~10-20% slower on Zen 4, so it is not used
        return <float>mish_d(x, True)
    else:
        return mish_d(x, False)

cdef inline double mish_grad_d(double x) noexcept nogil:
    # t + x sigmoid(x) (1 - t^2) = n G, G = (n+2)/(p+2) + x (1 - t^2) / (1 + n), with
    # n = exp(x), p = n (n+2), 1 - t^2 = 2 q (1 + t), q = 1 / (p+2): the factor n is
    # applied last (af_expmul) for the subnormal tail. Cancels near the root x = -1.1920.
    cdef double xc = 20.0 if x > 20 else x
    cdef double n = af_exp(xc)
    cdef double p = n * (n + 2.0)
    cdef double q = 1.0 / af_fma(n, n + 2.0, 2.0)       # 1 / (p + 2), one rounding less
    cdef double t = p * q
    cdef double one_minus_t2 = (2.0 * q) * (1.0 + t)
    # Past the clamp, 1 - t^2 (~4 exp(-2x)) is below the resolution of t: drop the term.
    cdef double G = (n + 2.0) * q + (x * one_minus_t2 / (1.0 + n) if x < 20 else 0.0)
    cdef double d = af_expmul(xc, G)
    cdef double r = (x - AF_ROOT_MISH_GRAD_HI) - AF_ROOT_MISH_GRAD_LO
    d = af__root_mish_grad(r) if af_fabs(r) < 0.75 else d
    return (1.0 if x > 0 else 0.0) if af_fabs(x) == INFINITY else d

cdef inline floating mish_grad(floating x, floating dy) noexcept nogil:
    if floating is float:
        # float lanes with FMA (af_mish_gradf, <= 0.77 ulp), else in double
        return af_mish_gradf(x, dy) if AF_FLOAT_LANES else <float>(dy * mish_grad_d(x))
    else:
        return dy * mish_grad_d(x)

# ---------------------------------------------------------------------------------------
# tanh and gelu
# ---------------------------------------------------------------------------------------

cdef inline floating tanh(floating x) noexcept nogil:
    # float: computed in float lanes (<= 0.98 ulp, see af_tanhf), not in double.
    if floating is float:
        return af_tanhf(x)
    else:
        return af_tanh(x)

cdef inline double tanh_grad_d(double x, bint lite) noexcept nogil:
    # 1 - tanh(x)^2 = 4e / (1 + e)^2 with e = exp(-2|x|): no cancellation near |x| large.
    cdef double e = d_exp(-2.0 * af_fabs(x), lite)
    return (4.0 * e) / af_fma(e, e + 2.0, 1.0)

cdef inline floating tanh_grad(floating x, floating dy) noexcept nogil:
    # float: in float lanes where FMA exists (see af_tanh_gradf), else in double.
    if floating is float:
        return af_tanh_gradf(x, dy)
    else:
        return dy * tanh_grad_d(x, False)

cdef inline double tanh_shrink_d(double x, bint lite) noexcept nogil:
    # x - tanh(x) cancels near 0, where it is ~x^3 / 3. For |x| <= 1.5 it is x^3 g(s),
    # s = x^2 - 1.125, g = (x - tanh x) / x^3 fitted (actfast_vmath_poly.h). In double,
    # x^3 is carried as c + cl (the roundings of x^2 and of x x^2 recovered by fma; where
    # fma is not fused they are 0 and it is plain x^3) and multiplied by g with one final
    # rounding: 3.1 -> 1.x ulp. Above 1.5, |x| - tanh|x| = (|x| - 1) + 2e / (1 + e),
    # e = exp(-2|x|): |x| - 1 >= 0.5 is exact (or rounds once) and the second term is
    # below 0.1, so nothing cancels.
    cdef double a = af_fabs(x)
    cdef double z = x * x
    cdef double s = z - AF_TANH_SHRINK_Z0
    cdef double g, c, cl, small
    if lite:      # float results: ~1e-12 relative is plenty
        small = x * (z * af__poly_tanh_shrink_lite(s))
    else:
        g = af__poly_tanh_shrink(s)
        c = x * z
        cl = af_fma(x, z, -c) + x * af_fma(x, x, -z)
        small = af_fma(c, g, cl * g)
        small = x if x == 0 else small      # -0.0 (the sum of the pair gives +0)
    cdef double e = d_exp(-2.0 * a, lite)
    cdef double big = (a - 1.0) + (2.0 * e) / (1.0 + e)
    big = -big if x < 0 else big
    return small if a <= AF_TANH_SHRINK_C else big          # NaN: big is NaN

cdef inline floating tanh_shrink(floating x) noexcept nogil:
    # float: in float lanes with FMA (af_tanh_shrinkf, <= 1 ulp), else in double.
    if floating is float:
        return af_tanh_shrinkf(x) if AF_FLOAT_LANES else <float>tanh_shrink_d(x, True)
    else:
        return tanh_shrink_d(x, False)

cdef inline floating tanh_shrink_grad(floating x, floating dy) noexcept nogil:
    # d/dx (x - tanh x) = tanh(x)^2; (dy t) t rather than dy (t t): no underflow of t^2
    # for a large dy. float: in double, rounded once (0.5 ulp). A float-lane version (tanh
    # as a float pair from the sigmoid quotient, 0.67 ulp) measured no faster: 1,501
    # against 1,553 us at 1M on one thread.
    cdef double t
    if floating is float:
        t = af_tanh_lite(x)
        return <float>((dy * t) * t)
    else:
        t = af_tanh(x)
        return (dy * t) * t

cdef inline floating gelu(floating x) noexcept nogil:
    # x * Phi(x). Phi comes from af_ndtr, which takes x itself: erfc(-x / sqrt 2) would
    # first round x / sqrt 2, and in the tail that rounding is multiplied by x^2 (~170
    # ulp in float at x = -13). af_xndtr forms x * Phi(x) before the final scaling by
    # 2^n, so that a subnormal result in the far tail is rounded once.
    # float: in float lanes where FMA exists (af_geluf, <= 1 ulp), else in double.
    if floating is float:
        return af_geluf(x)
    else:
        return <double>0 if x == -INFINITY else af_xndtr(x)

cdef inline double gelu_grad_d(double x) noexcept nogil:
    # Phi(x) + x phi(x), from one exp(-x^2/2) taken from the exact x^2, the sum formed
    # before the final scaling (subnormal tail). The sum cancels near its root x = -0.7518:
    # a fitted series in x - root is used there (float input: all in double).
    cdef double d = af_ndtr_xpdf(x)
    cdef double t = (x - AF_ROOT_GELU_GRAD_HI) - AF_ROOT_GELU_GRAD_LO
    d = af__root_gelu_grad(t) if af_fabs(t) < 0.75 else d
    return (1.0 if x > 0 else 0.0) if af_fabs(x) == INFINITY else d

cdef inline floating gelu_grad(floating x, floating dy) noexcept nogil:
    # float: in float lanes where FMA exists (af_gelu_gradf), else in double.
    if floating is float:
        return af_gelu_gradf(x, dy)
    else:
        return dy * gelu_grad_d(x)

cdef inline double gelu_tanh_d(double x, bint lite) noexcept nogil:
    # 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3); the
    # x^3 term is capped where sigmoid is already 0 or 1 (and x^3 would overflow).
    cdef double xc = x if af_fabs(x) < 1e4 else (1e4 if x > 0 else -1e4)
    cdef double u2, u2lo, e, v
    if lite:
        u2 = (2.0 * 0.79788456080286535588) * (xc + 0.044715 * xc * xc * xc)
        return 0.0 if x == -INFINITY else d_xsigmoid(u2, x, lite)
    # double: u2 in double-double, and x exp(u2) rounded once, for the tail.
    u2 = af_gelu_tanh_u2(xc, &u2lo)
    e = af_exp(-af_fabs(u2))
    v = (x if u2 >= 0 else af_expmul2(u2, u2lo, x)) / (1.0 + e)
    return 0.0 if x == -INFINITY else v

cdef inline floating gelu_tanh(floating x) noexcept nogil:
    # float: in double, rounded once (0.5 ulp). af_gelu_tanhf (float lanes, 0.78 ulp over
    # all 2^32 inputs) measured 5-18% slower than this at 1M float32 on one AVX-512 core:
    # the float pair of t costs more than the double lanes save here.
    if floating is float:
        return <float>gelu_tanh_d(x, True)
    else:
        return gelu_tanh_d(x, False)

cdef inline double gelu_tanh_grad_d(double x) noexcept nogil:
    # s + 2 x s (1 - s) sqrt(2/pi) (1 + 3 * 0.044715 x^2), s = sigmoid(2u). Beyond
    # |x| = 1e4 the second term is below any double's resolution and x^3 could
    # overflow, so the limit is used. Cancels near the root x = -0.7522.
    # For u2 < 0 both terms carry the factor exp(u2), applied last from the double-double
    # u2 (the tail x << 0, where u2 ~ -600 and its rounding would cost ~300 ulp).
    cdef double xc = 0.0 if af_fabs(x) > 1e4 else x        # NaN passes
    cdef double xx = xc * xc
    cdef double u2lo
    cdef double u2 = af_gelu_tanh_u2(xc, &u2lo)
    cdef double e = af_exp(-af_fabs(u2))
    cdef double r = 1.0 / (1.0 + e)
    cdef double k = xc * ((2.0 * 0.79788456080286535588) * (1.0 + (3.0 * 0.044715) * xx))
    cdef double pos = r + k * (e * r * r)
    cdef double neg = af_expmul2(u2, u2lo, r + k * (r * r))
    cdef double d = pos if u2 >= 0 else neg
    cdef double t = (x - AF_ROOT_GELU_TANH_GRAD_HI) - AF_ROOT_GELU_TANH_GRAD_LO
    d = af__root_gelu_tanh_grad(t) if af_fabs(t) < 0.75 else d
    return (1.0 if x > 0 else 0.0) if af_fabs(x) > 10000 else d

cdef inline floating gelu_tanh_grad(floating x, floating dy) noexcept nogil:
    # float: in float lanes where FMA exists (af_gelu_tanh_gradf), else in double.
    if floating is float:
        return af_gelu_tanh_gradf(x, dy)
    else:
        return dy * gelu_tanh_grad_d(x)
