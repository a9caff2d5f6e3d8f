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

variable "start_schedule" {
  description = "EventBridge Scheduler expression of the start slots, evaluated in schedule_timezone (for example cron(0 8 ? * MON-FRI *)); null means the policy never starts instances."
  type        = string
  default     = null

  validation {
    condition     = var.start_schedule == null || can(regex("^(cron|at)\\(.+\\)$", var.start_schedule))
    error_message = "start_schedule must be null or an EventBridge Scheduler cron(...) or at(...) expression (rate(...) drifts from the clock and ignores daylight saving time); got ${jsonencode(var.start_schedule)}."
  }
}

variable "stop_schedule" {
  description = "EventBridge Scheduler expression of the stop slots, evaluated in schedule_timezone (for example cron(0 20 ? * MON-FRI *)); null means the policy never stops instances."
  type        = string
  default     = null

  validation {
    condition     = var.stop_schedule == null || can(regex("^(cron|at)\\(.+\\)$", var.stop_schedule))
    error_message = "stop_schedule must be null or an EventBridge Scheduler cron(...) or at(...) expression (rate(...) drifts from the clock and ignores daylight saving time); got ${jsonencode(var.stop_schedule)}."
  }
}

variable "schedule_timezone" {
  description = "IANA time zone both schedules and excluded_dates are evaluated in (for example Asia/Tokyo)."
  type        = string
  nullable    = false
  default     = "UTC"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$", var.schedule_timezone))
    error_message = "schedule_timezone must be an IANA time zone name such as UTC or Asia/Tokyo; got ${jsonencode(var.schedule_timezone)}."
  }
}

variable "excluded_dates" {
  description = "Calendar dates (YYYY-MM-DD, in schedule_timezone) on which every start and stop slot is skipped and logged, for example public holidays."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for d in var.excluded_dates : can(regex("^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", d)) && can(formatdate("YYYY", format("%sT00:00:00Z", d)))])
    error_message = "excluded_dates entries must be calendar dates written YYYY-MM-DD (for example 2027-01-01); invalid: ${jsonencode(var.excluded_dates == null ? null : [for d in var.excluded_dates : d if !(can(regex("^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", d)) && can(formatdate("YYYY", format("%sT00:00:00Z", d))))])}."
  }
}

################################################################################
# Targets
################################################################################

variable "instance_ids" {
  description = "EC2 instance ids to start and stop, in addition to the instances matching target_tags."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    # The ids go into the state-change rule's pattern (at most 2,048 characters: EventBridge quotas) and the
    # worker's policy; a larger fleet is targeted by tags.
    condition     = length(var.instance_ids) <= 50
    error_message = "instance_ids takes at most 50 ids (they go into the event rule's pattern, limited to 2,048 characters); got ${var.instance_ids == null ? 0 : length(var.instance_ids)}: tag a larger fleet and use target_tags."
  }

  validation {
    condition     = alltrue([for id in var.instance_ids : can(regex("^i-([0-9a-f]{8}|[0-9a-f]{17})$", id))])
    error_message = "instance_ids entries must be EC2 instance ids: i- followed by 8 or 17 lowercase hex digits; invalid: ${jsonencode(var.instance_ids == null ? null : [for id in var.instance_ids : id if !can(regex("^i-([0-9a-f]{8}|[0-9a-f]{17})$", id))])}."
  }
}

variable "target_tags" {
  description = "Tags an instance must all carry to be started and stopped (key = value); combined with instance_ids."
  type        = map(string)
  nullable    = false
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.target_tags) : length(k) >= 1 && length(k) <= 128 && !startswith(lower(k), "aws:")])
    error_message = "target_tags keys must be 1-128 characters and must not start with aws:; invalid: ${jsonencode(var.target_tags == null ? null : [for k in keys(var.target_tags) : k if !(length(k) >= 1 && length(k) <= 128 && !startswith(lower(k), "aws:"))])}."
  }
}

variable "opt_out_tag_key" {
  description = "Tag key that keeps an instance out of the schedule whatever its other tags: an instance carrying it (any value) is skipped and logged; null means no opt-out tag."
  type        = string
  default     = "ops-automation:no-schedule"

  validation {
    condition     = var.opt_out_tag_key == null || try(can(regex("^[\\p{L}\\p{Z}\\p{N}_.:/=+@-]{1,128}$", var.opt_out_tag_key)) && !startswith(lower(var.opt_out_tag_key), "aws:"), false)
    error_message = "opt_out_tag_key must be null or a tag key of 1-128 letters, digits, spaces and _ . : / = + - @, not starting with aws:; got ${jsonencode(var.opt_out_tag_key)}."
  }
}

variable "auto_scaling_groups" {
  description = "What happens to Auto Scaling groups and their instances (tag aws:autoscaling:groupName), which a group would replace if stopped: skip (members left alone and named in the report) or capacity (groups carrying every target tag are set to 0/0/0 at stop, their sizes saved in the group tag ops-automation:saved-capacity, and restored at start; needs target_tags)."
  type        = string
  nullable    = false
  default     = "skip"

  validation {
    condition     = contains(["skip", "capacity"], var.auto_scaling_groups)
    error_message = "auto_scaling_groups must be skip or capacity; got ${jsonencode(var.auto_scaling_groups)}."
  }
}

variable "hibernate" {
  description = "Hibernate instead of stopping the instances enabled for hibernation at launch (the others are stopped normally)."
  type        = bool
  nullable    = false
  default     = false
}

variable "schedule_rds" {
  description = "Whether RDS DB instances and Aurora DB clusters carrying every target tag are stopped and started on the same slots (and stopped again when AWS starts them after 7 days stopped); needs target_tags."
  type        = bool
  nullable    = false
  default     = false
}

variable "regions" {
  description = "Regions to start and stop instances in; an empty list means the deployment region, [\"all-enabled\"] (alone, with target_accounts or target_organizational_units) the enabled regions of each target account."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for r in var.regions : r == "all-enabled" || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))])
    error_message = "regions entries must be AWS region names such as ap-northeast-1, or all-enabled; invalid: ${jsonencode(var.regions == null ? null : [for r in var.regions : r if !(r == "all-enabled" || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r)))])}."
  }

  validation {
    condition     = !contains(var.regions, "all-enabled") || length(var.regions) == 1
    error_message = "regions = [\"all-enabled\"] (each target account's enabled regions) must stand alone; got ${jsonencode(var.regions)}."
  }
}

variable "target_role_arns" {
  description = "IAM roles in other accounts to assume for starting and stopping their instances; an empty list means the deployment account only (or target_accounts and target_organizational_units, which exclude this list)."
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

variable "target_accounts" {
  description = "AWS account ids to work in through the role target_role_name in each (landing-zone targeting, with or without target_organizational_units); not with target_role_arns."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for account in var.target_accounts : can(regex("^[0-9]{12}$", account))])
    error_message = "target_accounts entries must be 12-digit AWS account ids; invalid: ${jsonencode(var.target_accounts == null ? null : [for account in var.target_accounts : account if !can(regex("^[0-9]{12}$", account))])}."
  }
}

variable "target_organizational_units" {
  description = "AWS Organizations OUs (ou-...) or a root (r-...) whose ACTIVE accounts are worked in through target_role_name, with their child OUs unless recursive = false; resolved by the planner at every slot."
  type = list(object({
    id        = string
    recursive = optional(bool, true)
  }))
  nullable = false
  default  = []

  validation {
    # Organizations API reference, ListAccountsForParent ParentId: a root r-<4-32> or an OU ou-<4-32>-<8-32>.
    condition     = alltrue([for unit in var.target_organizational_units : can(regex("^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$", unit.id))])
    error_message = "target_organizational_units ids must be OU ids (ou-<4-32>-<8-32> lowercase letters or digits) or a root id (r-<4-32>); invalid: ${jsonencode(var.target_organizational_units == null ? null : [for unit in var.target_organizational_units : unit.id if !can(regex("^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$", unit.id))])}."
  }
}

variable "target_role_name" {
  description = "Name (optionally path/name) of the role the functions assume in every account of target_accounts and target_organizational_units, e.g. modules/target-account-role's ops-automation-instance-scheduler."
  type        = string
  default     = null

  validation {
    condition     = var.target_role_name == null || can(regex("^([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}$", var.target_role_name))
    error_message = "target_role_name must be null or an IAM role name of at most 64 letters, digits and +=,.@_-, optionally after a path (path/name); got ${jsonencode(var.target_role_name)}."
  }
}

variable "target_organization_id" {
  description = "AWS Organizations id (o-...) of target_organizational_units, required with them: the functions may assume target_role_name in any account only of this organization (aws:ResourceOrgID)."
  type        = string
  default     = null

  validation {
    condition     = var.target_organization_id == null || can(regex("^o-[a-z0-9]{10,32}$", var.target_organization_id))
    error_message = "target_organization_id must be null or an AWS Organizations id (o- followed by 10-32 lowercase letters or digits); got ${jsonencode(var.target_organization_id)}."
  }
}

variable "organizations_role_arn" {
  description = "Role in the management or a delegated-administrator account the planner assumes to list target_organizational_units (its policy: organizations_role_policy_json); null lists them with the planner's own role, when the hub is that account."
  type        = string
  default     = null

  validation {
    condition     = var.organizations_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.organizations_role_arn))
    error_message = "organizations_role_arn must be null or an IAM role ARN (arn:<partition>:iam::<account>:role/<name>); got ${jsonencode(var.organizations_role_arn)}."
  }
}

variable "exclude_accounts" {
  description = "AWS account ids never worked in, even when target_accounts or target_organizational_units hold them (the management account, the hub, log-archive or audit accounts without target_role_name): listed as skipped each slot, not alerted."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for account in var.exclude_accounts : can(regex("^[0-9]{12}$", account))])
    error_message = "exclude_accounts entries must be 12-digit AWS account ids; invalid: ${jsonencode(var.exclude_accounts == null ? null : [for account in var.exclude_accounts : account if !can(regex("^[0-9]{12}$", account))])}."
  }
}

variable "volume_kms_key_arns" {
  description = "Customer managed KMS key ARNs that encrypt the EBS volumes of target instances, on which the worker (and target roles) may create the grant EC2 needs to start them; empty means none."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for arn in var.volume_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", arn))])
    error_message = "volume_kms_key_arns entries must be KMS key ARNs (arn:<partition>:kms:<region>:<account>:key/<id>; aliases cannot grant key use); invalid: ${jsonencode(var.volume_kms_key_arns == null ? null : [for arn in var.volume_kms_key_arns : arn if !can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", arn))])}."
  }
}

variable "license_configuration_arns" {
  description = "License Manager license configuration ARNs associated with target instances; StartInstances is also authorized against them, so the worker may use them; empty means none."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for arn in var.license_configuration_arns : can(regex("^arn:aws[a-z-]*:license-manager:[a-z0-9-]+:[0-9]{12}:license-configuration:lic-[0-9a-f]+$", arn))])
    error_message = "license_configuration_arns entries must be license configuration ARNs (arn:<partition>:license-manager:<region>:<account>:license-configuration:lic-<id>); invalid: ${jsonencode(var.license_configuration_arns == null ? null : [for arn in var.license_configuration_arns : arn if !can(regex("^arn:aws[a-z-]*:license-manager:[a-z0-9-]+:[0-9]{12}:license-configuration:lic-[0-9a-f]+$", arn))])}."
  }
}

################################################################################
# Verification
################################################################################

variable "verify_deadline_minutes" {
  description = "Minutes after the slot by which every started or stopped instance must be running or stopped; one not there by then is reported with its state reason."
  type        = number
  nullable    = false
  default     = 20

  validation {
    # Under 10 minutes an ordinary start (pending for a minute or two, longer with large volumes or hibernation)
    # would be reported as not started.
    condition     = var.verify_deadline_minutes >= 10 && var.verify_deadline_minutes <= 1440 && floor(var.verify_deadline_minutes) == var.verify_deadline_minutes
    error_message = "verify_deadline_minutes must be a whole number between 10 and 1440; got ${jsonencode(var.verify_deadline_minutes)}."
  }
}

variable "ledger_ttl_days" {
  description = "Days a ledger record is kept after its last update before DynamoDB expires it."
  type        = number
  nullable    = false
  default     = 400

  validation {
    # The record of a database's stop must outlive RDS's automatic start after seven days stopped: that is
    # how the worker knows to stop it again.
    condition     = var.ledger_ttl_days >= 8 && floor(var.ledger_ttl_days) == var.ledger_ttl_days
    error_message = "ledger_ttl_days must be a whole number of at least 8 (a database's stop record must outlive RDS's automatic start after 7 days); got ${jsonencode(var.ledger_ttl_days)}."
  }
}

variable "worker_max_concurrency" {
  description = "Maximum concurrent worker invocations by the work queue (SQS event source maximum concurrency, 2-1000), so one slot cannot starve the account's EC2 API."
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
  description = "SNS topic receiving a message per instance not in the desired state by the deadline (and per other failure) from the functions and the alarms (dead-letter messages, missed runs); null means neither."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>) or null; got ${jsonencode(var.alarm_sns_topic_arn)}."
  }
}

variable "missed_run_alarm_hours" {
  description = "Hours without a run of a planner before its missed-run alarm fires; null derives it from its schedule (interval plus one hour; a weekday-only cron counts as weekly and gets no alarm, so set 73 for weekday schedules)."
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
  description = "Tags added to every resource this module creates (never to the instances it starts and stops)."
  type        = map(string)
  nullable    = false
  default     = {}
}
