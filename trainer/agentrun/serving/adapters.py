"""The LoRA adapters a server holds, by served name, and vLLM's filesystem resolver.

An adapter is accepted only if its `adapter_config.json` says `peft_type: LORA` and names this
server's base model in `base_model_name_or_path` (the check vLLM's `lora_filesystem_resolver` makes),
so an adapter trained on another base is refused with a message saying which base it was built for,
instead of being applied to weights it does not belong to.

Adapters live in one `PeftModel` wrapped around the base model once the first one is loaded. Its
weights change only while `lock` is held, and the engine holds it for every forward pass. At most
`max_loras` adapters are held; loading one more evicts the least recently used adapter that no
running sequence needs (the resolver loads it again from disk when it is named). An adapter unloaded
while sequences still use it leaves the registry at once and the model when its last sequence ends.

How a batch runs its rows' adapters (`route`): one forward whatever the mix. A uniform batch (the usual
case: every rollout of a step on the newest adapter) runs with that adapter set active, or with the
adapter layers disabled for the base model; a mixed batch names each row's adapter through PEFT's
mixed-batch `adapter_names`. Measured per decode step of 16 rows on the tiny model (1 thread, r=16 on
all linear layers, bench/serve_throughput.py): plain model 20 ms; one adapter set active 30 ms vs 49 ms
through `adapter_names`; base rows with adapter layers disabled 22 ms vs 30 ms through `adapter_names`;
two adapters mixed 57 ms vs 69 ms as two grouped forwards of 8. Every forward states what each row
uses, so a base request never runs with an adapter left active.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections import Counter, OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel

CONFIG_FILE = "adapter_config.json"
BASE = "__base__"  # PEFT's name for "no adapter" in a mixed batch
MIXED = "__mixed__"  # routing mode: rows name their adapters
UNKNOWN = "__unknown__"  # routing mode after a load or delete (PEFT may have switched the active adapter)


class AdapterError(Exception):
    """A load, unload or resolution that failed, with the HTTP status and vLLM error type to answer."""

    def __init__(self, message: str, status: int = 400, err_type: str = "BadRequestError") -> None:
        super().__init__(message)
        self.message, self.status, self.err_type = message, status, err_type


def check_adapter(name: str, path: Path, base_name: str) -> None:
    """Raise AdapterError unless `path` holds a PEFT LoRA adapter for the base model `base_name`."""
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
    except FileNotFoundError:
        raise AdapterError(f"Loading lora {name} failed: No adapter found for {path}", 404, "NotFoundError") from None
    except (OSError, ValueError) as error:
        raise AdapterError(f"Loading lora {name} failed: unreadable {path / CONFIG_FILE}: {error}") from None
    if config.get("peft_type") != "LORA":
        raise AdapterError(f"Loading lora {name} failed: {path} is a {config.get('peft_type')} adapter, not LORA")
    built_for = config.get("base_model_name_or_path")
    if built_for != base_name:
        raise AdapterError(
            f"Loading lora {name} failed: {path} was built for base model {built_for!r}, "
            f"but this server serves {base_name!r}"
        )


def resolve_path(adapters_dir: Path, name: str) -> Path | None:
    """`adapters_dir/name` if it is a directory inside `adapters_dir` (no absolute names, no `..`)."""
    if os.path.isabs(name):
        return None
    root = adapters_dir.resolve()
    path = (root / name).resolve()
    return path if path.parent == root and path.is_dir() else None


class Adapters:
    def __init__(self, base: torch.nn.Module, base_name: str, max_loras: int) -> None:
        self.lock = threading.Lock()  # held for every forward pass and every change of weights
        self.base_name = base_name
        self._base = base
        self._peft: PeftModel | None = None
        self._max_loras = max_loras
        self._state = threading.Lock()  # guards the three fields below; never held across a forward
        self._paths: OrderedDict[str, Path] = OrderedDict()  # least recently used first
        self._users: Counter[str] = Counter()
        self._unloading: set[str] = set()
        self._mode: str | None = UNKNOWN  # what the PEFT layers do now: an adapter, None (disabled), MIXED
        self._serials: dict[str, int] = {}  # name -> which load this is (1, 2, ...): caches key on it
        self._loads = 0

    @property
    def model(self) -> torch.nn.Module:
        """The module to call: the PeftModel once an adapter was ever loaded, else the base model."""
        return self._peft if self._peft is not None else self._base

    def route(self, names: Sequence[str | None]) -> dict[str, Any]:
        """Set the model up for a batch whose row i uses adapter `names[i]` (None: the base model) and
        return the extra forward arguments; called with `lock` held."""
        if self._peft is None:
            return {}
        if len(set(names)) > 1:
            self._switch(MIXED)
            return {"adapter_names": [name or BASE for name in names]}
        self._switch(names[0])
        return {}

    def _switch(self, mode: str | None) -> None:
        if mode == self._mode or self._peft is None:
            return
        if mode is None:
            self._peft.base_model.disable_adapter_layers()
        else:
            self._peft.base_model.enable_adapter_layers()
            if mode != MIXED:
                self._peft.set_adapter(mode, inference_mode=True)
        self._mode = mode

    def paths(self) -> dict[str, Path]:
        with self._state:
            return dict(self._paths)

    def __contains__(self, name: str) -> bool:
        with self._state:
            return name in self._paths

    def load(self, name: str, path: Path) -> None:
        """Validate and load an adapter under `name`; AdapterError (vLLM's status and type) if it cannot be."""
        with self._state:
            if name in self._paths or name in self._unloading:
                raise AdapterError(
                    f"The lora adapter '{name}' has already been loaded. If you want to load the adapter in place, "
                    "set 'load_inplace' to True.", 400, "InvalidUserInput",
                )  # fmt: skip
        check_adapter(name, path, self.base_name)
        with self.lock:
            self._evict_for_one_more()
            try:
                self._attach(name, path)
            except Exception as error:  # noqa: BLE001 - whatever PEFT raises, the adapter does not fit this model
                if self._peft is not None and name in self._peft.peft_config:
                    self._peft.delete_adapter(name)
                raise AdapterError(f"Loading lora {name} failed: {type(error).__name__}: {error}") from error
            with self._state:
                self._paths[name] = path
                self._loads += 1
                self._serials[name] = self._loads

    def unload(self, name: str) -> None:
        with self._state:
            if name not in self._paths:
                raise AdapterError(f"The lora adapter '{name}' cannot be found.", 404, "NotFoundError")
            del self._paths[name]
            if self._users[name]:
                self._unloading.add(name)  # deleted from the model by the last `release`
                return
        with self.lock:
            self._delete(name)

    def serial(self, name: str | None) -> int:
        """Which load of adapter `name` is in the model (0 for the base model)."""
        with self._state:
            return self._serials.get(name, 0) if name is not None else 0

    def acquire(self, name: str) -> None:
        """Pin an adapter for one sequence (it cannot be evicted or deleted until `release`)."""
        with self._state:
            if name not in self._paths:
                raise AdapterError(f"The model `{name}` does not exist.", 404, "NotFoundError")
            self._users[name] += 1
            self._paths.move_to_end(name)

    def release(self, name: str) -> None:
        """Unpin; called on the engine thread with `lock` held, so a pending deletion can happen now."""
        with self._state:
            self._users[name] -= 1
            finished = self._users[name] == 0 and name in self._unloading
            if finished:
                self._unloading.discard(name)
        if finished:
            self._delete(name)

    def _attach(self, name: str, path: Path) -> None:
        with warnings.catch_warnings():
            # PEFT reads transformers' `is_gradient_checkpointing`, deprecated in transformers 5: a
            # FutureWarning about the two libraries, not about this adapter.
            warnings.simplefilter("ignore", FutureWarning)
            if self._peft is None:
                self._peft = PeftModel.from_pretrained(self._base, path, adapter_name=name, is_trainable=False)
            else:
                self._peft.load_adapter(path, adapter_name=name, is_trainable=False)
        self._peft.eval()
        self._mode = UNKNOWN

    def _evict_for_one_more(self) -> None:
        with self._state:
            if len(self._paths) + len(self._unloading) < self._max_loras:
                return
            idle = next((name for name in self._paths if not self._users[name]), None)
            if idle is None:
                raise AdapterError(
                    f"all {self._max_loras} adapter slots (--max-loras) are in use by running requests",
                    503, "ServiceUnavailableError",
                )  # fmt: skip
            del self._paths[idle]
        self._delete(idle)

    def _delete(self, name: str) -> None:
        if self._peft is None:
            return
        with warnings.catch_warnings():
            # Deleting the active adapter makes PEFT activate another one and warn about it; `route`
            # sets the adapters of every batch itself, so which one PEFT picks does not matter.
            warnings.simplefilter("ignore", UserWarning)
            self._peft.delete_adapter(name)
        self._mode = UNKNOWN
