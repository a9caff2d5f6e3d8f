variable "region" {
  description = "Region to deploy the nightly command in (its tagged instances run it)."
  type        = string
  default     = "ap-northeast-1"
}

variable "name" {
  description = "Policy name: prefix of the resources, the output bucket and the output key prefix, and value of OPS_POLICY_NAME."
  type        = string
  default     = "nightly-db-backup"
}

variable "backup_commands" {
  description = "Shell commands AWS-RunShellScript runs on each instance every night (by default a PostgreSQL online base backup)."
  type        = list(string)
  default = [
    "set -eu",
    "target=/var/backups/postgresql/$(date -u +%Y%m%dT%H%M%SZ)",
    "install -d -o postgres -g postgres -m 0700 \"$target\"",
    "sudo -u postgres pg_basebackup --pgdata=\"$target\" --format=tar --gzip --wal-method=stream --checkpoint=fast",
    "find /var/backups/postgresql -mindepth 1 -maxdepth 1 -type d -mtime +7 -exec rm -rf {} +",
    "du -sh \"$target\"",
  ]
}

variable "output_retention_days" {
  description = "Days the command output is kept in the bucket."
  type        = number
  default     = 30
}

variable "force_destroy_output_bucket" {
  description = "Whether terraform destroy may delete the output bucket with the output still in it."
  type        = bool
  default     = false
}

variable "powertools_layer_arn" {
  description = "Powertools layer version ARN; null uses the public layer of the region."
  type        = string
  default     = null
}
