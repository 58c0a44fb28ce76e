"""Option values read from command-line text or from a config file, and written back."""

from __future__ import annotations

import math
import re
import reprlib
from typing import Any

# The one set of limits a run is held to when it is planned and when its checkpoints are
# loaded (`gan.checkpoint`), so that a run that trains can always be sampled and resumed.
MAX_SIDE = 4096  # pixels, each of height and width
MAX_CLASSES = 10_000
MAX_CLASS_NAME = 200  # characters of one class name

_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 40
_SHORT.maxlevel = 2


def shown(value: Any) -> str:
    """A value for a sentence, however large: an int of 400 digits or a list nested 1,000
    deep is cut short rather than printed whole (or not printable at all)."""
    if type(value) is int and abs(value) >= 10**30:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1:,} digits"
    try:
        return _SHORT.repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails is still named
        return f"a {type(value).__name__}"


def parse_image_size(text: Any) -> tuple[int, int]:
    """'HxW' (or 'N' for a square), an integer N or a pair [H, W] as (height, width)."""
    if isinstance(text, list | tuple) and len(text) == 2 and all(type(v) is int for v in text):
        height, width = text
    elif type(text) is int:
        height = width = text
    elif isinstance(text, str) and text.strip().isdigit():
        height = width = int(text.strip())
    elif isinstance(text, str) and (match := _SIZE.match(text)):
        height, width = int(match[1]), int(match[2])
    else:
        raise ValueError(f"{shown(text)} is not of the form HxW (for example 28x28 or 200x160)")
    if height < 1 or width < 1:
        raise ValueError(f"{shown(text)} must have a height and width of at least 1")
    if height > MAX_SIDE or width > MAX_SIDE:
        raise ValueError(
            f"{shown(text)} is too large; use at most {MAX_SIDE} pixels a side "
            f"({MAX_SIDE}x{MAX_SIDE})"
        )
    return height, width


def _numbers(count: int) -> Any:
    def convert(value: Any) -> tuple[float, ...]:
        if isinstance(value, str):
            try:
                value = [float(part) for part in value.split(",")]
            except ValueError:
                value = None
        ok = isinstance(value, list | tuple) and len(value) == count
        if not ok or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            raise ValueError(f"{shown(value)} is not {count} comma-separated numbers")
        try:
            numbers = tuple(float(v) for v in value)
        except OverflowError:  # an integer beyond any float
            numbers = (math.inf,)
        if not all(math.isfinite(v) for v in numbers):
            raise ValueError(f"{shown(value)} must be finite numbers")
        return numbers

    return convert


def fractions(value: Any) -> tuple[float, float, float]:
    parts = _numbers(3)(value)
    if min(parts) < 0 or abs(sum(parts) - 1) > 1e-6:
        raise ValueError("must be three non-negative numbers that sum to 1")
    return parts  # type: ignore[return-value]


def percentiles(value: Any) -> tuple[float, float]:
    low, high = _numbers(2)(value)
    if not 0 <= low < high <= 100:
        raise ValueError(f"{low},{high} must satisfy 0 <= low < high <= 100")
    return low, high


def class_names(value: Any) -> tuple[str, ...]:
    """Class names, comma-separated (text, or a list of texts or integers from a config
    file), repeats dropped, in the order given; () for every class."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(
        isinstance(v, str) or (type(v) is int) for v in items
    ):
        raise ValueError(f"{shown(value)} is not comma-separated class names")
    parts = [p.strip() for v in items for p in str(v).split(",")]
    names = tuple(dict.fromkeys(p for p in parts if p))
    if parts and not names:  # given, but only commas and spaces: not "every class"
        raise ValueError(
            f"{','.join(map(str, items))!r} names no class; give names such as 0,1, or "
            "leave it out for every class"
        )
    if len(names) > MAX_CLASSES or any(len(n) > MAX_CLASS_NAME for n in names):
        raise ValueError(
            f"{shown(value)} names more than {MAX_CLASSES:,} classes or a name longer than "
            f"{MAX_CLASS_NAME} characters"
        )
    return names


def device_name(value: Any) -> str:
    text = value.strip().lower() if isinstance(value, str) else ""
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d{1,4})?", text):
        raise ValueError(f"{shown(value)} is not one of auto, cpu, cuda, cuda:N, mps")
    return text


def run_name(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}", value):
        raise ValueError(f"{shown(value)} may only use letters, digits, '.', '_' and '-'")
    return value


def lower_choice(choices: tuple[str, ...]) -> Any:
    def convert(value: Any) -> str:
        text = value.strip().lower() if isinstance(value, str) else value
        if text not in choices:
            raise ValueError(f"{shown(value)} is not one of {', '.join(choices)}")
        return text

    return convert


def sha256_hex(value: Any) -> str:
    """A SHA-256 as sha256sum prints it: 64 hexadecimal digits."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"{shown(value)} is not a SHA-256 (64 hexadecimal digits)")
    return text


def joined(values: Any) -> str:
    return ",".join(f"{v:g}" for v in values)


def size_text(size: Any) -> str:
    return "x".join(map(str, size))


def names_or_none(value: Any, known: Any, what: str) -> str:
    """'none', or a comma-separated list of `known` names (lower case, repeats dropped);
    ValueError otherwise, saying "is not none or <what> <the names>"."""
    text = value if isinstance(value, str) else ""
    names = list(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    if names == ["none"]:
        return "none"
    if not names or any(n not in known for n in names):
        raise ValueError(f"{shown(value)} is not none or {what} {', '.join(known)}")
    return ",".join(names)


def augment_policy(value: Any) -> str:
    """'none', or a comma-separated combination of the catalog's augmentations."""
    from gan.config.catalog import AUGMENTS

    return names_or_none(value, AUGMENTS, "a combination of")


def augment_strength(value: Any) -> str | float:
    """'auto' (adaptive, as StyleGAN2-ADA) or a fixed probability in [0, 1]."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        p = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        p = math.nan
    if not 0 <= p <= 1:
        raise ValueError(f"{shown(value)} is not auto or a probability in [0, 1]")
    return p


def interval_or_auto(value: Any) -> str | int:
    """'auto' (about ten times per run, whatever its length) or a whole number of steps."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        number = int(value) if not isinstance(value, bool) else 0
        exact = number == float(value)
    except (TypeError, ValueError, OverflowError):
        number, exact = 0, False
    if not exact or not 1 <= number <= 10**12:
        raise ValueError(f"{shown(value)} is not auto or a whole number of steps from 1")
    return number


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(h|m|s)", re.IGNORECASE)
_SECONDS = {"h": 3600, "m": 60, "s": 1}
DURATION_MAX = 10**9  # seconds: about 32 years


def duration(value: Any) -> float:
    """Seconds, from a number (300) or text: '300', '300s', '5m', '1h30m', '1.5h'."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) if abs(value) < 1e300 else math.inf
    elif isinstance(value, str) and _is_number(value.strip()):
        seconds = float(value.strip())
    elif isinstance(value, str) and value.strip():
        text = value.strip().replace(" ", "")
        parts = list(_DURATION.finditer(text))
        if "".join(m[0] for m in parts) != text or len({m[2].lower() for m in parts}) < len(parts):
            raise ValueError(f"{shown(value)} is not a duration such as 300, 90s, 5m or 1h30m")
        seconds = sum(float(m[1]) * _SECONDS[m[2].lower()] for m in parts)
    else:
        raise ValueError(f"{shown(value)} is not a duration such as 300, 90s, 5m or 1h30m")
    if not (math.isfinite(seconds) and 0 < seconds <= DURATION_MAX):
        raise ValueError(f"{shown(value)} must be more than 0 s and at most {DURATION_MAX:,} s")
    return seconds


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def seconds_text(seconds: float) -> str:
    """A duration as `duration` reads it back: 300 -> '5m', 5400 -> '1h30m', 2.5 -> '2.5s'."""
    if seconds != int(seconds) or seconds < 60:
        return f"{seconds:g}s"
    whole, parts = int(seconds), []
    for unit, size in _SECONDS.items():
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts)


def auto_interval(value: str | int, total_steps: int, times: int = 10) -> int:
    """The steps between grids: `value`, or for 'auto' the run's planned length / `times`."""
    return -(-max(total_steps, 1) // times) if value == "auto" else int(value)
