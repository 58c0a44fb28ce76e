"""Options declared once: a config dataclass field carries its flag, help, bounds and panel.

`option(default, help, ...)` makes such a field. From the fields, `Field.check` validates a
value (from the command line, a config file or a caller of the library) against the same
bounds, and `gan.cli.train` builds the Typer parameters. Whether an option defines a run,
and so must match on --resume, is the field's `fixed`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gan.config.values import shown

INT64 = 2**63 - 1


@dataclass(frozen=True)
class Opt:
    """Command-line and validation metadata of one config field."""

    help: str
    flag: str | None = None  # default: the field name, e.g. --batch-size
    panel: str | None = None  # default: the section's panel
    min: float | None = None
    max: float | None = None
    min_open: bool = False  # min itself is out of range
    max_open: bool = False
    choices: tuple[str, ...] | None = None
    # raw value (command-line text or file value) -> typed value; raises ValueError
    convert: Callable[[Any], Any] | None = None
    show: Callable[[Any], str] = str  # typed value -> command-line text
    fixed: bool = False  # defines the run: refused on --resume when it differs
    negatable: bool = False  # bools: --x/--no-x rather than --x alone
    metavar: str | None = None


def option(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field that is also a command-line option and a config-file key."""
    return dataclasses.field(default=default, metadata={"option": Opt(help, **metadata)})


@dataclass(frozen=True)
class Field:
    """One option as the command line and the config file see it."""

    section: str
    name: str
    kind: type  # int, float, str or bool; a tuple type when `convert` reads it
    optional: bool  # None is allowed (and means "the default of the dataset/device")
    many: bool  # a repeatable option: a tuple of `kind`
    default: Any
    opt: Opt

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def flag(self) -> str:
        return self.opt.flag or "--" + self.name.replace("_", "-")

    @property
    def param(self) -> str:
        """The Python name of the command-line parameter."""
        return self.flag[2:].replace("-", "_")

    def range_text(self) -> str | None:
        low, high = self.opt.min, self.opt.max
        if low is None and high is None:
            return None
        parts = [f"{_num(low)}{'<' if self.opt.min_open else '<='}"] if low is not None else []
        parts.append("x")
        if high is not None:
            parts.append(f"{'<' if self.opt.max_open else '<='}{_num(high)}")
        return "".join(parts)

    def check(self, value: Any) -> Any:
        """The value as this field's type, within its bounds; ValueError says what is wrong,
        whatever the value (an integer beyond any float, a list nested beyond the
        recursion limit)."""
        try:
            return self._check(value)
        except (OverflowError, RecursionError, MemoryError, TypeError):
            raise ValueError(f"{shown(value)} is not a valid value") from None

    def _check(self, value: Any) -> Any:
        if value is None:
            if self.optional:
                return None
            raise ValueError("must be given a value")
        if self.opt.convert is not None:
            return self.opt.convert(value)
        if self.many:
            if not isinstance(value, list | tuple):
                raise ValueError(f"must be a list of {_KIND_NAMES[self.kind]}s, got {shown(value)}")
            return tuple(self._scalar(v) for v in value)
        return self._scalar(value)

    def _scalar(self, value: Any) -> Any:
        kind = self.kind
        wrong = isinstance(value, bool) != (kind is bool) or not isinstance(value, _ACCEPTS[kind])
        if wrong:
            raise ValueError(f"must be {_A_KIND[kind]}, got {shown(value)}")
        if kind is float:
            number = float(value) if abs(value) < 1e308 else math.inf  # an int beyond a float
            if not math.isfinite(number):
                raise ValueError(f"must be a finite number, got {shown(value)}")
            value = number
        if self.opt.choices is not None and value not in self.opt.choices:
            raise ValueError(f"{shown(value)} is not one of {', '.join(self.opt.choices)}")
        low, high = self.opt.min, self.opt.max
        below = low is not None and (value <= low if self.opt.min_open else value < low)
        above = high is not None and (value >= high if self.opt.max_open else value > high)
        if below or above:
            raise ValueError(f"{shown(value)} is not in the range {self.range_text()}")
        return value


_ACCEPTS: dict[type, Any] = {int: int, float: int | float, str: str, bool: bool}
_A_KIND = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_KIND_NAMES = {int: "integer", float: "number", str: "string", bool: "boolean"}


def _num(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _describe(section: str, field: dataclasses.Field, hint: Any) -> Field:
    opt: Opt = field.metadata["option"]
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))  # None is one of the choices
        hint = args[0]  # the kind the command line reads (convert handles the others)
    many = typing.get_origin(hint) is tuple and typing.get_args(hint)[-1] is Ellipsis
    kind = typing.get_args(hint)[0] if many else hint
    if opt.convert is None and kind not in _ACCEPTS:
        raise TypeError(f"{section}.{field.name}: a {hint} option needs a convert function")
    if kind is int and (opt.min is None or opt.max is None or opt.max > INT64):
        raise TypeError(f"{section}.{field.name}: an integer option needs a min and a max")
    return Field(section, field.name, kind, optional, many, field.default, opt)


def section_fields(section: str, cls: type) -> Iterator[Field]:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if "option" in field.metadata:
            yield _describe(section, field, hints[field.name])


def all_fields(config_cls: type) -> list[Field]:
    """Every option of a config made of section dataclasses, in declaration order."""
    hints = typing.get_type_hints(config_cls)
    found = [
        f
        for section in dataclasses.fields(config_cls)
        for f in section_fields(section.name, hints[section.name])
    ]
    seen: dict[str, str] = {}
    for f in found:
        if seen.setdefault(f.param, f.key) != f.key:
            raise TypeError(f"{f.key} and {seen[f.param]} both use {f.flag}")
    return found
