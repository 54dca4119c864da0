"""The Kubernetes operator (kopf): turns an AgentTrainingRun into serving, learner and evaluation
workloads (DESIGN §5). `children` builds the manifests, `lifecycle` decides, `handlers` applies;
run it with `agentrun operator`."""
