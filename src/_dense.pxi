# Included by _kernels.pyx.tp: the elementwise half of the fused dense layer
# (actfast/dense.py does the GEMMs with NumPy's own BLAS).
#
# Design: the epilogue (bias add, activation) and the backward's dz = dy * f'(.) with
# the bias gradient db = sum_rows dz are row loops over the GEMM's result. Each row is
# first biased (a short loop that vectorises) and then handed, while it is in L1, to
# the same span that the activation's ufunc runs, so the dense layer computes exactly
# what actfast.NAME computes, vectorised, with no second copy of any activation. Rows
# go to the pool in fixed chunks; db is summed in double per chunk, and the chunks'
# sums are added in chunk order, so the result does not depend on the thread count.

from libc.string cimport memcpy


ctypedef struct rows_ctx:
    span_t span             # NULL: no activation (linear)
    int nparams
    int double_params       # bit j: parameter j is read as a double by the float32 span too
    char *out               # (rows, n), C-contiguous: y (epilogue) or dz (backward)
    char *aux               # epilogue: z or NULL; backward: the saved z or y
    const char *vec         # epilogue: the bias or NULL; backward: dy
    double *acc             # backward: one row of n partial sums per chunk
    npy_intp n
    npy_intp rows_per_chunk
    npy_intp steps[5]
    float pf[2]
    double pd[2]


cdef inline npy_intp rows_per_chunk(npy_intp rows, npy_intp n, int cost) noexcept nogil:
    """At most 64 chunks, none smaller than a quarter of the parallel threshold; fixed
    by the shape alone (not the thread count), so that per-chunk sums are too."""
    cdef npy_intp items
    if n <= 0:
        return 1
    items = max((rows * n + 63) // 64, _min_per_thread[cost] // 4)
    return max(<npy_intp>1, (items + n - 1) // n)


cdef inline void set_span_args(rows_ctx *c, char **args, char *src, char *dy, char *dst, bint use_float) noexcept nogil:
    cdef int j, k = 0
    args[k] = src
    k += 1
    if dy != NULL:
        args[k] = dy
        k += 1
    for j in range(c.nparams):
        args[k] = <char *>&c.pf[j] if (use_float and not (c.double_params >> j) & 1) else <char *>&c.pd[j]
        k += 1
    args[k] = dst


cdef inline void epilogue_rows(void *ctx, Py_ssize_t lo, Py_ssize_t hi, real_t tag) noexcept nogil:
    cdef rows_ctx *c = <rows_ctx *>ctx
    cdef npy_intp i, j, n = c.n
    cdef real_t *y
    cdef real_t *src
    cdef const real_t *b = <const real_t *>c.vec
    cdef char *args[4]
    for i in range(lo, hi):
        y = <real_t *>c.out + i * n
        if c.span == NULL:           # linear: z is y
            if b != NULL:
                for j in range(n):
                    y[j] = y[j] + b[j]
            if c.aux != NULL:
                memcpy(c.aux + i * n * <npy_intp>sizeof(real_t), y, n * sizeof(real_t))
            continue
        src = y
        if c.aux != NULL:
            src = <real_t *>c.aux + i * n
            if b != NULL:
                for j in range(n):
                    src[j] = y[j] + b[j]
            else:
                memcpy(src, y, n * sizeof(real_t))
        elif b != NULL:
            for j in range(n):
                y[j] = y[j] + b[j]
        set_span_args(c, args, <char *>src, NULL, <char *>y, real_t is float)
        c.span(args, c.steps, 0, n)


cdef inline void dz_rows(void *ctx, Py_ssize_t lo, Py_ssize_t hi, real_t tag) noexcept nogil:
    cdef rows_ctx *c = <rows_ctx *>ctx
    cdef npy_intp i, j, n = c.n
    cdef real_t *dz
    cdef real_t *dy
    cdef double *acc
    cdef char *args[5]
    for i in range(lo, hi):
        dz = <real_t *>c.out + i * n
        dy = <real_t *>c.vec + i * n
        if c.span != NULL:
            set_span_args(c, args, c.aux + i * n * <npy_intp>sizeof(real_t), <char *>dy, <char *>dz, real_t is float)
            c.span(args, c.steps, 0, n)
        elif dz != dy:
            memcpy(dz, dy, n * sizeof(real_t))
        acc = c.acc + (i // c.rows_per_chunk) * n
        for j in range(n):
            acc[j] += dz[j]


# Concrete chunk functions for the pool (a function pointer cannot be fused-typed).
cdef void epilogue_rows_f(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    epilogue_rows(c, lo, hi, <float>0)
cdef void epilogue_rows_d(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    epilogue_rows(c, lo, hi, <double>0)
cdef void dz_rows_f(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    dz_rows(c, lo, hi, <float>0)
cdef void dz_rows_d(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    dz_rows(c, lo, hi, <double>0)


cdef int rows_setup(rows_ctx *c, Py_ssize_t kernel, cnp.ndarray out, double p0, double p1, int nvec) except -1:
    cdef int j, cost = 0
    cdef bint is_float = cnp.PyArray_TYPE(out) == NPY_FLOAT
    c.span = NULL
    c.nparams = 0
    c.double_params = 0
    if kernel >= 0:
        c.span = span_table_f[kernel] if is_float else span_table_d[kernel]
        c.nparams = span_nparams[kernel]
        c.double_params = span_double_params[kernel]
        cost = span_cost[kernel]
    c.out = <char *>cnp.PyArray_DATA(out)
    c.aux = NULL
    c.vec = NULL
    c.acc = NULL
    c.n = out.shape[1]
    c.pf[0], c.pf[1] = <float>p0, <float>p1
    c.pd[0], c.pd[1] = p0, p1
    for j in range(nvec):
        c.steps[j] = out.itemsize
    for j in range(c.nparams):
        c.steps[nvec + j] = 0
    c.steps[nvec + c.nparams] = out.itemsize
    c.rows_per_chunk = rows_per_chunk(out.shape[0], c.n, cost)
    return cost


cdef void sum_chunks(const double *acc, npy_intp nchunks, npy_intp n, char *db, bint is_float) noexcept nogil:
    """db[j] = the sum over chunks of acc[k, j], in chunk order (the same for every
    thread count), rounded once to db's type."""
    cdef npy_intp j, k
    cdef double total
    for j in range(n):
        total = 0
        for k in range(nchunks):
            total += acc[k * n + j]
        if is_float:
            (<float *>db)[j] = <float>total
        else:
            (<double *>db)[j] = total


# The epilogue runs right after NumPy's GEMM, whose OpenBLAS workers then busy-wait on
# the other cores: a pool helper has to share a core with one, and the caller waits for
# any chunk the helper claimed before it was preempted. Up to this many outputs the
# caller does the epilogue alone. Measured A/B in one process (2 cores,
# Zen 4 VM, float32, dense() median of 300 calls, 3 interleaved rounds, 2026-12-02):
# (64, 512, 512), GEMM 270-290 us: sigmoid 411 -> 343 us, tanh 383 -> 331, gelu 459 ->
# 397; (256, 1024, 1024): sigmoid 3968 -> 3778, gelu 4468 -> 4283, tanh 3846 -> 3933
# (within the GEMM's own +-5 %); at (1024, 1024, 1024) two threads are kept (a 1M-element
# sigmoid takes ~0.9 ms on one). Settable with _set_dense_serial_max (for bench/).
cdef npy_intp _dense_serial_max = 1 << 18


def _set_dense_serial_max(npy_intp n):
    """Outputs below which the dense epilogue runs on the calling thread alone."""
    global _dense_serial_max
    _dense_serial_max = n


def _dense_epilogue(cnp.ndarray y, b, z, Py_ssize_t kernel, double p0, double p1):
    """y[:] = f(y + b) in place, z[:] = y + b first when z is not None. y and z
    C-contiguous (rows, n), b None or contiguous (n,), one float dtype; kernel is
    KERNEL_INDEX[name] of the forward, or -1 for none. Checked by actfast/dense.py."""
    cdef rows_ctx c
    cdef npy_intp rows = y.shape[0]
    cdef int cost = rows_setup(&c, kernel, y, p0, p1, 1)
    cdef int nt = threads_for(rows * c.n, cost) if rows > 1 and rows * c.n > _dense_serial_max else 1
    cdef af_chunk_fn fn = epilogue_rows_f if cnp.PyArray_TYPE(y) == NPY_FLOAT else epilogue_rows_d
    if z is not None:
        c.aux = <char *>cnp.PyArray_DATA(<cnp.ndarray>z)
    if b is not None:
        c.vec = <const char *>cnp.PyArray_DATA(<cnp.ndarray>b)
    with nogil:
        af_pool_run(fn, &c, rows, c.rows_per_chunk, nt)
        af_clear_fp_status()


def _dense_dz(cnp.ndarray dy, cnp.ndarray s, cnp.ndarray dz, cnp.ndarray db, Py_ssize_t kernel, double p0, double p1):
    """dz[:] = dy * f'(.) from s (z for NAME_grad, y for NAME_grad_from_output) and
    db[:] = dz.sum(axis=0), summed in double. dy, s, dz C-contiguous (rows, n), db (n,),
    one float dtype; dz may be dy itself; kernel is KERNEL_INDEX[grad name] or -1 (dz = dy)."""
    cdef rows_ctx c
    cdef npy_intp rows = dy.shape[0], nchunks
    cdef int cost = rows_setup(&c, kernel, dz, p0, p1, 2)
    cdef int nt = threads_for(rows * c.n, cost) if rows > 1 else 1
    cdef af_chunk_fn fn = dz_rows_f if cnp.PyArray_TYPE(dz) == NPY_FLOAT else dz_rows_d
    cdef bint is_float = cnp.PyArray_TYPE(dz) == NPY_FLOAT
    cdef char *dbp = <char *>cnp.PyArray_DATA(db)
    cdef cnp.ndarray acc
    c.aux = <char *>cnp.PyArray_DATA(s)
    c.vec = <const char *>cnp.PyArray_DATA(dy)
    nchunks = max(<npy_intp>1, (rows + c.rows_per_chunk - 1) // c.rows_per_chunk)
    acc = np.zeros((nchunks, c.n), np.float64)
    c.acc = <double *>cnp.PyArray_DATA(acc)
    with nogil:
        af_pool_run(fn, &c, rows, c.rows_per_chunk, nt)
        sum_chunks(c.acc, nchunks, c.n, dbp, is_float)
        af_clear_fp_status()


# ---------------------------------------------------------------------------------------
# Gated activations (swiglu, geglu, reglu, glu; the GATED kernels of _kernels.pyx.tp).
# z = x @ W + b has 2n columns, the gate half and the value half (gate first, or for
# glu, as F.glu, value first); each row of z is biased in place and its two halves go,
# still in L1, through the gated span into the row of y (n columns). The backward runs
# the two-output span on (gate, value, dy) and writes dgate and dvalue straight into
# the two halves of dz's row, then adds the row to the chunk's double sums for db
# (summed over chunks in chunk order, as _dense_dz does).
# ---------------------------------------------------------------------------------------

ctypedef struct gated_ctx:
    span_t span
    int nparams
    char *z                 # (rows, 2n), C-contiguous
    char *out               # epilogue: y (rows, n); backward: dz (rows, 2n)
    const char *b           # epilogue: the bias (2n,) or NULL
    const char *dy          # backward: dy (rows, n)
    double *acc             # backward: one row of 2n partial sums per chunk
    npy_intp n
    npy_intp gate_off       # column of the gate half: 0, or n for glu
    npy_intp value_off
    npy_intp rows_per_chunk
    npy_intp steps[8]
    float pf[2]
    double pd[2]


cdef inline void gated_epilogue_rows(void *ctx, Py_ssize_t lo, Py_ssize_t hi, real_t tag) noexcept nogil:
    cdef gated_ctx *c = <gated_ctx *>ctx
    cdef npy_intp i, j, n = c.n, w = 2 * c.n
    cdef int k
    cdef real_t *zr
    cdef const real_t *b = <const real_t *>c.b
    cdef char *args[8]
    for i in range(lo, hi):
        zr = <real_t *>c.z + i * w
        if b != NULL:
            for j in range(w):
                zr[j] = zr[j] + b[j]
        args[0] = <char *>(zr + c.gate_off)
        args[1] = <char *>(zr + c.value_off)
        for k in range(c.nparams):
            args[2 + k] = <char *>&c.pf[k] if real_t is float else <char *>&c.pd[k]
        args[2 + c.nparams] = <char *>(<real_t *>c.out + i * n)
        c.span(args, c.steps, 0, n)


cdef inline void gated_dz_rows(void *ctx, Py_ssize_t lo, Py_ssize_t hi, real_t tag) noexcept nogil:
    cdef gated_ctx *c = <gated_ctx *>ctx
    cdef npy_intp i, j, n = c.n, w = 2 * c.n
    cdef int k
    cdef real_t *zr
    cdef real_t *dzr
    cdef double *acc
    cdef char *args[8]
    for i in range(lo, hi):
        zr = <real_t *>c.z + i * w
        dzr = <real_t *>c.out + i * w
        args[0] = <char *>(zr + c.gate_off)
        args[1] = <char *>(zr + c.value_off)
        args[2] = <char *>(<const real_t *>c.dy + i * n)
        for k in range(c.nparams):
            args[3 + k] = <char *>&c.pf[k] if real_t is float else <char *>&c.pd[k]
        args[3 + c.nparams] = <char *>(dzr + c.gate_off)
        args[4 + c.nparams] = <char *>(dzr + c.value_off)
        c.span(args, c.steps, 0, n)
        if c.acc != NULL:
            acc = c.acc + (i // c.rows_per_chunk) * w
            for j in range(w):
                acc[j] += dzr[j]


cdef void gated_epilogue_rows_f(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    gated_epilogue_rows(c, lo, hi, <float>0)
cdef void gated_epilogue_rows_d(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    gated_epilogue_rows(c, lo, hi, <double>0)
cdef void gated_dz_rows_f(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    gated_dz_rows(c, lo, hi, <float>0)
cdef void gated_dz_rows_d(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    gated_dz_rows(c, lo, hi, <double>0)


cdef int gated_setup(gated_ctx *c, Py_ssize_t kernel, cnp.ndarray z, double p0, bint gate_first,
                     int nvec, int nout) except -1:
    cdef int j
    cdef bint is_float = cnp.PyArray_TYPE(z) == NPY_FLOAT
    cdef npy_intp itemsize = z.itemsize
    if not (0 <= kernel < n_kernels and span_gated[kernel]):
        raise ValueError("actfast: bad gated kernel index")
    c.span = span_table_f[kernel] if is_float else span_table_d[kernel]
    c.nparams = span_nparams[kernel]
    c.z = <char *>cnp.PyArray_DATA(z)
    c.out = NULL
    c.b = NULL
    c.dy = NULL
    c.acc = NULL
    c.n = z.shape[1] // 2
    c.gate_off = 0 if gate_first else c.n
    c.value_off = c.n if gate_first else 0
    c.pf[0], c.pf[1] = <float>p0, 0
    c.pd[0], c.pd[1] = p0, 0
    for j in range(nvec):
        c.steps[j] = itemsize
    for j in range(c.nparams):
        c.steps[nvec + j] = 0
    for j in range(nout):
        c.steps[nvec + c.nparams + j] = itemsize
    c.rows_per_chunk = rows_per_chunk(z.shape[0], c.n, span_cost[kernel])
    return span_cost[kernel]


def _dense_gated_epilogue(cnp.ndarray z, b, cnp.ndarray y, Py_ssize_t kernel, double p0, bint gate_first):
    """z[:] += b (when b is not None), then y[:] = value * g(gate) from z's two halves
    (gate first, or value first when not gate_first). z C-contiguous (rows, 2n), y
    (rows, n), b None or contiguous (2n,), one float dtype; kernel is
    GATED_INDEX[name] of the forward. Checked by actfast/dense.py."""
    cdef gated_ctx c
    cdef npy_intp rows = z.shape[0]
    cdef int cost = gated_setup(&c, kernel, z, p0, gate_first, 2, 1)
    cdef int nt = threads_for(rows * c.n, cost) if rows > 1 else 1
    cdef af_chunk_fn fn = gated_epilogue_rows_f if cnp.PyArray_TYPE(z) == NPY_FLOAT else gated_epilogue_rows_d
    c.out = <char *>cnp.PyArray_DATA(y)
    if b is not None:
        c.b = <const char *>cnp.PyArray_DATA(<cnp.ndarray>b)
    with nogil:
        af_pool_run(fn, &c, rows, c.rows_per_chunk, nt)
        af_clear_fp_status()


def _dense_gated_dz(cnp.ndarray dy, cnp.ndarray z, cnp.ndarray dz, cnp.ndarray db, Py_ssize_t kernel, double p0,
                    bint gate_first):
    """dz[:] = (dgate, dvalue) in z's column layout from dy (rows, n) and the saved z
    (rows, 2n), and db[:] = dz.sum(axis=0), summed in double (db None: no sum, for the
    elementwise gated gradients). All C-contiguous, one float dtype; kernel is
    GATED_INDEX[name + "_grad"]."""
    cdef gated_ctx c
    cdef npy_intp rows = z.shape[0], nchunks
    cdef int cost = gated_setup(&c, kernel, z, p0, gate_first, 3, 2)
    cdef int nt = threads_for(rows * c.n, cost) if rows > 1 else 1
    cdef af_chunk_fn fn = gated_dz_rows_f if cnp.PyArray_TYPE(z) == NPY_FLOAT else gated_dz_rows_d
    cdef cnp.ndarray acc
    cdef bint with_db = db is not None
    c.out = <char *>cnp.PyArray_DATA(dz)
    c.dy = <const char *>cnp.PyArray_DATA(dy)
    nchunks = max(<npy_intp>1, (rows + c.rows_per_chunk - 1) // c.rows_per_chunk)
    if with_db:
        acc = np.zeros((nchunks, 2 * c.n), np.float64)
        c.acc = <double *>cnp.PyArray_DATA(acc)
    with nogil:
        af_pool_run(fn, &c, rows, c.rows_per_chunk, nt)
        if with_db:
            sum_chunks(c.acc, nchunks, 2 * c.n, <char *>cnp.PyArray_DATA(db), cnp.PyArray_TYPE(dz) == NPY_FLOAT)
        af_clear_fp_status()
