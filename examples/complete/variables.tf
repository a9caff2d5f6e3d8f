variable "region" {
  description = "Region every module is deployed in and works on (the source of the DR copies)."
  type        = string
  default     = "ap-northeast-1"
}

variable "dr_region" {
  description = "Region the weekly snapshot copies go to (the aws.osaka provider)."
  type        = string
  default     = "ap-northeast-3"
}

variable "name" {
  description = "Prefix of every policy name (<name>-ami-backup, <name>-ebs-snapshot and so on), of the alert topic and of the output bucket; 1-12 lower-case letters, digits and hyphens."
  type        = string
  default     = "complete"

  # The longest names built from it: the scheduler role <name>-deregister-cleanup-sweeper-<region>-scheduler
  # (IAM: 64) and the bucket <name>-ssm-runcommand-output-<account>-<region> (S3: 63, lower case), with a region
  # name of 14 characters (ap-northeast-1).
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,11}$", var.name))
    error_message = "name must be 1-12 lower-case letters, digits and hyphens, starting with a letter (it prefixes IAM role names, which IAM limits to 64 characters, and the output bucket name, which S3 limits to 63 lower-case characters); got ${jsonencode(var.name)}."
  }
}

variable "excluded_dates" {
  description = "Dates (YYYY-MM-DD, Asia/Tokyo) on which the office-hours instances are neither started nor stopped."
  type        = list(string)
  default     = ["2027-01-01", "2027-01-11", "2027-02-11"]
}

variable "nightly_commands" {
  description = "Shell commands AWS-RunShellScript runs every night on the always-on instances (by default a PostgreSQL online base backup)."
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
  description = "Days the Run Command output is kept in the bucket."
  type        = number
  default     = 30
}

variable "force_destroy_output_bucket" {
  description = "Whether terraform destroy may delete the Run Command output bucket with the output still in it."
  type        = bool
  default     = false
}

variable "powertools_layer_arn" {
  description = "Powertools layer version ARN; null uses the public layer of the region."
  type        = string
  default     = null
}
