"""Options declared once: a dataclass field made with `option()` carries its default and its help,
and from it come the command-line flag, the ROS parameter and both help texts.

    hop: float = option(0.5, "seconds between windows, 0.25..4 (default: %(default)s)")

A field's public name is its own (`hop`), or `name=` when the attribute says more than a user
types (`timeout_s` shown as `timeout`); a nested config (`nested("triton_")`) adds its prefix
(`triton_timeout`). The flag is the public name with dashes (`--triton-timeout`) unless `flag=`
says otherwise. Help may use `%(default)s` (argparse's own placeholder, filled in for the ROS help too).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

_OPTION = "socialmae_rt.option"
_NESTED = "socialmae_rt.nested"


def option(default: Any = dataclasses.MISSING, help: str = "", *, name: str | None = None, flag: str | None = None,
           default_factory: Any = dataclasses.MISSING, **argparse_kwargs: Any) -> Any:
    """A dataclass field with its help (and, where the flag differs from the name, its flag).
    `argparse_kwargs` go to add_argument as they are (choices, metavar, nargs, action)."""
    metadata = {_OPTION: {"help": help, "name": name, "flag": flag, "argparse": argparse_kwargs}}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def nested(prefix: str, factory: Any) -> Any:
    """A config inside a config whose options appear flattened with `prefix` (`triton_url`)."""
    return field(default_factory=factory, metadata={_NESTED: prefix})


@dataclass(frozen=True)
class Option:
    """One public option of a config: where it lives (`path` of attributes) and what it says."""

    name: str  # the public name: ROS parameter, argparse dest
    path: tuple[str, ...]  # attributes from the top config down to the field
    field: dataclasses.Field
    kind: type  # str, int, float or bool (None stripped)
    default: Any
    help: str
    flag: str
    argparse: dict[str, Any]

    def help_text(self) -> str:
        """The help with `%(default)s` filled in (the ROS node's --help)."""
        return self.help % {"default": self.default} if "%(" in self.help else self.help.replace("%%", "%")


def _kind(cls: type, attribute: str) -> type:
    hint = typing.get_type_hints(cls)[attribute]
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    for kind in (bool, int, float, str):
        if kind in args:
            return kind
    return args[0]


def options_of(cls: type, prefix: str = "", path: tuple[str, ...] = ()) -> Iterator[Option]:
    """Every option of `cls`, nested configs flattened, in declaration order."""
    for f in dataclasses.fields(cls):
        if _NESTED in f.metadata:
            yield from options_of(f.default_factory, prefix + f.metadata[_NESTED], (*path, f.name))
            continue
        spec = f.metadata.get(_OPTION)
        if spec is None:
            continue
        name = prefix + (spec["name"] or f.name)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        yield Option(name=name, path=(*path, f.name), field=f, kind=_kind(cls, f.name), default=default,
                     help=spec["help"], flag=spec["flag"] or "--" + name.replace("_", "-"), argparse=spec["argparse"])


def option_named(cls: type, name: str) -> Option:
    for found in options_of(cls):
        if found.name == name:
            return found
    raise KeyError(f"{cls.__name__} has no option {name!r}")


def value_at(config: Any, path: Sequence[str]) -> Any:
    for attribute in path:
        config = getattr(config, attribute)
    return config


def add_flags(parser: argparse.ArgumentParser, cls: type, names: Sequence[str] | None = None, *,
              defaults: Any = None, required: Sequence[str] = (), helps: dict[str, str] | None = None) -> list[str]:
    """One flag per option of `cls` (those in `names`, in that order; default: all), defaults from
    the instance `defaults` (default: the class's own), `helps` where a command means something
    narrower by an option (a soak's --source is a file). Returns the dests added."""
    every = {o.name: o for o in options_of(cls)}
    chosen = [every[name] for name in names] if names is not None else list(every.values())
    for o in chosen:
        default = value_at(defaults, o.path) if defaults is not None else o.default
        kwargs: dict[str, Any] = {"dest": o.name, "help": (helps or {}).get(o.name, o.help), **o.argparse}
        if o.name in required:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        if o.kind is bool and "action" not in kwargs:
            kwargs["action"] = "store_true"
        elif o.kind is not bool and "action" not in kwargs and o.kind is not str:
            kwargs.setdefault("type", o.kind)
        parser.add_argument(o.flag, **kwargs)
    return [o.name for o in chosen]


def flag_values(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """Public option name -> value of the parsed flags `names` (their argparse dests)."""
    return {name: getattr(args, name) for name in names}


def from_flat(cls: type, values: dict[str, Any], base: Any = None) -> Any:
    """An instance of `cls` from public option names -> values (flags, ROS parameters); options not
    in `values` keep `base`'s values (default: the class's defaults). Nested configs are rebuilt,
    so their validation runs on the values given."""
    return _build(cls, values, base, "")


def _build(cls: type, values: dict[str, Any], base: Any, prefix: str) -> Any:
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if _NESTED in f.metadata:
            inner_base = getattr(base, f.name) if base is not None else None
            kwargs[f.name] = _build(f.default_factory, values, inner_base, prefix + f.metadata[_NESTED])
            continue
        spec = f.metadata.get(_OPTION)
        name = prefix + ((spec or {}).get("name") or f.name)
        if spec is not None and name in values:
            kwargs[f.name] = values[name]
        elif base is not None:
            kwargs[f.name] = getattr(base, f.name)
    return cls(**kwargs)
