# Included by _kernels.pyx.tp: diagnostics for the problems our users ask about (dead
# ReLU units, saturated sigmoids, born-dead networks).
#
# Design: each diagnostic is a reduction along one axis, registered as a generalized
# ufunc "(n)->()" so that NumPy walks any layout and any number of outer axes without
# copying; the loop reads each element once and keeps only counters, so no temporary
# the size of the input is ever made (NumPy's ``np.all(a == 0, axis=0)`` makes a boolean
# array as large as ``a``). Outer rows are split over threads like the elementwise
# loops. The born-dead estimator runs many tiny networks, one per trial, each in one
# thread-local buffer.

from cython.parallel cimport parallel
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

cdef extern from "numpy/ndarraytypes.h":
    enum:
        NPY_BOOL
        NPY_INT64

ctypedef fused real_t:
    float
    double


cdef inline bint row_all_zero(const char *a, npy_intp s, npy_intp n, real_t *tag) noexcept nogil:
    cdef npy_intp j
    for j in range(n):
        if (<const real_t *>(a + j * s))[0] != 0:
            return False
    return True


cdef inline cnp.int64_t row_count_zero(const char *a, npy_intp s, npy_intp n, real_t *tag) noexcept nogil:
    cdef npy_intp j
    cdef cnp.int64_t c = 0
    for j in range(n):
        c += (<const real_t *>(a + j * s))[0] == 0
    return c


cdef inline cnp.int64_t row_count_saturated(const char *z, npy_intp s, npy_intp n, real_t eps, int which) noexcept nogil:
    # |f'(z)| < eps, with f' = sigmoid_grad (which = 0) or tanh_grad (which = 1) at dy = 1;
    # a NaN derivative is not counted as saturated.
    cdef npy_intp j
    cdef cnp.int64_t c = 0
    cdef real_t d, v
    for j in range(n):
        v = (<const real_t *>(z + j * s))[0]
        d = act.sigmoid_grad(v, <real_t>1) if which == 0 else act.tanh_grad(v, <real_t>1)
        c += f_abs(d) < eps
    return c


cdef void all_zero_rows(void *ctx, Py_ssize_t lo, Py_ssize_t hi, real_t tag) noexcept nogil:
    cdef loop_ctx *c = <loop_ctx *>ctx
    cdef npy_intp i
    for i in range(lo, hi):
        (<cnp.npy_bool *>(c.args[1] + i * c.steps[1]))[0] = row_all_zero(c.args[0] + i * c.steps[0], c.steps[2],
                                                                        c.dims[1], &tag)


cdef void count_zero_rows(void *ctx, Py_ssize_t lo, Py_ssize_t hi, real_t tag) noexcept nogil:
    cdef loop_ctx *c = <loop_ctx *>ctx
    cdef npy_intp i
    for i in range(lo, hi):
        (<cnp.int64_t *>(c.args[1] + i * c.steps[1]))[0] = row_count_zero(c.args[0] + i * c.steps[0], c.steps[2],
                                                                         c.dims[1], &tag)


cdef void count_saturated_rows(void *ctx, Py_ssize_t lo, Py_ssize_t hi, real_t tag) noexcept nogil:
    # args: z (n), eps (), count (); c.which: 0 sigmoid, 1 tanh
    cdef loop_ctx *c = <loop_ctx *>ctx
    cdef npy_intp i
    for i in range(lo, hi):
        (<cnp.int64_t *>(c.args[2] + i * c.steps[2]))[0] = row_count_saturated(
            c.args[0] + i * c.steps[0], c.steps[3], c.dims[1], (<real_t *>(c.args[1] + i * c.steps[1]))[0], c.which)


# Concrete row functions for the pool (a chunk function cannot be fused-typed).
cdef void all_zero_rows_f(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    all_zero_rows(c, lo, hi, <float>0)
cdef void all_zero_rows_d(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    all_zero_rows(c, lo, hi, <double>0)
cdef void count_zero_rows_f(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    count_zero_rows(c, lo, hi, <float>0)
cdef void count_zero_rows_d(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    count_zero_rows(c, lo, hi, <double>0)
cdef void count_saturated_rows_f(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    count_saturated_rows(c, lo, hi, <float>0)
cdef void count_saturated_rows_d(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    count_saturated_rows(c, lo, hi, <double>0)


# Concrete loops for registration (a gufunc needs one function pointer per dtype).
# ordered comparisons with NaN raise "invalid" in count_saturated; run_rows clears the flags
# (a NaN is just not counted).
cdef void all_zero_f(char **a, const npy_intp *d, const npy_intp *s, void *p) noexcept nogil:
    run_rows(all_zero_rows_f, a, d, s, 0, 0)
cdef void all_zero_d(char **a, const npy_intp *d, const npy_intp *s, void *p) noexcept nogil:
    run_rows(all_zero_rows_d, a, d, s, 0, 0)
cdef void count_zero_f(char **a, const npy_intp *d, const npy_intp *s, void *p) noexcept nogil:
    run_rows(count_zero_rows_f, a, d, s, 0, 0)
cdef void count_zero_d(char **a, const npy_intp *d, const npy_intp *s, void *p) noexcept nogil:
    run_rows(count_zero_rows_d, a, d, s, 0, 0)
cdef void sat_sigmoid_f(char **a, const npy_intp *d, const npy_intp *s, void *p) noexcept nogil:
    run_rows(count_saturated_rows_f, a, d, s, 1, 0)
cdef void sat_sigmoid_d(char **a, const npy_intp *d, const npy_intp *s, void *p) noexcept nogil:
    run_rows(count_saturated_rows_d, a, d, s, 1, 0)
cdef void sat_tanh_f(char **a, const npy_intp *d, const npy_intp *s, void *p) noexcept nogil:
    run_rows(count_saturated_rows_f, a, d, s, 1, 1)
cdef void sat_tanh_d(char **a, const npy_intp *d, const npy_intp *s, void *p) noexcept nogil:
    run_rows(count_saturated_rows_d, a, d, s, 1, 1)


cdef object make_reduction(af_loop_t f_loop, af_loop_t d_loop, af_loop_t *loops, void **data, char *types,
                           int nin, int out_type, bytes name, bytes doc, bytes signature):
    loops[0] = f_loop
    loops[1] = d_loop
    data[0] = NULL
    data[1] = NULL
    cdef int j
    for j in range(nin):
        types[j] = NPY_FLOAT
        types[nin + 1 + j] = NPY_DOUBLE
    types[nin] = out_type
    types[2 * nin + 1] = out_type
    return PyUFunc_FromFuncAndDataAndSignature(loops, data, types, 2, nin, 1, PyUFunc_None,
                                               name, doc, 0, signature)


cdef af_loop_t _all_zero_loops[2]
cdef void *_all_zero_data[2]
cdef char _all_zero_types[4]
all_zero = make_reduction(all_zero_f, all_zero_d, _all_zero_loops, _all_zero_data, _all_zero_types, 1, NPY_BOOL,
                          b"all_zero", b"True where every element along the core axis is zero", b"(n)->()")

cdef af_loop_t _count_zero_loops[2]
cdef void *_count_zero_data[2]
cdef char _count_zero_types[4]
count_zero = make_reduction(count_zero_f, count_zero_d, _count_zero_loops, _count_zero_data, _count_zero_types, 1,
                            NPY_INT64, b"count_zero", b"number of exact zeros along the core axis", b"(n)->()")

cdef af_loop_t _sat_sigmoid_loops[2]
cdef void *_sat_sigmoid_data[2]
cdef char _sat_sigmoid_types[6]
count_saturated_sigmoid = make_reduction(
    sat_sigmoid_f, sat_sigmoid_d, _sat_sigmoid_loops, _sat_sigmoid_data, _sat_sigmoid_types, 2, NPY_INT64,
    b"count_saturated_sigmoid", b"number of z along the core axis with |sigmoid'(z)| < eps", b"(n),()->()")

cdef af_loop_t _sat_tanh_loops[2]
cdef void *_sat_tanh_data[2]
cdef char _sat_tanh_types[6]
count_saturated_tanh = make_reduction(
    sat_tanh_f, sat_tanh_d, _sat_tanh_loops, _sat_tanh_data, _sat_tanh_types, 2, NPY_INT64,
    b"count_saturated_tanh", b"number of z along the core axis with |tanh'(z)| < eps", b"(n),()->()")


# ---------------------------------------------------------------------------------------
# Born-dead networks: many small fully connected ReLU networks, one per trial.
# ---------------------------------------------------------------------------------------

cdef bint rows_equal(const real_t *h, npy_intp rows, npy_intp width) noexcept nogil:
    cdef npy_intp r, j
    for r in range(1, rows):
        for j in range(width):
            if h[r * width + j] != h[j]:
                return False
    return True


cdef bint trial_is_constant(const real_t *W, const real_t *B, const npy_intp *widths, npy_intp n_layers,
                            const real_t *X, npy_intp n_samples, real_t *h, real_t *g) noexcept nogil:
    """Forward n_samples inputs through the hidden ReLU layers of one network; True when a
    hidden layer's activations are the same for every input (then so is the output)."""
    cdef npy_intp l, s, i, j, fi, fo
    cdef real_t acc
    cdef real_t *tmp
    memcpy(h, X, n_samples * widths[0] * sizeof(real_t))
    for l in range(n_layers - 1):          # the last layer is the linear output
        fi = widths[l]
        fo = widths[l + 1]
        for s in range(n_samples):
            for j in range(fo):
                acc = B[j] if B != NULL else <real_t>0
                for i in range(fi):
                    acc = acc + h[s * fi + i] * W[i * fo + j]
                g[s * fo + j] = act.relu(acc)
        W += fi * fo
        if B != NULL:
            B += fo
        tmp = h
        h = g
        g = tmp
        if rows_equal(h, n_samples, fo):
            return True
    return False


def _born_dead_trials(real_t[:, ::1] W, real_t[:, ::1] B, npy_intp[::1] widths, real_t[:, ::1] X, int n_threads):
    """For each trial t, whether the network with weights W[t] (layers flattened in order,
    each (fan_in, fan_out) row-major) and biases B[t] (or None) is constant on the inputs X.
    Returns a uint8 array of length W.shape[0]."""
    cdef npy_intp T = W.shape[0], n_layers = widths.shape[0] - 1, S = X.shape[0]
    cdef npy_intp l, t, biggest = 0, n_w = 0, n_b = 0
    cdef bint has_bias = B is not None
    for l in range(n_layers + 1):
        biggest = max(biggest, widths[l])
    for l in range(n_layers):
        n_w += widths[l] * widths[l + 1]
        n_b += widths[l + 1]
    if X.shape[1] != widths[0]:
        raise ValueError(f"X has {X.shape[1]} features, the networks take {widths[0]}")
    if W.shape[1] != n_w:
        raise ValueError(f"W holds {W.shape[1]} weights per trial, the layer widths need {n_w}")
    if has_bias and (B.shape[0] != T or B.shape[1] != n_b):
        raise ValueError(f"B has shape ({B.shape[0]}, {B.shape[1]}), expected ({T}, {n_b})")
    out = np.zeros(T, dtype=np.uint8)
    cdef unsigned char[::1] dead = out
    cdef real_t *h
    cdef real_t *g
    cdef int nt = n_threads if (n_threads > 1 and not _in_forked_child and T >= 64) else 1
    with nogil, parallel(num_threads=nt):
        h = <real_t *>malloc(2 * S * biggest * sizeof(real_t))
        g = h + S * biggest
        if h != NULL:
            for t in prange(T, schedule="static"):
                dead[t] = trial_is_constant(&W[t, 0], &B[t, 0] if has_bias else NULL, &widths[0], n_layers,
                                            &X[0, 0], S, h, g)
            free(h)
    return out
