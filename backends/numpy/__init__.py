"""The numpy reference backend: runs a graph op by op with each op's numpy reference."""

from backends.numpy.interpreter import Interpreter, build
from graphc.backend import register_backend

register_backend("numpy", build)

__all__ = ["Interpreter", "build"]
