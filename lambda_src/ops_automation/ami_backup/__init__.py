"""Module `ami-backup`: an AMI per instance on a schedule, N generations kept (handlers in `handlers`)."""
