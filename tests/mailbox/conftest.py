"""A default-sized synthetic dataset, built once per test session (about 3 s), for the tests that read one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from agentrun.mailbox import build, synthetic, writer
from agentrun.mailbox.records import Scenario


@dataclass(frozen=True)
class Built:
    directory: Path
    report: build.BuildReport
    generated: synthetic.Generated
    scenarios: list[Scenario]  # as read back from scenarios.parquet


@pytest.fixture(scope="session")
def default_dataset(tmp_path_factory: pytest.TempPathFactory) -> Built:
    directory = tmp_path_factory.mktemp("synthetic") / "dataset"
    report = build.build("synthetic", directory, seed=0)
    scenarios = writer.load_scenarios(directory / "scenarios.parquet")
    return Built(directory, report, synthetic.generate(0), scenarios)
