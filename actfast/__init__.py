"""actfast: fast, accurate activation functions for NumPy.

Every activation has a forward function (``relu``, ``gelu``, ...) and a fused gradient
(``relu_grad(x, dy)`` = ``dy * relu'(x)``). They are NumPy ufuncs underneath: any shape,
broadcasting, ``out=``, ``where=``, and dask/xarray arrays work as with ``np.tanh``.
Names and parameters follow ``torch.nn.functional``.
"""

from ._version import __version__
from ._dispatch import isa as _isa  # noqa: F401  (imports the kernels first)
from ._threads import get_num_threads, num_threads, set_num_threads
from ._config import show_config
from ._elementwise import *  # noqa: F403
from ._elementwise import __all__ as _elementwise_all
from ._elementwise import hardshrink, hardsigmoid, hardswish, hardtanh, logsigmoid, softshrink, tanhshrink
from ._from_output import *  # noqa: F403
from ._from_output import __all__ as _from_output_all
from ._gated import *  # noqa: F403
from ._gated import __all__ as _gated_all
from ._prelu import prelu, prelu_grad
from . import init
from .dense import Dense, dense, dense_grad, dense_saves
from .diagnostics import Sparsity, dead_fraction, dead_units, saturation, sparsity
from .born_dead import BornDeadEstimate, born_dead_probability

__all__ = [
    "__version__",
    "get_num_threads",
    "num_threads",
    "set_num_threads",
    "show_config",
    "hardshrink",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "logsigmoid",
    "softshrink",
    "tanhshrink",
    "BornDeadEstimate",
    "Dense",
    "Sparsity",
    "born_dead_probability",
    "dead_fraction",
    "dead_units",
    "dense",
    "dense_grad",
    "dense_saves",
    "init",
    "prelu",
    "prelu_grad",
    "saturation",
    "sparsity",
    *_elementwise_all,
    *_from_output_all,
    *_gated_all,
]
