"""Discriminative learning rates: each parameter's layer from the model's own structure, and the
optimizer's parameter groups for ``--layer_decay`` / ``--head_learning_rate``.

Layer ids follow BEiT/ELECTRA: with ``L`` layers, the embeddings/stem are 0, layer ``i`` of the stack is
``i + 1``, whatever sits above the stack (pooler, final norm, the new head) is ``L + 1``. A parameter
trains at ``learning_rate * layer_decay ** (L + 1 - id)``; the new head at ``--head_learning_rate``.

The stack is found by structure, not by one family's names:

- timm models (hftl loads them through transformers' ``TimmWrapper``): timm's own ``group_matcher``
  (coarse), so a ViT gets one id per block, a ResNet per stage (``layer1..4``), an EfficientNet per
  stage (``blocks.i``);
- every other model (BERT family, HF ViT, ResNet, Swin, ...): the largest numbered container of
  same-typed modules (``bert.encoder.layer``, ``vit.encoder.layer``, ``resnet.encoder.stages``);
  parameters registered before it are the embeddings (0), after it the top (``L + 1``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

from .._log import log
from .._modules import named_head, within
from ..errors import ConfigError

__all__ = [
    "LayerMap",
    "layer_map",
    "head_parameter_names",
    "discriminative_param_groups",
    "uses_param_groups",
    "check_layer_options",
]

# modules that wrap the model without being part of it: DDP/FSDP (``module``), torch.compile
_WRAPPER_ATTRIBUTES = ("module", "_orig_mod")
# segments FSDP1 and activation checkpointing insert into parameter names
_WRAPPER_SEGMENTS = ("_fsdp_wrapped_module", "_checkpoint_wrapped_module")
# head modules by conventional name, for a trainer that wasn't told the head (HftlTrainer(head_modules=))
# optimizers that build their own parameter groups (transformers' GaLore, APOLLO, LOMO)
_OWN_GROUPS = ("galore", "apollo", "lomo")


@dataclass
class LayerMap:
    """Layer id of every parameter (by its name in the model it was computed on).

    Args:
        ids: Parameter name -> layer id in ``0 .. num_layers + 1``.
        head: Names of the parameters of the new head (id ``num_layers + 1``).
        num_layers: ``L``, the number of layers in the stack (0 when none was found).
        source: Where the stack was found, for the log line.
    """

    ids: dict[str, int]
    head: set[str] = field(default_factory=set)
    num_layers: int = 0
    source: str = ""

    def scale(self, name: str, layer_decay: float | None) -> float:
        """The learning-rate factor of parameter ``name`` (1 without layer decay)."""
        if layer_decay is None:
            return 1.0
        return layer_decay ** (self.num_layers + 1 - self.ids[name])


def _core(model: nn.Module) -> tuple[nn.Module, str]:
    """The model inside peft/DDP/compile wrappers, and its path in ``model`` ('' or 'prefix.')."""
    core = model
    while True:
        if hasattr(core, "get_base_model") and callable(core.get_base_model):  # peft
            inner = core.get_base_model()
        else:
            inner = next(
                (
                    getattr(core, a)
                    for a in _WRAPPER_ATTRIBUTES
                    if isinstance(getattr(core, a, None), nn.Module)
                ),
                None,
            )
        if inner is None or inner is core:
            break
        core = inner
    if core is model:
        return core, ""
    prefix = next(name for name, module in model.named_modules() if module is core)
    return core, f"{prefix}." if prefix else ""


def _relative(name: str, prefix: str) -> str:
    """``name`` relative to the core model, without wrapper segments."""
    name = name[len(prefix) :] if prefix and name.startswith(prefix) else name
    return ".".join(part for part in name.split(".") if part not in _WRAPPER_SEGMENTS)


def head_parameter_names(model: nn.Module, head_modules: list[str] | None) -> set[str]:
    """Names (in ``model``) of the head's parameters; ``head_modules`` are module names in the model
    before peft wrapped it (as ``Task.build_model`` returns them). ``None``: guessed by conventional
    names (classifier, head, fc, score)."""
    core, prefix = _core(model)
    if head_modules is None:
        head_modules = named_head(core)
        log(f"head modules not given: taking {', '.join(head_modules) or 'none'} by name")
    return {name for name, _ in model.named_parameters() if within(_relative(name, prefix), head_modules)}


def _timm_module(core: nn.Module) -> tuple[str, nn.Module] | None:
    for name, module in core.named_modules():
        if callable(getattr(module, "group_matcher", None)) and hasattr(module, "pretrained_cfg"):
            return name, module
    return None


def _timm_patterns(matcher) -> list[re.Pattern] | None:
    """The regexes of a timm group_matcher dict (None for a callable matcher: everything matches)."""
    if not isinstance(matcher, dict):
        return None
    patterns = []
    for spec in matcher.values():
        if isinstance(spec, (list, tuple)):
            patterns += [re.compile(sub[0]) for sub in spec]
        elif spec is not None:
            patterns.append(re.compile(spec))
    return patterns


def _timm_ids(names: dict[str, str], head: set[str], timm_name: str, timm_model) -> tuple[dict, int, str]:
    """Layer ids from timm's group_matcher: stem 0, stages/blocks 1..L (a final norm or conv_head
    joins the last, as timm groups it), anything unmatched but the head (a neck) L + 1."""
    from timm.models import group_parameters

    matcher = timm_model.group_matcher(coarse=True)
    patterns = _timm_patterns(matcher)
    inside = timm_name + "." if timm_name else ""
    relative = {
        full: rel[len(inside) :] for full, rel in names.items() if rel.startswith(inside) and full not in head
    }
    grouped = group_parameters(timm_model, matcher, reverse=True)  # timm's names, inside the timm model
    matched = {rel for rel in relative.values() if patterns is None or any(p.match(rel) for p in patterns)}
    num_layers = max((grouped[rel] for rel in matched), default=0)
    ids = {
        full: grouped[relative[full]] if relative.get(full) in matched else num_layers + 1 for full in names
    }
    kind = type(timm_model).__name__
    return ids, num_layers, f"timm {kind} group_matcher ({num_layers} stages/blocks above the stem)"


def _numbered_containers(core: nn.Module, head_modules: list[str]):
    """(name, module, children) of ModuleLists/Sequentials holding >= 2 same-typed numbered modules."""
    for name, module in core.named_modules():
        if not isinstance(module, (nn.ModuleList, nn.Sequential)) or within(name, head_modules):
            continue
        children = list(module.named_children())
        if (
            len(children) >= 2
            and [child for child, _ in children] == [str(i) for i in range(len(children))]
            and len({type(child) for _, child in children}) == 1
        ):
            yield name, module


def _stack_ids(model, names: dict[str, str], core, head_modules: list[str]) -> tuple[dict, int, str] | None:
    """Layer ids from the largest numbered stack of same-typed layers: before it 0, layer i i+1,
    after it L + 1 (by registration order, which is forward order for transformers' models)."""
    containers = [(name, module) for name, module in _numbered_containers(core, head_modules) if name]
    if not containers:
        return None
    size = {name: sum(p.numel() for p in module.parameters()) for name, module in containers}
    stack, module = max(containers, key=lambda item: size[item[0]])  # the outer of nested stacks wins
    num_layers = len(module)
    ids, seen_stack = {}, False
    for full, rel in names.items():
        if rel.startswith(stack + "."):
            ids[full] = int(rel[len(stack) + 1 :].split(".", 1)[0]) + 1
            seen_stack = True
        else:
            ids[full] = num_layers + 1 if seen_stack else 0
    return ids, num_layers, f"{stack} ({num_layers} layers, found by structure)"


def layer_map(model: nn.Module, head_modules: list[str] | None, require_stack: bool = False) -> LayerMap:
    """Layer ids for every parameter of ``model`` (peft, DDP and compile wrappers allowed).

    Args:
        model: The model, as the Trainer holds it.
        head_modules: Module names of the new head in the unwrapped model; ``None`` to guess by name.
        require_stack: Raise a ConfigError when the model has no stack of layers (layer decay and
            gradual unfreezing need one; a head learning rate does not).
    """
    core, prefix = _core(model)
    head = head_parameter_names(model, head_modules)
    names = {full: _relative(full, prefix) for full, _ in model.named_parameters()}
    found = None
    timm = _timm_module(core)
    if timm is not None:
        found = _timm_ids(names, head, *timm)
    else:
        found = _stack_ids(model, names, core, head_modules if head_modules is not None else named_head(core))
    if found is None or found[1] == 0:
        if require_stack:
            raise ConfigError(
                f"--layer_decay and --unfreeze_schedule gradual need a stack of layers, and this "
                f"{type(core).__name__} has none that hftl can find; use --head_learning_rate or "
                "--unfreeze_schedule head-first instead."
            )
        return LayerMap(ids=dict.fromkeys(names, 0), head=head, num_layers=0, source="no stack of layers")
    ids, num_layers, source = found
    for name in head:
        ids[name] = num_layers + 1
    return LayerMap(ids=ids, head=head, num_layers=num_layers, source=source)


def uses_param_groups(args) -> bool:
    """Whether hftl builds the optimizer's parameter groups (else Trainer's own two groups)."""
    return (
        getattr(args, "layer_decay", None) is not None
        or getattr(args, "head_learning_rate", None) is not None
        or getattr(args, "unfreeze_schedule", "none") != "none"
    )


def discriminative_param_groups(
    model: nn.Module, head_modules: list[str] | None, args, decay_names, include_frozen: bool = False
) -> list[dict]:
    """Optimizer parameter groups: one per (layer, weight decay or not), head apart.

    Args:
        model: The model whose parameters to group.
        head_modules: Module names of the new head (see :func:`layer_map`).
        args: The training arguments (``learning_rate``, ``weight_decay``, ``layer_decay``,
            ``head_learning_rate``).
        decay_names: Parameter names that get weight decay (``Trainer.get_decay_parameter_names``).
        include_frozen: Also group parameters without ``requires_grad`` (gradual unfreezing thaws them
            later, and the optimizer must already hold them).

    Example:
        >>> groups = discriminative_param_groups(model, ["classifier"], args, trainer.get_decay_parameter_names(model))
    """
    layer_decay = args.layer_decay
    layers = layer_map(model, head_modules, require_stack=layer_decay is not None)
    base = args.learning_rate
    head_lr = args.head_learning_rate if args.head_learning_rate is not None else base
    decay_names = set(decay_names)
    groups: dict[tuple, dict] = {}
    for name, parameter in model.named_parameters():
        if not (parameter.requires_grad or include_frozen):
            continue
        is_head = name in layers.head
        layer = layers.ids[name] if layer_decay is not None else layers.num_layers + 1
        weight_decay = args.weight_decay if name in decay_names else 0.0
        lr = head_lr if is_head else base * layers.scale(name, layer_decay)
        group = groups.setdefault(
            (is_head, -layer, weight_decay == 0.0), {"params": [], "lr": lr, "weight_decay": weight_decay}
        )
        group["params"].append(parameter)
    # the top backbone group first: Trainer logs the learning rate of group 0
    ordered = [groups[key] for key in sorted(groups)]
    if layer_decay is not None:
        lowest = base * layer_decay ** (layers.num_layers + 1)
        log(
            f"layer-wise learning rates from {layers.source}: top layer {base * layer_decay:.3g}, x{layer_decay:g} "
            f"per layer down to {lowest:.3g} for the embeddings/stem; above the layers {base:g}; head {head_lr:g}"
        )
    elif args.head_learning_rate is not None:
        log(f"head learning rate {head_lr:g}, backbone {base:g}")
    return ordered


def check_layer_options(skeleton: nn.Module, args, method_name: str, unfreezing: Sequence[str]) -> None:
    """Pre-flight, on the weightless model: the switches that need the model's structure or method
    (``unfreezing``: the methods that take an unfreeze schedule)."""
    schedule = getattr(args, "unfreeze_schedule", "none")
    if schedule != "none" and method_name not in unfreezing:
        methods = " or ".join(unfreezing)
        raise ConfigError(
            f"--unfreeze_schedule {schedule} works with --method {methods} only (got {method_name}); a linear "
            "probe never unfreezes and LoRA's adapters are already a small trainable set: drop the "
            f"schedule, or use --method {methods}."
        )
    optim = str(getattr(args.optim, "value", args.optim)).lower()
    if uses_param_groups(args) and any(token in optim for token in _OWN_GROUPS):
        raise ConfigError(
            f"--optim {args.optim} builds its own parameter groups, so --layer_decay, --head_learning_rate "
            "and --unfreeze_schedule can't set them; use an AdamW/SGD --optim or drop those switches."
        )
    if args.layer_decay is not None or schedule == "gradual":
        layer_map(skeleton, named_head(_core(skeleton)[0]), require_stack=True)
