"""Run plumbing: the output folder and what hftl wrote there, the run's identity, checkpoints and
resume, fault injection for the crash tests, and CPU settings."""

__all__: list[str] = []
