################################################################################
# Policy
################################################################################

variable "name" {
  description = "Policy name: prefix of every resource this module creates and value of the ops-automation:policy tag on every copy."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,31}$", var.name))
    error_message = "name must be 1-32 characters: letters, digits and hyphens, starting with a letter; got ${jsonencode(var.name)}."
  }
}

variable "schedule_expression" {
  description = "EventBridge Scheduler expression of the catch-up run that copies the sources the events missed: cron(...), rate(...) or at(...)."
  type        = string
  nullable    = false
  default     = "rate(6 hours)"

  validation {
    condition     = can(regex("^(cron|rate|at)\\(.+\\)$", var.schedule_expression))
    error_message = "schedule_expression must be an EventBridge Scheduler expression: cron(...), rate(...) or at(...); got ${jsonencode(var.schedule_expression)}."
  }
}

variable "schedule_timezone" {
  description = "IANA time zone the schedule expression is evaluated in (for example Asia/Tokyo)."
  type        = string
  nullable    = false
  default     = "UTC"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$", var.schedule_timezone))
    error_message = "schedule_timezone must be an IANA time zone name such as UTC or Asia/Tokyo; got ${jsonencode(var.schedule_timezone)}."
  }
}

################################################################################
# Sources (in the deployment account and region)
################################################################################

variable "source_policies" {
  description = "Names of the ami-backup or ebs-snapshot policies whose snapshots (or AMIs) are copied: sources carrying ops-automation:managed-by and one of these ops-automation:policy tags."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for p in var.source_policies : can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,31}$", p))])
    error_message = "source_policies entries must be policy names (1-32 letters, digits and hyphens, starting with a letter); invalid: ${jsonencode(var.source_policies == null ? null : [for p in var.source_policies : p if !can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,31}$", p))])}."
  }
}

variable "source_ids" {
  description = "Snapshot ids (snap-..., copy_images = false) or AMI ids (ami-..., copy_images = true) to copy, in addition to the sources matched by source_policies and source_tags."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for id in var.source_ids : can(regex("^(snap|ami)-([0-9a-f]{8}|[0-9a-f]{17})$", id))])
    error_message = "source_ids entries must be snapshot ids (snap-) or AMI ids (ami-) followed by 8 or 17 lowercase hex digits; invalid: ${jsonencode(var.source_ids == null ? null : [for id in var.source_ids : id if !can(regex("^(snap|ami)-([0-9a-f]{8}|[0-9a-f]{17})$", id))])}."
  }
}

variable "source_tags" {
  description = "Tags a source snapshot (or AMI) must all carry to be copied (key = value), for sources this project did not make; combined with source_policies and source_ids."
  type        = map(string)
  nullable    = false
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.source_tags) : length(k) >= 1 && length(k) <= 128 && !startswith(lower(k), "aws:")])
    error_message = "source_tags keys must be 1-128 characters and must not start with aws:; invalid: ${jsonencode(var.source_tags == null ? null : [for k in keys(var.source_tags) : k if !(length(k) >= 1 && length(k) <= 128 && !startswith(lower(k), "aws:"))])}."
  }
}

variable "copy_images" {
  description = "Copy AMIs with CopyImage (sources are AMIs) instead of EBS snapshots with CopySnapshot."
  type        = bool
  nullable    = false
  default     = false
}

################################################################################
# Destinations
################################################################################

variable "destinations" {
  description = "Destination regions (keys) with an optional KMS key ARN in that region, an optional IAM role ARN in the DR account (the copy is then made in that account) and an optional time-based completion duration in minutes."
  type = map(object({
    kms_key_arn                 = optional(string)
    role_arn                    = optional(string)
    completion_duration_minutes = optional(number)
  }))
  nullable = false

  validation {
    condition     = length(var.destinations) > 0
    error_message = "destinations must name at least one destination region; got ${jsonencode(var.destinations)}."
  }

  validation {
    condition     = alltrue([for r in keys(var.destinations) : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))])
    error_message = "destinations keys must be AWS region names such as ap-northeast-3; invalid: ${jsonencode(var.destinations == null ? null : [for r in keys(var.destinations) : r if !can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))])}."
  }

  validation {
    condition     = alltrue([for r, d in var.destinations : d.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:${r}:[0-9]{12}:key/[A-Za-z0-9-]+$", d.kms_key_arn))])
    error_message = "destinations[*].kms_key_arn must be null or a KMS key ARN in the destination's own region (arn:<partition>:kms:<that region>:<account>:key/<id>; KMS keys are regional); invalid: ${jsonencode(var.destinations == null ? null : { for r, d in var.destinations : r => d.kms_key_arn if !(d.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:${r}:[0-9]{12}:key/[A-Za-z0-9-]+$", d.kms_key_arn))) })}."
  }

  validation {
    condition     = alltrue([for d in values(var.destinations) : d.role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", d.role_arn))])
    error_message = "destinations[*].role_arn must be null or an IAM role ARN (arn:<partition>:iam::<account>:role/<name>); invalid: ${jsonencode(var.destinations == null ? null : { for r, d in var.destinations : r => d.role_arn if !(d.role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", d.role_arn))) })}."
  }

  # CopySnapshot CompletionDurationMinutes: "in 15 minute increments", 15 minutes to 48 hours (EBS user
  # guide, "Time-based copies for Amazon EBS snapshots and EBS-backed AMIs").
  # A cross-account copy is made and encrypted in the DR account: its key must be that account's.
  validation {
    condition     = alltrue([for d in values(var.destinations) : d.role_arn == null || d.kms_key_arn == null || try(split(":", d.kms_key_arn)[4] == split(":", d.role_arn)[4], false)])
    error_message = "destinations[*].kms_key_arn must belong to the account of the destination's role_arn (the copy is encrypted in the DR account); invalid: ${jsonencode(var.destinations == null ? null : { for r, d in var.destinations : r => [d.kms_key_arn, d.role_arn] if !(d.role_arn == null || d.kms_key_arn == null || try(split(":", d.kms_key_arn)[4] == split(":", d.role_arn)[4], false)) })}."
  }

  validation {
    condition     = alltrue([for d in values(var.destinations) : d.completion_duration_minutes == null || try(d.completion_duration_minutes >= 15 && d.completion_duration_minutes <= 2880 && d.completion_duration_minutes % 15 == 0, false)])
    error_message = "destinations[*].completion_duration_minutes must be null or a multiple of 15 between 15 and 2880 (48 hours); invalid: ${jsonencode(var.destinations == null ? null : { for r, d in var.destinations : r => d.completion_duration_minutes if !(d.completion_duration_minutes == null || try(d.completion_duration_minutes >= 15 && d.completion_duration_minutes <= 2880 && d.completion_duration_minutes % 15 == 0, false)) })}."
  }
}

variable "target_role_external_id" {
  description = "External id the planner and the worker send when they assume a destinations[*].role_arn (that role's sts:ExternalId condition, e.g. modules/target-account-role's external_id); null sends none."
  type        = string
  default     = null

  validation {
    # RE2 caps a repetition at 1000, hence the separate length test (IAM and AWS STS quotas: 2 to 1,224 characters).
    condition     = var.target_role_external_id == null || try(length(var.target_role_external_id) >= 2 && length(var.target_role_external_id) <= 1224 && can(regex("^[\\w+=,.@:/-]+$", var.target_role_external_id)), false)
    error_message = "target_role_external_id must be null or 2 to 1224 characters of letters, digits and _+=,.@:/- (IAM and AWS STS quotas); got ${jsonencode(var.target_role_external_id)}."
  }
}

variable "encrypted" {
  description = "Encrypt every copy (CopySnapshot Encrypted = true), with the destination's kms_key_arn or else the destination region's default EBS key; copies of encrypted sources are always encrypted."
  type        = bool
  nullable    = false
  default     = true
}

################################################################################
# Retention and completion
################################################################################

variable "generations" {
  description = "Number of completed copies kept per source lineage (volume, or instance for AMIs) in each destination region; older copies are deleted, never the newest."
  type        = number
  nullable    = false
  default     = 7

  validation {
    condition     = var.generations >= 1 && var.generations <= 1000 && floor(var.generations) == var.generations
    error_message = "generations must be a whole number between 1 and 1000; got ${jsonencode(var.generations)}."
  }
}

variable "max_age_days" {
  description = "Also delete completed copies older than this many days, never keeping fewer than generations; null disables age-based retention."
  type        = number
  default     = null

  validation {
    condition     = var.max_age_days == null || try(var.max_age_days >= 1 && floor(var.max_age_days) == var.max_age_days, false)
    error_message = "max_age_days must be null or a whole number of at least 1; got ${jsonencode(var.max_age_days)}."
  }
}

variable "dry_run" {
  description = "Plan and log what would be copied and deleted without copying or deleting anything."
  type        = bool
  nullable    = false
  default     = false
}

variable "completion_timeout_minutes" {
  description = "Minutes a copy may stay pending before the delayed check reports it as failed; cross-region copies of large volumes take hours, and it must exceed every completion_duration_minutes by an hour."
  type        = number
  nullable    = false
  default     = 1440

  validation {
    condition     = var.completion_timeout_minutes >= 15 && var.completion_timeout_minutes <= 4320 && floor(var.completion_timeout_minutes) == var.completion_timeout_minutes
    error_message = "completion_timeout_minutes must be a whole number between 15 and 4320 (3 days); got ${jsonencode(var.completion_timeout_minutes)}."
  }
}

variable "ledger_ttl_days" {
  description = "Days a ledger record is kept after its last update before DynamoDB expires it."
  type        = number
  nullable    = false
  default     = 400

  validation {
    condition     = var.ledger_ttl_days >= 1 && floor(var.ledger_ttl_days) == var.ledger_ttl_days
    error_message = "ledger_ttl_days must be a whole number of at least 1; got ${jsonencode(var.ledger_ttl_days)}."
  }
}

variable "worker_max_concurrency" {
  description = "Maximum concurrent worker invocations by the work queue (SQS event source maximum concurrency, 2-1000), so a burst of sources cannot starve the account's EC2 API."
  type        = number
  nullable    = false
  default     = 5

  validation {
    condition     = var.worker_max_concurrency >= 2 && var.worker_max_concurrency <= 1000 && floor(var.worker_max_concurrency) == var.worker_max_concurrency
    error_message = "worker_max_concurrency must be a whole number between 2 and 1000 (Lambda ScalingConfig.MaximumConcurrency); got ${jsonencode(var.worker_max_concurrency)}."
  }
}

################################################################################
# Operations
################################################################################

variable "alarm_sns_topic_arn" {
  description = "SNS topic receiving a message per failed copy from the functions and the alarms (dead-letter messages, missed runs); null means neither."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>) or null; got ${jsonencode(var.alarm_sns_topic_arn)}."
  }
}

variable "missed_run_alarm_hours" {
  description = "Hours without a planner run before the copies-stopped alarm fires; null derives it from schedule_expression (interval between runs plus one hour)."
  type        = number
  default     = null

  # CloudWatch: Period (3600 s here) x EvaluationPeriods must not exceed 604,800 s (7 days).
  validation {
    condition     = var.missed_run_alarm_hours == null || try(var.missed_run_alarm_hours >= 1 && var.missed_run_alarm_hours <= 168 && floor(var.missed_run_alarm_hours) == var.missed_run_alarm_hours, false)
    error_message = "missed_run_alarm_hours must be null or a whole number between 1 and 168 (CloudWatch evaluates an alarm over at most 7 days); got ${jsonencode(var.missed_run_alarm_hours)}."
  }
}

variable "log_retention_days" {
  description = "Retention of the functions' CloudWatch log groups, in days."
  type        = number
  nullable    = false
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the CloudWatch Logs values: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653; got ${jsonencode(var.log_retention_days)}."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key ARN (same region) for function environment, logs, queues, table and schedule; its policy needs kms_key_policy_json, and null means AWS-owned/managed keys; known at plan time (a key made in the same configuration: an ARN built from its key_id, as examples/complete does)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<id>) or null; got ${jsonencode(var.kms_key_arn)}."
  }
}

variable "powertools_layer_arn" {
  description = "Powertools for AWS Lambda (Python) v3 layer version ARN; null means the public arm64/python3.13 layer of the deployment region."
  type        = string
  default     = null

  validation {
    condition     = var.powertools_layer_arn == null || can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$", var.powertools_layer_arn))
    error_message = "powertools_layer_arn must be a Lambda layer version ARN (arn:<partition>:lambda:<region>:<account>:layer:<name>:<version>) or null; got ${jsonencode(var.powertools_layer_arn)}."
  }
}

variable "tracing_enabled" {
  description = "Whether the functions send traces to AWS X-Ray."
  type        = bool
  nullable    = false
  default     = false
}

variable "point_in_time_recovery" {
  description = "Whether point-in-time recovery is enabled on the ledger table."
  type        = bool
  nullable    = false
  default     = true
}

variable "tags" {
  description = "Tags added to every resource this module creates (not to the copies, which carry the ownership tags)."
  type        = map(string)
  nullable    = false
  default     = {}
}
