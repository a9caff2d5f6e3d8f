"""Module `instance-scheduler`: timezone-aware start/stop of EC2 instances, verified."""
