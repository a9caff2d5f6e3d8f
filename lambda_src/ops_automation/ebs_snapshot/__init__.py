"""Module `ebs-snapshot`: EBS snapshots per volume or crash-consistent sets per instance, N generations kept."""
