# Included by _kernels.pyx.tp: fused parameter-gradient and Adam steps, for
# actfast.sklearn's patch.
#
# Design: scikit-learn's MLP spends its time outside the GEMMs in NumPy expressions over
# whole parameter arrays, each a pass over memory with a temporary: the Adam step is
# five per array (m, v, sqrt(v) + eps, the update, param += update), the L2 term of a
# weight gradient two (g += alpha W, g /= n). Fused, each is one pass in place. The
# arithmetic is NumPy's, operation by operation and in the same dtypes, so that a
# patched fit is bit-identical to an unpatched one: m, v and sqrt(v) + eps in the
# array's dtype (scikit-learn's beta_1, beta_2, epsilon are Python floats, weak
# scalars), the update and p + update in double (its learning rate is a NumPy float64
# scalar, which NEP 50 does not demote); alpha W, g + alpha W and the division by n in
# the array's dtype (alpha a Python float, n a Python int: the caller checks). Elements
# are independent, so chunks on the pool give the same result on any number of threads.

from libc.math cimport sqrt, sqrtf


ctypedef struct adam_ctx:
    char *p
    const char *g
    char *m
    char *v
    double lr
    double b1
    double b2
    double eps


cdef inline void adam_span(void *ctx, Py_ssize_t lo, Py_ssize_t hi, real_t tag) noexcept nogil:
    cdef adam_ctx *c = <adam_ctx *>ctx
    cdef real_t *p = <real_t *>c.p
    cdef const real_t *g = <const real_t *>c.g
    cdef real_t *m = <real_t *>c.m
    cdef real_t *v = <real_t *>c.v
    cdef real_t b1 = <real_t>c.b1, omb1 = <real_t>(1.0 - c.b1)
    cdef real_t b2 = <real_t>c.b2, omb2 = <real_t>(1.0 - c.b2)
    cdef real_t eps = <real_t>c.eps
    cdef double neg_lr = -c.lr
    cdef real_t gi, mi, vi, den
    cdef Py_ssize_t i
    for i in range(lo, hi):
        gi = g[i]
        mi = b1 * m[i] + omb1 * gi
        vi = b2 * v[i] + omb2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        if real_t is float:
            den = sqrtf(vi) + eps
        else:
            den = sqrt(vi) + eps
        p[i] = <real_t>(<double>p[i] + (neg_lr * <double>mi) / <double>den)


cdef void adam_span_f(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    adam_span(c, lo, hi, <float>0)
cdef void adam_span_d(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    adam_span(c, lo, hi, <double>0)

# Called through these module variables, as the elementwise spans are (run_span): a
# direct call on the serial path was inlined into _adam_step, and that copy of the loop
# was not vectorised (scalar sqrt and division: 4.0 ns per float64 element against 1.0).
cdef af_chunk_fn adam_span_f_ptr = adam_span_f
cdef af_chunk_fn adam_span_d_ptr = adam_span_d


cdef inline bint disjoint(cnp.ndarray a, cnp.ndarray b):
    cdef char *pa = <char *>cnp.PyArray_DATA(a)
    cdef char *pb = <char *>cnp.PyArray_DATA(b)
    return pa + cnp.PyArray_NBYTES(a) <= pb or pb + cnp.PyArray_NBYTES(b) <= pa


cdef bint fusable(tuple written, tuple read):
    """Whether a fused step may run on these arrays: all float32 or all float64,
    C-contiguous, aligned, of one shape and pairwise disjoint, the written ones
    writeable."""
    cdef cnp.ndarray first = written[0], a
    cdef int t = cnp.PyArray_TYPE(first)
    cdef tuple arrays = written + read
    cdef Py_ssize_t i, j
    if t != NPY_FLOAT and t != NPY_DOUBLE:
        return False
    for a in arrays:
        if (cnp.PyArray_TYPE(a) != t or not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISALIGNED(a)
                or not cnp.PyArray_SAMESHAPE(a, first)):
            return False
    for a in written:
        if not cnp.PyArray_ISWRITEABLE(a):
            return False
    for i in range(len(arrays)):
        for j in range(i + 1, len(arrays)):
            if not disjoint(arrays[i], arrays[j]):
                return False
    return True


def _adam_step(cnp.ndarray p, cnp.ndarray g, cnp.ndarray m, cnp.ndarray v, double lr, double beta_1,
               double beta_2, double epsilon):
    """One Adam step in place, as scikit-learn's AdamOptimizer computes it (see the top
    of _optim.pxi): m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
    p += -lr m / (sqrt(v) + eps). Returns False, touching nothing, unless the four are
    C-contiguous, aligned, disjoint arrays of one shape and of float32 or float64 (p, m, v
    writeable)."""
    cdef int t = cnp.PyArray_TYPE(p)
    cdef adam_ctx c
    cdef npy_intp n = cnp.PyArray_SIZE(p)
    cdef int nt
    cdef af_chunk_fn span
    if not fusable((p, m, v), (g,)):
        return False
    c.p = <char *>cnp.PyArray_DATA(p)
    c.g = <const char *>cnp.PyArray_DATA(g)
    c.m = <char *>cnp.PyArray_DATA(m)
    c.v = <char *>cnp.PyArray_DATA(v)
    c.lr, c.b1, c.b2, c.eps = lr, beta_1, beta_2, epsilon
    span = adam_span_f_ptr if t == NPY_FLOAT else adam_span_d_ptr
    nt = threads_for(n, 0)
    with nogil:
        if nt <= 1:
            span(&c, 0, n)
        else:
            af_pool_run(span, &c, n, chunk_for(n, nt, 0), nt)
        af_clear_fp_status()
    return True


ctypedef struct l2_ctx:
    char *g
    const char *w
    double alpha
    double n


cdef inline void l2_span(void *ctx, Py_ssize_t lo, Py_ssize_t hi, real_t tag) noexcept nogil:
    cdef l2_ctx *c = <l2_ctx *>ctx
    cdef real_t *g = <real_t *>c.g
    cdef const real_t *w = <const real_t *>c.w
    cdef real_t alpha = <real_t>c.alpha, n = <real_t>c.n
    cdef Py_ssize_t i
    for i in range(lo, hi):
        g[i] = (g[i] + alpha * w[i]) / n


cdef void l2_span_f(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    l2_span(c, lo, hi, <float>0)
cdef void l2_span_d(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    l2_span(c, lo, hi, <double>0)

cdef af_chunk_fn l2_span_f_ptr = l2_span_f   # through pointers: see adam_span_f_ptr
cdef af_chunk_fn l2_span_d_ptr = l2_span_d


def _l2_grad(cnp.ndarray g, cnp.ndarray w, double alpha, double n):
    """g = (g + alpha w) / n in place, as scikit-learn's _compute_loss_grad computes its
    weight gradient after the GEMM (g += alpha * W; g /= n, alpha and n weak scalars: in
    the arrays' dtype). Returns False, touching nothing, unless g and w are C-contiguous,
    aligned, disjoint arrays of one shape and of float32 or float64 (g writeable)."""
    cdef l2_ctx c
    cdef npy_intp size = cnp.PyArray_SIZE(g)
    cdef int nt
    cdef af_chunk_fn span
    if not fusable((g,), (w,)):
        return False
    c.g = <char *>cnp.PyArray_DATA(g)
    c.w = <const char *>cnp.PyArray_DATA(w)
    c.alpha, c.n = alpha, n
    span = l2_span_f_ptr if cnp.PyArray_TYPE(g) == NPY_FLOAT else l2_span_d_ptr
    nt = threads_for(size, 0)
    with nogil:
        if nt <= 1:
            span(&c, 0, size)
        else:
            af_pool_run(span, &c, size, chunk_for(size, nt, 0), nt)
        af_clear_fp_status()
    return True
