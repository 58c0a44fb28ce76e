"""What a loaded checkpoint must look like before anything else costs time or memory.

`torch.load(weights_only=True)` runs no code, but what it returns is a graph the file
chose: a few hundred bytes of pickle can refer to one list a million times over, at many
levels (walked path by path, as the digest walks it, that is 2^levels visits), or hold a
tensor expanded to a terabyte with stride 0 (a view of 4 bytes, materialised by
`.contiguous()`). So `structure_problem` walks the graph once, counting each distinct
container once (a DAG costs its nodes, not its paths), and checks:

- containers are dicts, lists and tuples, nested at most `MAX_DEPTH` deep, holding at most
  `MAX_VALUES` values in all, without a cycle; keys are strings or integers;
- plain values are None, booleans, 64-bit integers, floats and strings of bounded length;
- every tensor is dense (no zero strides, no overlap) and within its storage;
- the digest's path-by-path walk (kept as it is, so that every checkpoint written so far
  still verifies) costs at most twice the distinct values and storage bytes: gan stores
  only its RNG states twice;
- the keys gan writes hold the types gan writes.

Then `check_header` checks the plain values that choose names and sizes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gan.config.values import MAX_CLASS_NAME, MAX_CLASSES, MAX_SIDE, shown
from gan.errors import GanError

MAX_DEPTH = 32  # gan nests 5 deep (rng_ranks -> [0] -> python -> state -> int)
MAX_VALUES = 1 << 24  # values in all containers; each costs at least a byte of the file
MAX_STRING = 1 << 16  # characters of one string (a source path, a class name)
SHARED_SLACK = 1 << 20  # values and bytes the digest may walk beyond twice the distinct ones
STEPS_MAX = 10**12

_INT = (-(2**63), 2**64)
_LEAVES = (type(None), bool, int, float, str, torch.dtype, torch.device)
_NONE = type(None)
# The types of the keys gan writes (an older gan wrote fewer; a newer one bumps the format).
_TABLE, _WEIGHTS, _TENSOR = dict, "weights", torch.Tensor
_TOP: dict[str, Any] = {
    "format_version": int, "step": int, "epoch": int, "images_seen": int, "ema_updates": int,
    "world_size": int, "ada_seen": int, "run_name": (str, _NONE), "digest": str,
    "model": _TABLE, "dataset": _TABLE, "config": _TABLE, "opt_g": _TABLE, "opt_d": _TABLE,
    "scaler_g": _TABLE, "scaler_d": _TABLE, "rng": _TABLE, "time_budget": (dict, _NONE),
    "rng_ranks": (list, tuple), "generator": _WEIGHTS, "discriminator": _WEIGHTS,
    "generator_ema": _WEIGHTS, "augment_p": _TENSOR, "ada_signs": _TENSOR,
    "augment_rng": _TENSOR, "fixed_latents": _TENSOR, "noise_rng": (torch.Tensor, _NONE),
    "latent_rng": (torch.Tensor, _NONE), "ada_ramp_images": (int, float),
    "best_fid": (int, float, _NONE), "schedule": (dict, _NONE), "runtime": _TABLE,
    "recipe": _TABLE, "draws": _TABLE, "grids": _TABLE, "reporter": _TABLE, "loop": _TABLE,
    "init_from": (dict, _NONE),
}  # fmt: skip
# Format 2 holds each part's keys under the part's name (gan.checkpoint.PARTS).
_PARTS = ("runtime", "recipe", "draws", "grids", "reporter", "loop")


def structure_problem(state: Any) -> str | None:
    """Why `state` is not a graph gan could have written, or None (see the module's doc)."""
    if not isinstance(state, dict):
        return "it is not a table"
    walk = _Walk()
    problem = walk.run(state)
    if problem is not None:
        return problem
    values, nbytes = walk.cost[id(state)]
    if values > 2 * walk.values + SHARED_SLACK or nbytes > 2 * walk.stored + SHARED_SLACK:
        return "it refers to the same values over and over"
    return _types_problem(state)


class _Walk:
    """One depth-first pass over a graph of containers, each entered once, iteratively (a
    graph nested 100,000 deep must not exhaust Python's stack)."""

    def __init__(self) -> None:
        self.cost: dict[int, tuple[int, int]] = {}  # id -> (values, tensor bytes) by paths
        self.entered: set[int] = set()
        self.values = 0  # distinct values: each container's items, counted once
        self.storages: dict[tuple[int, int], int] = {}

    @property
    def stored(self) -> int:
        return sum(self.storages.values())

    def run(self, root: Any) -> str | None:
        stack: list[tuple[Any, int, bool]] = [(root, 0, False)]
        while stack:
            node, depth, leaving = stack.pop()
            if leaving:
                self._total(node)
                continue
            if id(node) in self.cost:
                continue  # met before by another path: its cost is known
            if id(node) in self.entered:
                return "it refers to itself"
            if depth > MAX_DEPTH:
                return f"it nests values more than {MAX_DEPTH} deep"
            self.entered.add(id(node))
            children = _children(node)
            self.values += len(children)
            if self.values > MAX_VALUES:
                return f"it holds more than {MAX_VALUES:,} values"
            if isinstance(node, dict) and (bad := next(_bad_keys(node), None)) is not None:
                return f"it has a key {shown(bad)} where gan writes names and numbers"
            stack.append((node, depth, True))
            for child in children:
                if isinstance(child, dict | list | tuple):
                    stack.append((child, depth + 1, False))
                elif (problem := self._leaf(child)) is not None:
                    return problem
        return None

    def _leaf(self, value: Any) -> str | None:
        if isinstance(value, torch.Tensor):
            problem = tensor_problem(value)
            if problem is None:
                storage = value.untyped_storage()
                self.storages[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
                self.cost[id(value)] = (1, value.numel() * value.element_size())
            return problem
        if type(value) not in _LEAVES:
            return f"it holds a {type(value).__name__[:40]}, which gan never writes"
        if type(value) is int and not _INT[0] <= value < _INT[1]:
            return f"it holds {shown(value)}, beyond any value gan writes"
        if type(value) is str and len(value) > MAX_STRING:
            return f"it holds a text of {len(value):,} characters"
        return None

    def _total(self, node: Any) -> None:
        """A container's cost, walked path by path as the digest walks it (capped, so that
        the numbers stay small)."""
        values = nbytes = 1
        for child in _children(node):
            more, extra = self.cost.get(id(child), (1, 0))
            values, nbytes = values + more, nbytes + extra
        cap = 4 * (MAX_VALUES + SHARED_SLACK) + 4 * self.stored
        self.cost[id(node)] = (min(values, cap), min(nbytes, cap))


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [*node.keys(), *node.values()]
    return list(node)


def _bad_keys(table: dict) -> Any:
    return (k for k in table if type(k) not in (str, int) or type(k) is int and abs(k) >= 2**63)


def tensor_problem(t: torch.Tensor) -> str | None:
    """Why a tensor is not one gan writes, or None: a dense CPU tensor, within its storage
    (an expanded or overlapping view would be materialised whole by the digest)."""
    if t.layout != torch.strided or t.is_quantized or t.device.type != "cpu" or t.is_nested:
        return "it holds a tensor of a kind gan never writes"
    if not t.numel():
        return None  # nothing to read: any strides will do
    expected = 1
    strided = sorted((st, sz) for sz, st in zip(t.shape, t.stride(), strict=True) if sz != 1)
    for stride, size in strided:
        if stride != expected:
            shape, strides = "x".join(map(str, t.shape)), ", ".join(map(str, t.stride()))
            return f"it holds a {shape} tensor with strides {strides}, which is not dense"
        expected *= size
    end = (t.storage_offset() + t.numel()) * t.element_size()
    if end > t.untyped_storage().nbytes():
        return "it holds a tensor that reaches past its storage"
    return None


def _types_problem(state: dict[str, Any]) -> str | None:
    """The keys gan writes hold the types it writes: at the top, and in each part's table."""
    tables = [state, *(state[name] for name in _PARTS if isinstance(state.get(name), dict))]
    for table in tables:
        for key, kinds in _TOP.items():
            if key in table and not _of_kind(key, table[key], kinds):
                return f"its {key} is a {type(table[key]).__name__}, where gan writes another kind"
    return None


def _of_kind(key: str, value: Any, kinds: Any) -> bool:
    if kinds == _WEIGHTS:
        return (key == "generator_ema" and value is None) or (
            isinstance(value, dict) and all(isinstance(t, torch.Tensor) for t in value.values())
        )
    if kinds is int:
        return type(value) is int
    return isinstance(value, kinds) and not isinstance(value, bool)


def check_header(state: dict[str, Any], path: Path | str) -> None:
    """The plain values a checkpoint carries are what gan writes: a run name that passes
    --run-name's check, a config that passes `Config.validate`, a model description of
    bounded size. A file that lies about them is refused before anything uses them."""
    problem = _header_problem(state)
    if problem is not None:
        raise GanError(
            f"{path} is not a valid gan checkpoint ({problem}); use a checkpoint written by "
            "gan train."
        )


def _header_problem(state: dict[str, Any]) -> str | None:
    from gan.config import FIELDS, Config
    from gan.config.values import run_name

    step, name = state["step"], state.get("run_name")
    if type(step) is not int or not 0 <= step <= STEPS_MAX:
        return f"its step {shown(step)} is not a whole number from 0"
    if name is not None:
        try:
            run_name(name)
        except ValueError:
            return f"its run name {shown(name)} is not a folder name"
    runtime = state.get("runtime")
    if not isinstance(runtime, dict) or not isinstance(runtime.get("generator"), dict):
        return "its generator is not a table"
    for key in ("model", "config"):
        if not isinstance(state[key], dict):
            return f"its {key} is not a table"
    if not isinstance(runtime.get("generator_ema") or {}, dict):
        return "its generator_ema is not a table"
    if not isinstance(state.get("dataset", {}), dict):
        return "its dataset description is not a table"
    if not all(isinstance(v, dict) for v in state["config"].values()):
        return "its stored options are not tables of sections"
    try:
        Config.from_dict(state["config"]).validate()
        FIELDS["model.latent_dim"].check(state["model"].get("latent_dim"))
    except (GanError, ValueError, TypeError, AttributeError) as exc:
        return f"its stored options are invalid: {str(exc)[:120]}"
    return _model_problem(state["model"])


def _model_problem(model: dict[str, Any]) -> str | None:
    from gan.config.catalog import MODELS

    if model.get("name") not in MODELS.names():
        return f"its model {shown(model.get('name'))} is not one of {', '.join(MODELS)}"
    shape = model.get("image_shape")
    ints = isinstance(shape, list | tuple) and all(type(v) is int for v in shape)
    if not ints or len(shape) != 3 or not 1 <= shape[0] <= 4:
        return f"its image shape {shown(shape)} is not channels x height x width"
    if not (1 <= shape[1] <= MAX_SIDE and 1 <= shape[2] <= MAX_SIDE):
        return f"its image size {shape[1]}x{shape[2]} is beyond {MAX_SIDE}x{MAX_SIDE}"
    grow = model.get("grow", 0)
    if type(grow) is not int or not 0 <= grow <= 3:
        return f"its growth levels {shown(grow)} are not 0 to 3"
    if grow and min(shape[1], shape[2]) < 4 * 2**grow:
        return f"its image size {shape[1]}x{shape[2]} is too small for {grow} growth levels"
    classes = model.get("classes")
    if classes is not None:
        names_ok = isinstance(classes, list | tuple) and all(
            isinstance(c, str) and 0 < len(c) <= MAX_CLASS_NAME for c in classes
        )
        if not names_ok or not 1 <= len(classes) <= MAX_CLASSES:
            return (
                f"its classes are not 1 to {MAX_CLASSES:,} names of 1 to {MAX_CLASS_NAME} "
                "characters"
            )
    return None
