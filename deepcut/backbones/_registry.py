"""Backbone registry and factory, in the style of timm's ``register_model``/``create_model``.

Builders register themselves with :func:`register_backbone`; users go through
:func:`create_backbone` (a named backbone, never a fallback) or :func:`resolve_backbone`
(``"auto"``: DINO ViT-S/8 when its weights can be had, else the weight-free ``classic``).
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import WeightsError
from . import weights as _weights
from .base import Backbone

__all__ = [
    "DEFAULT_BACKBONE",
    "BackboneFallbackWarning",
    "BackboneSpec",
    "create_backbone",
    "get_backbone_spec",
    "list_backbones",
    "register_backbone",
    "resolve_backbone",
]

_logger = logging.getLogger(__name__)

#: The paper's backbone (DeepCut section 4): DINO ViT-S/8, keys of the last block.
DEFAULT_BACKBONE = "dino_vits8"
#: Prefix that selects any timm ViT by its timm name, e.g. ``timm:vit_tiny_patch16_224``.
TIMM_PREFIX = "timm:"
#: Options with a meaning for ViTs only; a weight-free backbone (``classic``) ignores them.
VIT_ONLY_OPTIONS = ("pos_embed", "channel_layout", "dino_head", "precision")

_B = TypeVar("_B", bound=Callable[..., Backbone])


class BackboneFallbackWarning(UserWarning):
    """``auto`` could not get DINO weights and fell back to the ``classic`` backbone."""


@dataclass(frozen=True)
class BackboneSpec:
    """One registry entry.

    Attributes:
        name: short registry name (``dino_vits8``).
        builder: ``builder(**kwargs) -> Backbone``.
        timm_name: the timm model name with its weights tag, or None (``classic``).
        checkpoint_hint: file name of the original checkpoint, quoted in error messages.
        description: first line of the builder's docstring.
    """

    name: str
    builder: Callable[..., Backbone]
    timm_name: str | None = None
    checkpoint_hint: str | None = None
    description: str = ""


_BACKBONES: dict[str, BackboneSpec] = {}


def register_backbone(
    name: str,
    *,
    timm_name: str | None = None,
    checkpoint_hint: str | None = None,
    description: str | None = None,
) -> Callable[[_B], _B]:
    """Decorator that registers a backbone builder under ``name``.

    Args:
        name: registry name.
        timm_name: timm model name (with tag) the builder wraps, if any.
        checkpoint_hint: original checkpoint file name to suggest in error messages.
        description: one line; None takes the first line of the builder's docstring.

    Returns:
        The decorator; it returns the builder unchanged.
    """

    def decorator(fn: _B) -> _B:
        if name in _BACKBONES:
            warnings.warn(f"backbone {name!r} registered twice; the later one wins.", stacklevel=2)
        doc = (fn.__doc__ or "").strip().splitlines()
        text = description if description is not None else (doc[0] if doc else "")
        _BACKBONES[name] = BackboneSpec(name, fn, timm_name, checkpoint_hint, text)
        return fn

    return decorator


def list_backbones(pattern: str | None = None) -> list[str]:
    """Sorted registry names, optionally filtered by an fnmatch wildcard (``"dino*"``).

    Any timm ViT can also be used as ``"timm:<timm name>"``; those are not listed.
    """
    names = sorted(_BACKBONES)
    return names if pattern is None else [n for n in names if fnmatch.fnmatch(n, pattern)]


def _unknown(name: str, choices: list[str], extra: str = "") -> ValueError:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"Unknown backbone {name!r}.{hint} Choices: {', '.join(choices)}{extra}.")


def get_backbone_spec(name: str) -> BackboneSpec:
    """The registry entry of ``name``.

    Raises:
        ValueError: for an unknown name, listing close matches and all choices.
    """
    try:
        return _BACKBONES[name]
    except KeyError:
        raise _unknown(
            name,
            list_backbones(),
            "; 'auto' (resolve_backbone) or 'timm:<vit name>' for any timm ViT",
        ) from None


def _timm_spec(name: str) -> BackboneSpec:
    """A spec for ``timm:<name>``; the timm name must be a known timm model."""
    import timm

    from .vit import create_vit

    timm_name = name[len(TIMM_PREFIX) :]
    if not timm.is_model(timm_name):
        vits = timm.list_models("vit_*")
        close = difflib.get_close_matches(timm_name, vits, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(TIMM_PREFIX + c for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown timm model {timm_name!r} in backbone {name!r}.{hint} "
            "See timm.list_models('vit_*') for the choices."
        )

    def builder(**kwargs: Any) -> Backbone:
        return create_vit(name, timm_name, **kwargs)

    return BackboneSpec(name, builder, timm_name, None, f"timm model {timm_name}")


def create_backbone(
    name: str = DEFAULT_BACKBONE,
    *,
    weights: str | None = None,
    stride: int | None = None,
    size: int = 280,
    pretrained: bool = True,
    device: str | None = None,
    max_size: int | None = None,
    resize: str | None = None,
    resample: str | None = None,
    pos_embed: str | None = None,
    channel_layout: str | None = None,
    dino_head: str | None = None,
    precision: str | None = None,
    **model_kwargs: Any,
) -> Backbone:
    """Build a backbone by name. A named backbone never falls back to another one.

    Args:
        name: a registry name (:func:`list_backbones`) or ``"timm:<timm ViT name>"``.
        weights: path to a local checkpoint (timm or original DINO layout); overrides
            ``pretrained``.
        stride: patch stride in input pixels; None keeps the patch size (no overlap).
        size: short side of the network input in pixels (DeepCut: 280).
        pretrained: load hub weights (cache, or download when online); False gives a
            random-init ViT, for tests.
        device: ``"cpu"``, ``"cuda"``, ...; None means CPU.
        max_size: cap on the long side of the input; None means ``4 * size``.
        resize: ``"aspect"`` (default) or ``"square"`` (DeepCut's squash to ``size x size``).
        resample: PIL resize filter (``bicubic``, ``bilinear``, ``lanczos``, ``nearest``);
            None = the backbone's own.
        pos_embed: ViT position-embedding resampling, ``"timm"`` (default) or ``"dino"``.
        channel_layout: ViT key channels, ``"head_major"`` (default) or ``"interleaved"``.
        dino_head: network of a DINO full checkpoint, ``"teacher"`` (default) or ``"student"``.
        precision: ViT forward ``"fp32"`` (default) or ``"bf16"`` (autocast; keys in float32).
            These four mean nothing to ``classic`` and are not passed to it.
        **model_kwargs: extra timm ``create_model`` arguments (e.g. ``depth=2`` for tiny
            test models); None values are dropped so model defaults stand.

    Returns:
        The backbone, in eval mode.

    Raises:
        ValueError: unknown name (close matches and all choices are listed).
        WeightsError: weights missing (offline, not cached), unreadable or mismatched.
        ConfigError: invalid stride, size or device.

    Example:
        >>> bb = create_backbone("timm:vit_tiny_patch16_224", pretrained=False, depth=2)
        >>> bb.patch_size, bb.stride, bb.feature_dim
        (16, 16, 192)
    """
    spec = _timm_spec(name) if name.startswith(TIMM_PREFIX) else get_backbone_spec(name)
    kwargs = dict(
        weights=weights,
        stride=stride,
        size=size,
        pretrained=pretrained,
        device=device,
        max_size=max_size,
        resize=resize,
        resample=resample,
        pos_embed=pos_embed,
        channel_layout=channel_layout,
        dino_head=dino_head,
        precision=precision,
        **model_kwargs,
    )
    # Like timm's create_model: unset options never override the builder's defaults.
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if spec.timm_name is None:
        kwargs = {k: v for k, v in kwargs.items() if k not in VIT_ONLY_OPTIONS}
    return spec.builder(**kwargs)


def resolve_backbone(
    name: str = "auto",
    weights: str | None = None,
    **kwargs: Any,
) -> Backbone:
    """Like :func:`create_backbone`, plus ``"auto"``: DINO ViT-S/8 if possible, else ``classic``.

    ``"auto"`` uses ``dino_vits8`` when its weights can be had: the file given by ``weights``,
    the local Hugging Face/timm cache, or a download when online. Offline (``HF_HUB_OFFLINE``)
    or with the hub unreachable (one bounded probe, :func:`~.weights.hub_reachable`) it falls
    back at once, without download retries. Otherwise it emits exactly one
    :class:`BackboneFallbackWarning` saying why and how to get DINO, and returns ``classic``.
    Any other name is built by :func:`create_backbone` and never falls back.

    Args:
        name: ``"auto"``, a registry name or ``"timm:<name>"``.
        weights: local checkpoint path; with ``"auto"`` a bad file raises (no fallback).
        **kwargs: passed to :func:`create_backbone` (``stride``, ``size``, ``device``,
            ``max_size``, ``resize``, ``resample``, ...; with ``"auto"`` only these six also
            reach ``classic``).

    Returns:
        The backbone.

    Raises:
        ValueError, WeightsError, ConfigError: as :func:`create_backbone`.
    """
    if name != "auto":
        return create_backbone(name, weights=weights, **kwargs)
    if weights is not None:
        return create_backbone(DEFAULT_BACKBONE, weights=weights, **kwargs)
    spec = get_backbone_spec(DEFAULT_BACKBONE)
    assert spec.timm_name is not None  # registered with one in vit.py
    # timm keeps its DINO weights in the hub repo "timm/<name>" (checked by a test): known
    # here, the check needs no timm import, which the classic fallback would not use
    status = _weights.hub_weights_status(spec.timm_name, hub_id=f"timm/{spec.timm_name}")
    if status in ("offline", "unreachable"):
        why = _weights.hub_unavailable_reason(status)
    else:
        try:
            return create_backbone(DEFAULT_BACKBONE, **kwargs)
        except WeightsError as err:  # e.g. the download failed
            _logger.debug("auto: %s", err)
            why = "the download failed"
    warnings.warn(
        BackboneFallbackWarning(
            f"backbone 'auto': no DINO weights for {DEFAULT_BACKBONE} ({why}); using the "
            f"weight-free 'classic' backbone. To use DINO, pass --weights PATH to a DINO "
            f"checkpoint (e.g. {spec.checkpoint_hint}) or run once online so timm caches "
            f"{spec.timm_name}."
        ),
        stacklevel=2,
    )
    shared = ("stride", "size", "device", "max_size", "resize", "resample")
    common = {k: v for k, v in kwargs.items() if k in shared}
    return create_backbone("classic", **common)
