"""Module `instance-scheduler` (work in progress): timezone-aware start/stop of EC2 instances, verified."""
