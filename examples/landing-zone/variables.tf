variable "region" {
  description = "Region of the hub (operations) account's deployment - the functions, queues, ledgers, schedules and the event bus the spokes forward to - and the first of the two Regions backed up in every account of the OUs."
  type        = string
  default     = "ap-northeast-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be a Region name such as ap-northeast-1; got ${jsonencode(var.region)}."
  }
}

variable "second_region" {
  description = "The other Region backed up in every account of the OUs, from which each workload account forwards its state events too (main.tf writes out one event-forwarding provider per workload account and Region; a third Region means one more provider block and module block per account)."
  type        = string
  default     = "ap-northeast-3"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.second_region))
    error_message = "second_region must be a Region name such as ap-northeast-3; got ${jsonencode(var.second_region)}."
  }
}

variable "name" {
  description = "Prefix of the hub's policies: each module is named \"<name>-<module>\" (its resources and ops-automation:policy tag)."
  type        = string
  default     = "landing-zone"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}$", var.name))
    error_message = "name must be 1-19 characters: lowercase letters, digits and hyphens, starting with a letter (\"<name>-ebs-snapshot\" must fit the modules' 32-character policy names); got ${jsonencode(var.name)}."
  }
}

variable "workload_a_deploy_role_arn" {
  description = "Deploy role Terraform assumes to create workload account A's roles (its account is workload account A), which the credentials running Terraform must be allowed to assume: OrganizationAccountAccessRole trusts only the management account, so from a CI or hub identity use a deployment role of your own that trusts it (Control Tower accounts: AWSControlTowerExecution, trusted by the management account)."
  type        = string
  default     = "arn:aws:iam::111111111111:role/OrganizationAccountAccessRole"

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.workload_a_deploy_role_arn))
    error_message = "workload_a_deploy_role_arn must be an IAM role ARN (arn:<partition>:iam::<account>:role/<name>); got ${jsonencode(var.workload_a_deploy_role_arn)}."
  }
}

variable "workload_b_deploy_role_arn" {
  description = "Deploy role Terraform assumes to create workload account B's roles (its account is workload account B), which the credentials running Terraform must be allowed to assume: OrganizationAccountAccessRole trusts only the management account, so from a CI or hub identity use a deployment role of your own that trusts it (Control Tower accounts: AWSControlTowerExecution, trusted by the management account)."
  type        = string
  default     = "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole"

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.workload_b_deploy_role_arn))
    error_message = "workload_b_deploy_role_arn must be an IAM role ARN (arn:<partition>:iam::<account>:role/<name>); got ${jsonencode(var.workload_b_deploy_role_arn)}."
  }
}

variable "role_name_prefix" {
  description = "Prefix of the workload accounts' roles: one role \"<prefix>-<module>\" per hub module in each account, the same name in every account (the hub modules' target_role_name)."
  type        = string
  default     = "ops-automation"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,50}$", var.role_name_prefix))
    error_message = "role_name_prefix must be 1 to 50 letters, digits or +=,.@_- (IAM role name characters, leaving room for -ebs-snapshot); got ${jsonencode(var.role_name_prefix)}."
  }
}

variable "external_id" {
  description = "External id the hub functions send on AssumeRole and the workload roles require (sts:ExternalId); a placeholder: choose your own, or null for none."
  type        = string
  default     = "landing-zone-example-7f3a"
}

variable "organization_id" {
  description = "AWS Organizations id (o-...) of the hub and the workload accounts, a placeholder to replace with your own: the hub modules assume the workload roles only in its accounts (aws:ResourceOrgID), the workload roles trust the hub only from it (aws:PrincipalOrgID), and the hub's default bus accepts events only from it."
  type        = string
  default     = "o-a1b2c3d4e5"

  validation {
    condition     = can(regex("^o-[a-z0-9]{10,32}$", var.organization_id))
    error_message = "organization_id must be an AWS Organizations id: o- followed by 10 to 32 lowercase letters or digits; got ${jsonencode(var.organization_id)}."
  }
}

variable "organizational_units" {
  description = "The OUs whose ACTIVE accounts the hub backs up (the modules' target_organizational_units; placeholders to replace with your own): an OU id ou-... or the root r-..., with recursive (default true) taking the accounts of the child OUs as well, each of which needs the workload roles and forwarding."
  type = list(object({
    id        = string
    recursive = optional(bool, true)
  }))
  nullable = false
  default  = [{ id = "ou-a1b2-c3d4e5f6" }]

  validation {
    condition     = length(var.organizational_units) > 0
    error_message = "organizational_units must name at least one OU or root: this example targets the organization (for a fixed list of accounts, use the modules' target_accounts instead)."
  }

  validation {
    # The Organizations API's ids: OU ^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$, root ^r-[0-9a-z]{4,32}$
    # (https://docs.aws.amazon.com/organizations/latest/APIReference/API_Parent.html).
    condition     = alltrue([for ou in var.organizational_units : can(regex("^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$", ou.id))])
    error_message = "organizational_units[*].id must be an OU id (ou- followed by 4 to 32 and 8 to 32 lowercase letters or digits, e.g. ou-a1b2-c3d4e5f6) or a root id (r-a1b2); invalid: ${jsonencode([for ou in var.organizational_units : ou.id if !can(regex("^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$", ou.id))])}."
  }
}

variable "organizations_role_arn" {
  description = "Role in the management account or a delegated administrator for AWS Organizations that the planners assume to list the OUs' accounts (it needs the modules' organizations_role_policy_json output and to trust their planner_role_arn); null when the hub account is itself the management account or a delegated administrator and lists them with the planners' own roles."
  type        = string
  default     = null

  validation {
    condition     = var.organizations_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.organizations_role_arn))
    error_message = "organizations_role_arn must be null or an IAM role ARN (arn:<partition>:iam::<account>:role/<name>); got ${jsonencode(var.organizations_role_arn)}."
  }
}

variable "powertools_layer_arn" {
  description = "Powertools layer version ARN; null uses the public layer of the region."
  type        = string
  default     = null
}
