"""rfcheck: exact receptive field, jump, output size and parameter budget of a CNN, and
design checks, without running it."""
from .analysis import analyze
from .call import Call
from .errors import RFCheckError, TraceError
from .ops import register_function, register_module
from .report import SCHEMA_VERSION, Layer, ModelRF, Params, Report

__version__ = "0.1.0"

__all__ = ["analyze", "Report", "Layer", "ModelRF", "Params", "Call", "register_function", "register_module",
           "RFCheckError", "TraceError", "SCHEMA_VERSION", "__version__"]
