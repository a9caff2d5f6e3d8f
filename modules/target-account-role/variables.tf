################################################################################
# What the hub's functions may do here
################################################################################

variable "grants" {
  description = "One role per key (a hub module's name, e.g. ami-backup): policy_json is that module's target_role_policy_json output, principal_arns its function role ARNs (the only principals the role trusts)."
  type = map(object({
    policy_json    = string
    principal_arns = list(string)
  }))
  nullable = false

  validation {
    # The key names the role and its inline policy: IAM name characters only (IAM and AWS STS quotas, "IAM name requirements").
    condition     = alltrue([for key in keys(var.grants) : can(regex("^[A-Za-z0-9+=,.@_-]+$", key))])
    error_message = "grants keys name the roles and their inline policies, so they may only hold letters, digits and +=,.@_-; invalid: ${jsonencode(var.grants == null ? null : [for key in keys(var.grants) : key if !can(regex("^[A-Za-z0-9+=,.@_-]+$", key))])}."
  }

  validation {
    condition     = alltrue([for grant in values(var.grants) : can(jsondecode(grant.policy_json))])
    error_message = "grants[*].policy_json must be a JSON policy document (a hub module's target_role_policy_json output); not valid JSON in: ${jsonencode(var.grants == null ? null : [for key, grant in var.grants : key if !can(jsondecode(grant.policy_json))])}."
  }

  validation {
    # A spoke role must not let the hub hop further (sts:) or widen its own rights (iam:); an Allow with NotAction or
    # a wildcard in the service prefix (`*` included) would grant both implicitly. Deny statements may name anything.
    condition = alltrue([
      for grant in values(var.grants) : alltrue([
        for statement in try(flatten([jsondecode(grant.policy_json).Statement]), []) : try(statement.Effect, "Allow") != "Allow" || (
          try(statement.NotAction, null) == null && alltrue([
            for action in flatten([try(statement.Action, [])]) :
            !strcontains(split(":", action)[0], "*") && !strcontains(split(":", action)[0], "?") && !contains(["sts", "iam"], lower(split(":", action)[0]))
          ])
        )
      ])
    ])
    error_message = "grants[*].policy_json must not allow any sts: or iam: action (also not through NotAction, \"*\" or a wildcard service prefix); offending grants: ${jsonencode(var.grants == null ? null : [
      for key, grant in var.grants : key if !alltrue([
        for statement in try(flatten([jsondecode(grant.policy_json).Statement]), []) : try(statement.Effect, "Allow") != "Allow" || (
          try(statement.NotAction, null) == null && alltrue([
            for action in flatten([try(statement.Action, [])]) :
            !strcontains(split(":", action)[0], "*") && !strcontains(split(":", action)[0], "?") && !contains(["sts", "iam"], lower(split(":", action)[0]))
          ])
        )
      ])
    ])}."
  }

  validation {
    condition     = alltrue([for grant in values(var.grants) : length(grant.principal_arns) >= 1])
    error_message = "grants[*].principal_arns must name at least one hub function role (a trust policy without a principal trusts nobody); empty in: ${jsonencode(var.grants == null ? null : [for key, grant in var.grants : key if length(grant.principal_arns) == 0])}."
  }

  validation {
    condition     = alltrue(flatten([for grant in values(var.grants) : [for arn in grant.principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", arn))]]))
    error_message = "grants[*].principal_arns entries must be IAM role ARNs (arn:<partition>:iam::<account>:role/<name>), the hub functions' roles; invalid: ${jsonencode(var.grants == null ? null : { for key, grant in var.grants : key => [for arn in grant.principal_arns : arn if !can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", arn))] if anytrue([for arn in grant.principal_arns : !can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", arn))]) })}."
  }
}

variable "role_name_prefix" {
  description = "Prefix of the role names: each role is named prefix-key, e.g. ops-automation-ami-backup."
  type        = string
  nullable    = false
  default     = "ops-automation"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,62}$", var.role_name_prefix))
    error_message = "role_name_prefix must be 1 to 62 letters, digits or +=,.@_- (IAM role name characters, leaving room for -<key>); got ${jsonencode(var.role_name_prefix)}."
  }
}

################################################################################
# Trust conditions
################################################################################

variable "external_id" {
  description = "External id every AssumeRole must carry (condition sts:ExternalId), the hub modules' target_role_external_id; null for none."
  type        = string
  default     = null

  validation {
    # RE2 caps a repetition at 1000, hence the separate length test (IAM and AWS STS quotas: 2 to 1,224 characters).
    condition     = var.external_id == null || try(length(var.external_id) >= 2 && length(var.external_id) <= 1224 && can(regex("^[\\w+=,.@:/-]+$", var.external_id)), false)
    error_message = "external_id must be null or 2 to 1224 characters of letters, digits and _+=,.@:/- (IAM and AWS STS quotas); got ${jsonencode(var.external_id)}."
  }
}

variable "organization_id" {
  description = "AWS Organizations id (o-...) the calling hub role must belong to (condition aws:PrincipalOrgID); null for none."
  type        = string
  default     = null

  validation {
    condition     = var.organization_id == null || can(regex("^o-[a-z0-9]{10,32}$", var.organization_id))
    error_message = "organization_id must be null or an AWS Organizations id (o- followed by 10 to 32 lowercase letters or digits); got ${jsonencode(var.organization_id)}."
  }
}

################################################################################
# Role settings
################################################################################

variable "max_session_duration" {
  description = "Longest session, in seconds, a caller may ask for; the hub functions assume the role with their execution role's credentials, which is role chaining (at most one hour), and never ask for more than the one-hour default, so values above 3600 only serve callers that are not chaining."
  type        = number
  nullable    = false
  default     = 3600

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200 && floor(var.max_session_duration) == var.max_session_duration
    error_message = "max_session_duration must be a whole number of seconds between 3600 and 43200 (IAM role MaxSessionDuration); got ${jsonencode(var.max_session_duration)}."
  }
}

variable "trust_policy_max_chars" {
  description = "Largest trust policy, in characters without white space, the plan accepts: the IAM quota \"Role trust policy length\" (2048 by default, adjustable up to 4096 through Service Quotas), raised here only once every account this module is applied in has the raised quota."
  type        = number
  nullable    = false
  default     = 2048

  validation {
    condition     = var.trust_policy_max_chars >= 2048 && var.trust_policy_max_chars <= 4096 && floor(var.trust_policy_max_chars) == var.trust_policy_max_chars
    error_message = "trust_policy_max_chars must be a whole number between 2048 (IAM's default \"Role trust policy length\") and 4096 (the most the quota can be raised to); got ${jsonencode(var.trust_policy_max_chars)}."
  }
}

variable "permissions_boundary_arn" {
  description = "ARN of a managed policy set as permissions boundary of every role (an account rule may require one); null for none."
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/[A-Za-z0-9+=,.@_/-]+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be null or an IAM managed policy ARN (arn:<partition>:iam::<account or aws>:policy/<name>); got ${jsonencode(var.permissions_boundary_arn)}."
  }
}

variable "tags" {
  description = "Tags added to every role."
  type        = map(string)
  nullable    = false
  default     = {}
}
