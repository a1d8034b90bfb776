"""A deterministic, local, OpenAI-compatible fake provider for demos, tests and benchmarks.

See ``chat`` for the prompt-token formula and ``directives`` for the
``[sim:KEY=VALUE]`` steering tokens.
"""

from .common import SimStats
from .config import ConfigError, SimulatorConfig
from .directives import Directives, parse_directives
from .server import Simulator, make_app, run, start

__all__ = [
    "ConfigError",
    "Directives",
    "SimStats",
    "Simulator",
    "SimulatorConfig",
    "make_app",
    "parse_directives",
    "run",
    "start",
]
