# cython: language_level=3
"""Vector-Jacobian products written in terms of the activation's OUTPUT.

For these activations f'(z) is a function of y = f(z) alone, so a layer can keep the
output it returns anyway and drop the pre-activation z (PyTorch's ``is_result``
backward, scikit-learn's MLP and thinc do the same).
``NAME_grad_from_output(y, dy, params...)`` returns ``dy * f'(z)`` where ``y = f(z)``;
they are the kernels of the public ``actfast.NAME_grad_from_output`` ufuncs and of the
dense layer's backward. The conventions at the kinks and for NaN are those of
``NAME_grad`` in ``_activations.pxd`` (relu'(0) = 0, elu'(0) = alpha, hard_tanh' = 0
at the bounds, NaN propagates), because the kinks map to values of y that are
recognisable:

==============  ============================  =======================================
activation      dy * f'(z) from y             valid when
==============  ============================  =======================================
relu            dy * (y > 0)                  always
relu6           dy * (0 < y < 6)              always
leaky_relu      dy if y > 0 else dy * slope   slope >= 0 (slope < 0: y > 0 for z < 0)
hard_tanh       dy * (min < y < max)          always
elu             dy if y > 0 else dy*(y + a)   alpha >= 0
selu            as elu, scale * alpha         scale > 0 and alpha >= 0
celu            dy if y > 0 else dy*(y/a + 1) alpha != 0 (y <= 0 exactly when z <= 0)
hard_sigmoid    dy * alpha if 0 < y < 1       always (alpha != 0)
sigmoid         dy * y * (1 - y)              always
log_sigmoid     dy * -expm1(y)                always (1 - sigmoid(z) = 1 - exp(y))
softplus        dy * -expm1(-beta y), or dy   beta != 0 (exp(beta y) = 1 + exp(beta z));
                where beta y > threshold      dy where beta y > threshold
tanh            dy * (1 - y) * (1 + y)        always
softsign        dy * (1 - abs(y))^2           always (1 - |y| = 1 / (1 + |z|))
==============  ============================  =======================================

Accuracy: where f saturates, the derivative is a small difference of y and a constant
(``1 - y`` for sigmoid near y = 1, ``y + alpha`` for elu near -alpha); computed from
the rounded y its absolute error is about ``eps * |dy|`` (float32: 6e-8), not relative.
For sigmoid in float32, the gradient is 0 once y rounds to 1 (z > ~17) where the
z-based form would give ~exp(-z). This is the usual price of output-based backward.

Constants are cast with ``<floating>`` (a bare Cython float literal is a C double).
"""

from cython cimport floating
from _activations cimport af_expm1, af_expm1_lite, f_abs


cdef inline floating one_minus_exp(floating t) noexcept nogil:
    """1 - exp(t) = -expm1(t), without the cancellation near t = 0 (float via double)."""
    if floating is float:
        return <float>(-af_expm1_lite(t))
    else:
        return -af_expm1(t)


cdef inline floating relu_grad_from_output(floating y, floating dy) noexcept nogil:
    return dy if y > 0 else (y if y != y else <floating>0)


cdef inline floating hard_tanh_grad_from_output(floating y, floating dy, floating min_val, floating max_val) noexcept nogil:
    return (dy if (y > min_val and y < max_val) else <floating>0) if y == y else y


cdef inline floating relu6_grad_from_output(floating y, floating dy) noexcept nogil:
    return hard_tanh_grad_from_output(y, dy, <floating>0, <floating>6)


cdef inline floating leaky_relu_grad_from_output(floating y, floating dy, floating negative_slope) noexcept nogil:
    # Valid for negative_slope >= 0 only.
    return dy if y > 0 else (y if y != y else dy * negative_slope)


cdef inline floating elu_grad_from_output(floating y, floating dy, floating alpha) noexcept nogil:
    # z <= 0: y = alpha (exp(z) - 1), so alpha exp(z) = y + alpha. Valid for alpha >= 0.
    return dy if y > 0 else dy * (y + alpha)


cdef inline floating selu_grad_from_output(floating y, floating dy, double alpha, double scale) noexcept nogil:
    # scale > 0, alpha >= 0 (checked by the Python layer): y > 0 exactly where x > 0, and
    # below, y = scale alpha (exp(x) - 1) gives f'(x) = scale alpha exp(x) = y + scale alpha.
    cdef floating s = <floating>scale
    cdef floating scale_alpha = <floating>(scale * alpha)
    return dy * s if y > 0 else dy * (y + scale_alpha)


cdef inline floating celu_grad_from_output(floating y, floating dy, floating alpha) noexcept nogil:
    # z <= 0: y = alpha (exp(z/alpha) - 1), so exp(z/alpha) = y/alpha + 1.
    return dy if y > 0 else dy * (y / alpha + <floating>1)


cdef inline floating sigmoid_grad_from_output(floating y, floating dy) noexcept nogil:
    return dy * (y * (<floating>1 - y))


cdef inline floating tanh_grad_from_output(floating y, floating dy) noexcept nogil:
    # (1 - y)(1 + y) rather than 1 - y*y: no rounding of y*y near |y| = 1.
    return dy * ((<floating>1 - y) * (<floating>1 + y))


cdef inline floating hard_sigmoid_grad_from_output(floating y, floating dy, double alpha, double beta) noexcept nogil:
    # y = clamp(alpha z + beta, 0, 1) lies strictly between 0 and 1 exactly where z is
    # between the kinks (up to the rounding of y within an ulp of them); f' = alpha there.
    return (dy * <floating>alpha if (y > 0 and y < 1) else <floating>0) if y == y else y


cdef inline floating log_sigmoid_grad_from_output(floating y, floating dy) noexcept nogil:
    # f'(z) = sigmoid(-z) = 1 - sigmoid(z) = 1 - exp(y); y = -inf (z = -inf) gives 1.
    return dy * one_minus_exp(y)


cdef inline floating softplus_grad_from_output(floating y, floating dy, floating beta, floating threshold) noexcept nogil:
    # exp(beta y) = 1 + exp(beta z), so sigmoid(beta z) = 1 - exp(-beta y). Where the
    # forward returned z itself (beta z > threshold), beta y = beta z is above it too.
    cdef floating t = beta * y
    return dy if t > threshold else dy * one_minus_exp(-t)


cdef inline floating softsign_grad_from_output(floating y, floating dy) noexcept nogil:
    # 1 - |y| = 1 / (1 + |z|); |y| = 1 (z = +-inf) gives the limit 0.
    cdef floating d = <floating>1 - f_abs(y)
    return dy * (d * d)
