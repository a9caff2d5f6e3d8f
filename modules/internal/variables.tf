################################################################################
# Identity
################################################################################

variable "name" {
  description = "Policy name: prefix of every resource name, value of OPS_POLICY_NAME and of the ops-automation:policy tag."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,31}$", var.name))
    error_message = "name must be 1-32 characters: letters, digits and hyphens, starting with a letter; got ${jsonencode(var.name)}."
  }
}

variable "service_name" {
  description = "Module kind (for example ami-backup): POWERTOOLS_SERVICE_NAME and the service dimension of the metrics."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,31}$", var.service_name))
    error_message = "service_name must be 1-32 characters: lowercase letters, digits and hyphens, starting with a letter; got ${jsonencode(var.service_name)}."
  }
}

variable "tags" {
  description = "Tags added to every resource that supports them."
  type        = map(string)
  nullable    = false
  default     = {}
}

################################################################################
# Package
################################################################################

variable "source_dir" {
  description = "Folder zipped into the function package; null means the lambda_src folder of this repository."
  type        = string
  default     = null
}

################################################################################
# Functions
################################################################################

variable "functions" {
  description = "Functions to deploy, keyed by a short role name (planner, worker, ...); exactly one consumes the work queue."
  nullable    = false
  type = map(object({
    handler                        = string
    description                    = string
    timeout                        = optional(number, 60)
    memory_size                    = optional(number, 256)
    reserved_concurrent_executions = optional(number, -1)
    consumes_queue                 = optional(bool, false)
    # GetItem on the ledger for a function other than the queue consumer (which reads and writes it anyway): a
    # scheduled function whose planning reads what the worker recorded.
    reads_ledger = optional(bool, false)
    statements = optional(list(object({
      sid       = string
      actions   = list(string)
      resources = list(string)
      ownership = optional(string, "none")
      conditions = optional(list(object({
        test     = string
        variable = string
        values   = list(string)
      })), [])
    })), [])
    # Explicit Deny statements (guard rails that win over every Allow, such as an exclusion tag); they
    # grant nothing, so they carry no ownership.
    denials = optional(list(object({
      sid       = string
      actions   = list(string)
      resources = list(string)
      conditions = optional(list(object({
        test     = string
        variable = string
        values   = list(string)
      })), [])
    })), [])
    schedule = optional(object({
      expression = string
      timezone   = optional(string, "UTC")
      input      = optional(string, "{}")
      # true: the missed-run alarm of this function derives from its own expression only, whatever
      # missed_run_alarm_hours says (a second schedule of another rhythm, such as the weekly restore tests).
      own_missed_run_alarm = optional(bool, false)
    }))
  }))

  validation {
    condition     = alltrue([for k in keys(var.functions) : can(regex("^[a-z][a-z0-9-]{0,15}$", k))])
    error_message = "functions keys must be 1-16 characters: lowercase letters, digits and hyphens, starting with a letter; invalid: ${jsonencode(var.functions == null ? null : [for k in keys(var.functions) : k if !can(regex("^[a-z][a-z0-9-]{0,15}$", k))])}."
  }

  validation {
    condition     = length([for f in values(var.functions) : f if f.consumes_queue]) == 1
    error_message = "functions must contain exactly one entry with consumes_queue = true; entries with it: ${jsonencode(var.functions == null ? null : [for k, f in var.functions : k if f.consumes_queue])}."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : f.timeout >= 1 && f.timeout <= 900])
    error_message = "functions[*].timeout must be between 1 and 900 seconds; invalid: ${jsonencode(var.functions == null ? null : { for k, f in var.functions : k => f.timeout if !(f.timeout >= 1 && f.timeout <= 900) })}."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : f.memory_size >= 128 && f.memory_size <= 10240])
    error_message = "functions[*].memory_size must be between 128 and 10240 MB; invalid: ${jsonencode(var.functions == null ? null : { for k, f in var.functions : k => f.memory_size if !(f.memory_size >= 128 && f.memory_size <= 10240) })}."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : f.reserved_concurrent_executions >= -1])
    error_message = "functions[*].reserved_concurrent_executions must be -1 (unreserved) or a non-negative number; invalid: ${jsonencode(var.functions == null ? null : { for k, f in var.functions : k => f.reserved_concurrent_executions if !(f.reserved_concurrent_executions >= -1) })}."
  }

  validation {
    condition = alltrue(flatten([
      for f in values(var.functions) : [
        for s in f.statements : can(regex("^[A-Za-z0-9]{1,64}$", s.sid)) && contains(["none", "request", "resource", "unowned", "source"], s.ownership) && length(s.actions) > 0 && length(s.resources) > 0
      ]
    ]))
    error_message = "functions[*].statements entries need an alphanumeric sid, at least one action and one resource, and ownership none, request, resource, unowned or source; invalid: ${jsonencode(var.functions == null ? null : { for k, f in var.functions : k => [for s in f.statements : s if !(can(regex("^[A-Za-z0-9]{1,64}$", s.sid)) && contains(["none", "request", "resource", "unowned", "source"], s.ownership) && length(s.actions) > 0 && length(s.resources) > 0)] })}."
  }

  # ownership = "source" is the second reviewable exception (snapshot-copy): the sources of a copy were made
  # by another policy or by the user, so neither the request nor this policy's resource tags apply. Such a
  # statement may only copy or share (ec2:CopySnapshot, ec2:CopyImage, ec2:ModifySnapshotAttribute), and
  # must itself say which sources: an aws:ResourceTag/<key> condition, or resources naming exact ids (no *).
  validation {
    condition = alltrue(flatten([
      for f in values(var.functions) : [
        for s in f.statements : s.ownership != "source" || (
          alltrue([for a in s.actions : contains(["ec2:CopySnapshot", "ec2:CopyImage", "ec2:ModifySnapshotAttribute"], a)]) && (
            anytrue([for c in s.conditions : startswith(c.variable, "aws:ResourceTag/")]) ||
            alltrue([for r in s.resources : !strcontains(r, "*")])
          )
        )
      ]
    ]))
    error_message = "functions[*].statements with ownership source may only hold ec2:CopySnapshot, ec2:CopyImage or ec2:ModifySnapshotAttribute, and need an aws:ResourceTag/<key> condition or resources without *; invalid: ${jsonencode(var.functions == null ? null : { for k, f in var.functions : k => [for s in f.statements : s.sid if !(s.ownership != "source" || (alltrue([for a in s.actions : contains(["ec2:CopySnapshot", "ec2:CopyImage", "ec2:ModifySnapshotAttribute"], a)]) && (anytrue([for c in s.conditions : startswith(c.variable, "aws:ResourceTag/")]) || alltrue([for r in s.resources : !strcontains(r, "*")]))))] })}."
  }

  # ownership = "unowned" is the explicit, reviewable opt-out of the central rule for a clean-up that must
  # destroy what this project did not create (deregister-cleanup, scope = "any"): destroying actions only,
  # never creation or change.
  validation {
    condition = alltrue(flatten([
      for f in values(var.functions) : [
        for s in f.statements : s.ownership != "unowned" || alltrue([for a in s.actions : can(regex("^ec2:(Delete|Deregister)[A-Za-z]+$", a))])
      ]
    ]))
    error_message = "functions[*].statements with ownership unowned may only hold ec2:Delete*/ec2:Deregister* actions; invalid: ${jsonencode(var.functions == null ? null : { for k, f in var.functions : k => [for s in f.statements : s.sid if !(s.ownership != "unowned" || alltrue([for a in s.actions : can(regex("^ec2:(Delete|Deregister)[A-Za-z]+$", a))]))] })}."
  }

  validation {
    condition = alltrue(flatten([
      for f in values(var.functions) : [
        for s in f.denials : can(regex("^[A-Za-z0-9]{1,64}$", s.sid)) && length(s.actions) > 0 && length(s.resources) > 0 && alltrue([for a in s.actions : can(regex("^[a-z0-9-]+:[A-Za-z0-9]+$", a))])
      ]
    ]))
    error_message = "functions[*].denials entries need an alphanumeric sid, at least one single service:Action name and one resource; invalid: ${jsonencode(var.functions == null ? null : { for k, f in var.functions : k => [for s in f.denials : s.sid if !(can(regex("^[A-Za-z0-9]{1,64}$", s.sid)) && length(s.actions) > 0 && length(s.resources) > 0 && alltrue([for a in s.actions : can(regex("^[a-z0-9-]+:[A-Za-z0-9]+$", a))]))] })}."
  }

  # The central rule (docs/DESIGN.md): a statement that creates, copies, changes or destroys images or
  # snapshots is bound to the ownership tags: "request" when it creates them, "resource" when it acts on
  # existing ones.
  validation {
    condition = alltrue(flatten([
      for f in values(var.functions) : [
        for s in f.statements : s.ownership != "none" || !(
          anytrue([for a in s.actions : can(regex("^ec2:(Create|Copy|Delete|Deregister|Register|Modify|Reset|Enable|Disable|Restore|Lock|Unlock)", a))]) &&
          anytrue([for r in s.resources : can(regex(":(image|snapshot)/", r))])
        )
      ]
    ]))
    error_message = "functions[*].statements that create, copy, change or destroy images or snapshots need ownership request (creation) or resource (existing resources), not none; invalid: ${jsonencode(var.functions == null ? null : { for k, f in var.functions : k => [for s in f.statements : s.sid if !(s.ownership != "none" || !(anytrue([for a in s.actions : can(regex("^ec2:(Create|Copy|Delete|Deregister|Register|Modify|Reset|Enable|Disable|Restore|Lock|Unlock)", a))]) && anytrue([for r in s.resources : can(regex(":(image|snapshot)/", r))])))] })}."
  }

  # Describe/Get/List calls have no resource-level permissions for many services; anything else names its resources.
  validation {
    condition = alltrue(flatten([
      for f in values(var.functions) : [
        for s in f.statements : !contains(s.resources, "*") || alltrue([for a in s.actions : can(regex("^[a-z0-9-]+:(Describe|Get|List)[A-Za-z]+$", a))])
      ]
    ]))
    error_message = "functions[*].statements may use the \"*\" resource only with read actions (Describe*, Get*, List*); invalid: ${jsonencode(var.functions == null ? null : { for k, f in var.functions : k => [for s in f.statements : s.sid if !(!contains(s.resources, "*") || alltrue([for a in s.actions : can(regex("^[a-z0-9-]+:(Describe|Get|List)[A-Za-z]+$", a))]))] })}."
  }

  validation {
    condition = alltrue(flatten([
      for f in values(var.functions) : [for s in f.statements : [for a in s.actions : can(regex("^[a-z0-9-]+:[A-Za-z0-9]+$", a))]]
    ]))
    error_message = "functions[*].statements actions must be single service:Action names without wildcards; invalid: ${jsonencode(var.functions == null ? null : flatten([for f in values(var.functions) : [for s in f.statements : [for a in s.actions : a if !can(regex("^[a-z0-9-]+:[A-Za-z0-9]+$", a))]]]))}."
  }

  validation {
    condition = alltrue([
      for f in values(var.functions) : f.schedule == null ? true : can(regex("^(cron|rate|at)\\(.+\\)$", f.schedule.expression))
    ])
    error_message = "functions[*].schedule.expression must be a cron(...), rate(...) or at(...) expression; invalid: ${jsonencode(var.functions == null ? null : { for k, f in var.functions : k => f.schedule.expression if !(f.schedule == null ? true : can(regex("^(cron|rate|at)\\(.+\\)$", f.schedule.expression))) })}."
  }

  validation {
    condition = alltrue([
      for f in values(var.functions) : f.schedule == null ? true : try(length(keys(jsondecode(f.schedule.input))) >= 0, false)
    ])
    error_message = "functions[*].schedule.input must be a JSON object; invalid: ${jsonencode(var.functions == null ? null : { for k, f in var.functions : k => f.schedule.input if !(f.schedule == null ? true : try(length(keys(jsondecode(f.schedule.input))) >= 0, false)) })}."
  }
}

variable "resource_ownership" {
  description = "What ownership = resource requires on existing resources: policy (both ownership tags, this policy's own resources) or project (the managed-by tag only, resources of any policy of this project)."
  type        = string
  nullable    = false
  default     = "policy"

  validation {
    condition     = contains(["policy", "project"], var.resource_ownership)
    error_message = "resource_ownership must be policy or project; got ${jsonencode(var.resource_ownership)}."
  }
}

variable "queue_consumer_max_concurrency" {
  description = "Maximum concurrent invocations of the queue consumer by the SQS event source (2-1000, Lambda ScalingConfig.MaximumConcurrency)."
  type        = number
  nullable    = false
  default     = 5

  validation {
    condition     = var.queue_consumer_max_concurrency >= 2 && var.queue_consumer_max_concurrency <= 1000 && floor(var.queue_consumer_max_concurrency) == var.queue_consumer_max_concurrency
    error_message = "queue_consumer_max_concurrency must be a whole number between 2 and 1000 (Lambda ScalingConfig.MaximumConcurrency); got ${jsonencode(var.queue_consumer_max_concurrency)}."
  }
}

################################################################################
# Environment contract (docs/DESIGN.md): typed groups encoded into OPS_* variables
################################################################################

variable "scope" {
  description = "Accounts and regions the functions work in: explicit role ARNs, or accounts and AWS Organizations OUs reached through one role name, and the external id their AssumeRole calls carry (OPS_TARGET_REGIONS, OPS_TARGET_ROLE_ARNS, OPS_TARGET_ROLE_EXTERNAL_ID, OPS_TARGET_ACCOUNTS, OPS_TARGET_ORGANIZATIONAL_UNITS, OPS_TARGET_ROLE_NAME, OPS_ORGANIZATIONS_ROLE_ARN, OPS_EXCLUDE_ACCOUNTS); null leaves the group out."
  type = object({
    regions     = optional(list(string), [])
    role_arns   = optional(list(string), [])
    external_id = optional(string)
    # Landing-zone targeting (the public modules validate the combinations, with their own variable names, as
    # preconditions): accounts and OUs share role_name;
    # organization_id binds the wildcard AssumeRole of OU targeting; organizations_role_arn is the role the
    # planners assume for the Organizations reads (null: their own role); excluded_accounts are never targeted,
    # even when an OU holds them (management, hub, log-archive / audit accounts without the target role).
    accounts = optional(list(string), [])
    organizational_units = optional(list(object({
      id        = string
      recursive = optional(bool, true)
    })), [])
    role_name              = optional(string)
    organizations_role_arn = optional(string)
    organization_id        = optional(string)
    excluded_accounts      = optional(list(string), [])
  })
  default = null

  validation {
    condition     = var.scope == null || alltrue([for r in try(var.scope.regions, []) : r == "all-enabled" || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))])
    error_message = "scope.regions entries must be AWS region names such as ap-northeast-1, or all-enabled; invalid: ${jsonencode(var.scope == null ? null : [for r in var.scope.regions : r if !(r == "all-enabled" || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r)))])}."
  }

  validation {
    condition     = var.scope == null || !contains(try(var.scope.regions, []), "all-enabled") || length(try(var.scope.regions, [])) == 1
    error_message = "scope.regions may hold all-enabled (each target account's enabled regions) only alone; got ${jsonencode(var.scope == null ? null : var.scope.regions)}."
  }

  validation {
    condition     = var.scope == null || alltrue([for arn in try(var.scope.role_arns, []) : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", arn))])
    error_message = "scope.role_arns entries must be IAM role ARNs (arn:<partition>:iam::<account>:role/<name>); invalid: ${jsonencode(var.scope == null ? null : [for arn in var.scope.role_arns : arn if !can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", arn))])}."
  }

  validation {
    # RE2 caps a repetition at 1000, hence the separate length test (IAM and AWS STS quotas: 2 to 1,224 characters).
    condition     = try(var.scope.external_id == null, true) || try(length(var.scope.external_id) >= 2 && length(var.scope.external_id) <= 1224 && can(regex("^[\\w+=,.@:/-]+$", var.scope.external_id)), false)
    error_message = "scope.external_id must be null or 2 to 1224 characters of letters, digits and _+=,.@:/- (IAM and AWS STS quotas); got ${jsonencode(var.scope == null ? null : var.scope.external_id)}."
  }

  validation {
    condition     = var.scope == null || alltrue([for account in try(var.scope.accounts, []) : can(regex("^[0-9]{12}$", account))])
    error_message = "scope.accounts entries must be 12-digit AWS account ids; invalid: ${jsonencode(var.scope == null ? null : [for account in var.scope.accounts : account if !can(regex("^[0-9]{12}$", account))])}."
  }

  validation {
    condition     = var.scope == null || alltrue([for account in try(var.scope.excluded_accounts, []) : can(regex("^[0-9]{12}$", account))])
    error_message = "scope.excluded_accounts entries must be 12-digit AWS account ids; invalid: ${jsonencode(var.scope == null ? null : [for account in var.scope.excluded_accounts : account if !can(regex("^[0-9]{12}$", account))])}."
  }

  validation {
    # Organizations API reference, ListAccountsForParent ParentId: a root r-<4-32> or an OU ou-<4-32>-<8-32>.
    condition     = var.scope == null || alltrue([for unit in try(var.scope.organizational_units, []) : can(regex("^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$", unit.id))])
    error_message = "scope.organizational_units ids must be OU ids (ou-<4-32>-<8-32> lowercase letters or digits) or a root id (r-<4-32>); invalid: ${jsonencode(var.scope == null ? null : [for unit in var.scope.organizational_units : unit.id if !can(regex("^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$", unit.id))])}."
  }


  validation {
    condition     = try(var.scope.role_name == null, true) || can(regex("^([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}$", var.scope.role_name))
    error_message = "scope.role_name must be an IAM role name, optionally with a path (path/name); got ${jsonencode(var.scope == null ? null : var.scope.role_name)}."
  }

  validation {
    condition     = try(var.scope.organization_id == null, true) || can(regex("^o-[a-z0-9]{10,32}$", var.scope.organization_id))
    error_message = "scope.organization_id must be an AWS Organizations id (o- followed by 10-32 lowercase letters or digits); got ${jsonencode(var.scope == null ? null : var.scope.organization_id)}."
  }

  validation {
    condition     = try(var.scope.organizations_role_arn == null, true) || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.scope.organizations_role_arn))
    error_message = "scope.organizations_role_arn must be an IAM role ARN (arn:<partition>:iam::<account>:role/<name>) or null; got ${jsonencode(var.scope == null ? null : var.scope.organizations_role_arn)}."
  }
}

variable "targets" {
  description = "Resources the functions act on (OPS_INSTANCE_IDS, OPS_TARGET_TAGS, OPS_VOLUME_IDS, OPS_VOLUME_TAGS, OPS_EXCLUDE_VOLUME_TAGS, OPS_EXCLUDE_ROOT_VOLUME); null leaves the group out."
  type = object({
    instance_ids = optional(list(string), [])
    tags         = optional(map(string), {})
    # EBS volumes: listed or tagged volumes, and filters on the volumes of targeted instances.
    volume_ids          = optional(list(string), [])
    volume_tags         = optional(map(string), {})
    exclude_volume_tags = optional(map(string), {})
    exclude_root_volume = optional(bool, false)
  })
  default = null

  validation {
    condition     = var.targets == null || alltrue([for id in try(var.targets.volume_ids, []) : can(regex("^vol-([0-9a-f]{8}|[0-9a-f]{17})$", id))])
    error_message = "targets.volume_ids entries must be EBS volume ids: vol- followed by 8 or 17 lowercase hex digits; invalid: ${jsonencode(var.targets == null ? null : [for id in var.targets.volume_ids : id if !can(regex("^vol-([0-9a-f]{8}|[0-9a-f]{17})$", id))])}."
  }
}

variable "retention" {
  description = "Retention of what the functions create (OPS_GENERATIONS, OPS_MAX_AGE_DAYS, OPS_DRY_RUN); null leaves the group out."
  type = object({
    generations  = number
    max_age_days = optional(number)
    dry_run      = optional(bool, false)
  })
  default = null

  validation {
    condition     = var.retention == null || try(var.retention.generations >= 1 && floor(var.retention.generations) == var.retention.generations, false)
    error_message = "retention.generations must be a whole number of at least 1; got ${jsonencode(var.retention)}."
  }
}

variable "completion" {
  description = "How long asynchronous work may take and how long its ledger records live (OPS_COMPLETION_TIMEOUT_MINUTES, OPS_LEDGER_TTL_DAYS); null leaves the group out."
  type = object({
    timeout_minutes = number
    ledger_ttl_days = number
  })
  default = null

  validation {
    condition     = var.completion == null || try(var.completion.timeout_minutes >= 1 && var.completion.ledger_ttl_days >= 1, false)
    error_message = "completion.timeout_minutes and completion.ledger_ttl_days must be at least 1; got ${jsonencode(var.completion)}."
  }
}

variable "restore_test" {
  description = "Restore verification of the backups (OPS_RESTORE_TEST: a JSON object with every field of core/restore.py RestoreTestConfig, or \"\" when config is null, i.e. restore tests off); null leaves the group out (a module without restore tests)."
  type = object({
    config = optional(object({
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
      volume_type           = optional(string, "gp3")
      allow_routed_subnet   = optional(bool, false)
    }))
  })
  default = null

  # The public modules validate each field with their own names (restore_test.<field>); this is the backstop.
  validation {
    condition     = try(var.restore_test.config == null, true) || try(contains(["all", "sample", "tagged"], var.restore_test.config.sources), false)
    error_message = "restore_test.config.sources must be all, sample or tagged; got ${jsonencode(var.restore_test == null ? null : try(var.restore_test.config.sources, null))}."
  }
}

variable "environment" {
  description = "Module-specific environment variables added to every function, next to the internal OPS_*/POWERTOOLS_* ones."
  type        = map(string)
  nullable    = false
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.environment) : can(regex("^[A-Z][A-Z0-9_]*$", k))])
    error_message = "environment keys must be upper-case letters, digits and underscores, starting with a letter; invalid: ${jsonencode(var.environment == null ? null : [for k in keys(var.environment) : k if !can(regex("^[A-Z][A-Z0-9_]*$", k))])}."
  }

  validation {
    condition = length(setintersection(keys(var.environment), [
      "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL", "OPS_POLICY_NAME", "AWS_STS_REGIONAL_ENDPOINTS",
      "OPS_WORK_QUEUE_URL", "OPS_LEDGER_TABLE", "OPS_ALERT_TOPIC_ARN", "OPS_MAX_RECEIVE_COUNT", "OPS_TARGET_REGIONS", "OPS_TARGET_ROLE_ARNS",
      "OPS_TARGET_ROLE_EXTERNAL_ID", "OPS_TARGET_ACCOUNTS", "OPS_TARGET_ORGANIZATIONAL_UNITS", "OPS_TARGET_ROLE_NAME",
      "OPS_ORGANIZATIONS_ROLE_ARN", "OPS_EXCLUDE_ACCOUNTS", "OPS_INSTANCE_IDS", "OPS_TARGET_TAGS", "OPS_VOLUME_IDS", "OPS_VOLUME_TAGS", "OPS_EXCLUDE_VOLUME_TAGS",
      "OPS_EXCLUDE_ROOT_VOLUME", "OPS_GENERATIONS", "OPS_MAX_AGE_DAYS", "OPS_DRY_RUN",
      "OPS_COMPLETION_TIMEOUT_MINUTES", "OPS_LEDGER_TTL_DAYS", "OPS_RESTORE_TEST",
    ])) == 0
    error_message = "environment must not set variables the internal module owns (use scope, targets, retention, completion and restore_test); reserved names given: ${jsonencode(var.environment == null ? null : sort(setintersection(keys(var.environment), [
      "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL", "OPS_POLICY_NAME", "AWS_STS_REGIONAL_ENDPOINTS",
      "OPS_WORK_QUEUE_URL", "OPS_LEDGER_TABLE", "OPS_ALERT_TOPIC_ARN", "OPS_MAX_RECEIVE_COUNT", "OPS_TARGET_REGIONS", "OPS_TARGET_ROLE_ARNS",
      "OPS_TARGET_ROLE_EXTERNAL_ID", "OPS_TARGET_ACCOUNTS", "OPS_TARGET_ORGANIZATIONAL_UNITS", "OPS_TARGET_ROLE_NAME",
      "OPS_ORGANIZATIONS_ROLE_ARN", "OPS_EXCLUDE_ACCOUNTS", "OPS_INSTANCE_IDS", "OPS_TARGET_TAGS", "OPS_VOLUME_IDS", "OPS_VOLUME_TAGS", "OPS_EXCLUDE_VOLUME_TAGS",
      "OPS_EXCLUDE_ROOT_VOLUME", "OPS_GENERATIONS", "OPS_MAX_AGE_DAYS", "OPS_DRY_RUN",
      "OPS_COMPLETION_TIMEOUT_MINUTES", "OPS_LEDGER_TTL_DAYS", "OPS_RESTORE_TEST",
    ])))}."
  }
}

variable "runtime" {
  description = "Lambda Python runtime; the default Powertools layer is chosen to match it."
  type        = string
  nullable    = false
  default     = "python3.13"

  validation {
    condition     = contains(["python3.11", "python3.12", "python3.13"], var.runtime)
    error_message = "runtime must be one of python3.11, python3.12, python3.13; got ${jsonencode(var.runtime)}."
  }
}

variable "architecture" {
  description = "Lambda instruction set architecture; the default Powertools layer is chosen to match it."
  type        = string
  nullable    = false
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64; got ${jsonencode(var.architecture)}."
  }
}

variable "powertools_layer_arn" {
  description = "Powertools for AWS Lambda (Python) v3 layer version ARN; null means the public layer (version 27) of the deployment region."
  type        = string
  default     = null

  validation {
    condition     = var.powertools_layer_arn == null || can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$", var.powertools_layer_arn))
    error_message = "powertools_layer_arn must be a Lambda layer version ARN (arn:<partition>:lambda:<region>:<account>:layer:<name>:<version>) or null; got ${jsonencode(var.powertools_layer_arn)}."
  }
}

variable "log_level" {
  description = "Powertools log level of every function."
  type        = string
  nullable    = false
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL; got ${jsonencode(var.log_level)}."
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

variable "tracing_enabled" {
  description = "Whether the functions send traces to AWS X-Ray (Active tracing)."
  type        = bool
  nullable    = false
  default     = false
}

################################################################################
# Events
################################################################################

variable "event_patterns" {
  description = "EventBridge event patterns (JSON) whose matching events are forwarded to the work queue, keyed by a short rule name."
  type        = map(string)
  nullable    = false
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.event_patterns) : can(regex("^[a-z][a-z0-9-]{0,23}$", k))])
    error_message = "event_patterns keys must be 1-24 characters: lowercase letters, digits and hyphens, starting with a letter; invalid: ${jsonencode(var.event_patterns == null ? null : [for k in keys(var.event_patterns) : k if !can(regex("^[a-z][a-z0-9-]{0,23}$", k))])}."
  }

  validation {
    condition     = alltrue([for p in values(var.event_patterns) : try(length(keys(jsondecode(p))) > 0, false)])
    error_message = "event_patterns values must be non-empty JSON objects; invalid: ${jsonencode(var.event_patterns == null ? null : { for k, p in var.event_patterns : k => p if !try(length(keys(jsondecode(p))) > 0, false) })}."
  }
}

################################################################################
# Storage and encryption
################################################################################

variable "encrypted_log_group_names" {
  description = "Other log groups the calling module creates with kms_key_arn (in this region and account), added to the key policy's CloudWatch Logs statement."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "Customer managed KMS key ARN encrypting environment variables, logs, queues and tables; null means AWS-owned/managed keys."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<id>) or null; got ${jsonencode(var.kms_key_arn)}."
  }
}

variable "point_in_time_recovery" {
  description = "Whether point-in-time recovery is enabled on the ledger table."
  type        = bool
  nullable    = false
  default     = true
}

################################################################################
# Alarms
################################################################################

variable "alarm_sns_topic_arn" {
  description = "SNS topic ARN notified when an alarm fires and when it recovers; null means alarms without actions."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>) or null; got ${jsonencode(var.alarm_sns_topic_arn)}."
  }
}

variable "missed_run_alarm_hours" {
  description = "Hours without an invocation of a scheduled function before its missed-run alarm fires; null derives it from the schedule expression."
  type        = number
  default     = null

  # CloudWatch: Period x EvaluationPeriods <= 604,800 s (7 days) for periods of an hour or more.
  validation {
    condition     = var.missed_run_alarm_hours == null || try(var.missed_run_alarm_hours >= 1 && var.missed_run_alarm_hours <= 168 && floor(var.missed_run_alarm_hours) == var.missed_run_alarm_hours, false)
    error_message = "missed_run_alarm_hours must be null or a whole number between 1 and 168 (CloudWatch evaluates an alarm over at most 7 days); got ${jsonencode(var.missed_run_alarm_hours)}."
  }
}
