"""Module `snapshot-copy`: disaster-recovery copies of backups in other regions and accounts."""
