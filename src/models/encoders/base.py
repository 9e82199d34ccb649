"""The vision-encoder interface: frames in, a feature grid out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.config.constraints import Constraints, Rule, join, positive_int
from src.config.errors import ConfigError
from src.models.shrink import loads_checkpoint, shrunk_depth

log = logging.getLogger(__name__)


def check_encoder(node: DictConfig, key: str, root: DictConfig) -> None:
    """Remote code needs the user's consent; `select_layer` names a layer the tower has.

    An option that loads its checkpoint's own code says so with a `trust_remote_code` key
    (a pair passes its value on to such a member, and says so first). A checkpoint's depth
    is known once it loads; a replica's is its option's `arch` after the profile's shrink.
    """
    profile = root.profile
    if loads_checkpoint(profile) and node.get("trust_remote_code") is False:
        raise ConfigError(
            f"{join(key, 'trust_remote_code')}=false is invalid with profile={profile.name}: "
            f"encoder={node.name} runs its checkpoint's own Python code; valid: true "
            f"(set {join(key, 'trust_remote_code')}=true to allow it)"
        )
    layer, depth = node.get("select_layer"), OmegaConf.select(node, "arch.num_hidden_layers")
    if loads_checkpoint(profile) or layer is None or depth is None:
        return
    depth = shrunk_depth(depth, profile)
    if not isinstance(layer, int) or not -(depth + 1) <= layer <= depth:
        raise ConfigError(
            f"{join(key, 'select_layer')}={layer!r} is invalid; valid: an integer from "
            f"{-(depth + 1)} to {depth} (the {profile.name} {node.name} has {depth} layers)"
        )


class VisionEncoder(nn.Module):
    """A vision tower behind one interface.

    encode: uint8 frames (N, T, H, W, C) -> features (N, t, h, w, D), through
    preprocess (resize and normalise as the checkpoint expects: (N, T, C, S, S) float)
    and forward. N clips of T frames each; image encoders encode every frame on its own
    (t = T), video encoders embed `tubelet` frames per time step (t = T / tubelet).
    Subclasses declare:
      - `frames_per_clip`: T, the clip length the sampler must produce (1: an image encoder);
      - `embed_dim`: D;
      - `grid`: h = w, the side of the patch grid; `tubelet`: frames per time step;
      - `input_size`, `image_mean`, `image_std`: the preprocessing of the checkpoint.
    """

    CONSTRAINTS: ClassVar[Constraints] = Constraints(
        Rule("frames_per_clip", positive_int, "an integer > 0"), check=check_encoder
    )

    name: str
    frames_per_clip: int
    embed_dim: int
    grid: int
    tubelet: int = 1
    input_size: int
    image_mean: tuple[float, ...]  # one per channel (3)
    image_std: tuple[float, ...]

    def grid_shape(self, frames: int) -> tuple[int, int, int]:
        """(t, h, w) of the feature grid of one clip of `frames` frames."""
        return frames // self.tubelet, self.grid, self.grid

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, T, H, W, C) -> normalised float (N, T, C, S, S) at the checkpoint's size."""
        n, t, h, w, c = frames.shape
        x = frames.reshape(n * t, h, w, c).permute(0, 3, 1, 2).float().div_(255.0)
        if (h, w) != (self.input_size, self.input_size):
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False, antialias=True
            )
        mean = x.new_tensor(self.image_mean).view(1, 3, 1, 1)
        std = x.new_tensor(self.image_std).view(1, 3, 1, 1)
        x = (x - mean) / std
        return x.reshape(n, t, c, self.input_size, self.input_size)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames (N, T, H, W, C) -> features (N, t, h, w, D), in the weights' dtype."""
        dtype = next(self.parameters()).dtype  # bf16 weights take bf16 pixels (not every model casts)
        return self(self.preprocess(frames).to(dtype))


def check_select_layer(select_layer: int, num_layers: int, name: str) -> None:
    """`select_layer` indexes the L + 1 hidden states (embeddings, then each layer's output)."""
    if not -(num_layers + 1) <= select_layer <= num_layers:
        raise ValueError(
            f"encoder {name}: select_layer={select_layer} is out of range for its "
            f"{num_layers} layers; valid: {-(num_layers + 1)} to {num_layers}"
        )


# A cut tower's config keeps the depth it was cut from, so that a cut tower saved and loaded
# again resolves `select_layer` as the whole tower did (and is not cut a second time).
FULL_DEPTH = "apollo_full_depth"
# the layer lists of the towers (transformers' `layers` / `layer`, InternVideo2's `blocks`)
LAYER_LISTS = frozenset({"layers", "layer", "blocks"})
# modules after the last layer, which no hidden state passes through: post-norms and pooling
# heads (SigLIP's post_layernorm and head, DINOv2's and V-JEPA 2's layernorm, CLIP's and
# LanguageBind's post_layernorm, VideoMAE's fc_norm/layernorm, InternVideo2's clip_projector)
TAIL_MODULES = frozenset({"post_layernorm", "layernorm", "head", "pooler", "fc_norm", "clip_projector"})
# config switches that build parts the features never use (SigLIP's pooling head, DINOv2's
# mask token for masked pretraining): off in a cut tower's config, so a saved one lacks them
UNUSED_SWITCHES = {"vision_use_head": False, "use_head": False, "use_mask_token": False}
UNUSED_PARAMETERS = ("mask_token",)  # DINOv2's: read only for masked inputs, which never come


def layers_needed(select_layer: int, num_layers: int) -> int:
    """How many layers run for hidden state `select_layer` to be the last (0: the embeddings)."""
    return select_layer if select_layer >= 0 else num_layers + 1 + select_layer


def layer_list(model: nn.Module, name: str) -> tuple[str, nn.ModuleList]:
    """The tower's one list of layers, by its name in the model."""
    found = [
        (n, m) for n, m in model.named_modules() if isinstance(m, nn.ModuleList) and n.rpartition(".")[2] in LAYER_LISTS
    ]
    if len(found) != 1:
        names = [n for n, _ in found]
        raise ValueError(f"encoder {name}: expected one layer list in {type(model).__name__}, found {names}")
    return found[0]


def cut_tower(
    model: nn.Module,
    select_layer: int,
    name: str,
    depth_key: str = "num_hidden_layers",
    missing: list[str] | None = None,
) -> int:
    """Drop what hidden state `select_layer` does not pass through; return the layers kept.

    Why: the layers after `select_layer` and the post-norms and heads after the last layer
    never reach the loss. Left in, they run in every forward for nothing and, when the
    schedule trains the tower, they are trainable parameters without a gradient, which
    DDP (find_unused_parameters=False) refuses. The layer list is cut to its first
    `layers_needed` layers, the config's depth follows (the whole depth is kept under
    FULL_DEPTH), the tail modules become nn.Identity and the unused switches are turned off,
    so the tower's last hidden state is hidden state `select_layer` of the whole tower.
    `missing`: the weights a loaded checkpoint lacked (`load_tower`); those the cut keeps
    are warned about.
    """
    config: Any = model.config  # a transformers config (a PretrainedConfig)
    path, layers = layer_list(model, name)
    full = int(getattr(config, FULL_DEPTH, None) or len(layers))
    check_select_layer(select_layer, full, name)
    keep = layers_needed(select_layer, full)
    if keep > len(layers):
        raise ValueError(
            f"encoder {name}: the checkpoint keeps {len(layers)} of its tower's {full} layers; "
            f"select_layer={select_layer} needs {keep} (load the whole tower's checkpoint)"
        )
    del layers[keep:]
    setattr(config, depth_key, keep)
    setattr(config, FULL_DEPTH, full)
    if getattr(config, "stage_names", None):  # a backbone config (DINOv2's) names a stage per layer
        config.stage_names = config.stage_names[: keep + 1]
        config.set_output_features_output_indices(out_features=None, out_indices=None)
    for key, off in UNUSED_SWITCHES.items():
        if hasattr(config, key):
            setattr(config, key, off)
    gone = [path]  # the kept layers are left as they are; a replaced module's parts are gone
    for module_name, module in list(model.named_modules()):
        leaf = module_name.split(".")[-1]
        if any(module_name == g or module_name.startswith(g + ".") for g in gone):
            continue
        for key, off in UNUSED_SWITCHES.items():
            if isinstance(getattr(module, key, None), bool):
                setattr(module, key, off)
        if leaf in TAIL_MODULES:
            parent = model.get_submodule(module_name.rpartition(".")[0])
            setattr(parent, leaf, nn.Identity())
            gone.append(module_name)
            continue
        for param in UNUSED_PARAMETERS:
            if module._parameters.get(param) is not None:
                setattr(module, param, None)
    kept = model.state_dict()
    if lost := [k for k in missing or () if k in kept]:
        more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
        listed = ", ".join(lost[:5])
        log.warning(f"encoder {name}: {len(lost)} weights not in its checkpoint, newly initialised: {listed}{more}")
    return keep


class _NoLoadReport(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in record.getMessage()


@contextmanager
def _quiet_load_report() -> Iterator[None]:
    """transformers' table of missing and unexpected weights left out (errors still raise)."""
    logger, quiet = logging.getLogger("transformers.modeling_utils"), _NoLoadReport()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def load_tower(load: Callable[..., Any]) -> tuple[Any, list[str]]:
    """A checkpoint's whole tower (`load`: a from_pretrained) and the weights it lacked.

    Loaded whole, then cut by `cut_tower`: the weights after select_layer are loaded and
    dropped, never reported as unexpected. Without transformers' load report: a tower cut
    and saved by this project lacks its tail (post-norms, heads), which its class builds
    again and the cut drops again at once, and the report would call those newly
    initialised; `cut_tower` warns in one line about the missing weights the cut keeps.
    """
    with _quiet_load_report():
        model, info = load(output_loading_info=True)
    if info["unexpected_keys"]:
        log.info(f"{len(info['unexpected_keys'])} weights of {type(model).__name__}'s checkpoint are not in the tower")
    return model, sorted(info["missing_keys"])
