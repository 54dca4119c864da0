"""The container images and skaffold.yaml, checked without a Docker engine: what the Dockerfiles copy is in
the build context and builds the project's wheel, every base is pinned, the images' users, ports and entry
points are the ones the operator's pods use (agentrun.operator.children, `agentrun operator`), the modules
the pods run exist, and skaffold builds the three images into the chart values the chart has."""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import json
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
import pytest
import yaml
from click.testing import CliRunner

from agentrun.cli import main as cli_main
from agentrun.operator import children
from agentrun.operator import cli as operator_cli
from agentrun.spec import loading
from agentrun.spec.models import AgentTrainingRun

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ("operator", "trainer", "serving")
REPOSITORY = "ghcr.io/agentrun"  # the images skaffold builds: ghcr.io/agentrun/<name>
OWNER = children.Owner(name="qwen3-4b-enron", namespace="agentrun", uid="uid-1")
TORCH_PACKAGES = {"torch", "transformers", "peft", "deepspeed", "tokenizers", "safetensors"}


# --- Dockerfiles ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # continuation lines joined


@dataclass(frozen=True)
class Stage:
    base: str  # the FROM image with build arguments substituted
    name: str | None
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass(frozen=True)
class Dockerfile:
    declared_args: frozenset[str]
    stages: tuple[Stage, ...]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def logical_lines(text: str) -> list[str]:
    """Instructions one per line: comments and blank lines dropped, `\\` continuations joined."""
    lines, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    assert not pending, "the file ends inside a continuation"
    return lines


def substitute(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], text)


def parse_dockerfile(image: str, build_args: dict[str, str] | None = None) -> Dockerfile:
    """Parse images/<image>/Dockerfile; FROM lines see the global ARG defaults, overridden by build_args."""
    args: dict[str, str] = {}
    declared: set[str] = set()
    stages: list[Stage] = []
    current: tuple[str, str | None, list[Instruction]] | None = None
    for line in logical_lines((ROOT / "images" / image / "Dockerfile").read_text()):
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            declared.add(name)
            if current is None:
                args[name] = (build_args or {}).get(name, default.strip('"'))
        if keyword == "FROM":
            if current is not None:
                stages.append(Stage(current[0], current[1], tuple(current[2])))
            words = [w for w in rest.split() if not w.startswith("--")]
            current = (substitute(words[0], args), words[2] if len(words) == 3 else None, [])
        elif current is not None:
            current[2].append(Instruction(keyword, rest))
    assert current is not None, f"images/{image}/Dockerfile has no FROM"
    stages.append(Stage(current[0], current[1], tuple(current[2])))
    return Dockerfile(frozenset(declared), tuple(stages))


def copies(stage: Stage) -> list[tuple[list[str], list[str], str]]:
    """(flags, sources, destination) of each COPY and ADD, shell or JSON form."""
    found = []
    for instruction in stage.instructions:
        if instruction.keyword in ("COPY", "ADD"):
            words = json.loads(instruction.args) if instruction.args.startswith("[") else shlex.split(instruction.args)
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            found.append((flags, paths[:-1], paths[-1]))
    return found


def exposed(stage: Stage) -> set[int]:
    return {int(port.split("/")[0]) for args in stage.all("EXPOSE") for port in args.split()}


def exec_form(stage: Stage, keyword: str) -> list[str] | None:
    value = stage.last(keyword)
    return None if value is None else json.loads(value)  # shell form would fail here, on purpose


def env(stage: Stage) -> dict[str, str]:
    pairs = (word.partition("=") for args in stage.all("ENV") for word in shlex.split(args))
    return {key: value for key, _, value in pairs}


def user(stage: Stage) -> tuple[int, int | None]:
    value = stage.last("USER")
    match = re.fullmatch(r"(\d+)(?::(\d+))?", value or "")
    assert match, f"USER {value!r} is not numeric uid[:gid]"
    return int(match.group(1)), None if match.group(2) is None else int(match.group(2))


def pinned(image: str) -> bool:
    """A digest, or a tag that names a version (not `latest`, not missing)."""
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    name = image.rsplit("/", 1)[-1]
    tag = name.partition(":")[2]
    return bool(tag) and tag != "latest" and re.search(r"\d", tag) is not None


# --- .dockerignore (moby's patternmatcher: last matching rule wins; a rule matching a parent covers it) ----

def glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


@cache
def ignore_rules() -> tuple[tuple[bool, re.Pattern[str]], ...]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((negated, glob_regex(posixpath.normpath(line.lstrip("!").strip()).lstrip("/"))))
    return tuple(rules)


def ignored(path: str) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for negated, rule in ignore_rules():
        if any(rule.fullmatch(prefix) for prefix in prefixes):
            verdict = not negated
    return verdict


@cache
def tracked_files() -> tuple[str, ...]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return tuple(path for path in out.split("\0") if path)


# --- skaffold -------------------------------------------------------------------------------------------

# Fields of the skaffold/v4beta13 objects this config uses (docs-v2/content/en/schemas/v4beta13.json).
SKAFFOLD_FIELDS = {
    "build": {"hooks", "artifacts", "insecureRegistries", "tagPolicy", "platforms", "local"},
    "local": {"push", "tryImportMissing", "useDockerCLI", "useBuildkit", "concurrency"},
    "artifact": {"image", "context", "sync", "requires", "hooks", "platforms", "runtimeType", "docker"},
    "docker": {"dockerfile", "target", "buildArgs", "network", "addHost", "cacheFrom", "cacheTo", "cliFlags",
               "pullParent", "noCache", "squash", "secrets", "ssh"},
    "helm": {"concurrency", "releases", "flags", "hooks"},
    "release": {"name", "chartPath", "remoteChart", "valuesFiles", "namespace", "version", "setValues",
                "setValueTemplates", "setFiles", "createNamespace", "wait", "recreatePods", "skipBuildDependencies",
                "skipTests", "useHelmSecrets", "repo", "upgradeOnChange", "overrides", "packaged", "dependsOn"},
    "profile": {"name", "activation", "requiresAllActivations", "patches", "build", "test", "manifests", "deploy",
                "portForward", "resourceSelector", "verify", "customActions"},
    "patch": {"op", "path", "from", "value"},
}


@cache
def skaffold() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    return config


def apply_patches(config: dict[str, Any], patches: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON patches a profile applies (add and replace, the ops this config uses)."""
    patched = copy.deepcopy(config)
    for patch in patches:
        *parents, last = [t.replace("~1", "/").replace("~0", "~") for t in patch["path"].lstrip("/").split("/")]
        target: Any = patched
        for token in parents:
            target = target[int(token)] if isinstance(target, list) else target[token]
        assert patch.get("op", "replace") in ("add", "replace"), patch
        if isinstance(target, list):
            target.insert(len(target) if last == "-" else int(last), patch["value"])
        else:
            assert patch.get("op", "replace") == "add" or last in target, f"replace of a missing {patch['path']}"
            target[last] = patch["value"]
    return patched


def configurations() -> dict[str, dict[str, Any]]:
    """The config as skaffold runs it: without a profile and with each one."""
    base = skaffold()
    return {"default": base} | {p["name"]: apply_patches(base, p.get("patches", [])) for p in base["profiles"]}


def sanitized(image: str) -> str:
    """An artifact's name as skaffold's helm templates spell it."""
    return re.sub(r"[./:-]", "_", image)


# --- what the operator builds ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run() -> AgentTrainingRun:
    return loading.load_run(ROOT / "examples" / "qwen3-4b-enron.yaml")


def pod_objects(run: AgentTrainingRun) -> list[dict[str, Any]]:
    objs = [children.prepare_job(run, OWNER), *children.workloads(run, OWNER),
            children.evaluation_job(run, OWNER, 20), children.evaluation_job(run, OWNER, None)]
    return [o for o in objs if o["kind"] in ("Job", "Deployment")]


def container(obj: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def vllm_deployment(run: AgentTrainingRun) -> dict[str, Any]:
    return next(o for o in pod_objects(run) if o["kind"] == "Deployment")


def trainer_pods(run: AgentTrainingRun) -> list[dict[str, Any]]:
    return [o for o in pod_objects(run) if o["kind"] == "Job"]


# --- the tests ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("image", IMAGES)
def test_every_copy_source_is_in_the_build_context(image: str) -> None:
    sources = [s for stage in parse_dockerfile(image).stages for flags, srcs, _ in copies(stage)
               if not any(f.startswith("--from") for f in flags) for s in srcs]
    for source in sources:
        path = posixpath.normpath(source)
        assert (ROOT / path).exists(), f"images/{image}/Dockerfile copies {source}, which does not exist"
        assert not ignored(path), f"{source} is left out of the build context by .dockerignore"
        under = [f for f in tracked_files() if f == path or f.startswith(path + "/")]
        assert under, f"{source}: no tracked file"
        assert not [f for f in under if ignored(f)], f"tracked files under {source} are left out"


def test_the_build_context_leaves_out_the_repository_around_the_sources() -> None:
    for path in (".git/HEAD", ".agentrun/runs/x/run.json", ".whl/x.whl", "bench/results/x.json", "tests/conftest.py",
                 "docs/kubernetes.md", "charts/agentrun/values.yaml", "core/agentrun/__pycache__/storage.cpython-311.pyc"):
        assert ignored(path), path
    assert not ignored("trainer/agentrun/models/chat_template.jinja")


@pytest.mark.parametrize("image", IMAGES)
def test_every_base_image_is_pinned_to_a_version(image: str) -> None:
    dockerfile = parse_dockerfile(image)
    stage_names = {s.name for s in dockerfile.stages}
    for stage in dockerfile.stages:
        assert stage.base in stage_names or pinned(stage.base), f"images/{image}: FROM {stage.base} is not pinned"


@pytest.mark.parametrize("profile", configurations())
def test_skaffold_build_arguments_exist_and_keep_the_bases_pinned(profile: str) -> None:
    for artifact in configurations()[profile]["build"]["artifacts"]:
        image = artifact["image"].rsplit("/", 1)[-1]
        build_args = artifact.get("docker", {}).get("buildArgs", {})
        dockerfile = parse_dockerfile(image, {k: str(v) for k, v in build_args.items()})
        assert set(build_args) <= dockerfile.declared_args, f"{profile}: {image} declares no ARG {set(build_args)}"
        stage_names = {s.name for s in dockerfile.stages}
        assert all(s.base in stage_names or pinned(s.base) for s in dockerfile.stages), (profile, image)


@pytest.mark.parametrize("image", IMAGES)
def test_the_final_stage_runs_as_a_numeric_non_root_user(image: str) -> None:
    uid, gid = user(parse_dockerfile(image).final)
    assert uid != 0 and gid != 0


def test_the_pods_run_as_the_users_of_their_images(run: AgentTrainingRun) -> None:
    trainer_uid, _ = user(parse_dockerfile("trainer").final)
    assert trainer_uid == children.WORKLOAD_USER
    for pod in trainer_pods(run):
        assert pod["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == trainer_uid
    serving_context = vllm_deployment(run)["spec"]["template"]["spec"].get("securityContext", {})
    if "runAsUser" in serving_context:
        assert serving_context["runAsUser"] == user(parse_dockerfile("serving").final)[0]


def test_the_serving_image_exposes_the_port_the_deployment_serves_on(run: AgentTrainingRun) -> None:
    ports = {p["containerPort"] for p in container(vllm_deployment(run))["ports"]}
    assert exposed(parse_dockerfile("serving").final) == ports == {children.SERVE_PORT}


def test_the_trainer_image_exposes_the_learners_ports(run: AgentTrainingRun) -> None:
    learner = next(o for o in trainer_pods(run) if o["metadata"]["name"].endswith("-learner"))
    ports = {p["containerPort"] for p in container(learner)["ports"]}
    assert exposed(parse_dockerfile("trainer").final) == ports == {
        children.METRICS_PORT, children.LIVENESS_PORT, children.RENDEZVOUS_PORT}


def test_the_operator_image_exposes_the_cli_defaults() -> None:
    options = {p.name: p for p in operator_cli.operator.params}
    liveness, metrics = urlparse(str(options["liveness"].default)).port, options["metrics_port"].default
    assert exposed(parse_dockerfile("operator").final) == {liveness, metrics}


def test_the_workload_commands_run_modules_that_exist(run: AgentTrainingRun) -> None:
    modules = set()
    for pod in trainer_pods(run):
        command = container(pod)["command"]
        assert command[0] in ("python", "torchrun"), command
        module = command[command.index("-m") + 1]
        assert importlib.util.find_spec(module) is not None, f"{pod['metadata']['name']} runs {module}"
        modules.add(module)
    assert modules == {f"agentrun.workloads.{m}" for m in ("prepare", "learner", "evaluator")}
    torch_scripts = {e.name for e in importlib.metadata.entry_points(group="console_scripts")
                     if e.value.startswith("torch.")}
    if importlib.util.find_spec("torch") is not None:
        assert "torchrun" in torch_scripts  # what the trainer image's torch puts on PATH


def console_scripts() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def test_the_operator_entrypoint_is_the_agentrun_operator_command() -> None:
    entrypoint = exec_form(parse_dockerfile("operator").final, "ENTRYPOINT")
    assert entrypoint is not None and entrypoint[0] in console_scripts()
    result = CliRunner().invoke(cli_main.cli, [*entrypoint[1:], "--help"])
    assert result.exit_code == 0 and "--liveness" in result.output, result.output


def test_the_trainer_default_command_is_a_console_script() -> None:
    final = parse_dockerfile("trainer").final
    command = exec_form(final, "ENTRYPOINT") or exec_form(final, "CMD")
    assert command is not None and command[0] in console_scripts()
    subcommands = [word for word in command[1:] if not word.startswith("-")]
    assert not subcommands or subcommands[0] in cli_main.cli.list_commands(click.Context(cli_main.cli))


def test_the_serving_entrypoint_is_what_the_deployment_runs(run: AgentTrainingRun) -> None:
    vllm = container(vllm_deployment(run))
    assert exec_form(parse_dockerfile("serving").final, "ENTRYPOINT") == [*vllm["command"], vllm["args"][0]]


def test_the_serving_image_enables_the_filesystem_lora_resolver_like_the_deployment(run: AgentTrainingRun) -> None:
    image_env = env(parse_dockerfile("serving").final)
    pod_env = {e["name"]: e.get("value") for e in container(vllm_deployment(run))["env"]}
    assert image_env["VLLM_PLUGINS"] == pod_env["VLLM_PLUGINS"] == "lora_filesystem_resolver"
    assert image_env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"].lower() in ("1", "true")
    assert pod_env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"].lower() in ("1", "true")
    assert "VLLM_LORA_RESOLVER_CACHE_DIR" not in image_env  # one per run: the operator sets it
    assert pod_env["VLLM_LORA_RESOLVER_CACHE_DIR"].startswith(children.DATA_MOUNT + "/")


def test_the_operator_image_installs_agentrun_without_torch() -> None:
    runs = " ".join(r for stage in parse_dockerfile("operator").stages for r in stage.all("RUN"))
    installs = re.findall(r"pip install ([^&;|]*)", runs)
    assert [extra for i in installs for extra in re.findall(r"\.whl\)\[([^\]]*)\]", i)] == ["operator"]
    assert not [i for i in installs if re.search(r"torch|deepspeed|transformers", i)], installs
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["operator"]]
    names = {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower() for r in requirements}
    assert not names & (TORCH_PACKAGES | {"agentrun"}), names


def replay_copies(image: str, context: Path, root: Path) -> Path:
    """Lay out in `root` what the stage that runs `pip wheel` copies from `context` (.dockerignore applied);
    returns the directory that stage builds in."""
    stage = next(s for s in parse_dockerfile(image).stages if any("pip wheel" in r for r in s.all("RUN")))
    workdir = "/"
    for instruction in stage.instructions:
        if instruction.keyword == "WORKDIR":
            workdir = posixpath.join(workdir, instruction.args)
        if instruction.keyword == "RUN" and "pip wheel" in instruction.args:
            return root / workdir.lstrip("/")
        if instruction.keyword not in ("COPY", "ADD"):
            continue
        (_, sources, destination), = copies(Stage(stage.base, stage.name, (instruction,)))
        target = root / posixpath.join(workdir, destination).lstrip("/")
        for source in sources:
            path = posixpath.normpath(source)
            if (context / path).is_dir():
                for file in (context / path).rglob("*"):
                    relative = file.relative_to(context).as_posix()
                    if file.is_file() and not ignored(relative):
                        (target / file.relative_to(context / path)).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(file, target / file.relative_to(context / path))
            else:
                into = target / Path(path).name if destination.endswith("/") or destination in (".", "./") else target
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(context / path, into)
    raise AssertionError(f"images/{image}/Dockerfile: no `pip wheel` after its copies")


@pytest.mark.slow
@pytest.mark.parametrize("image", ["operator", "trainer"])
def test_the_wheel_stage_builds_every_part_from_what_it_copies(image: str, tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    source = replay_copies(image, ROOT, tmp_path / "fs")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                             "--wheel-dir", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    wheel, = (tmp_path / "dist").glob("agentrun-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    for module in ("agentrun.cli.main", "agentrun.operator.cli", "agentrun.operator.handlers", "agentrun.spec.models",
                   "agentrun.workloads.prepare", "agentrun.workloads.learner", "agentrun.workloads.evaluator",
                   "agentrun.evaluator.benchmark"):
        assert module.replace(".", "/") + ".py" in names, module
    assert "agentrun/models/chat_template.jinja" in names
    assert "agentrun/__init__.py" not in names  # one namespace over the four source roots (PEP 420)
    assert re.search(r"^agentrun = agentrun\.cli\.main:cli$", entry_points, re.MULTILINE)


def test_skaffold_builds_each_image_from_its_dockerfile() -> None:
    config = skaffold()
    assert config["apiVersion"] == "skaffold/v4beta13" and config["kind"] == "Config"
    artifacts = {a["image"]: a for a in config["build"]["artifacts"]}
    assert set(artifacts) == {f"{REPOSITORY}/{name}" for name in IMAGES}
    for name in IMAGES:
        artifact = artifacts[f"{REPOSITORY}/{name}"]
        assert artifact.get("context", ".") == "."  # the Dockerfiles copy from the repository root
        assert artifact["docker"]["dockerfile"] == f"images/{name}/Dockerfile"
        assert (ROOT / artifact["docker"]["dockerfile"]).is_file()


@pytest.mark.parametrize("profile", configurations())
def test_skaffold_uses_only_v4beta13_fields(profile: str) -> None:
    config = configurations()[profile]
    objects = [("build", config["build"]), ("helm", config["deploy"]["helm"])]
    objects += [("local", config["build"]["local"])] if "local" in config["build"] else []
    objects += [("artifact", a) for a in config["build"]["artifacts"]]
    objects += [("docker", a["docker"]) for a in config["build"]["artifacts"]]
    objects += [("release", r) for r in config["deploy"]["helm"]["releases"]]
    objects += [("profile", p) for p in skaffold()["profiles"]]
    objects += [("patch", patch) for p in skaffold()["profiles"] for patch in p.get("patches", [])]
    for kind, obj in objects:
        assert set(obj) <= SKAFFOLD_FIELDS[kind], f"{profile}: {kind} has {set(obj) - SKAFFOLD_FIELDS[kind]}"


def release() -> dict[str, Any]:
    releases: list[dict[str, Any]] = skaffold()["deploy"]["helm"]["releases"]
    assert len(releases) == 1
    return releases[0]


def test_skaffold_installs_the_chart_with_the_images_it_built() -> None:
    chart = release()
    assert (chart["name"], chart["chartPath"], chart["namespace"]) == ("agentrun", "charts/agentrun", "agentrun-system")
    assert chart["createNamespace"] is True
    templates = chart["setValueTemplates"]
    assert set(templates) == {f"images.{name}.{field}" for name in IMAGES for field in ("repository", "tag")}
    for name in IMAGES:
        artifact = sanitized(f"{REPOSITORY}/{name}")
        assert templates[f"images.{name}.repository"] == f"{{{{.IMAGE_REPO_{artifact}}}}}"
        tag = re.escape(f"{{{{.IMAGE_TAG_{artifact}}}}}") + "(" + re.escape(f"@{{{{.IMAGE_DIGEST_{artifact}}}}}") + ")?"
        assert re.fullmatch(tag, templates[f"images.{name}.tag"]), templates[f"images.{name}.tag"]


def test_the_chart_has_the_values_skaffold_sets() -> None:
    path = ROOT / "charts" / "agentrun" / "values.yaml"
    if not path.is_file():
        pytest.skip("charts/agentrun/values.yaml is not written yet")
    values = yaml.safe_load(path.read_text())
    for key in release()["setValueTemplates"]:
        node = values
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"values.yaml has no {key}"
            node = node[part]
    for name in IMAGES:
        assert values["images"][name]["repository"] == f"{REPOSITORY}/{name}"


def test_the_operators_default_images_are_the_ones_skaffold_builds(run: AgentTrainingRun) -> None:
    for pod in trainer_pods(run):
        assert container(pod)["image"].rsplit(":", 1)[0] == f"{REPOSITORY}/trainer"
    # the operator's defaults when the chart passes none
    assert children.Defaults().serving.rsplit(":", 1)[0] == f"{REPOSITORY}/serving"


def test_the_cpu_profile_builds_a_cpu_trainer_for_one_operator_replica() -> None:
    config = configurations()["cpu"]
    trainer = next(a for a in config["build"]["artifacts"] if a["image"] == f"{REPOSITORY}/trainer")
    build_args = {k: str(v) for k, v in trainer["docker"]["buildArgs"].items()}
    assert "cuda" not in parse_dockerfile("trainer", build_args).final.base
    assert build_args["TORCH_INDEX_URL"].endswith("/cpu")
    assert int(config["deploy"]["helm"]["releases"][0]["setValues"]["operator.replicas"]) == 1
    assert "cuda" in parse_dockerfile("trainer").final.base  # the default (and the gpu profile) stays CUDA
    assert {"cpu", "gpu"} <= {p["name"] for p in skaffold()["profiles"]}
