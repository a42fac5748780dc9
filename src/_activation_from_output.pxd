# cython: language_level=3
"""Vector-Jacobian products written in terms of the activation's OUTPUT.

For these activations f'(z) is a function of y = f(z) alone, so a layer can keep the
output it returns anyway and drop the pre-activation z (PyTorch's ``is_result``
backward does the same). ``NAME_grad_y(y, dy, params...)`` returns ``dy * f'(z)``
where ``y = f(z)``; the conventions at the kinks and for NaN are those of
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
selu            as elu, scale * alpha         always
celu            dy if y > 0 else dy*(y/a + 1) alpha != 0 (y <= 0 exactly when z <= 0)
sigmoid         dy * y * (1 - y)              always
tanh            dy * (1 - y) * (1 + y)        always
==============  ============================  =======================================

Accuracy: where f saturates, the derivative is a small difference of y and a constant
(``1 - y`` for sigmoid near y = 1, ``y + alpha`` for elu near -alpha); computed from
the rounded y its absolute error is about ``eps * |dy|`` (float32: 6e-8), not relative.
For sigmoid in float32, the gradient is 0 once y rounds to 1 (z > ~17) where the
z-based form would give ~exp(-z). This is the usual price of output-based backward.

Constants are cast with ``<floating>`` (a bare Cython float literal is a C double).
"""

from cython cimport floating


cdef inline floating relu_grad_y(floating y, floating dy) noexcept nogil:
    return dy if y > 0 else (y if y != y else <floating>0)


cdef inline floating hard_tanh_grad_y(floating y, floating dy, floating min_val, floating max_val) noexcept nogil:
    return (dy if (y > min_val and y < max_val) else <floating>0) if y == y else y


cdef inline floating relu6_grad_y(floating y, floating dy) noexcept nogil:
    return hard_tanh_grad_y(y, dy, <floating>0, <floating>6)


cdef inline floating leaky_relu_grad_y(floating y, floating dy, floating negative_slope) noexcept nogil:
    # Valid for negative_slope >= 0 only.
    return dy if y > 0 else (y if y != y else dy * negative_slope)


cdef inline floating elu_grad_y(floating y, floating dy, floating alpha) noexcept nogil:
    # z <= 0: y = alpha (exp(z) - 1), so alpha exp(z) = y + alpha. Valid for alpha >= 0.
    return dy if y > 0 else dy * (y + alpha)


cdef inline floating selu_grad_y(floating y, floating dy) noexcept nogil:
    cdef floating scale = <floating>1.0507009873554804934193349852946
    cdef floating scale_alpha = <floating>(1.0507009873554804934193349852946 * 1.6732632423543772848170429916717)
    return dy * scale if y > 0 else dy * (y + scale_alpha)


cdef inline floating celu_grad_y(floating y, floating dy, floating alpha) noexcept nogil:
    # z <= 0: y = alpha (exp(z/alpha) - 1), so exp(z/alpha) = y/alpha + 1.
    return dy if y > 0 else dy * (y / alpha + <floating>1)


cdef inline floating sigmoid_grad_y(floating y, floating dy) noexcept nogil:
    return dy * (y * (<floating>1 - y))


cdef inline floating tanh_grad_y(floating y, floating dy) noexcept nogil:
    # (1 - y)(1 + y) rather than 1 - y*y: no rounding of y*y near |y| = 1.
    return dy * ((<floating>1 - y) * (<floating>1 + y))


cdef inline floating linear_grad_y(floating y, floating dy) noexcept nogil:
    return dy
