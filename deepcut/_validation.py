"""Declarative parameter validation with scikit-learn-style messages.

Estimators list their constraints in a class dict ``_parameter_constraints``; :func:`validate_params`
checks them when ``fit`` starts and raises one :class:`ValueError` (or :class:`TypeError`) such as::

    The 'n_clusters' parameter of SpectralNCut must be an int in the range [2, inf). Got 1 instead.

We keep a small validator of our own instead of importing scikit-learn's private module.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral
from typing import Any, ClassVar

from deepcut.errors import ConfigError

__all__ = ["Interval", "Options", "ParamsMixin", "check_n_clusters", "validate_params"]


@dataclass(frozen=True)
class Interval:
    """A numeric range. ``type`` is ``Integral`` or ``Real``; ``closed`` is both|left|right|neither."""

    type: type
    left: float | None
    right: float | None
    closed: str = "both"

    def __contains__(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.type):
            return False
        if isinstance(value, float) and math.isnan(value):
            return False
        lo_ok = self.left is None or (
            value >= self.left if self.closed in ("both", "left") else value > self.left
        )
        hi_ok = self.right is None or (
            value <= self.right if self.closed in ("both", "right") else value < self.right
        )
        return lo_ok and hi_ok

    def __str__(self) -> str:
        kind = "an int" if self.type is Integral else "a float"
        lb = "[" if self.closed in ("both", "left") and self.left is not None else "("
        rb = "]" if self.closed in ("both", "right") and self.right is not None else ")"
        lo = "-inf" if self.left is None else f"{self.left:g}"
        hi = "inf" if self.right is None else f"{self.right:g}"
        return f"{kind} in the range {lb}{lo}, {hi}{rb}"


@dataclass(frozen=True)
class Options:
    """A closed set of allowed values (usually strings)."""

    values: frozenset

    def __init__(self, values: Iterable[Any]):
        object.__setattr__(self, "values", frozenset(values))

    def __contains__(self, value: Any) -> bool:
        try:
            return value in self.values
        except TypeError:
            return False

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in sorted(self.values, key=str))


def _describe(c: Any) -> str:
    if c is None:
        return "None"
    if c == "boolean":
        return "a bool"
    if c == "random_state":
        return "an int seed or None"
    if isinstance(c, type):
        return f"an instance of {c.__name__}"
    if callable(c) and not isinstance(c, (Interval, Options)):
        return getattr(c, "__doc__", None) or c.__name__
    return str(c)


def _satisfies(value: Any, c: Any) -> bool:
    if c is None:
        return value is None
    if c == "boolean":
        return isinstance(value, bool)
    if c == "random_state":
        return value is None or (isinstance(value, Integral) and not isinstance(value, bool))
    if isinstance(c, (Interval, Options)):
        return value in c
    if isinstance(c, type):
        return isinstance(value, c)
    if callable(c):
        return bool(c(value))
    raise TypeError(f"unknown constraint {c!r}")


def validate_params(params: Mapping[str, Any], constraints: Mapping[str, list], owner: str) -> None:
    """Check ``params`` against ``constraints``; raise one clear ValueError on the first violation."""
    for name, allowed in constraints.items():
        if name not in params:
            continue
        value = params[name]
        if any(_satisfies(value, c) for c in allowed):
            continue
        descs = [_describe(c) for c in allowed]
        expect = descs[0] if len(descs) == 1 else ", ".join(descs[:-1]) + " or " + descs[-1]
        raise ValueError(
            f"The {name!r} parameter of {owner} must be {expect}. Got {value!r} instead."
        )


def check_n_clusters(n_nodes: int, n_clusters: int, owner: str = "solver") -> None:
    """Data-dependent check: K may not exceed the number of nodes (raises ConfigError, a ValueError)."""
    if n_clusters > n_nodes:
        raise ConfigError(
            f"n_nodes={n_nodes} should be >= n_clusters={n_clusters} ({owner}). "
            "Use a larger image, a smaller stride, or fewer clusters."
        )


class ParamsMixin:
    """scikit-learn's parameter protocol for estimators that declare ``_parameter_constraints``:
    ``get_params``, ``set_params`` (unknown names refused), a repr of the parameters, and
    ``_validate_params`` to call when ``fit`` starts."""

    _parameter_constraints: ClassVar[dict[str, list]] = {}

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters (``deep`` is accepted for scikit-learn's ``clone``; no
        parameter is itself an estimator)."""
        return {k: getattr(self, k) for k in self._parameter_constraints}

    def set_params(self, **params: Any):
        for k, v in params.items():
            if k not in self._parameter_constraints:
                raise ValueError(f"Invalid parameter {k!r} for {type(self).__name__}; "
                                 f"valid: {sorted(self._parameter_constraints)}.")
            setattr(self, k, v)
        return self

    def _validate_params(self) -> None:
        validate_params(self.get_params(), self._parameter_constraints, type(self).__name__)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
