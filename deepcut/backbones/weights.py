"""Backbone weights: hub availability, local checkpoint files, strict loading.

Local files are read with ``torch.load(weights_only=True)``; the only extra type allowed is
``argparse.Namespace`` (the ``args`` entry of DINO full training checkpoints). Supported layouts,
each with one small key filter:

- ``state-dict``: a timm or original DINO backbone state dict (``dino_deitsmall8_pretrain.pth``),
  possibly wrapped in ``state_dict``/``model`` and with ``module.``/``backbone.`` prefixes;
- ``dino-full``: a DINO training checkpoint (``{"teacher", "student", "args", "optimizer", ...}``).
  ``dino_head`` picks the network: ``"teacher"`` (default: the EMA network DINO evaluates and
  releases as its backbone-only files) or ``"student"`` (what the DeepCut paper, section 4, and its
  reference extractor use: ``state_dict['student']``). The weights id then ends in ``#teacher`` or
  ``#student``. A backbone-only file holds one network (DINO's released ones are the teacher), so
  asking it for the student gives one warning and loads the file as is.

After the layout filter, timm's own ViT converter (``checkpoint_filter_fn``) adapts original
DINOv2 keys and resamples ``pos_embed`` to the model's grid. Loading is always ``strict=True``;
any mismatch is one :class:`~deepcut.errors.WeightsError` line.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import pickle
import re
import warnings
from typing import Any, Literal

import torch

from ..errors import WeightsError

__all__ = [
    "DINO_HEADS",
    "HUB_CHECK_TIMEOUT",
    "file_weights_id",
    "hub_reachable",
    "hub_unavailable_reason",
    "hub_weights_id",
    "hub_weights_status",
    "load_weights_file",
    "missing_weights_message",
    "read_checkpoint",
]

_logger = logging.getLogger(__name__)

HubStatus = Literal["cached", "online", "offline", "unreachable", "none"]

#: Seconds the one hub probe may take (:func:`hub_reachable`); a connected machine answers in
#: well under a second, an unplugged one fails at once or at this bound, never after retries.
HUB_CHECK_TIMEOUT = 3.0
_reachable: dict[str, bool] = {}  # endpoint -> answer, probed once per process

# Files timm's hub loader looks for, in its order of preference.
_HUB_FILES = ("model.safetensors", "open_clip_model.safetensors", "pytorch_model.bin")


# --------------------------------------------------------------------------------------------
# Hub


def _hub_offline() -> bool:
    """True when huggingface_hub will not touch the network (``HF_HUB_OFFLINE=1``)."""
    import huggingface_hub
    from huggingface_hub import constants

    is_offline = getattr(huggingface_hub, "is_offline_mode", None)
    offline = is_offline() if callable(is_offline) else bool(constants.HF_HUB_OFFLINE)
    # The constant is read once at import; also honour a variable set later in the process.
    return offline or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def _probe(endpoint: str, timeout: float) -> bool:
    from huggingface_hub import get_session

    try:
        # Any HTTP answer (even 4xx) means the hub can be reached; huggingface_hub's own session
        # honours the user's proxies and certificates.
        get_session().head(endpoint, timeout=timeout)
    except Exception as err:  # noqa: BLE001 - DNS, refused, timeout, TLS: all "unreachable"
        _logger.debug("hub probe %s failed: %s", endpoint, err)
        return False
    return True


def hub_reachable(timeout: float = HUB_CHECK_TIMEOUT) -> bool:
    """Whether the Hugging Face hub answers one HEAD request within ``timeout`` seconds.

    Probed once per process and endpoint (``HF_ENDPOINT``). The probe runs in a daemon thread
    joined with a bound, because name resolution itself ignores socket timeouts. Without this
    check an unplugged machine spends ~45 s in huggingface_hub's download retries before the
    ``auto`` backbone can fall back.
    """
    import threading

    from huggingface_hub import constants

    endpoint = constants.ENDPOINT
    if endpoint not in _reachable:
        answer: list[bool] = []
        t = threading.Thread(target=lambda: answer.append(_probe(endpoint, timeout)), daemon=True)
        t.start()
        t.join(timeout + 0.5)
        _reachable[endpoint] = bool(answer and answer[0])
    return _reachable[endpoint]


def hub_unavailable_reason(status: str) -> str:
    """Why weights with hub ``status`` ``"offline"``/``"unreachable"`` cannot be had (for messages)."""
    if status == "unreachable":
        from huggingface_hub import constants

        return (f"the hub {constants.ENDPOINT} cannot be reached (checked once, "
                f"{HUB_CHECK_TIMEOUT:g} s) and they are not in the local cache")
    return "HF_HUB_OFFLINE is set and they are not in the local cache"


def hub_weights_status(timm_name: str, cache_dir: str | None = None,
                       hub_id: str | None = None) -> HubStatus:
    """Whether timm's pretrained weights for ``timm_name`` can be had, without a download.

    Args:
        timm_name: timm model name, with or without a weights tag.
        cache_dir: Hugging Face cache folder; None uses the default.
        hub_id: the weights' Hugging Face repo when the caller knows it (the ``auto``
            backbone's DINO): then timm is not imported (~4 s with the wandb it pulls in),
            which is what the weight-free fallback would otherwise pay for nothing.

    Returns:
        ``"cached"`` (in the local cache), ``"online"`` (not cached, the hub answers: the
        download may still fail), ``"offline"`` (not cached, ``HF_HUB_OFFLINE`` set),
        ``"unreachable"`` (not cached, the hub does not answer :func:`hub_reachable`'s one
        bounded probe) or ``"none"`` (timm knows no pretrained weights for this name).
    """
    from huggingface_hub import try_to_load_from_cache

    repo, files, url = hub_id, _HUB_FILES, None
    if hub_id is None:
        import timm

        cfg = timm.models.get_pretrained_cfg(timm_name)
        if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
            return "none"
        repo, url = cfg.hf_hub_id, cfg.url
        if cfg.hf_hub_filename:
            files = (cfg.hf_hub_filename,)
    if repo:
        for filename in files:
            # Pure filesystem lookup: returns a path (str) only when the file is cached.
            if isinstance(try_to_load_from_cache(repo, filename, cache_dir=cache_dir), str):
                return "cached"
    elif url:
        cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
        if os.path.isfile(cached):
            return "cached"
    if _hub_offline():
        return "offline"
    return "online" if hub_reachable() else "unreachable"


def hub_weights_id(timm_name: str) -> str:
    """``hub:<architecture>.<tag>`` for timm's pretrained weights of ``timm_name``."""
    import timm

    cfg = timm.models.get_pretrained_cfg(timm_name)
    if cfg is None:
        return f"hub:{timm_name}"
    return f"hub:{cfg.architecture}.{cfg.tag}" if cfg.tag else f"hub:{cfg.architecture}"


def missing_weights_message(
    name: str, timm_name: str, checkpoint_hint: str | None, why: str
) -> str:
    """One line: why there are no weights for backbone ``name``, and both remedies."""
    example = f" (e.g. {checkpoint_hint})" if checkpoint_hint else ""
    return (
        f"no weights for backbone {name!r} ({why}). Pass --weights PATH (weights=PATH) to a local "
        f"checkpoint{example}, or run once online so timm caches {timm_name}."
    )


# --------------------------------------------------------------------------------------------
# Local files


def file_weights_id(path: str | os.PathLike[str]) -> str:
    """``file:<basename>@sha256:<first 12 hex>`` of a weights file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return f"file:{os.path.basename(os.fspath(path))}@sha256:{digest.hexdigest()[:12]}"


def _strip(key: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        key = key.removeprefix(prefix)
    return key


def _filter_state_dict(sd: dict[str, Any]) -> dict[str, Any]:
    """Filter a timm or DINO backbone state dict: strip wrapper prefixes, drop the classifier.

    Our ViTs are built with ``num_classes=0`` (no head), so ``head.*`` can never be used.
    """
    out = {_strip(k, ("module.", "backbone.")): v for k, v in sd.items()}
    return {k: v for k, v in out.items() if not k.startswith("head.")}


#: Networks of a DINO full checkpoint that ``dino_head`` may pick.
DINO_HEADS = ("teacher", "student")


def _filter_dino_full(ckpt: dict[str, Any], head: str = "teacher") -> dict[str, Any]:
    """DINO full checkpoint: ``backbone.*`` of ``ckpt[head]``; ``head.*`` is DINO's projection head.

    The student was trained under DistributedDataParallel, so its keys carry ``module.``.
    """
    if head not in DINO_HEADS:
        raise WeightsError(f"dino_head must be one of {DINO_HEADS}, got {head!r}.")
    net = ckpt.get(head)
    if not isinstance(net, dict):
        raise WeightsError(f"the {head!r} entry of this DINO checkpoint is not a state dict.")
    keys = {_strip(k, ("module.",)): v for k, v in net.items()}
    return {k[len("backbone.") :]: v for k, v in keys.items() if k.startswith("backbone.")}


def _detect_layout(obj: Any) -> tuple[str, dict[str, Any]]:
    """Unwrap ``state_dict``/``model`` wrappers and name the layout of a loaded checkpoint."""
    for _ in range(3):  # wrappers nest at most a couple of levels in practice
        if not isinstance(obj, dict):
            break
        if "teacher" in obj:
            return "dino-full", obj
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
        else:
            return "state-dict", obj
    raise WeightsError(f"not a checkpoint: expected a dict of tensors, found {type(obj).__name__}.")


def _allow_namespace() -> contextlib.AbstractContextManager[Any]:
    """Allow ``argparse.Namespace`` under ``weights_only=True`` (``safe_globals``: torch >= 2.5)."""
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    return safe_globals([argparse.Namespace]) if safe_globals else contextlib.nullcontext()


def _unpickling_message(path: str, text: str) -> str:
    """One line from torch's multi-paragraph ``weights_only`` error."""
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if found:
        return (
            f"cannot read weights file {path}: it holds a pickled {found.group(1)} object, refused "
            "by torch.load(weights_only=True) for safety; save a plain state dict instead."
        )
    detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    why = detail.group(1).strip() if detail else "unpickling failed"
    return f"cannot read weights file {path}: not a PyTorch checkpoint (weights_only=True: {why})"


def read_checkpoint(
    path: str | os.PathLike[str], dino_head: str = "teacher"
) -> tuple[str, dict[str, torch.Tensor]]:
    """Read a local checkpoint safely and return its layout and backbone state dict.

    Args:
        path: a ``.pth``/``.pt`` file (timm, DINO backbone or DINO full checkpoint).
        dino_head: network of a DINO full checkpoint, ``"teacher"`` or ``"student"``.

    Returns:
        ``(layout, state_dict)``: layout is ``"state-dict"`` or ``"dino-full"``; the state dict
        has timm/DINO backbone key names (no prefixes, no heads).

    Raises:
        WeightsError: missing or unreadable file, or not a checkpoint of tensors.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {path}")
    try:
        # weights_only=True refuses arbitrary pickled code; DINO full checkpoints also hold
        # their training args as an argparse.Namespace, which is harmless data.
        with _allow_namespace():
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise WeightsError(_unpickling_message(path, str(err))) from err
    except Exception as err:  # torch raises RuntimeError, EOFError, KeyError ... on junk files
        raise WeightsError(
            f"cannot read weights file {path}: not a PyTorch checkpoint ({type(err).__name__})"
        ) from err
    layout, raw = _detect_layout(obj)
    sd = _filter_dino_full(raw, dino_head) if layout == "dino-full" else _filter_state_dict(raw)
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad or not sd:
        what = f"non-tensor entries such as {bad[:3]}" if bad else "no backbone weights"
        raise WeightsError(f"weights file {path} is not a backbone state dict ({layout}: {what}).")
    return layout, sd


def _describe(model: torch.nn.Module, arch: str) -> str:
    blocks = getattr(model, "blocks", ())
    patch = getattr(getattr(model, "patch_embed", None), "patch_size", ("?",))[0]
    return (
        f"{arch} (embed_dim {getattr(model, 'embed_dim', '?')}, depth {len(blocks)}, patch {patch})"
    )


def _few(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def check_state_dict(
    model: torch.nn.Module, sd: dict[str, torch.Tensor], *, source: str, arch: str
) -> None:
    """Raise one :class:`WeightsError` line unless ``sd`` matches ``model`` key for key.

    Args:
        model: the model to load into.
        sd: candidate state dict.
        source: file name for the message.
        arch: architecture name for the message.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    shapes = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(expected[k].shape)}"
        for k in sorted(set(sd) & set(expected))
        if sd[k].shape != expected[k].shape
    ]
    if not (missing or unexpected or shapes):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({_few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches (file vs model: {_few(shapes, 2)})")
    raise WeightsError(
        f"weights file {source} does not match the architecture {_describe(model, arch)}: "
        + "; ".join(parts)
    )


def load_weights_file(
    model: torch.nn.Module,
    path: str | os.PathLike[str],
    *,
    arch: str,
    dino_head: str = "teacher",
) -> str:
    """Load a local checkpoint into a timm ViT, strictly.

    Args:
        model: a timm ``VisionTransformer``.
        path: checkpoint file (see the module docstring for layouts).
        arch: architecture name for error messages (e.g. ``vit_small_patch8_224``).
        dino_head: network of a DINO full checkpoint: ``"teacher"`` or ``"student"``.

    Returns:
        The weights id ``file:<basename>@sha256:<12 hex>``, plus ``#teacher``/``#student`` for
        a DINO full checkpoint.

    Raises:
        WeightsError: unreadable file, or any missing/unexpected key or shape mismatch.
    """
    from timm.models.vision_transformer import checkpoint_filter_fn

    layout, sd = read_checkpoint(path, dino_head)
    if layout != "dino-full" and dino_head != "teacher":
        warnings.warn(
            f"dino_head={dino_head!r} applies to DINO full training checkpoints only; "
            f"{os.path.basename(os.fspath(path))} holds one network (DINO's released backbone "
            "files are the teacher) and is loaded as is.",
            stacklevel=3,
        )
    # timm would silently resample a patch kernel of another size (e.g. a /16 checkpoint into a
    # /8 model): that is another architecture, so refuse it here.
    kernel = sd.get("patch_embed.proj.weight")
    want = model.state_dict().get("patch_embed.proj.weight")
    if kernel is not None and want is not None and kernel.shape[-2:] != want.shape[-2:]:
        raise WeightsError(
            f"weights file {os.path.basename(os.fspath(path))} has patch size "
            f"{kernel.shape[-1]}, the architecture {_describe(model, arch)} has "
            f"{want.shape[-1]}; choose the backbone that matches the checkpoint."
        )
    try:
        # timm's converter: DINOv2 original keys, pos_embed resampled to the model's grid.
        sd = checkpoint_filter_fn(sd, model)
    except Exception as err:
        raise WeightsError(
            f"weights file {path} ({layout}) cannot be adapted to {_describe(model, arch)}: {err}"
        ) from err
    check_state_dict(model, sd, source=os.path.basename(os.fspath(path)), arch=arch)
    model.load_state_dict(sd, strict=True)
    _logger.info("loaded %s weights (%s) from %s", arch, layout, path)
    return file_weights_id(path) + (f"#{dino_head}" if layout == "dino-full" else "")
