"""Scheduled Run Command with an outcome per instance (module `ssm-runcommand`)."""
