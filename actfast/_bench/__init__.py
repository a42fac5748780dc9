"""``python -m actfast bench``: time actfast against NumPy (and PyTorch, numexpr).

Three scenarios (``--scenario``): ``elementwise``, the default, described below (every
op alone, against NumPy and the peers); ``train`` (:mod:`.train`: one SGD step of an
MLP 784-512-512-10 four ways, NumPy, NumPy with actfast's activations, actfast.Dense
and PyTorch, and scikit-learn's MLPClassifier with actfast's activations patched in),
for what is left of the speed-up in a whole training step; ``loop`` (:mod:`.loop`:
every op right after a NumPy matmul), for the cost of an op when OpenBLAS's threads
have just held the cores. Their modules' docstrings say what they measure and how.

The package: :mod:`.cases` (the op table, implementations, inputs, references, the
check), :mod:`.timing` (interleaved timing, one case checked then timed, memory peaks,
progress), :mod:`.report` (metadata, tables, plot, JSON), :mod:`.cli` (the arguments
and the elementwise run), :mod:`.train` and :mod:`.loop`. The names of the first four
are re-exported here, so ``actfast._bench.run``, ``actfast._bench.time_interleaved``
... keep working.

What is timed
-------------
For every activation (forward ``NAME``, gradient ``NAME_grad`` from the input and,
where actfast has one, gradient ``NAME_grad_from_output`` from the saved output
``y = f(x)``: kind ``grad_from_output``, ``--kind``), every dtype and every size, each
*implementation* of the same computation is raced:

``actfast``
    ``actfast.NAME(x, out=o)`` / ``actfast.NAME_grad(x, dy, out=o)`` /
    ``actfast.NAME_grad_from_output(y, dy, out=o)``.
``numpy``
    The expression a NumPy user writes: ``np.maximum(x, 0)``, ``1/(1+np.exp(-x))``,
    ``0.5*x*(1+scipy.special.erf(x/sqrt(2)))``, ``np.logaddexp(0, x)``,
    ``np.where(x > 0, x, 0.01*x)``, gradients as ``dy * (x > 0)`` ..., from the output
    as ``dy * y * (1 - y)``, ``dy * (1 - y*y)`` ... (see ``OPS``).
    Where its last step is a ufunc, that step writes into the preallocated output
    (``np.maximum(x, 0, out=y)``); ``np.where`` cannot, so those allocate.
``torch`` (when installed, unless ``--no-torch``)
    PyTorch's CPU kernels on ``torch.from_numpy`` views: the aten forward op and the
    aten ``*_backward`` op (``threshold_backward``, ``gelu_backward``, ...), through
    their ``out=`` overloads where they exist. Backward ops that take the saved forward
    output (``sigmoid_backward``, ``tanh_backward``, ``_softmax_backward_data``,
    ``_log_softmax_backward_data``, ``threshold_backward`` as autograd runs it for relu,
    ``elu_backward`` / ``leaky_relu_backward`` with ``is_result=True``) are raced in the
    ``grad_from_output`` rows, on the case's ``y``; the ``grad`` rows of sigmoid, tanh,
    softmax and log_softmax have no torch figure (PyTorch has no backward of them from
    x). log_sigmoid's buffer is precomputed, untimed, as autograd would have it.
    ``torch.set_num_threads`` is set to actfast's thread count.
``numexpr`` (when installed)
    ``numexpr.evaluate`` of the same formula with ``out=``, for the ops it can express
    (no erf: no exact gelu).

Method
------
* Inputs: ``x ~ 2.5 * N(0, 1)``, ``dy ~ N(0, 1)`` (fixed seed), contiguous.
  softmax / log_softmax work on rows of ``min(size, 1000)`` elements. A gradient from
  the output gets ``y``: the float64 forward of that x rounded to the dtype, computed
  once before the timing (``case_inputs``).
* Correctness first: each implementation's output is compared with a float64
  reference computed from the same (upcast) inputs by independent, numerically stable
  formulas (``scipy.special.expit``, ``ndtr``, ...; from the output: the formula in
  the upcast ``y``, e.g. ``-dy * expm1(y)`` for log_sigmoid). It passes when
  ``|got - ref| <= atol + rtol * |ref|`` everywhere and its dtype is the input's
  (float32: rtol 1e-4, atol 1e-5; float64: rtol 1e-9, atol 1e-11; the dense layer
  1e-4 / 1e-4 and 1e-10 / 1e-10: a few hundred float32 rounding errors of the
  terms, far below what a wrong formula or constant produces). A failing implementation is **not timed** and is
  flagged (``correct: false`` and a ``WRONG`` cell in the table).
* Warm-up, then the number of calls per sample is calibrated so that one sample lasts
  at least ``--min-batch-ms`` (2 ms quick, 5 ms full); ``n_samples`` samples are taken
  with the implementations interleaved (round-robin, rotating order) so that a drift
  of the machine hits them alike. The garbage collector is off while timing. Reported:
  the median time per call and the quartiles q1, q3 of the samples.
* Memory: ``tracemalloc`` peak of one *allocating* call (``y = f(x)``, no ``out=``)
  above what was allocated before it. NumPy (and so SciPy, numexpr's output and
  actfast) register their array buffers with tracemalloc; PyTorch's allocator does
  not, so torch has no memory figure (``peak_bytes: null``).

JSON (``--json PATH``)
----------------------
An object with two keys:

``meta``
    ``version`` (of this format, 1), ``started`` (UTC ISO time), ``command`` (argv),
    ``cpu``, ``cores`` (``os.cpu_count()``), ``platform``, ``isa`` (the kernel variant
    actfast loaded), ``threads`` (actfast's thread count during the run), ``versions``
    (python, actfast, numpy, scipy, torch, numexpr: ``null`` when absent or not raced),
    ``blas`` (threadpoolctl's list, ``[]`` without threadpoolctl), ``openblas_env`` (the
    ``OPENBLAS_*`` variables that were set), ``loadavg_start`` / ``loadavg_end`` (1-min
    load average: a busy machine makes multi-threaded timings unreliable),
    ``elapsed_s``, ``settings`` (samples, min_batch_s, sizes, dtypes, ops, kinds, alloc,
    dense_shapes, impls), ``tolerances`` ({"float32": {"rtol", "atol"}, ...}),
    ``config`` (``actfast._config.config()``). Non-finite floats are written as null.
``records``
    A list, one per (op, kind, dtype, size, impl):

    ============ ==========================================================
    op           activation name (``relu``, ``gelu_tanh``, ``softmax`` ...)
    kind         ``forward``, ``grad``, ``grad_from_output`` or ``dense``
    dtype        ``float32`` or ``float64``
    size         number of output elements
    shape        list: the array shape; for dense ``[batch, in, out]``
    impl         ``actfast``, ``numpy``, ``torch``, ``numexpr``
    median_s     median seconds per call (``null`` when not timed)
    q1_s, q3_s   first and third quartile of the per-call sample times
    min_s        the fastest sample (steadier than the median on a busy machine)
    n_samples    samples taken (each the mean of ``number`` calls)
    number       calls per sample
    preallocated whether the timed call wrote into a preallocated output
    peak_bytes   tracemalloc peak of one allocating call (``null``: not measurable)
    correct      passed the check against the float64 reference
    max_abs_err  max ``|got - ref|`` (``null`` if it raised)
    error        why it is not timed (wrong result, wrong dtype, exception), else null
    ============ ==========================================================
"""

from .cases import (DENSE_ACTIVATIONS, GELU_K, INV_SQRT_2PI, KINDS, OP_NAMES, OPS, SELU_ALPHA, SELU_SCALE,
                    SOFTMAX_WIDTH, SQRT2, TOLERANCES, Case, Impl, OpSpec, Prepared, _module_version,
                    _prep_actfast, _prep_numexpr, _prep_numpy, _prep_torch, _torch_call, case_inputs, check,
                    default_impls, make_inputs, op_kinds, reference_for)
from .cli import DENSE_SHAPES, FULL_SIZES, QUICK_SIZES, add_arguments, main, run
from .report import IMPL_ORDER, format_markdown, format_text, header_lines, metadata, plot
from .timing import Progress, measure_case, time_interleaved

__all__ = [  # re-exported: what tests, bench/ scripts and the command reach as actfast._bench.NAME
    "DENSE_ACTIVATIONS", "GELU_K", "INV_SQRT_2PI", "KINDS", "OP_NAMES", "OPS", "SELU_ALPHA", "SELU_SCALE",
    "SOFTMAX_WIDTH", "SQRT2", "TOLERANCES", "Case", "Impl", "OpSpec", "Prepared", "_module_version",
    "_prep_actfast", "_prep_numexpr", "_prep_numpy", "_prep_torch", "_torch_call", "case_inputs", "check",
    "default_impls", "make_inputs", "op_kinds", "reference_for", "DENSE_SHAPES", "FULL_SIZES", "QUICK_SIZES",
    "add_arguments", "main", "run", "IMPL_ORDER", "format_markdown", "format_text", "header_lines",
    "metadata", "plot", "Progress", "measure_case", "time_interleaved",
]
