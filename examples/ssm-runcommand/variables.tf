variable "region" {
  description = "Region to deploy the nightly command in (its tagged instances run it)."
  type        = string
  default     = "ap-northeast-1"
}

variable "name" {
  description = "Policy name: prefix of the resources, the output bucket and the output key prefix, and value of OPS_POLICY_NAME; 1-28 lower-case letters, digits and hyphens, so that the bucket name <name>-output-<account>-<region> stays a valid S3 bucket name."
  type        = string
  default     = "nightly-db-backup"

  # S3 bucket names are 3-63 lower-case letters, digits, dots and hyphens: 28 + "-output-" (8) + the account (12)
  # + "-" + the longest region name (14, ap-southeast-1) = 63.
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,27}$", var.name))
    error_message = "name must be 1-28 lower-case letters, digits and hyphens, starting with a letter (it prefixes the output bucket name, which S3 limits to 63 lower-case characters); got ${jsonencode(var.name)}."
  }
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
