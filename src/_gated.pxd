# cython: language_level=3
"""Per-element math of the gated linear units (the GLU family) and of their VJPs.

Design
------
Every gated unit is ``value * g(gate)`` for a scalar gate function g:

=============  ==========================  ===========================================
ufunc          g(gate)                     public function
=============  ==========================  ===========================================
glu_pair       sigmoid(gate)               glu (F.glu: the second half is the gate)
swiglu         gate * sigmoid(gate)        swiglu (beta = 1)
swiglu_beta    gate * sigmoid(beta gate)   swiglu (beta != 1; ONNX SwiGLU's alpha)
geglu          gelu(gate)                  geglu(approximate="none")
geglu_tanh     tanh-approximate gelu       geglu(approximate="tanh")
reglu          relu(gate)                  reglu
=============  ==========================  ===========================================

so the forward is ``NAME(gate, value, params)`` and the vector-Jacobian product is the
pair ``dgate = dy * value * g'(gate)``, ``dvalue = dy * g(gate)``, which
``NAME_grad(gate, value, dy, params, &dgate, &dvalue)`` writes together: backprop always
needs both, and one pass that reads the three inputs once is most of the saving (these
loops are memory-bound or close to it). The two results go out through pointers;
inlined into the span they are the two output stores, and the loop still vectorises.

* g and g' are composed from the double helpers of ``_activations.pxd`` (d_xsigmoid,
  d_sigmoid_slope, gelu_grad_d, gelu_tanh_d, ...). float input is computed in double
  and rounded once, like the float kernels there: the float product dy * value is
  exact in double, so each float result is one rounding of a double computation.
  Exception: geglu's float32 path uses the float-lane gelu (af_gegluf, af_geglu_dgatef
  in actfast_vmath.h, FMA): the product of the two multipliers is a float pair there, so
  it too is rounded once.
  double input takes a few roundings, with the products ordered as g(gate) * value so
  that nothing overflows where the result does not (gate * value could).
* swiglu's gate function is silu with its beta (act.silu_d, act.silu_grad_d): the
  closed form, the Taylor series of silu' about its root, the limits at +-inf.
* Conventions are those of PyTorch autograd on ``g(gate) * value``: relu'(0) = 0, and
  dgate = 0 wherever gate <= 0 whatever dy * value is (threshold_backward); the limits
  of g and g' at gate = +-inf (swish and gelu tend to 0 at -inf, not -inf * 0 = NaN);
  a product of an infinite value with a g(gate) that is 0 is NaN, as in PyTorch. NaN in
  any input propagates, except that reglu's dgate is 0 where gate <= 0 (as PyTorch).
"""

from cython cimport floating
from libc.math cimport INFINITY

cimport _activations as act

cdef extern from "actfast_math.h" nogil:
    double af_exp(double x)
    double af_fabs(double x)
    double af_expmul(double x, double m)
    double af_fma(double a, double b, double c)
    double af_xndtr(double x)
    double af_xndtr_lite(double x)
    float af_gegluf(float gate, float value)
    float af_geglu_dgatef(float gate, float value, float dy)


# ---------------------------------------------------------------------------------------
# glu: value * sigmoid(gate)
# ---------------------------------------------------------------------------------------

cdef inline double xsigmoid_d(double x, double m, bint lite) noexcept nogil:
    # m * sigmoid(x) (act.d_xsigmoid: m * exp(x) rounded once for x < 0), with
    # sigmoid(-inf) exactly 0: the lite exp stops at exp(-708), which would turn an
    # infinite m into inf instead of PyTorch's inf * 0 = NaN.
    return 0.0 * m if x == -INFINITY else act.d_xsigmoid(x, m, lite)

cdef inline double sigmoid_slope_d(double x, bint lite) noexcept nogil:
    # sigmoid'(x), exactly 0 at +-inf (see xsigmoid_d).
    return 0.0 if af_fabs(x) == INFINITY else act.d_sigmoid_slope(x, lite)

cdef inline floating glu_pair(floating gate, floating value) noexcept nogil:
    if floating is float:
        return <float>xsigmoid_d(gate, value, True)
    else:
        return xsigmoid_d(gate, value, False)

cdef inline void glu_pair_grad(floating gate, floating value, floating dy,
                               floating *dgate, floating *dvalue) noexcept nogil:
    if floating is float:
        dgate[0] = <float>((<double>dy * value) * sigmoid_slope_d(gate, True))
        dvalue[0] = <float>xsigmoid_d(gate, dy, True)
    else:
        dgate[0] = (dy * value) * sigmoid_slope_d(gate, False)
        dvalue[0] = xsigmoid_d(gate, dy, False)


# ---------------------------------------------------------------------------------------
# swiglu: gate * sigmoid(beta * gate) * value
# ---------------------------------------------------------------------------------------

cdef inline floating swiglu_beta(floating gate, floating value, floating beta) noexcept nogil:
    # act.silu_d is gate * sigmoid(beta gate), beta gate carried as a double-double for
    # double input (14 ulp at beta gate = -17 without it).
    # float: in double, rounded once (a float-lane form, gate value as an exact pair
    # times af__sigmoid_partsf's quotient, measured 0.77 ulp and ~25% slower: not used)
    if floating is float:
        return <float>(act.silu_d(gate, beta, True) * value)
    else:
        return act.silu_d(gate, beta, False) * value

cdef inline void swiglu_beta_grad(floating gate, floating value, floating dy, floating beta,
                                  floating *dgate, floating *dvalue) noexcept nogil:
    # d/dgate [gate sigmoid(beta gate)] is silu'(t) at t = beta gate (act.silu_grad_d).
    cdef double t = act.silu_beta_x(gate, beta)
    if floating is float:
        # dgate in float lanes with FMA (act.af_swiglu_dgatef: dy value as an exact pair,
        # one rounding), else in double; dvalue in double (see swiglu_beta)
        dgate[0] = (act.af_swiglu_dgatef(gate, value, dy, beta) if act.AF_FLOAT_LANES
                    else <float>((<double>dy * value) * act.silu_grad_d(t, 0.0)))
        dvalue[0] = <float>(act.silu_d(gate, beta, True) * dy)
    else:
        dgate[0] = (dy * value) * act.silu_grad_d(t, act.silu_beta_x_lo(gate, beta, t))
        dvalue[0] = act.silu_d(gate, beta, False) * dy


cdef inline floating swiglu(floating gate, floating value) noexcept nogil:
    # beta = 1, a constant: beta gate folds to gate (the kernel of the default beta).
    return swiglu_beta(gate, value, <floating>1)

cdef inline void swiglu_grad(floating gate, floating value, floating dy, floating *dgate,
                             floating *dvalue) noexcept nogil:
    swiglu_beta_grad(gate, value, dy, <floating>1, dgate, dvalue)


# ---------------------------------------------------------------------------------------
# geglu: gelu(gate) * value, exact and tanh-approximate gelu
# ---------------------------------------------------------------------------------------

cdef inline double gelu_value_d(double x, bint lite) noexcept nogil:
    # act.gelu before its rounding to the input's type: x * Phi(x), 0 at -inf.
    return 0.0 if x == -INFINITY else (af_xndtr_lite(x) if lite else af_xndtr(x))

cdef inline floating geglu(floating gate, floating value) noexcept nogil:
    # float: the float-lane gelu of _activations.pxd (af_gegluf: gelu(gate) value with one
    # rounding, FMA; in double otherwise).
    if floating is float:
        return af_gegluf(gate, value)
    else:
        return gelu_value_d(gate, False) * value

cdef inline void geglu_grad(floating gate, floating value, floating dy,
                            floating *dgate, floating *dvalue) noexcept nogil:
    cdef double slope
    if floating is float:
        dgate[0] = af_geglu_dgatef(gate, value, dy)
        dvalue[0] = af_gegluf(gate, dy)
    else:
        slope = act.gelu_grad_d(gate)
        dgate[0] = (dy * value) * slope
        dvalue[0] = gelu_value_d(gate, False) * dy

cdef inline floating geglu_tanh(floating gate, floating value) noexcept nogil:
    if floating is float:
        return <float>(act.gelu_tanh_d(gate, True) * value)
    else:
        return act.gelu_tanh_d(gate, False) * value

cdef inline void geglu_tanh_grad(floating gate, floating value, floating dy,
                                 floating *dgate, floating *dvalue) noexcept nogil:
    cdef double slope = act.gelu_tanh_grad_d(gate)
    if floating is float:
        dgate[0] = <float>((<double>dy * value) * slope)
        dvalue[0] = <float>(act.gelu_tanh_d(gate, True) * dy)
    else:
        dgate[0] = (dy * value) * slope
        dvalue[0] = act.gelu_tanh_d(gate, False) * dy


# ---------------------------------------------------------------------------------------
# reglu: relu(gate) * value
# ---------------------------------------------------------------------------------------

cdef inline floating reglu(floating gate, floating value) noexcept nogil:
    # relu(gate) is exact, so the product in the input's type is already one rounding.
    return act.relu(gate) * value

cdef inline void reglu_grad(floating gate, floating value, floating dy,
                            floating *dgate, floating *dvalue) noexcept nogil:
    # relu_grad: dy * value for gate > 0, 0 at and below the kink (even for an infinite
    # or NaN dy * value, as PyTorch's threshold_backward), NaN for a NaN gate.
    dgate[0] = act.relu_grad(gate, dy * value)
    dvalue[0] = act.relu(gate) * dy
