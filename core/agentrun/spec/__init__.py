"""The run spec: the `AgentTrainingRun` model and loading it from YAML with readable errors."""
