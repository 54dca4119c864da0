"""What the operator's Jobs run (`python -m agentrun.workloads.<name>`): prepare, learner, evaluator.

Each reads the run's manifest from AGENTRUN_RUN_FILE (the operator's ConfigMap) and the storage root
from AGENTRUN_STORAGE (the PVC mount), shares its wiring with `agentrun run` (agentrun.pipeline), and
reports progress into the run's status with the pod's own ServiceAccount (agentrun.kube_status).
"""
