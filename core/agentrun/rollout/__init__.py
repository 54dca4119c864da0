"""Sampling trajectories of the email agent from an OpenAI-compatible server, and their records."""
