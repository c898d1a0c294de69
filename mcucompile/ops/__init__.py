"""Op families; importing this package registers every op and kernel reference."""

from . import batchnorm, conv, elementwise, gemm, lut, pool, reduce, reshape, slicing, softmax  # noqa: F401
from . import conv_transpose  # noqa: F401
from . import norm, pad, resize  # noqa: F401
from . import prelu, select  # noqa: F401
from .registry import get, is_supported, kernel_reference, supported_ops  # noqa: F401
