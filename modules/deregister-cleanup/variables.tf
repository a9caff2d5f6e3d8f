################################################################################
# Policy
################################################################################

variable "name" {
  description = "Policy name: prefix of every resource this module creates and value of OPS_POLICY_NAME."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,31}$", var.name))
    error_message = "name must be 1-32 characters: letters, digits and hyphens, starting with a letter; got ${jsonencode(var.name)}."
  }
}

variable "scope" {
  description = "Which snapshots of deregistered AMIs may be deleted: managed (only those a policy of this project created, enforced by IAM on the ops-automation:managed-by tag) or any (every such snapshot of the account)."
  type        = string
  nullable    = false
  default     = "managed"

  validation {
    condition     = contains(["managed", "any"], var.scope)
    error_message = "scope must be managed or any; got ${jsonencode(var.scope)}."
  }
}

variable "exclusion_tag_key" {
  description = "Tag key that keeps a snapshot whatever the scope: a snapshot carrying it (any value) is never deleted, and IAM denies its deletion."
  type        = string
  nullable    = false
  default     = "ops-automation:keep"

  validation {
    condition     = can(regex("^[\\p{L}\\p{Z}\\p{N}_.:/=+@-]{1,128}$", var.exclusion_tag_key)) && !startswith(lower(var.exclusion_tag_key), "aws:")
    error_message = "exclusion_tag_key must be a tag key of 1-128 letters, digits, spaces and _ . : / = + - @, not starting with aws:; got ${jsonencode(var.exclusion_tag_key)}."
  }

  validation {
    condition     = !contains(["ops-automation:managed-by", "ops-automation:policy"], var.exclusion_tag_key)
    error_message = "exclusion_tag_key must not be an ownership tag (every managed snapshot carries it, so nothing would ever be deleted); got ${jsonencode(var.exclusion_tag_key)}."
  }
}

variable "cloudtrail_events" {
  description = "Also react to the CloudTrail DeregisterImage API call event (AWS API Call via CloudTrail), which needs a trail recording management events in the account."
  type        = bool
  nullable    = false
  default     = false
}

variable "sweep_schedule_expression" {
  description = "EventBridge Scheduler expression of the orphan sweep: cron(...), rate(...) or at(...)."
  type        = string
  nullable    = false
  default     = "cron(30 3 * * ? *)"

  validation {
    condition     = can(regex("^(cron|rate|at)\\(.+\\)$", var.sweep_schedule_expression))
    error_message = "sweep_schedule_expression must be an EventBridge Scheduler expression: cron(...), rate(...) or at(...); got ${jsonencode(var.sweep_schedule_expression)}."
  }
}

variable "sweep_schedule_timezone" {
  description = "IANA time zone the sweep schedule expression is evaluated in (for example Asia/Tokyo)."
  type        = string
  nullable    = false
  default     = "UTC"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$", var.sweep_schedule_timezone))
    error_message = "sweep_schedule_timezone must be an IANA time zone name such as UTC or Asia/Tokyo; got ${jsonencode(var.sweep_schedule_timezone)}."
  }
}

################################################################################
# Clean-up rules
################################################################################

variable "orphan_grace_hours" {
  description = "Hours a snapshot must be older than before the sweep treats it as an orphan (events handle fresh deregistrations; the grace covers AMIs still being created or copied)."
  type        = number
  nullable    = false
  default     = 24

  validation {
    condition     = var.orphan_grace_hours >= 1 && var.orphan_grace_hours <= 8760 && floor(var.orphan_grace_hours) == var.orphan_grace_hours
    error_message = "orphan_grace_hours must be a whole number between 1 and 8760; got ${jsonencode(var.orphan_grace_hours)}."
  }
}

variable "delete_archived_before_minimum" {
  description = "Delete snapshots in the archive tier before their 90-day minimum archive period ends (the rest of the period is billed at once)."
  type        = bool
  nullable    = false
  default     = false
}

variable "dry_run" {
  description = "Log and report what would be deleted, and why, without deleting anything."
  type        = bool
  nullable    = false
  default     = false
}

variable "snapshot_price_per_gb_month" {
  description = "List price per GB-month of snapshot storage, standard and archive tier, used to report the monthly cost of the orphans the sweep finds."
  type = object({
    standard = optional(number, 0.05)
    archive  = optional(number, 0.0125)
  })
  nullable = false
  default  = {}

  validation {
    condition     = try(var.snapshot_price_per_gb_month.standard >= 0 && var.snapshot_price_per_gb_month.archive >= 0, false)
    error_message = "snapshot_price_per_gb_month.standard and .archive must be non-negative numbers; got ${jsonencode(var.snapshot_price_per_gb_month)}."
  }
}

################################################################################
# Accounts and regions
################################################################################

variable "regions" {
  description = "Regions to clean up in; an empty list means the deployment region."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for r in var.regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))])
    error_message = "regions entries must be AWS region names such as ap-northeast-1; invalid: ${jsonencode(var.regions == null ? null : [for r in var.regions : r if !can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))])}."
  }
}

variable "target_role_arns" {
  description = "IAM roles in other accounts to assume for cleaning up their snapshots; an empty list means the deployment account only."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for arn in var.target_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", arn))])
    error_message = "target_role_arns entries must be IAM role ARNs (arn:<partition>:iam::<account>:role/<name>); invalid: ${jsonencode(var.target_role_arns == null ? null : [for arn in var.target_role_arns : arn if !can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", arn))])}."
  }
}

variable "target_role_external_id" {
  description = "External id the functions send when they assume target_role_arns (their trust policy's sts:ExternalId condition, e.g. modules/target-account-role's external_id); null sends none."
  type        = string
  default     = null

  validation {
    # RE2 caps a repetition at 1000, hence the separate length test (IAM and AWS STS quotas: 2 to 1,224 characters).
    condition     = var.target_role_external_id == null || try(length(var.target_role_external_id) >= 2 && length(var.target_role_external_id) <= 1224 && can(regex("^[\\w+=,.@:/-]+$", var.target_role_external_id)), false)
    error_message = "target_role_external_id must be null or 2 to 1224 characters of letters, digits and _+=,.@:/- (IAM and AWS STS quotas); got ${jsonencode(var.target_role_external_id)}."
  }
}

variable "worker_max_concurrency" {
  description = "Maximum concurrent worker invocations by the work queue (SQS event source maximum concurrency, 2-1000), so a burst of deregistrations cannot starve the account's EC2 API."
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
  description = "SNS topic receiving the sweep's orphan summary, a message per failed deletion and the alarms (dead-letter messages, missed sweeps); null means none of them."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>) or null; got ${jsonencode(var.alarm_sns_topic_arn)}."
  }
}

variable "missed_run_alarm_hours" {
  description = "Hours without a sweeper run before the missed-run alarm fires; null derives it from sweep_schedule_expression (interval between runs plus one hour)."
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
  description = "Tags added to every resource this module creates (never to snapshots)."
  type        = map(string)
  nullable    = false
  default     = {}
}
