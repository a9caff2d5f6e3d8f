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
    policy_json                    = string
    consumes_queue                 = optional(bool, false)
    schedule = optional(object({
      expression = string
      timezone   = optional(string, "UTC")
      input      = optional(string, "{}")
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
    condition     = alltrue([for f in values(var.functions) : can(jsondecode(f.policy_json).Statement)])
    error_message = "functions[*].policy_json must be an IAM policy document in JSON (with a Statement); invalid in: ${jsonencode(var.functions == null ? null : [for k, f in var.functions : k if !can(jsondecode(f.policy_json).Statement)])}."
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
      "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL", "OPS_POLICY_NAME",
      "OPS_WORK_QUEUE_URL", "OPS_LEDGER_TABLE", "OPS_IDEMPOTENCY_TABLE",
    ])) == 0
    error_message = "environment must not set variables the internal module owns; reserved names given: ${jsonencode(var.environment == null ? null : sort(setintersection(keys(var.environment), [
      "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL", "OPS_POLICY_NAME",
      "OPS_WORK_QUEUE_URL", "OPS_LEDGER_TABLE", "OPS_IDEMPOTENCY_TABLE",
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
  description = "Whether point-in-time recovery is enabled on the ledger and idempotency tables."
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

variable "failure_metrics" {
  description = "EMF metric names (namespace OpsAutomation, dimensions service and policy) that raise an alarm when their sum is above 0."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for m in var.failure_metrics : can(regex("^[A-Za-z][A-Za-z0-9]{0,63}$", m))])
    error_message = "failure_metrics entries must be 1-64 letters and digits, starting with a letter; invalid: ${jsonencode(var.failure_metrics == null ? null : [for m in var.failure_metrics : m if !can(regex("^[A-Za-z][A-Za-z0-9]{0,63}$", m))])}."
  }
}
