"""The Kubernetes operator (kopf): turns an AgentTrainingRun into serving, learner and evaluation
workloads. Run with `kopf run -m agentrun.operator.<module>`; arrives with issue #5."""
