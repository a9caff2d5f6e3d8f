variable "region" {
  description = "Region of the hub (operations) account's deployment: the functions, queues, ledgers and schedules."
  type        = string
  default     = "ap-northeast-1"
}

variable "regions" {
  description = "Regions the hub backs up in every workload account (the modules' regions input)."
  type        = list(string)
  default     = ["ap-northeast-1", "ap-northeast-3"]
}

variable "name" {
  description = "Prefix of the hub's policies: each module is named \"<name>-<module>\" (its resources and ops-automation:policy tag)."
  type        = string
  default     = "landing-zone"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}$", var.name))
    error_message = "name must be 1-19 characters: lowercase letters, digits and hyphens, starting with a letter (\"<name>-ebs-snapshot\" must fit the modules' 32-character policy names)."
  }
}

variable "workload_a_deploy_role_arn" {
  description = "Deploy role Terraform assumes to create workload account A's roles (its account is workload account A), which the credentials running Terraform must be allowed to assume: OrganizationAccountAccessRole trusts only the management account, so from a CI or hub identity use a deployment role of your own that trusts it (Control Tower accounts: AWSControlTowerExecution, trusted by the management account)."
  type        = string
  default     = "arn:aws:iam::111111111111:role/OrganizationAccountAccessRole"

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.workload_a_deploy_role_arn))
    error_message = "workload_a_deploy_role_arn must be an IAM role ARN (arn:<partition>:iam::<account>:role/<name>)."
  }
}

variable "workload_b_deploy_role_arn" {
  description = "Deploy role Terraform assumes to create workload account B's roles (its account is workload account B), which the credentials running Terraform must be allowed to assume: OrganizationAccountAccessRole trusts only the management account, so from a CI or hub identity use a deployment role of your own that trusts it (Control Tower accounts: AWSControlTowerExecution, trusted by the management account)."
  type        = string
  default     = "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole"

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.workload_b_deploy_role_arn))
    error_message = "workload_b_deploy_role_arn must be an IAM role ARN (arn:<partition>:iam::<account>:role/<name>)."
  }
}

variable "role_name_prefix" {
  description = "Prefix of the workload accounts' roles: one role \"<prefix>-<module>\" per hub module in each account."
  type        = string
  default     = "ops-automation"
}

variable "external_id" {
  description = "External id the hub functions send on AssumeRole and the workload roles require (sts:ExternalId); a placeholder: choose your own, or null for none."
  type        = string
  default     = "landing-zone-example-7f3a"
}

variable "organization_id" {
  description = "AWS Organizations id (o-...) the hub account must belong to (aws:PrincipalOrgID on the workload roles); null for no such condition."
  type        = string
  default     = null
}

variable "powertools_layer_arn" {
  description = "Powertools layer version ARN; null uses the public layer of the region."
  type        = string
  default     = null
}
