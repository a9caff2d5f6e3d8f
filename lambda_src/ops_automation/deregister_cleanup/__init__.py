"""Module `deregister-cleanup`: the snapshots EC2 made for an AMI, deleted once the AMI is deregistered."""
