# Included by _kernels.pyx.tp: prelu (actfast/_prelu.py) with one weight per channel,
# and its backward, which needs dx = dy if x > 0 else w[c] * dy  AND  dw[c] = sum of
# dy * x over x <= 0.
#
# Design: the input is viewed as (outer, C, inner), C the channel axis (C = 1 for a
# one-element weight), with any strides, so that every layout NumPy can reshape to that
# without a copy is read in place. NumPy would need two passes and a temporary of x's
# size for dw (np.where(x > 0, 0, x * dy).sum(...)); here dx and dw are one pass: the
# flat index range [0, outer*C*inner) is cut into FIXED chunks (their size depends on
# the shape and the cheap cost class's threshold only, never on the thread count), each
# chunk writes dx and adds its dw contributions in double into its own row of C partial
# sums, and the rows are added in chunk order at the end. So dw is bit-identical on any
# number of threads, as the dense layer's bias gradient (_dense.pxi) is. Within a chunk
# the index range is walked in segments on which the channel is constant (inner > 1,
# summed with eight accumulators so that the loop vectorises) or on which it steps by
# one (inner == 1, channels last: each element goes into its own channel's sum). The
# chunks are at least 16 * C elements, so the partial sums never take more than 1/16 of
# x's element count. The forward walks the same segments (a one-element weight uses the
# leaky_relu ufunc instead: its scalar-slope loop is as fast).

ctypedef struct prelu_ctx:
    const char *x
    const char *dy
    char *dx
    const char *w           # C weights, contiguous, in the compute dtype
    double *acc             # nchunks rows of C partial sums
    npy_intp sx[3]
    npy_intp sdy[3]
    npy_intp sdx[3]
    npy_intp C
    npy_intp inner
    npy_intp chunk


cdef inline real_t prelu_dx(real_t x, real_t dy, real_t w) noexcept nogil:
    # NaN x propagates, as in leaky_relu_grad (PyTorch gives w * dy there); x == 0 takes
    # the w branch, as PyTorch.
    return dy if x > 0 else (x if x != x else w * dy)


cdef inline double prelu_plane(const char *x, npy_intp sx, const char *dy, npy_intp sdy, char *dx,
                               npy_intp sdx, npy_intp n, real_t w) noexcept nogil:
    """dx over n elements of one channel; returns the sum of dy * x where x <= 0 (or is
    NaN, so that a NaN input makes dw NaN, as in PyTorch), in double. Eight
    accumulators: a single running double sum is a chain of dependent adds."""
    cdef double s[8]
    cdef npy_intp i = 0, k
    cdef real_t xv, d
    for k in range(8):
        s[k] = 0
    while i + 8 <= n:
        for k in range(8):
            xv = (<const real_t *>(x + (i + k) * sx))[0]
            d = (<const real_t *>(dy + (i + k) * sdy))[0]
            (<real_t *>(dx + (i + k) * sdx))[0] = prelu_dx(xv, d, w)
            s[k] += 0.0 if xv > 0 else <double>xv * <double>d
        i += 8
    while i < n:
        xv = (<const real_t *>(x + i * sx))[0]
        d = (<const real_t *>(dy + i * sdy))[0]
        (<real_t *>(dx + i * sdx))[0] = prelu_dx(xv, d, w)
        s[0] += 0.0 if xv > 0 else <double>xv * <double>d
        i += 1
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))


cdef inline void prelu_row(const char *x, npy_intp sx, const char *dy, npy_intp sdy, char *dx, npy_intp sdx,
                           npy_intp n, const real_t *w, double *acc) noexcept nogil:
    # Channels last (inner == 1): element j belongs to channel j (w and acc start there).
    cdef npy_intp j
    cdef real_t xv, d
    for j in range(n):
        xv = (<const real_t *>(x + j * sx))[0]
        d = (<const real_t *>(dy + j * sdy))[0]
        (<real_t *>(dx + j * sdx))[0] = prelu_dx(xv, d, w[j])
        acc[j] += 0.0 if xv > 0 else <double>xv * <double>d


cdef inline void prelu_plane_fwd(const char *x, npy_intp sx, char *y, npy_intp sy, npy_intp n, real_t w) noexcept nogil:
    cdef npy_intp i
    cdef real_t xv
    for i in range(n):
        xv = (<const real_t *>(x + i * sx))[0]
        (<real_t *>(y + i * sy))[0] = xv if xv > 0 else xv * w


cdef inline void prelu_row_fwd(const char *x, npy_intp sx, char *y, npy_intp sy, npy_intp n,
                               const real_t *w) noexcept nogil:
    cdef npy_intp j
    cdef real_t xv
    for j in range(n):
        xv = (<const real_t *>(x + j * sx))[0]
        (<real_t *>(y + j * sy))[0] = xv if xv > 0 else xv * w[j]


cdef inline void prelu_fwd_chunks(void *ctx, Py_ssize_t lo, Py_ssize_t hi, real_t tag) noexcept nogil:
    # The forward (dy and acc unused, dx is y): the same walk as prelu_chunks, so that
    # channels-last rows and NCHW planes both get a loop the compiler vectorises (the
    # leaky_relu ufunc with an array slope takes its strided, branching loop there).
    cdef prelu_ctx *c = <prelu_ctx *>ctx
    cdef npy_intp C = c.C, inner = c.inner, idx, n, p, o, ch, i0
    cdef const real_t *w = <const real_t *>c.w
    cdef const char *xp
    cdef char *yp
    idx = lo
    while idx < hi:
        if inner == 1:
            o = idx // C
            ch = idx - o * C
            n = min(<npy_intp>hi - idx, C - ch)
            xp = c.x + o * c.sx[0] + ch * c.sx[1]
            yp = c.dx + o * c.sdx[0] + ch * c.sdx[1]
            if c.sx[1] == sizeof(real_t) and c.sdx[1] == sizeof(real_t):
                prelu_row_fwd(xp, sizeof(real_t), yp, sizeof(real_t), n, w + ch)
            else:
                prelu_row_fwd(xp, c.sx[1], yp, c.sdx[1], n, w + ch)
        else:
            p = idx // inner
            o = p // C
            ch = p - o * C
            i0 = idx - p * inner
            n = min(<npy_intp>hi - idx, inner - i0)
            xp = c.x + o * c.sx[0] + ch * c.sx[1] + i0 * c.sx[2]
            yp = c.dx + o * c.sdx[0] + ch * c.sdx[1] + i0 * c.sdx[2]
            if c.sx[2] == sizeof(real_t) and c.sdx[2] == sizeof(real_t):
                prelu_plane_fwd(xp, sizeof(real_t), yp, sizeof(real_t), n, w[ch])
            else:
                prelu_plane_fwd(xp, c.sx[2], yp, c.sdx[2], n, w[ch])
        idx += n


cdef inline void prelu_chunks(void *ctx, Py_ssize_t lo, Py_ssize_t hi, real_t tag) noexcept nogil:
    # [lo, hi) starts on a chunk boundary (a pool claim, or 0 when the job runs on the
    # calling thread) and may span several chunks: each gets its own row of sums.
    cdef prelu_ctx *c = <prelu_ctx *>ctx
    cdef npy_intp C = c.C, inner = c.inner, start, end, idx, n, p, o, ch, i0
    cdef const real_t *w = <const real_t *>c.w
    cdef double *acc
    cdef const char *xp
    cdef const char *dyp
    cdef char *dxp
    start = lo
    while start < hi:
        end = min(start + c.chunk, <npy_intp>hi)
        acc = c.acc + (start // c.chunk) * C
        idx = start
        while idx < end:
            if inner == 1:
                o = idx // C
                ch = idx - o * C
                n = min(end - idx, C - ch)
                xp = c.x + o * c.sx[0] + ch * c.sx[1]
                dyp = c.dy + o * c.sdy[0] + ch * c.sdy[1]
                dxp = c.dx + o * c.sdx[0] + ch * c.sdx[1]
                # Constant strides in the common case let the compiler specialise the loop.
                if c.sx[1] == sizeof(real_t) and c.sdy[1] == sizeof(real_t) and c.sdx[1] == sizeof(real_t):
                    prelu_row(xp, sizeof(real_t), dyp, sizeof(real_t), dxp, sizeof(real_t), n, w + ch, acc + ch)
                else:
                    prelu_row(xp, c.sx[1], dyp, c.sdy[1], dxp, c.sdx[1], n, w + ch, acc + ch)
            else:
                p = idx // inner
                o = p // C
                ch = p - o * C
                i0 = idx - p * inner
                n = min(end - idx, inner - i0)
                xp = c.x + o * c.sx[0] + ch * c.sx[1] + i0 * c.sx[2]
                dyp = c.dy + o * c.sdy[0] + ch * c.sdy[1] + i0 * c.sdy[2]
                dxp = c.dx + o * c.sdx[0] + ch * c.sdx[1] + i0 * c.sdx[2]
                if c.sx[2] == sizeof(real_t) and c.sdy[2] == sizeof(real_t) and c.sdx[2] == sizeof(real_t):
                    acc[ch] += prelu_plane(xp, sizeof(real_t), dyp, sizeof(real_t), dxp, sizeof(real_t), n, w[ch])
                else:
                    acc[ch] += prelu_plane(xp, c.sx[2], dyp, c.sdy[2], dxp, c.sdx[2], n, w[ch])
            idx += n
        start = end


# Concrete chunk functions for the pool (a function pointer cannot be fused-typed).
cdef void prelu_chunks_f(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    prelu_chunks(c, lo, hi, <float>0)
cdef void prelu_chunks_d(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    prelu_chunks(c, lo, hi, <double>0)
cdef void prelu_fwd_chunks_f(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    prelu_fwd_chunks(c, lo, hi, <float>0)
cdef void prelu_fwd_chunks_d(void *c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    prelu_fwd_chunks(c, lo, hi, <double>0)


cdef inline npy_intp prelu_chunk_items(npy_intp total, npy_intp C) noexcept nogil:
    # At most 64 chunks (so the pool never enlarges them, af_pool_fit_chunk), none
    # smaller than a quarter of the cheap class's threshold, none under 16 * C (the
    # partial sums stay small); the thread count plays no part.
    return max((total + 63) // 64, _min_per_thread[0] // 4, 16 * max(C, <npy_intp>1), <npy_intp>1)


def _prelu_chunk_items(npy_intp total, npy_intp C):
    """Elements per chunk of _prelu_grad for this shape (for the tests)."""
    return prelu_chunk_items(total, C)


cdef void prelu_setup(prelu_ctx *c, cnp.ndarray x, cnp.ndarray dy, cnp.ndarray dx, cnp.ndarray w):
    cdef int j
    c.x = <const char *>cnp.PyArray_DATA(x)
    c.dy = <const char *>cnp.PyArray_DATA(dy)
    c.dx = <char *>cnp.PyArray_DATA(dx)
    c.w = <const char *>cnp.PyArray_DATA(w)
    for j in range(3):
        c.sx[j] = x.strides[j]
        c.sdy[j] = dy.strides[j]
        c.sdx[j] = dx.strides[j]
    c.C = x.shape[1]
    c.inner = x.shape[2]
    c.chunk = prelu_chunk_items(x.shape[0] * x.shape[1] * x.shape[2], c.C)


def _prelu(cnp.ndarray x, cnp.ndarray y, cnp.ndarray w):
    """y[:] = x if x > 0 else w[c] * x. x, y: 3-d (outer, C, inner), one float dtype, any
    strides (y may be x); w: contiguous (C,) of that dtype. Checked by actfast/_prelu.py."""
    cdef prelu_ctx c
    cdef npy_intp total = x.shape[0] * x.shape[1] * x.shape[2]
    cdef int nt = threads_for(total, 0)
    cdef af_chunk_fn fn = prelu_fwd_chunks_f if cnp.PyArray_TYPE(x) == NPY_FLOAT else prelu_fwd_chunks_d
    prelu_setup(&c, x, x, y, w)
    c.acc = NULL
    with nogil:
        af_pool_run(fn, &c, total, chunk_for(total, nt, 0) if nt > 1 else total, nt)
        af_clear_fp_status()


def _prelu_grad(cnp.ndarray x, cnp.ndarray dy, cnp.ndarray dx, cnp.ndarray w, cnp.ndarray dw):
    """dx[:] = dy if x > 0 else w[c] * dy and dw[c] = sum(dy * x where x <= 0), summed in
    double, in one pass. x, dy, dx: 3-d (outer, C, inner), one float dtype, any strides
    (dx may be x or dy itself, element for element); w: contiguous (C,) of that dtype; dw:
    contiguous float64 (C,). Checked by actfast/_prelu.py."""
    cdef prelu_ctx c
    cdef npy_intp total = x.shape[0] * x.shape[1] * x.shape[2], nchunks, j, k
    cdef int nt = threads_for(total, 0)
    cdef af_chunk_fn fn = prelu_chunks_f if cnp.PyArray_TYPE(x) == NPY_FLOAT else prelu_chunks_d
    cdef double total_c
    cdef double *dwp = <double *>cnp.PyArray_DATA(dw)
    cdef cnp.ndarray acc
    prelu_setup(&c, x, dy, dx, w)
    nchunks = max(<npy_intp>1, (total + c.chunk - 1) // c.chunk)
    acc = np.zeros((nchunks, max(c.C, <npy_intp>1)), np.float64)
    c.acc = <double *>cnp.PyArray_DATA(acc)
    with nogil:
        af_pool_run(fn, &c, total, c.chunk, nt)
        for j in range(c.C):
            total_c = 0
            for k in range(nchunks):
                total_c += c.acc[k * c.C + j]
            dwp[j] = total_c
        af_clear_fp_status()
