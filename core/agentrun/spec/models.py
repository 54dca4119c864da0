"""The `AgentTrainingRun` spec: the one config model every part of agentrun reads.

The same model validates `agentrun run run.yaml`, generates the CRD's OpenAPI schema (so every
`description` here becomes `kubectl explain` text) and configures the learner, evaluator and servers.
Field names are camelCase on the wire, as Kubernetes resources are, and snake_case in Python.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_snake

from agentrun.spec.base import SpecModel
from agentrun.spec.pods import PodsSpec

API_VERSION = "agentrun.dev/v1alpha1"
KIND = "AgentTrainingRun"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
BUILTIN_PREFIX = "builtin:"  # a base model agentrun builds itself, on the run's volume or local directory
TINY = "builtin:tiny"
TINY_CONTEXT = 4096  # builtin:tiny's positions: a 10-turn episode with search results and emails fits


class Metadata(SpecModel):
    model_config = ConfigDict(extra="allow")  # labels, annotations, uid... belong to Kubernetes

    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=53)]
    """Run name: a DNS label (lowercase letters, digits, '-'); children are named after it."""
    namespace: str | None = None
    """Kubernetes namespace; ignored by the local runner."""


def cel(rule: str, message: str) -> dict[str, Any]:
    """JSON-schema extra for a CEL rule the API server checks (the CRD's `x-kubernetes-validations`);
    pydantic validators check the same rules for `agentrun run`."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": message}]}


IMMUTABLE = "self == oldSelf"


class ModelSpec(SpecModel):
    base: Annotated[str, Field(min_length=1, max_length=512, json_schema_extra=cel(
        IMMUTABLE, "model.base cannot change after creation: checkpoints are adapters of this base; create a new run"
    ))] = TINY
    """Base model: a Hugging Face id (`Qwen/Qwen3-4B`), a local directory in HF layout, or `builtin:tiny`
    (a few-million-parameter model agentrun builds offline, for laptops and CI)."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) of `base`; ignored for local paths."""
    dtype: Literal["bfloat16", "float16", "float32", "auto"] = "bfloat16"
    """Weight and compute dtype for serving and training."""
    max_model_len: Annotated[int, Field(ge=512, le=262144)] = 16384
    """Longest sequence (prompt + all turns) the server and learner accept, in tokens."""


class DatasetSource(StrEnum):
    SYNTHETIC = "synthetic"
    HF = "hf"
    MAILDIR = "maildir"


class DatasetSpec(SpecModel):
    # CEL sees fields the manifest left out as absent (the API server checks defaults that way too).
    model_config = ConfigDict(json_schema_extra=cel(
        "!has(self.source) || self.source != 'maildir' || has(self.maildirPath)",
        "source 'maildir' needs dataset.maildirPath (the folder holding maildir/<user>/)",
    ))

    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=63, json_schema_extra=cel(
        IMMUTABLE, "dataset.name cannot change after creation: the run's scenarios and splits come from it"
    ))] = "synthetic-enron"
    """Dataset directory name under `<storage>/datasets/`; runs that name the same dataset share it."""
    source: DatasetSource = DatasetSource.SYNTHETIC
    """Where emails and questions come from: `synthetic` (generated offline), `hf` (the public Enron
    datasets or local parquet files of the same schema) or `maildir` (a raw Enron maildir tree)."""
    seed: Annotated[int, Field(ge=0)] = 0
    """Seed of the synthetic generator (same seed, same mailbox)."""
    emails: Annotated[int, Field(ge=100, le=500_000)] = 20_000
    """Number of synthetic emails to generate."""
    message_id_style: Literal["enron", "short"] = "enron"
    """`synthetic` source: how message ids look. `enron`: the corpus's JavaMail ids
    (`<10170892.1075912258237.JavaMail.evans@thyme>`, 27 tokens where digits are single tokens); `short`:
    compact ids unique in the mailbox (`<m4821@thyme>`), which a small model learns to copy far sooner.
    Nothing else about the mailbox changes."""
    hard_distractors: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    """`synthetic` source: density of hard distractors, the emails that name a question's keywords but are
    not its source (the matter's introduction, its other facts, stale values a revision replaced, replies
    quoting the fact). 1: the corpus-like default, where the source is the first search hit for ~15% of
    questions; 0: none, the source is the first hit for nearly all (shorter threads, so the same mailbox
    holds about three times the questions); in between, each is kept with that probability."""
    emails_per_inbox: Annotated[int, Field(ge=50, le=50_000)] = 500
    """`synthetic` source: mean emails per inbox; the mailbox gets emails / emailsPerInbox inboxes, at
    least 4 and at most 150 (the corpus's ~150 custodians). Fewer, larger inboxes make searches noisier."""
    emails_dataset: str = "corbt/enron-emails"
    """`hf` source: hub id or local directory of the emails parquet shards."""
    questions_dataset: str = "corbt/enron_emails_sample_questions"
    """`hf` source: hub id or local directory of the questions parquet files."""
    maildir_path: str | None = None
    """`maildir` source: path of the `maildir/` tree."""

    @model_validator(mode="after")
    def _maildir_needs_path(self) -> DatasetSpec:
        if self.source == DatasetSource.MAILDIR and not self.maildir_path:
            raise ValueError("source 'maildir' needs dataset.maildirPath (the folder holding maildir/<user>/)")
        return self


class EnvironmentSpec(SpecModel):
    name: Literal["email-research"] = "email-research"
    """The task the agent is trained on; `email-research` is the ART·E-style email agent."""
    max_turns: Annotated[int, Field(ge=1, le=50)] = 10
    """Assistant turns per episode before it ends as out of turns."""
    max_new_tokens: Annotated[int, Field(ge=16, le=32768)] = 2048
    """Tokens the model may generate per turn."""
    max_search_results: Annotated[int, Field(ge=1, le=10)] = 10
    """Most results one `search_emails` call returns."""


class JudgeKind(StrEnum):
    DETERMINISTIC = "deterministic"
    LLM = "llm"


class SecretKeyRef(SpecModel):
    name: str
    """Name of a Kubernetes Secret in the run's namespace."""
    key: str = "api-key"
    """Key inside the Secret."""


class JudgeSpec(SpecModel):
    model_config = ConfigDict(json_schema_extra=cel(
        "!has(self.kind) || self.kind != 'llm' || (has(self.endpoint) && has(self.model))",
        "judge kind 'llm' needs both reward.judge.endpoint and reward.judge.model",
    ))

    kind: JudgeKind = JudgeKind.DETERMINISTIC
    """`deterministic` compares normalised answers; `llm` asks a model over an OpenAI-compatible API."""
    endpoint: str | None = None
    """`llm` judge: base URL of an OpenAI-compatible API, e.g. `https://api.openai.com/v1`."""
    model: str | None = None
    """`llm` judge: model name at that endpoint."""
    api_key_env: str = "AGENTRUN_JUDGE_API_KEY"
    """Environment variable holding the judge's API key (never put the key in the spec)."""
    api_key_secret: SecretKeyRef | None = None
    """Kubernetes Secret the operator mounts into that environment variable."""

    @model_validator(mode="after")
    def _llm_needs_endpoint(self) -> JudgeSpec:
        if self.kind == JudgeKind.LLM and not (self.endpoint and self.model):
            raise ValueError("judge kind 'llm' needs both reward.judge.endpoint and reward.judge.model")
        return self


CORRECT_PAYS_MOST = "reward.correctAnswer must exceed reward.wrongAnswer and reward.noAnswer"
WEIGHT = Field(ge=-10.0, le=10.0)  # bounds of a reward weight, and of a bonus
BONUS = Field(ge=0.0, le=10.0)


def _own_field_or_default(field: str, model: type[BaseModel]) -> str:
    """CEL for `self.<field>` of the object the rule sits on, or the model's default when it is left out."""
    return f"(has(self.{field}) ? self.{field} : {model.model_fields[to_snake(field)].default})"


def _correct_pays_most(schema: dict[str, Any], model: type[BaseModel]) -> None:
    correct, wrong, none = (_own_field_or_default(f, model) for f in ("correctAnswer", "wrongAnswer", "noAnswer"))
    schema.update(cel(f"{correct} > {wrong} && {correct} > {none}", CORRECT_PAYS_MOST))


class RewardSpec(SpecModel):
    model_config = ConfigDict(json_schema_extra=_correct_pays_most)

    judge: JudgeSpec = JudgeSpec()
    """How answers are judged correct."""
    correct_answer: Annotated[float, WEIGHT] = 1.0
    """Reward of a correct answer before its bonuses (partial credit is not added to it); citing its one
    source, a correct answer earns correctAnswer + correctSourcesBonus + fewSourcesBonus (1.4 by default)."""
    correct_sources_bonus: Annotated[float, BONUS] = 0.3
    """Added to a correct answer that cites every source email of the question."""
    few_sources_bonus: Annotated[float, BONUS] = 0.1
    """Added to a correct answer, divided by the number of distinct emails it cites (all of it for one)."""
    early_finish_bonus: Annotated[float, BONUS] = 0.1
    """Added to a correct answer times (1 - turns / environment.maxTurns): answering sooner earns more."""
    wrong_answer: Annotated[float, WEIGHT] = -1.0
    """Reward of a wrong answer, plus partial credit. Raising it towards noAnswer lowers the break-even
    precision above which answering beats abstaining (see `reward`; 0 when they are equal)."""
    no_answer: Annotated[float, WEIGHT] = 0.0
    """Reward of "I don't know" or of running out of turns, plus partial credit."""
    bad_arguments: Annotated[float, WEIGHT] = -1.8
    """Reward of an episode ended by a tool call with invalid arguments, plus partial credit."""
    unknown_tool: Annotated[float, WEIGHT] = -1.9
    """Reward of an episode ended by a call of a tool that does not exist, plus partial credit."""
    unparseable_tool_call: Annotated[float, WEIGHT] = -2.0
    """Reward of an episode ended by a tool call that cannot be parsed, plus partial credit."""
    partial_credit: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1
    """Credit for each useful step (the right email appeared in a search, it was read, no read of an id
    that does not exist, the sources cited are right), added to every outcome but a correct answer."""

    @model_validator(mode="after")
    def _correct_answer_pays_most(self) -> RewardSpec:
        if not self.correct_answer > max(self.wrong_answer, self.no_answer):
            raise ValueError(f"{CORRECT_PAYS_MOST} (got {self.correct_answer}, {self.wrong_answer} and "
                             f"{self.no_answer}): otherwise a correct answer is not what the reward teaches")
        return self


class LoraSpec(SpecModel):
    model_config = ConfigDict(json_schema_extra=cel(
        IMMUTABLE, "training.lora cannot change after creation: checkpoints must keep the adapter's shape"
    ))

    rank: Annotated[int, Field(ge=1, le=256)] = 16
    """LoRA rank r."""
    alpha: Annotated[int, Field(ge=1, le=1024)] = 32
    """LoRA alpha (scale = alpha / rank)."""
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """Dropout on the LoRA input."""
    target_modules: Annotated[list[Annotated[str, Field(max_length=128)]], Field(min_length=1, max_length=64)] = [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    """Linear layers that get adapters (all linear layers of a Qwen block by default)."""


class ImportanceCorrectionSpec(SpecModel):
    enabled: bool = True
    """Correct for the mismatch between serving-engine and learner log-probabilities (truncated IS)."""
    clip: Annotated[float, Field(gt=1.0, le=100.0)] = 2.0
    """Upper truncation of the per-token importance weight."""


class TrainingSpec(SpecModel):
    algorithm: Literal["grpo"] = "grpo"
    """RL algorithm; GRPO over LoRA adapters."""
    steps: Annotated[int, Field(ge=1, le=1_000_000)] = 100
    """Optimizer steps (each one samples fresh rollouts)."""
    scenarios_per_step: Annotated[int, Field(ge=1, le=4096)] = 8
    """Questions sampled per step; each becomes one group."""
    group_size: Annotated[int, Field(ge=2, le=256)] = 4
    """Trajectories sampled per question (G); advantages are relative within the group."""
    learning_rate: Annotated[float, Field(gt=0.0, le=1e-2)] = 2e-5
    """AdamW learning rate; LoRA usually wants 1e-5..5e-5 (about 10x full fine-tuning)."""
    weight_decay: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    """AdamW weight decay."""
    max_grad_norm: Annotated[float, Field(gt=0.0)] = 1.0
    """Gradient clipping norm."""
    epochs: Annotated[int, Field(ge=1, le=16)] = 1
    """Passes over a step's samples (PPO epochs). Each pass after the first, like each minibatch after the
    first, updates a policy that has moved from the one that sampled: that is what epsLow/epsHigh clip."""
    minibatches: Annotated[int, Field(ge=1, le=256)] = 1
    """Optimizer steps per pass, each on an equal share of the step's samples."""
    eps_low: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    """Lower clip of the ratio of the updated policy to the sampling one (1 - epsLow); it only acts when a
    step makes several updates (epochs or minibatches above 1)."""
    eps_high: Annotated[float, Field(gt=0.0, lt=10.0)] = 0.28
    """Upper clip of that ratio (1 + epsHigh)."""
    scale_rewards_by_std: bool = True
    """Divide group-centred rewards by the group's standard deviation."""
    kl_coef: Annotated[float, Field(ge=0.0)] = 0.0
    """KL penalty towards the base model (adapter disabled); 0 turns it off."""
    importance_correction: ImportanceCorrectionSpec = ImportanceCorrectionSpec()
    """Engine/learner log-probability mismatch correction."""
    lora: LoraSpec = LoraSpec()
    """Adapter shape."""
    checkpoint_every: Annotated[int, Field(ge=1)] = 10
    """Keep the checkpoint of every Nth step for good (each step is saved; older ones are pruned except
    these, the newest two and the best by validation reward)."""
    seed: Annotated[int, Field(ge=0)] = 0
    """Seed for scenario order, sampling and initialisation."""


class RolloutSpec(SpecModel):
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 1.0
    """Sampling temperature for training rollouts."""
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    """Nucleus sampling threshold."""
    concurrency: Annotated[int, Field(ge=1, le=4096)] = 32
    """Trajectories in flight at once against the server."""
    request_timeout_seconds: Annotated[float, Field(gt=0.0, le=3600.0)] = 120.0
    """Timeout of one chat-completions request."""
    max_retries: Annotated[int, Field(ge=0, le=20)] = 3
    """Retries (with exponential backoff) of a request that failed in transport or with a 5xx/429."""
    max_staleness: Annotated[int | None, Field(ge=0, le=8)] = None
    """How many adapter versions the sampling policy may lag the learner: step s samples from the adapter
    of step max(0, s - 1 - maxStaleness), so rollouts of the next steps run while the learner trains.
    0 alternates sampling and training (on-policy); unset: 1 (on a cluster and with `agentrun run`:
    docs/LEARNER.md), or 0 where training.importanceCorrection is disabled. Above 0 it needs that
    correction, which corrects for the older sampling policy."""


class EvaluationSpec(SpecModel):
    every_steps: Annotated[int, Field(ge=0)] = 20
    """Evaluate every N steps on the validation scenarios; 0 evaluates only at the end."""
    limit: Annotated[int, Field(ge=1)] = 250
    """Questions per evaluation (the first N of the split, in a fixed order)."""
    final_split: Literal["train", "test"] = "test"
    """Split of the final evaluation of the last checkpoint."""
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.0
    """Sampling temperature during evaluation (0 = greedy)."""


class ResourcesSpec(SpecModel):
    cpu: str | None = None
    """CPU request, Kubernetes quantity (`4`, `500m`)."""
    memory: str | None = None
    """Memory request and limit, Kubernetes quantity (`64Gi`)."""
    gpus: Annotated[int, Field(ge=0, le=16)] = 1
    """`nvidia.com/gpu` per pod."""


class ServingSpec(SpecModel):
    image: Annotated[str, Field(max_length=512)] | None = None
    """vLLM server image (cluster mode); unset: the operator's serving image (Helm value `images.serving`),
    or its CPU build (`images.servingCpu`) when `serving.resources.gpus` is 0. The local runner uses the
    embedded server instead."""
    replicas: Annotated[int, Field(ge=1, le=64)] = 1
    """vLLM Deployment replicas."""
    max_loras: Annotated[int, Field(ge=1, le=64)] = 4
    """Adapters resident on a GPU at once (`--max-loras`)."""
    gpu_memory_utilization: Annotated[float, Field(gt=0.0, le=1.0)] = 0.85
    """vLLM `--gpu-memory-utilization`."""
    extra_args: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=128)] = []
    """Extra `vllm serve` arguments."""
    resources: ResourcesSpec = ResourcesSpec()
    """Per-replica resources."""


class DeepSpeedSpec(SpecModel):
    zero_stage: Literal[0, 1, 2, 3] = 2
    """DeepSpeed ZeRO stage (cluster mode)."""


class LearnerSpec(SpecModel):
    image: Annotated[str, Field(max_length=512)] | None = None
    """Learner, prepare and evaluation image (cluster mode); unset: the operator's trainer image (Helm value
    `images.trainer`)."""
    nodes: Annotated[int, Field(ge=1, le=256)] = 1
    """Pods of the learner's Indexed Job (one per node)."""
    micro_batch_tokens: Annotated[int, Field(ge=256)] = 16384
    """Tokens per micro-batch (a packed row's length, or padded rows x the longest); gradients accumulate
    over micro-batches to one step."""
    packing: bool | None = None
    """Pack several samples into one row per micro-batch, without padding: each sample attends only to its
    own tokens and its positions restart at 0, so the loss and gradients are the padded rows'. Unset: on
    for GPU learners (flash attention's varlen kernels where installed), off on CPUs, where padded rows
    with their shared prompt prefix computed once measured 2.1x faster on the quickstart's samples and
    packing 1.1x faster on long samples with a short shared prefix (docs/BENCHMARKS.md). false: padded
    rows, longest first, with the prompt prefix they share computed once."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory."""
    deepspeed: DeepSpeedSpec = DeepSpeedSpec()
    """DeepSpeed settings (cluster mode; the local runner trains with plain torch)."""
    resources: ResourcesSpec = ResourcesSpec()
    """Per-pod resources."""
    retries: Annotated[int, Field(ge=0, le=100)] = 3
    """Failed learner pods replaced before the run fails (cluster mode); each replacement resumes from the
    newest checkpoint. Evicted or preempted pods (condition DisruptionTarget) are replaced without counting."""
    server_timeout_seconds: Annotated[int, Field(ge=10, le=86400)] = 1800
    """How long the learner waits for the server's /health before its first step (vLLM loads weights for
    minutes); the run shows condition ServingReady=False meanwhile."""
    stall_timeout_seconds: Annotated[int, Field(ge=0, le=604800)] = 3600
    """A learner that completes no step for this long after it starts training (a hung rollout, a stuck
    collective) fails its liveness probe and is replaced, resuming from the newest checkpoint; it posts a
    `LearnerStalled` Warning Event on the run first. 0: no such probe. Set it above your slowest step."""


class PvcSpec(SpecModel):
    existing_claim: str | None = None
    """Use this PersistentVolumeClaim instead of creating one."""
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce"] = "ReadWriteMany"
    """Access mode of the claim the operator creates. The server, learner and evaluation pods mount it at
    once, so the default is ReadWriteMany (NFS, CephFS, EFS, Filestore). Where only block storage exists,
    ReadWriteOnce puts every pod of the run on one node (required pod affinity), which must hold them all."""
    size: str = "200Gi"
    """Size of the claim the operator creates."""
    storage_class_name: str | None = None
    """StorageClass of the claim the operator creates; it must offer `accessMode`."""


class StorageSpec(SpecModel):
    local_dir: str = ".agentrun"
    """Root of the storage layout for `agentrun run` (relative to the working directory)."""
    pvc: PvcSpec = PvcSpec()
    """Shared volume for cluster mode, mounted at /data in every pod."""


def _field_or_default(section: str, field: str, model: type[SpecModel]) -> str:
    """CEL for `self.<section>.<field>`, or the model's default when the manifest leaves it out."""
    default = model.model_fields[to_snake(field)].default
    return f"(has(self.{section}) && has(self.{section}.{field}) ? self.{section}.{field} : {default})"


class RunSpec(SpecModel):
    model_config = ConfigDict(json_schema_extra=cel(
        f"{_field_or_default('evaluation', 'everySteps', EvaluationSpec)} == 0 || "
        f"{_field_or_default('evaluation', 'everySteps', EvaluationSpec)} % "
        f"{_field_or_default('training', 'checkpointEvery', TrainingSpec)} == 0",
        "evaluation.everySteps must be a multiple of training.checkpointEvery: evaluated checkpoints must be kept",
    ))

    model: ModelSpec = ModelSpec()
    """Base model to train an adapter for."""
    dataset: DatasetSpec = DatasetSpec()
    """Emails and questions."""
    environment: EnvironmentSpec = EnvironmentSpec()
    """The task environment and its tools."""
    reward: RewardSpec = RewardSpec()
    """Reward weights and the answer judge. The weights default to ART·E's (DESIGN §3), under which answering
    beats abstaining only for a policy whose precision exceeds the break-even (noAnswer - wrongAnswer) /
    (correctAnswer + correctSourcesBonus + fewSourcesBonus - wrongAnswer), ~0.42: below it GRPO correctly
    teaches the policy to abstain."""
    training: TrainingSpec = TrainingSpec()
    """GRPO settings."""
    rollout: RolloutSpec = RolloutSpec()
    """How trajectories are sampled."""
    evaluation: EvaluationSpec = EvaluationSpec()
    """Held-out benchmarking of checkpoints."""
    serving: ServingSpec = ServingSpec()
    """Model server (vLLM on a cluster)."""
    learner: LearnerSpec = LearnerSpec()
    """Learner processes."""
    storage: StorageSpec = StorageSpec()
    """Where datasets, checkpoints and results live."""
    pods: PodsSpec = PodsSpec()
    """Placement and extra environment of the run's pods (cluster mode): node selectors, tolerations,
    affinity, priority, image pull secrets, env and envFrom, for all pods and per component."""
    queue_name: str | None = None
    """Kueue LocalQueue; child Jobs carry `kueue.x-k8s.io/queue-name` when set."""
    suspend: bool = False
    """Stop workloads; clearing it resumes from the latest checkpoint."""

    @model_validator(mode="after")
    def _evaluated_checkpoints_are_kept(self) -> RunSpec:
        every, keep = self.evaluation.every_steps, self.training.checkpoint_every
        if every and every % keep:
            raise ValueError(f"evaluation.everySteps ({every}) must be a multiple of training.checkpointEvery "
                             f"({keep}): evaluated checkpoints must be kept")
        return self

    @model_validator(mode="after")
    def _stale_samples_are_corrected(self) -> RunSpec:
        if self.rollout.max_staleness and not self.training.importance_correction.enabled:
            raise ValueError(f"rollout.maxStaleness is {self.rollout.max_staleness} but "
                             "training.importanceCorrection.enabled is false: samples from an older adapter need "
                             "the importance correction; enable it or set rollout.maxStaleness to 0")
        return self

    @model_validator(mode="after")
    def _one_node_claims_hold_one_node_learners(self) -> RunSpec:
        if self.storage.pvc.access_mode == "ReadWriteOnce" and self.learner.nodes > 1:
            raise ValueError(f"learner.nodes is {self.learner.nodes} but storage.pvc.accessMode ReadWriteOnce keeps "
                             "every pod on one node: use ReadWriteMany storage or one learner node")
        return self


class AgentTrainingRun(SpecModel):
    """One training run of a tool-using agent: the whole manifest."""

    api_version: Literal["agentrun.dev/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    """Must be `agentrun.dev/v1alpha1`."""
    kind: Literal["AgentTrainingRun"] = KIND
    """Must be `AgentTrainingRun`."""
    metadata: Metadata
    """Kubernetes object metadata; `name` names the run."""
    spec: RunSpec = RunSpec()
    """What to train and how."""
