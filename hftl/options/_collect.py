"""The run's argument dataclasses from whatever the caller gave: dataclass instances, a YAML config and
keyword options."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ConfigError
from .checks import check_options, coerce_value
from .parser import ARGUMENT_CLASSES, build_dataclass, did_you_mean, field_owners, make_parser

__all__ = ["collect_arguments", "init_values"]


def collect_arguments(dataclass_args: dict, options: dict) -> tuple:
    """Merge dataclass instances, a YAML config and keyword options (in rising precedence)."""
    config_file = options.pop("config", None)
    values: dict[str, Any] = {}
    if config_file:  # through the parser, so YAML values get the same type conversion as on the CLI
        parser = make_parser()
        keys = parser.read_config(config_file)
        parsed = {
            name: getattr(instance, name)
            for instance in parser.parse(["--config", config_file])
            for name in keys
            if hasattr(instance, name)
        }
        values.update(parsed)
    field_owner = field_owners()
    for name in options:
        if name not in field_owner:
            raise ConfigError(
                f"finetune() got an unknown option '{name}'.{did_you_mean(name, list(field_owner))} "
                "Options are the fields of ModelArguments, DataArguments, MethodArguments and TrainingArguments."
            )
    values.update(
        {name: coerce_value(field_owner[name], name, value, "finetune()") for name, value in options.items()}
    )
    built = []
    for cls, given in zip(ARGUMENT_CLASSES, dataclass_args.values(), strict=True):
        own = {name: value for name, value in values.items() if field_owner[name] is cls}
        if given is not None:
            if own:
                given = build_dataclass(cls, {**init_values(given), **own})
            else:  # an instance changed after it was built skipped __post_init__'s checks
                check_options(given)
            built.append(given)
        else:
            built.append(build_dataclass(cls, own))
    return tuple(built)


def init_values(instance) -> dict:
    """The instance's init values, with settings resolved for this machine back at their defaults (so
    rebuilding the arguments resolves them again instead of freezing, say, ``dataloader_num_workers=0``)."""
    resolved = getattr(instance, "machine_resolved", ())
    return {
        f.name: f.default if f.name in resolved else getattr(instance, f.name)
        for f in dataclasses.fields(instance)
        if f.init
    }
