################################################################################
# Policy
################################################################################

variable "name" {
  description = "Policy name: prefix of every resource this module creates and value of the ops-automation:policy tag on every backup."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,31}$", var.name))
    error_message = "name must be 1-32 characters: letters, digits and hyphens, starting with a letter; got ${jsonencode(var.name)}."
  }
}

variable "schedule_expression" {
  description = "EventBridge Scheduler expression of the backup slots: cron(...), rate(...) or at(...)."
  type        = string
  nullable    = false

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
# Targets
################################################################################

variable "instance_ids" {
  description = "EC2 instance ids to back up, in addition to the instances matching target_tags."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for id in var.instance_ids : can(regex("^i-([0-9a-f]{8}|[0-9a-f]{17})$", id))])
    error_message = "instance_ids entries must be EC2 instance ids: i- followed by 8 or 17 lowercase hex digits; invalid: ${jsonencode(var.instance_ids == null ? null : [for id in var.instance_ids : id if !can(regex("^i-([0-9a-f]{8}|[0-9a-f]{17})$", id))])}."
  }
}

variable "target_tags" {
  description = "Tags an instance must all carry to be backed up (key = value); combined with instance_ids."
  type        = map(string)
  nullable    = false
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.target_tags) : length(k) >= 1 && length(k) <= 128 && !startswith(lower(k), "aws:")])
    error_message = "target_tags keys must be 1-128 characters and must not start with aws:; invalid: ${jsonencode(var.target_tags == null ? null : [for k in keys(var.target_tags) : k if !(length(k) >= 1 && length(k) <= 128 && !startswith(lower(k), "aws:"))])}."
  }
}

variable "regions" {
  description = "Regions to back up in; an empty list means the deployment region, [\"all-enabled\"] (alone, with target_accounts or target_organizational_units) the enabled regions of each target account."
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
  description = "IAM roles in other accounts to assume for backing up their instances; an empty list means the deployment account only (or target_accounts and target_organizational_units, which exclude this list)."
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
  description = "Name (optionally path/name) of the role the functions assume in every account of target_accounts and target_organizational_units, e.g. modules/target-account-role's ops-automation-ami-backup."
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

################################################################################
# Backup and retention
################################################################################

variable "generations" {
  description = "Number of good (available) AMIs kept per instance; older ones are deregistered with their snapshots."
  type        = number
  nullable    = false
  default     = 7

  validation {
    condition     = var.generations >= 1 && var.generations <= 1000 && floor(var.generations) == var.generations
    error_message = "generations must be a whole number between 1 and 1000; got ${jsonencode(var.generations)}."
  }
}

variable "max_age_days" {
  description = "Also delete good AMIs older than this many days, never keeping fewer than generations; null disables age-based retention."
  type        = number
  default     = null

  validation {
    condition     = var.max_age_days == null || try(var.max_age_days >= 1 && floor(var.max_age_days) == var.max_age_days, false)
    error_message = "max_age_days must be null or a whole number of at least 1; got ${jsonencode(var.max_age_days)}."
  }
}

variable "no_reboot" {
  description = "Create AMIs without rebooting the instance (crash-consistent); false reboots it for file-system consistency."
  type        = bool
  nullable    = false
  default     = true
}

variable "copy_instance_tags" {
  description = "Copy the instance's own tags onto its AMIs and snapshots (aws: tags excluded), next to the ownership tags."
  type        = bool
  nullable    = false
  default     = true
}

variable "dry_run" {
  description = "Plan and log what would be created and deleted without creating or deleting anything."
  type        = bool
  nullable    = false
  default     = false
}

variable "completion_timeout_minutes" {
  description = "Minutes an AMI may stay pending before the delayed check reports it as failed."
  type        = number
  nullable    = false
  default     = 240

  validation {
    condition     = var.completion_timeout_minutes >= 15 && var.completion_timeout_minutes <= 1440 && floor(var.completion_timeout_minutes) == var.completion_timeout_minutes
    error_message = "completion_timeout_minutes must be a whole number between 15 and 1440; got ${jsonencode(var.completion_timeout_minutes)}."
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
  description = "SNS topic receiving a message per failed backup from the functions and the alarms (dead-letter messages, missed runs); null means neither."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>) or null; got ${jsonencode(var.alarm_sns_topic_arn)}."
  }
}

variable "missed_run_alarm_hours" {
  description = "Hours without a planner run before the backups-stopped alarm fires; null derives it from schedule_expression (interval between runs plus one hour)."
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
  description = "Tags added to every resource this module creates (not to the AMIs, which carry the ownership tags)."
  type        = map(string)
  nullable    = false
  default     = {}
}

################################################################################
# Restore tests
################################################################################

variable "restore_test" {
  description = "Scheduled restore tests (null = off): a third function launches the newest good AMI of each selected instance as a throw-away instance in an isolated subnet, checks it boots (status checks, optionally an SSM validation document), terminates it and tags the AMI with the result; acts in one region (region, null = the deployment region) and account (role_arn, null = this account, else one of target_role_arns); not with target_accounts or target_organizational_units (README: Restore tests)."
  type = object({
    schedule_expression   = string
    schedule_timezone     = optional(string, "UTC")
    region                = optional(string)
    role_arn              = optional(string)
    subnet_id             = string
    security_group_id     = string
    sources               = optional(string, "all")
    sample_size           = optional(number, 1)
    source_tags           = optional(map(string), {})
    max_concurrent        = optional(number, 2)
    deadline_minutes      = optional(number, 30)
    instance_type         = optional(string)
    validation_document   = optional(string)
    validation_parameters = optional(map(list(string)), {})
    instance_profile_name = optional(string)
    instance_role_arn     = optional(string)
    allow_routed_subnet   = optional(bool, false)
    kms_key_arns          = optional(list(string), [])
  })
  default = null

  validation {
    condition     = var.restore_test == null || can(regex("^(cron|rate|at)\\(.+\\)$", var.restore_test.schedule_expression))
    error_message = "restore_test.schedule_expression must be an EventBridge Scheduler expression: cron(...), rate(...) or at(...); got ${jsonencode(var.restore_test == null ? null : var.restore_test.schedule_expression)}."
  }

  validation {
    condition     = var.restore_test == null || can(regex("^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$", var.restore_test.schedule_timezone))
    error_message = "restore_test.schedule_timezone must be an IANA time zone name such as UTC or Asia/Tokyo; got ${jsonencode(var.restore_test == null ? null : var.restore_test.schedule_timezone)}."
  }

  validation {
    condition     = var.restore_test == null || try(var.restore_test.region == null, false) || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.restore_test.region))
    error_message = "restore_test.region must be null (the deployment region) or an AWS region name such as ap-northeast-1; got ${jsonencode(var.restore_test == null ? null : var.restore_test.region)}."
  }

  validation {
    condition     = var.restore_test == null || try(var.restore_test.role_arn == null, false) || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.restore_test.role_arn))
    error_message = "restore_test.role_arn must be null (this account) or an IAM role ARN (arn:<partition>:iam::<account>:role/<name>), one of target_role_arns; got ${jsonencode(var.restore_test == null ? null : var.restore_test.role_arn)}."
  }

  validation {
    condition     = var.restore_test == null || can(regex("^subnet-([0-9a-f]{8}|[0-9a-f]{17})$", var.restore_test.subnet_id))
    error_message = "restore_test.subnet_id must be a subnet id: subnet- followed by 8 or 17 lowercase hex digits; got ${jsonencode(var.restore_test == null ? null : var.restore_test.subnet_id)}."
  }

  validation {
    condition     = var.restore_test == null || can(regex("^sg-([0-9a-f]{8}|[0-9a-f]{17})$", var.restore_test.security_group_id))
    error_message = "restore_test.security_group_id must be a security group id: sg- followed by 8 or 17 lowercase hex digits; got ${jsonencode(var.restore_test == null ? null : var.restore_test.security_group_id)}."
  }

  validation {
    condition     = var.restore_test == null || try(contains(["all", "sample", "tagged"], var.restore_test.sources), false)
    error_message = "restore_test.sources must be all, sample or tagged; got ${jsonencode(var.restore_test == null ? null : var.restore_test.sources)}."
  }

  validation {
    condition     = var.restore_test == null || try(var.restore_test.sample_size >= 1 && var.restore_test.sample_size <= 1000 && floor(var.restore_test.sample_size) == var.restore_test.sample_size, false)
    error_message = "restore_test.sample_size must be a whole number between 1 and 1000; got ${jsonencode(var.restore_test == null ? null : var.restore_test.sample_size)}."
  }

  validation {
    condition     = var.restore_test == null || try(var.restore_test.sources != "tagged" || length(var.restore_test.source_tags) > 0, false)
    error_message = "restore_test.source_tags must name at least one tag (key = value) with sources = tagged; got ${jsonencode(var.restore_test == null ? null : var.restore_test.source_tags)}."
  }

  validation {
    condition     = var.restore_test == null || try(alltrue([for k in keys(var.restore_test.source_tags) : length(k) >= 1 && length(k) <= 128]), false)
    error_message = "restore_test.source_tags keys must be 1-128 characters; got ${jsonencode(var.restore_test == null ? null : var.restore_test.source_tags)}."
  }

  validation {
    condition     = var.restore_test == null || try(var.restore_test.max_concurrent >= 1 && var.restore_test.max_concurrent <= 20 && floor(var.restore_test.max_concurrent) == var.restore_test.max_concurrent, false)
    error_message = "restore_test.max_concurrent must be a whole number between 1 and 20 (tests running at once); got ${jsonencode(var.restore_test == null ? null : var.restore_test.max_concurrent)}."
  }

  validation {
    condition     = var.restore_test == null || try(var.restore_test.deadline_minutes >= 10 && var.restore_test.deadline_minutes <= 180 && floor(var.restore_test.deadline_minutes) == var.restore_test.deadline_minutes, false)
    error_message = "restore_test.deadline_minutes must be a whole number between 10 and 180 (minutes a test may take to pass); got ${jsonencode(var.restore_test == null ? null : var.restore_test.deadline_minutes)}."
  }

  validation {
    condition     = var.restore_test == null || try(var.restore_test.instance_type == null, false) || can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.restore_test.instance_type))
    error_message = "restore_test.instance_type must be null (the smallest type for the AMI's architecture) or an EC2 instance type such as t3.micro; got ${jsonencode(var.restore_test == null ? null : var.restore_test.instance_type)}."
  }

  validation {
    condition     = var.restore_test == null || try(var.restore_test.validation_document == null, false) || can(regex("^([a-zA-Z0-9_.-]{3,128}|arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:document/[a-zA-Z0-9_.-]{3,128})$", var.restore_test.validation_document))
    error_message = "restore_test.validation_document must be null or an SSM Command document name (3-128 letters, digits, _.-) or a shared document's ARN; got ${jsonencode(var.restore_test == null ? null : var.restore_test.validation_document)}."
  }

  validation {
    condition     = var.restore_test == null || try(var.restore_test.validation_document != null || length(var.restore_test.validation_parameters) == 0, false)
    error_message = "restore_test.validation_parameters are the parameters of validation_document, which is null; got ${jsonencode(var.restore_test == null ? null : var.restore_test.validation_parameters)}."
  }

  validation {
    condition     = var.restore_test == null || try(var.restore_test.instance_profile_name == null, false) || can(regex("^[A-Za-z0-9+=,.@_-]{1,128}$", var.restore_test.instance_profile_name))
    error_message = "restore_test.instance_profile_name must be null or an IAM instance profile name (1-128 letters, digits and +=,.@_-); got ${jsonencode(var.restore_test == null ? null : var.restore_test.instance_profile_name)}."
  }

  validation {
    condition     = var.restore_test == null || try((var.restore_test.instance_profile_name == null) == (var.restore_test.instance_role_arn == null), false)
    error_message = "restore_test.instance_profile_name and restore_test.instance_role_arn go together (the role of the profile, which the worker passes to EC2); got ${jsonencode(var.restore_test == null ? null : [var.restore_test.instance_profile_name, var.restore_test.instance_role_arn])}."
  }

  validation {
    condition     = var.restore_test == null || try(var.restore_test.instance_role_arn == null, false) || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.restore_test.instance_role_arn))
    error_message = "restore_test.instance_role_arn must be null or an IAM role ARN (arn:<partition>:iam::<account>:role/<name>); got ${jsonencode(var.restore_test == null ? null : var.restore_test.instance_role_arn)}."
  }

  validation {
    condition     = var.restore_test == null || try(var.restore_test.instance_profile_name == null || var.restore_test.validation_document != null, false)
    error_message = "restore_test.instance_profile_name is only used to run validation_document (SSM), which is null; got ${jsonencode(var.restore_test == null ? null : var.restore_test.instance_profile_name)}."
  }

  validation {
    condition     = var.restore_test == null || try(alltrue([for arn in var.restore_test.kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", arn))]), false)
    error_message = "restore_test.kms_key_arns entries must be KMS key ARNs (arn:<partition>:kms:<region>:<account>:key/<id>); got ${jsonencode(var.restore_test == null ? null : var.restore_test.kms_key_arns)}."
  }
}
