"""A small synthetic dataset, scripted servers over it, and a way to sample from them with the real client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agentrun import storage
from agentrun.environment.judge import DeterministicJudge, Judge
from agentrun.mailbox import queries, schema, writer
from agentrun.mailbox.records import Scenario
from agentrun.rollout.client import RolloutClient
from agentrun.rollout.trajectory import Trajectory
from agentrun.scripted.serving import ScriptedServer
from agentrun.scripted.server import ServerConfig
from agentrun.spec.models import EnvironmentSpec, RolloutSpec

MODEL = "scripted"

Sample = Callable[..., list[list[Trajectory]]]


@pytest.fixture(scope="session")
def scenarios(dataset: Path) -> list[Scenario]:
    return writer.load_scenarios(storage.scenarios_file(dataset))


@pytest.fixture
def mailbox(dataset: Path) -> Iterator[queries.Mailbox]:
    with queries.Mailbox(dataset / schema.EMAILS_DB) as box:
        yield box


@pytest.fixture
def serve(dataset: Path) -> Iterator[Callable[..., ScriptedServer]]:
    """Start a scripted server over the dataset with the given `ServerConfig` fields; stopped after the test."""
    servers: list[ScriptedServer] = []

    def start(**config: Any) -> ScriptedServer:
        server = ScriptedServer(ServerConfig(dataset_dir=dataset, **config)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def oracle_server(dataset: Path) -> Iterator[ScriptedServer]:
    with ScriptedServer(ServerConfig(dataset_dir=dataset)) as server:
        yield server


@pytest.fixture
def sample(mailbox: queries.Mailbox) -> Sample:
    """Sample groups from a server with the real client: `sample(server, scenarios, group_size=1, ...)`.

    Keyword arguments: `model`, `seed`, `judge`, `env` (an EnvironmentSpec) and RolloutSpec fields.
    """

    def run(
        server: ScriptedServer,
        scenarios: Sequence[Scenario],
        group_size: int = 1,
        *,
        model: str = MODEL,
        seed: int | None = 0,
        judge: Judge | None = None,
        env: EnvironmentSpec | None = None,
        **settings: Any,
    ) -> list[list[Trajectory]]:
        async def go() -> list[list[Trajectory]]:
            async with RolloutClient(
                server.base_url,
                RolloutSpec(**settings),
                env or EnvironmentSpec(),
                mailbox,
                judge or DeterministicJudge(),
                backoff_base_seconds=0.01,
            ) as client:
                return await client.run_groups(scenarios, model, group_size, seed=seed)

        return asyncio.run(go())

    return run
