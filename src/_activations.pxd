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
    float af_gaussf(float x)
    double af_gauss(double x)
    float af_ndtrf(float x)
    double af_ndtr(double x)
    double af_ndtr_lite(double x)

from cython cimport floating
from libc.math cimport INFINITY

# ---------------------------------------------------------------------------------------
# Elementary functions, dispatched on the fused type at compile time.
# ---------------------------------------------------------------------------------------

cdef inline floating f_exp(floating x) noexcept nogil:
    if floating is float:
        return af_expf(x)
    else:
        return af_exp(x)

cdef inline floating f_expm1(floating x) noexcept nogil:
    if floating is float:
        return af_expm1f(x)
    else:
        return af_expm1(x)

cdef inline floating f_log1p(floating x) noexcept nogil:
    if floating is float:
        return af_log1pf(x)
    else:
        return af_log1p(x)

cdef inline floating f_log(floating x) noexcept nogil:
    if floating is float:
        return af_logf(x)
    else:
        return af_log(x)

cdef inline floating f_tanh(floating x) noexcept nogil:
    if floating is float:
        return af_tanhf(x)
    else:
        return af_tanh(x)

cdef inline floating f_erfc(floating x) noexcept nogil:
    if floating is float:
        return af_erfcf(x)
    else:
        return af_erfc(x)

cdef inline floating f_abs(floating x) noexcept nogil:
    if floating is float:
        return af_fabsf(x)
    else:
        return af_fabs(x)

cdef inline floating f_gauss(floating x) noexcept nogil:
    """exp(-x*x/2), accurate for large |x|."""
    if floating is float:
        return af_gaussf(x)
    else:
        return af_gauss(x)

cdef inline bint f_isinf(floating x) noexcept nogil:
    return f_abs(x) == <floating>INFINITY

cdef inline floating f_sigmoid(floating x) noexcept nogil:
    """1 / (1 + exp(-x)) from e = exp(-|x|) <= 1: no overflow, accurate tails."""
    cdef floating e = f_exp(-f_abs(x))
    cdef floating r = <floating>1 / (<floating>1 + e)
    return r if x >= 0 else e * r

cdef inline floating f_sigmoid_slope(floating x) noexcept nogil:
    """sigmoid(x) * (1 - sigmoid(x)) = e / (1 + e)^2, e = exp(-|x|)."""
    cdef floating e = f_exp(-f_abs(x))
    cdef floating r = <floating>1 / (<floating>1 + e)
    return e * r * r

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

cdef inline floating hard_sigmoid(floating x) noexcept nogil:
    # relu6(x + 3) / 6, as torch.nn.functional.hardsigmoid.
    return hard_tanh(x + <floating>3, <floating>0, <floating>6) * <floating>(1.0 / 6.0)

cdef inline floating hard_sigmoid_grad(floating x, floating dy) noexcept nogil:
    return (dy * <floating>(1.0 / 6.0) if (x > -3 and x < 3) else <floating>0) if x == x else x

cdef inline floating hard_swish(floating x) noexcept nogil:
    # x * relu6(x + 3) / 6; the select keeps -inf from giving -inf * 0.
    return <floating>0 if x <= -3 else x * hard_tanh(x + <floating>3, <floating>0, <floating>6) * <floating>(1.0 / 6.0)

cdef inline floating hard_swish_grad(floating x, floating dy) noexcept nogil:
    # PyTorch's kinks: 0 below -3, x/3 + 1/2 on [-3, 3], 1 above.
    if x != x:
        return x
    return <floating>0 if x < -3 else (dy * (x * <floating>(1.0 / 3.0) + <floating>0.5) if x <= 3 else dy)

cdef inline floating softsign(floating x) noexcept nogil:
    cdef floating r = x / (<floating>1 + f_abs(x))
    return (<floating>1 if x > 0 else <floating>-1) if f_isinf(x) else r

cdef inline floating softsign_grad(floating x, floating dy) noexcept nogil:
    cdef floating d = <floating>1 + f_abs(x)
    return dy / (d * d)

# ---------------------------------------------------------------------------------------
# Exponential family
# ---------------------------------------------------------------------------------------

cdef inline floating elu(floating x, floating alpha) noexcept nogil:
    return x if x > 0 else alpha * f_expm1(x)

cdef inline floating elu_grad(floating x, floating dy, floating alpha) noexcept nogil:
    # PyTorch takes the x <= 0 side at the kink: elu'(0) = alpha.
    return dy if x > 0 else dy * alpha * f_exp(x)

cdef inline floating selu(floating x) noexcept nogil:
    cdef floating scale = <floating>1.0507009873554804934193349852946
    cdef floating scale_alpha = <floating>(1.0507009873554804934193349852946 * 1.6732632423543772848170429916717)
    return scale * x if x > 0 else scale_alpha * f_expm1(x)

cdef inline floating selu_grad(floating x, floating dy) noexcept nogil:
    cdef floating scale = <floating>1.0507009873554804934193349852946
    cdef floating scale_alpha = <floating>(1.0507009873554804934193349852946 * 1.6732632423543772848170429916717)
    return dy * scale if x > 0 else dy * scale_alpha * f_exp(x)

cdef inline floating celu(floating x, floating alpha) noexcept nogil:
    return x if x > 0 else alpha * f_expm1(x / alpha)

cdef inline floating celu_grad(floating x, floating dy, floating alpha) noexcept nogil:
    return dy if x > 0 else dy * f_exp(x / alpha)

# ---------------------------------------------------------------------------------------
# Sigmoid family
# ---------------------------------------------------------------------------------------

cdef inline floating sigmoid(floating x) noexcept nogil:
    return f_sigmoid(x)

cdef inline floating sigmoid_grad(floating x, floating dy) noexcept nogil:
    return dy * f_sigmoid_slope(x)

cdef inline floating log_sigmoid(floating x) noexcept nogil:
    # -softplus(-x) = min(x, 0) - log1p(exp(-|x|))
    return (x if x < 0 else <floating>0) - f_log1p(f_exp(-f_abs(x)))

cdef inline floating log_sigmoid_grad(floating x, floating dy) noexcept nogil:
    # d/dx log(sigmoid(x)) = sigmoid(-x)
    return dy * f_sigmoid(-x)

cdef inline floating silu(floating x) noexcept nogil:
    # x * sigmoid(x); at -inf the limit 0 instead of -inf * 0.
    return <floating>0 if x == -INFINITY else x * f_sigmoid(x)

cdef inline floating silu_grad(floating x, floating dy) noexcept nogil:
    # s (1 + x (1 - s)) with 1 - s = sigmoid(-x); the limits are 0 at -inf, 1 at +inf.
    cdef floating s = f_sigmoid(x)
    cdef floating d = s * (<floating>1 + x * f_sigmoid(-x))
    return dy * ((<floating>1 if x > 0 else <floating>0) if f_isinf(x) else d)

cdef inline floating softplus(floating x, floating beta, floating threshold) noexcept nogil:
    # PyTorch: x where beta*x > threshold, else log1p(exp(beta*x)) / beta, written as
    # max(bx, 0) + log1p(exp(-|bx|)) so that no threshold can make exp overflow.
    cdef floating bx = beta * x
    cdef floating sp = ((bx if bx > 0 else <floating>0) + f_log1p(f_exp(-f_abs(bx)))) / beta
    return x if bx > threshold else sp

cdef inline floating softplus_grad(floating x, floating dy, floating beta, floating threshold) noexcept nogil:
    cdef floating bx = beta * x
    return dy if bx > threshold else dy * f_sigmoid(bx)

cdef inline floating mish(floating x) noexcept nogil:
    # x * tanh(softplus(x)); with n = exp(x), tanh(log1p(n)) = n(n+2) / (n(n+2) + 2),
    # which has no cancellation. Above x = 20 the ratio is 1 in float and double.
    cdef floating n = f_exp(x if x < 20 else <floating>20)
    cdef floating p = n * (n + <floating>2)
    cdef floating t = p / (p + <floating>2)
    return <floating>0 if x == -INFINITY else x * t

cdef inline floating mish_grad(floating x, floating dy) noexcept nogil:
    # t + x sigmoid(x) (1 - t^2), with 1 - t = 2 / (p + 2) computed without cancellation.
    cdef floating n = f_exp(x if x < 20 else <floating>20)
    cdef floating p = n * (n + <floating>2)
    cdef floating q = <floating>1 / (p + <floating>2)
    cdef floating t = p * q
    cdef floating one_minus_t2 = (<floating>2 * q) * (<floating>1 + t)
    # Past the clamp, 1 - t^2 (~4 exp(-2x)) is below the resolution of t: drop the term.
    cdef floating d = t + (x * f_sigmoid(x) * one_minus_t2 if x < 20 else <floating>0)
    return dy * ((<floating>1 if x > 0 else <floating>0) if f_isinf(x) else d)

# ---------------------------------------------------------------------------------------
# tanh and gelu
# ---------------------------------------------------------------------------------------

cdef inline floating tanh(floating x) noexcept nogil:
    return f_tanh(x)

cdef inline floating tanh_grad(floating x, floating dy) noexcept nogil:
    # 1 - tanh(x)^2 = 4e / (1 + e)^2 with e = exp(-2|x|): no cancellation near |x| large.
    cdef floating e = f_exp(<floating>-2 * f_abs(x))
    cdef floating r = <floating>1 / (<floating>1 + e)
    return dy * (<floating>4 * e * r * r)

cdef inline floating gelu(floating x) noexcept nogil:
    # x * Phi(x). Phi comes from af_ndtr, which takes x itself: erfc(-x / sqrt 2) would
    # first round x / sqrt 2, and in the tail that rounding is multiplied by x^2 (~170
    # ulp in float at x = -13). float input is computed in double and rounded once.
    cdef double xd
    if floating is float:
        xd = x
        return <float>0 if x == -INFINITY else <float>(xd * af_ndtr_lite(xd))
    else:
        return <double>0 if x == -INFINITY else x * af_ndtr(x)

cdef inline floating gelu_grad(floating x, floating dy) noexcept nogil:
    # Phi(x) + x phi(x); x phi(x) is computed from exp(-x^2/2) without rounding x^2.
    # The sum cancels near its root x = -0.7518: float input is computed in double.
    cdef double xd, dd
    if floating is float:
        xd = x
        dd = af_ndtr_lite(xd) + xd * (0.39894228040143267794 * af_gauss(xd))
        return <float>((<double>dy) * (((1.0 if x > 0 else 0.0) if f_isinf(x) else dd)))
    else:
        dd = af_ndtr(x) + x * (0.39894228040143267794 * af_gauss(x))
        return dy * ((1.0 if x > 0 else 0.0) if f_isinf(x) else dd)

cdef inline floating gelu_tanh(floating x) noexcept nogil:
    # 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
    cdef floating u2 = <floating>(2.0 * 0.79788456080286535588) * (x + <floating>0.044715 * x * x * x)
    return <floating>0 if x == -INFINITY else x * f_sigmoid(u2)

cdef inline floating gelu_tanh_grad(floating x, floating dy) noexcept nogil:
    # s + 2 x s (1 - s) sqrt(2/pi) (1 + 3 * 0.044715 x^2), s = sigmoid(2u). Beyond
    # |x| = 1e4 the second term is below any float's resolution (s (1-s) underflows
    # first) and x^3 could overflow, so the limit is used.
    cdef floating xx = x * x
    cdef floating u2 = <floating>(2.0 * 0.79788456080286535588) * x * (<floating>1 + <floating>0.044715 * xx)
    cdef floating s = f_sigmoid(u2)
    cdef floating d = s + x * f_sigmoid_slope(u2) * (<floating>(2.0 * 0.79788456080286535588) * (<floating>1 + <floating>(3.0 * 0.044715) * xx))
    return dy * ((<floating>1 if x > 0 else <floating>0) if f_abs(x) > 10000 else d)
