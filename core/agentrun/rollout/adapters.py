"""Make a running server use a new LoRA adapter, through vLLM's runtime-loading endpoints (which the
embedded server implements too): `POST /v1/load_lora_adapter {lora_name, lora_path}`, then `GET
/v1/models` must list the name. Older adapters are unloaded (all but the newest `keep`), so a long run
does not fill the server's memory; a request naming an unloaded checkpoint still works through the filesystem
resolver.
"""

from __future__ import annotations

from pathlib import Path

import httpx


class PublishError(RuntimeError):
    """The server refused an adapter or does not list it after loading it."""


class AdapterPublisher:
    def __init__(self, base_url: str, timeout: float = 120.0, keep: int = 1) -> None:
        self._base = base_url.rstrip("/")  # …/v1
        self._client = httpx.Client(timeout=timeout)
        self._keep = keep  # adapters kept loaded, newest first: rollouts may still sample older versions
        self._loaded: list[str] = []

    def close(self) -> None:
        self._client.close()

    def served_models(self) -> list[str]:
        reply = self._client.get(f"{self._base}/models")
        reply.raise_for_status()
        return [entry["id"] for entry in reply.json()["data"]]

    def publish(self, name: str, directory: Path) -> None:
        """Load `directory` as `name`, check the server lists it, then unload the adapters older than the
        newest `keep`."""
        reply = self._client.post(f"{self._base}/load_lora_adapter",
                                  json={"lora_name": name, "lora_path": str(directory.resolve())})
        if reply.status_code != 200 and "already" not in reply.text:  # vLLM: "already been loaded" on resume
            raise PublishError(f"the server refused adapter {name} from {directory}: "
                               f"HTTP {reply.status_code} {reply.text[:300]}")
        if name not in self.served_models():
            raise PublishError(f"the server accepted adapter {name} but does not list it in /v1/models")
        self._loaded = [name, *(loaded for loaded in self._loaded if loaded != name)]
        for older in self._loaded[self._keep :]:
            self._client.post(f"{self._base}/unload_lora_adapter", json={"lora_name": older})
        del self._loaded[self._keep :]

    def __call__(self, name: str, directory: Path) -> None:
        self.publish(name, directory)
