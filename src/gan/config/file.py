"""`gan train --config run.toml`: reading a run's options from TOML, and writing them back."""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from gan.config import FIELDS, SECTIONS, Config
from gan.errors import GanError

MAX_BYTES = 1 << 20  # a run's config.toml is about 2 KiB
HEADER = (
    "# The options of a gan run. `gan train --config THIS_FILE --run-name NEW` trains it again;\n"
    "# flags given beside --config win over this file. Options left out take their defaults.\n"
)


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's options as checked `section.field` values; unknown keys are errors."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_file():  # a folder, a fifo, a device
        raise GanError(f"The config file {path} is not a regular file; give a TOML file.")
    if path.is_file() and path.stat().st_size > MAX_BYTES:
        raise GanError(
            f"The config file {path} is larger than {MAX_BYTES // 1024} KiB, far more than any "
            "set of options; give a TOML file such as logs/<run>/config.toml."
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GanError(
            f"Cannot read the config file {path} ({exc.strerror or exc}); give the path of a "
            "TOML file such as logs/<run>/config.toml."
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GanError(f"The config file {path} is not valid TOML ({exc}); fix it.") from None
    except RecursionError:  # tomllib recurses once per level of nesting
        raise GanError(
            f"The config file {path} nests tables or lists too deeply to read; give a TOML file "
            "such as logs/<run>/config.toml."
        ) from None
    except (ValueError, MemoryError) as exc:  # e.g. an integer of more than 4,300 digits
        reason = str(exc).split(":")[0][:80] or type(exc).__name__
        raise GanError(
            f"The config file {path} holds a value that cannot be read ({reason}); fix it."
        ) from None
    values: dict[str, Any] = {}
    for section, table in raw.items():
        if section not in SECTIONS or not isinstance(table, dict):
            raise GanError(
                f"{section!r} in the config file {path} is not a section; use the sections "
                f"[{'], ['.join(SECTIONS)}], as in a run's config.toml."
            )
        for name, value in table.items():
            key = f"{section}.{name}"
            if key not in FIELDS:
                raise GanError(f"[{section}] {name} in {path} is not an option ({_hint(key)}).")
            try:
                values[key] = FIELDS[key].check(value)
            except ValueError as exc:
                raise GanError(f"[{section}] {name} in {path}: {exc}.") from None
    return values


def _hint(key: str) -> str:
    close = difflib.get_close_matches(key, FIELDS, n=1)
    if close:
        section, name = close[0].split(".")
        return f"did you mean [{section}] {name}?"
    return "`gan train --help` lists them"


def config_toml(config: Config) -> str:
    """The config as TOML, one table per section; unset (None) options are left out."""
    import tomli_w

    tables: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for key, f in FIELDS.items():
        value = config.get(key)
        if value is not None:
            tables[f.section][f.name] = list(value) if isinstance(value, tuple) else value
    return HEADER + tomli_w.dumps(tables)
