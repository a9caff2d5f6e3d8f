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

variable "schedule_expression" {
  description = "EventBridge Scheduler expression of the slots on which the command is sent, evaluated in schedule_timezone (for example cron(0 2 * * ? *) for 02:00 every night)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^(cron|rate|at)\\(.+\\)$", var.schedule_expression))
    error_message = "schedule_expression must be an EventBridge Scheduler cron(...), rate(...) or at(...) expression; got ${jsonencode(var.schedule_expression)}."
  }
}

variable "schedule_timezone" {
  description = "IANA time zone the schedule is evaluated in (for example Asia/Tokyo)."
  type        = string
  nullable    = false
  default     = "UTC"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$", var.schedule_timezone))
    error_message = "schedule_timezone must be an IANA time zone name such as UTC or Asia/Tokyo; got ${jsonencode(var.schedule_timezone)}."
  }
}

################################################################################
# Document
################################################################################

variable "document_name" {
  description = "SSM document to run: the name of an AWS-owned document (AWS-RunShellScript) or of one of the target account's own, or the full ARN of a document shared from another account."
  type        = string
  nullable    = false

  # SendCommand DocumentName: ^[a-zA-Z0-9_\-.:/]{3,128}$ (names or ARNs; SSM API reference, SendCommand).
  validation {
    condition = length(var.document_name) <= 128 && (
      can(regex("^[a-zA-Z0-9_.-]{3,128}$", var.document_name)) ||
      can(regex("^arn:aws[a-z-]*:ssm:[a-z0-9-]+:([0-9]{12})?:document/[a-zA-Z0-9_.-]{3,128}$", var.document_name))
    )
    error_message = "document_name must be a document name of 3-128 letters, digits, _ . - or a document ARN (arn:<partition>:ssm:<region>:<account>:document/<name>), at most 128 characters; got ${jsonencode(var.document_name)}."
  }
}

variable "document_version" {
  description = "Version of the document to run: $DEFAULT, $LATEST or a version number; null means the document's default version."
  type        = string
  default     = null

  validation {
    condition     = var.document_version == null || can(regex("^([$]DEFAULT|[$]LATEST|[1-9][0-9]*)$", var.document_version))
    error_message = "document_version must be null, $DEFAULT, $LATEST or a version number (1, 2, ...); got ${jsonencode(var.document_version)}."
  }
}

variable "parameters" {
  description = "Document parameters passed to SendCommand (for example { commands = [\"/opt/backup/run.sh\"] }), each a list of strings; the execution timeout is set with execution_timeout_seconds instead; not secret: they are readable in the functions' environment, SSM's events and ListCommands, and the Terraform state; never put a secret in them: let the script read it on the instance with the instance's role (a Parameter Store SecureString or Secrets Manager)."
  type        = map(list(string))
  nullable    = false
  default     = {}

  validation {
    condition     = alltrue([for key in keys(var.parameters) : can(regex("^[a-zA-Z0-9_.-]{1,128}$", key)) && key != "executionTimeout"])
    error_message = "parameters keys must be document parameter names (1-128 letters, digits, _ . -), and not executionTimeout (set execution_timeout_seconds); invalid: ${jsonencode(var.parameters == null ? null : [for key in keys(var.parameters) : key if !(can(regex("^[a-zA-Z0-9_.-]{1,128}$", key)) && key != "executionTimeout")])}."
  }

  # The parameters travel in the functions' environment: Lambda allows 4 KB for all of a function's environment
  # variables together (Lambda quotas). This early per-variable bound is not sufficient on its own: instance_ids
  # and target_tags travel there too, and the precondition on the output function_environment_variables checks
  # the total.
  validation {
    condition     = length(jsonencode(var.parameters)) <= 2048
    error_message = "parameters must take at most 2,048 characters as JSON (they go into the functions' environment, which Lambda limits to 4 KB in all): put a longer script into your own SSM document; got ${var.parameters == null ? 0 : length(jsonencode(var.parameters))} characters."
  }
}

variable "execution_timeout_seconds" {
  description = "Seconds the document may run on an instance before it is stopped and reported as ExecutionTimedOut, passed as the document parameter executionTimeout; null leaves the document's own default (3600 for AWS-RunShellScript)."
  type        = number
  default     = null

  validation {
    condition     = var.execution_timeout_seconds == null || try(var.execution_timeout_seconds >= 1 && var.execution_timeout_seconds <= 172800 && floor(var.execution_timeout_seconds) == var.execution_timeout_seconds, false)
    error_message = "execution_timeout_seconds must be null or a whole number between 1 and 172800 (48 hours, the executionTimeout range of AWS-RunShellScript); got ${jsonencode(var.execution_timeout_seconds)}."
  }
}

variable "timeout_seconds" {
  description = "Delivery timeout (SendCommand TimeoutSeconds): seconds an instance may take to start the command before it is reported as DeliveryTimedOut, for example while stopped or offline; the API allows 30-2592000, and the verification deadline (at most 30 days) must also cover the execution timeout and 10 minutes, so in practice at most 2592000 minus the execution timeout minus 600."
  type        = number
  nullable    = false
  default     = 600

  validation {
    condition     = var.timeout_seconds >= 30 && var.timeout_seconds <= 2592000 && floor(var.timeout_seconds) == var.timeout_seconds
    error_message = "timeout_seconds must be a whole number between 30 and 2592000 (SendCommand TimeoutSeconds); got ${jsonencode(var.timeout_seconds)}."
  }
}

variable "max_concurrency" {
  description = "SendCommand MaxConcurrency: how many instances (50) or what share of the targets (10%) run the command at the same time."
  type        = string
  nullable    = false
  default     = "50"

  validation {
    condition     = can(regex("^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$", var.max_concurrency)) && length(var.max_concurrency) <= 7
    error_message = "max_concurrency must be a number of instances (1 or more) or a percentage (1% to 100%), as SendCommand MaxConcurrency; got ${jsonencode(var.max_concurrency)}."
  }
}

variable "max_errors" {
  description = "SendCommand MaxErrors: after how many failed instances (0) or what share of them (10%) SSM stops sending the command to the rest, which then end as Terminated; the default \"0\" is AWS's: the first failed instance stops the command, and every instance not yet started ends as Terminated (one alert each); set \"100%\" when the instances' runs are independent (backups, checks) so that one failure stops nothing."
  type        = string
  nullable    = false
  default     = "0"

  validation {
    condition     = can(regex("^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$", var.max_errors)) && length(var.max_errors) <= 7
    error_message = "max_errors must be a number of instances (0 or more) or a percentage (0% to 100%), as SendCommand MaxErrors; got ${jsonencode(var.max_errors)}."
  }
}

################################################################################
# Targets
################################################################################

variable "instance_ids" {
  description = "EC2 instance ids to run the command on, in addition to the instances matching target_tags (sent in requests of 50)."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    # Each listed id is an instance ARN in the worker's policy (70-80 characters), and IAM limits a role's inline
    # policies to 10,240 characters in all, whitespace excluded (IAM quotas). Estimated, not asserted by a test:
    # the worker's business policy at every maximum at once (aws-us-gov, 80 ids, five tags with 128/256-character
    # keys and values, a 128-character document name, five target roles) is about 8,300 characters before the
    # plumbing policy; realistic tags leave far more room. A larger fleet is targeted by tags.
    condition     = length(var.instance_ids) <= 80
    error_message = "instance_ids takes at most 80 ids (each is an instance ARN in the worker's IAM policy, which IAM limits to 10,240 characters); got ${var.instance_ids == null ? 0 : length(var.instance_ids)}: tag a larger fleet and use target_tags."
  }

  validation {
    condition     = alltrue([for id in var.instance_ids : can(regex("^i-([0-9a-f]{8}|[0-9a-f]{17})$", id))])
    error_message = "instance_ids entries must be EC2 instance ids: i- followed by 8 or 17 lowercase hex digits; invalid: ${jsonencode(var.instance_ids == null ? null : [for id in var.instance_ids : id if !can(regex("^i-([0-9a-f]{8}|[0-9a-f]{17})$", id))])}."
  }
}

variable "target_tags" {
  description = "Tags an instance must all carry to run the command (key = value), at most 5 keys; combined with instance_ids."
  type        = map(string)
  nullable    = false
  default     = {}

  # SendCommand Targets: "You can specify a maximum of five keys" (Systems Manager user guide, send-commands-multiple).
  validation {
    condition     = length(var.target_tags) <= 5
    error_message = "target_tags takes at most 5 keys (SendCommand Targets: five tag keys); got ${var.target_tags == null ? 0 : length(var.target_tags)}: ${jsonencode(var.target_tags == null ? null : keys(var.target_tags))}."
  }

  # SendCommand Target Key: ^[\p{L}\p{Z}\p{N}_.:/=\-@]*$, at most 163 characters with the "tag:" prefix (API_Target;
  # no "+", which EC2 tag keys allow); EC2 tag keys: at most 128 characters.
  validation {
    condition     = alltrue([for k in keys(var.target_tags) : length(k) <= 128 && can(regex("^[\\p{L}\\p{Z}\\p{N}_.:/=@-]{1,159}$", k))])
    error_message = "target_tags keys must be 1-128 letters, digits, spaces and _ . : / = @ - (SendCommand Targets refuse any other character, + included, with a ValidationException); invalid: ${jsonencode(var.target_tags == null ? null : [for k in keys(var.target_tags) : k if !(length(k) <= 128 && can(regex("^[\\p{L}\\p{Z}\\p{N}_.:/=@-]{1,159}$", k)))])}."
  }

  # aws: keys (aws:autoscaling:groupName, aws:cloudformation:stack-name) are refused although SendCommand's key
  # pattern admits them: no AWS page says SendCommand resolves tag:aws:... targets or that IAM evaluates
  # ssm:resourceTag/aws:... on an instance, and the functions' configuration (core targeting) refuses them too.
  validation {
    condition     = alltrue([for k in keys(var.target_tags) : !startswith(lower(k), "aws:")])
    error_message = "target_tags keys must not start with aws: (AWS-applied tags such as aws:autoscaling:groupName): whether SendCommand targets them and IAM's ssm:resourceTag condition matches them is not documented, and the functions refuse such keys; tag the instances with a key of your own (an Auto Scaling group can propagate it to its instances). Invalid: ${jsonencode(var.target_tags == null ? null : [for k in keys(var.target_tags) : k if startswith(lower(k), "aws:")])}."
  }
}

variable "regions" {
  description = "Regions to run the command in; an empty list means the deployment region."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for r in var.regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))])
    error_message = "regions entries must be AWS region names such as ap-northeast-1; invalid: ${jsonencode(var.regions == null ? null : [for r in var.regions : r if !can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))])}."
  }
}

variable "target_role_arns" {
  description = "IAM roles in other accounts to assume for running the command on their instances; an empty list means the deployment account only."
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

################################################################################
# Output of the command
################################################################################

variable "output_s3_bucket_name" {
  description = "S3 bucket the instances write the command's output to (the instances' role needs s3:PutObject there: instance_output_policy_json); null means no S3 output."
  type        = string
  default     = null

  validation {
    condition     = var.output_s3_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.output_s3_bucket_name))
    error_message = "output_s3_bucket_name must be null or an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit); got ${jsonencode(var.output_s3_bucket_name)}."
  }
}

variable "output_s3_key_prefix" {
  description = "Key prefix of the command's output in output_s3_bucket_name (SSM adds the command id, instance id and plugin); null means the bucket's root."
  type        = string
  default     = null

  validation {
    condition     = var.output_s3_key_prefix == null || try(length(var.output_s3_key_prefix) >= 1 && length(var.output_s3_key_prefix) <= 500 && !startswith(var.output_s3_key_prefix, "/"), false)
    error_message = "output_s3_key_prefix must be null or 1-500 characters not starting with / (SendCommand OutputS3KeyPrefix); got ${jsonencode(var.output_s3_key_prefix)}."
  }
}

variable "output_log_group_name" {
  description = "CloudWatch Logs group the instances write the command's output to; null means none, or /aws/ssm/<name> when create_output_log_group is true."
  type        = string
  default     = null

  validation {
    condition     = var.output_log_group_name == null || can(regex("^[.\\-_/#A-Za-z0-9]{1,512}$", var.output_log_group_name))
    error_message = "output_log_group_name must be null or a log group name of 1-512 letters, digits and _ - / . #; got ${jsonencode(var.output_log_group_name)}."
  }
}

variable "create_output_log_group" {
  description = "Whether the module creates the command output log group (output_log_group_name, by default /aws/ssm/<name>) in the deployment region with output_log_retention_days and kms_key_arn."
  type        = bool
  nullable    = false
  default     = false
}

variable "output_log_retention_days" {
  description = "Retention of the command output log group the module creates, in days."
  type        = number
  nullable    = false
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.output_log_retention_days)
    error_message = "output_log_retention_days must be one of the CloudWatch Logs values: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653; got ${jsonencode(var.output_log_retention_days)}."
  }
}

variable "notification_topic_arn" {
  description = "SNS topic SSM itself notifies of each instance whose invocation Failed, TimedOut or was Cancelled (SendCommand NotificationConfig), in addition to the module's own alerts; null means none, and it needs notification_role_arn."
  type        = string
  default     = null

  validation {
    condition     = var.notification_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.notification_topic_arn))
    error_message = "notification_topic_arn must be an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>) or null; got ${jsonencode(var.notification_topic_arn)}."
  }
}

variable "notification_role_arn" {
  description = "IAM role SSM assumes to publish to notification_topic_arn (SendCommand ServiceRoleArn; it trusts ssm.amazonaws.com and may sns:Publish there), which the worker may pass to SSM only; null means none."
  type        = string
  default     = null

  validation {
    condition     = var.notification_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.notification_role_arn))
    error_message = "notification_role_arn must be an IAM role ARN (arn:<partition>:iam::<account>:role/<name>) or null; got ${jsonencode(var.notification_role_arn)}."
  }
}

################################################################################
# Verification
################################################################################

variable "verify_deadline_minutes" {
  description = "Minutes after the send by which every instance must have a final status; null derives it from the timeouts (timeout_seconds plus execution_timeout_seconds, or 3600, rounded up to minutes, plus 15)."
  type        = number
  default     = null

  validation {
    # SSM keeps the command history for 30 days (Run Command history): a later check would find nothing.
    condition     = var.verify_deadline_minutes == null || try(var.verify_deadline_minutes >= 1 && var.verify_deadline_minutes <= 43200 && floor(var.verify_deadline_minutes) == var.verify_deadline_minutes, false)
    error_message = "verify_deadline_minutes must be null or a whole number between 1 and 43200 (30 days, how long SSM keeps the command history); got ${jsonencode(var.verify_deadline_minutes)}."
  }
}

variable "ledger_ttl_days" {
  description = "Days a ledger record is kept after its last update before DynamoDB expires it."
  type        = number
  nullable    = false
  default     = 400

  validation {
    # A record must outlive the longest verification deadline (30 days), or its check would find it gone.
    condition     = var.ledger_ttl_days >= 31 && floor(var.ledger_ttl_days) == var.ledger_ttl_days
    error_message = "ledger_ttl_days must be a whole number of at least 31 (a record must outlive the longest verification deadline, 30 days); got ${jsonencode(var.ledger_ttl_days)}."
  }
}

variable "worker_max_concurrency" {
  description = "Maximum concurrent worker invocations by the work queue (SQS event source maximum concurrency, 2-1000), so one slot's events cannot starve the account's SSM API."
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
  description = "SNS topic receiving a message per instance on which the command failed (and per command not sent) from the functions and the alarms (dead-letter messages, missed runs); null means neither."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>) or null; got ${jsonencode(var.alarm_sns_topic_arn)}."
  }
}

variable "missed_run_alarm_hours" {
  description = "Hours without a run of the planner before its missed-run alarm fires; null derives it from the schedule (interval plus one hour; a weekday-only cron counts as weekly and gets no alarm, so set 73 for weekday schedules)."
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
  description = "Customer managed KMS key ARN (same region) for function environment, logs (the command output log group too), queues, table and schedule; its policy needs kms_key_policy_json, and null means AWS-owned/managed keys; known at plan time (a key made in the same configuration: an ARN built from its key_id, as examples/complete does)."
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
  description = "Tags added to every resource this module creates (never to the instances the command runs on)."
  type        = map(string)
  nullable    = false
  default     = {}
}
