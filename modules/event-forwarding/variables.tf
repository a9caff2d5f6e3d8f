################################################################################
# Forwarding
################################################################################

variable "hub_event_bus_arn" {
  description = "ARN of the hub's default event bus (the account and region where the ops-automation modules run), where this account's state events are sent."
  type        = string
  nullable    = false

  validation {
    # The hub modules' rules are on the default bus of their region (modules/internal events.tf).
    condition     = can(regex("^arn:aws[a-z-]*:events:[a-z]{2}(-[a-z]+)+-[0-9]:[0-9]{12}:event-bus/default$", var.hub_event_bus_arn))
    error_message = "hub_event_bus_arn must be the hub's default event bus ARN (arn:<partition>:events:<region>:<account>:event-bus/default); got ${jsonencode(var.hub_event_bus_arn)}."
  }
}

variable "name" {
  description = "Name of the rule, and prefix of the role this module creates (name-region, IAM role names being global to the account)."
  type        = string
  nullable    = false
  default     = "ops-automation-forward"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,47}$", var.name))
    error_message = "name must be 1-48 characters: letters, digits and hyphens, starting with a letter; got ${jsonencode(var.name)}."
  }
}

variable "detail_types" {
  description = "Detail types of the events forwarded; the default is every state event the hub modules complete work on (AMIs, snapshots, instance states, Run Command), and instance-scheduler's Auto Scaling and RDS events, and the EBS volume events of ebs-snapshot's restore tests, may be added."
  type        = list(string)
  nullable    = false
  default = [
    "EC2 AMI State Change",
    "EBS Snapshot Notification",
    "EBS Multi-Volume Snapshots Completion Status",
    "EC2 Instance State-change Notification",
    "EC2 Command Status-change Notification",
    "EC2 Command Invocation Status-change Notification",
  ]

  validation {
    condition = length(var.detail_types) > 0 && alltrue([for type in var.detail_types : contains([
      "EC2 AMI State Change", "EBS Snapshot Notification", "EBS Multi-Volume Snapshots Completion Status",
      "EC2 Instance State-change Notification", "EBS Volume Notification", "EC2 Command Status-change Notification",
      "EC2 Command Invocation Status-change Notification", "EC2 Instance Launch Successful",
      "EC2 Instance Terminate Successful", "EC2 Instance Launch Unsuccessful", "RDS DB Instance Event",
      "RDS DB Cluster Event",
    ], type)])
    error_message = "detail_types must be a non-empty list of the detail types the hub modules react to (EC2 AMI State Change, EBS Snapshot Notification, EBS Multi-Volume Snapshots Completion Status, EC2 Instance State-change Notification, EBS Volume Notification, EC2 Command Status-change Notification, EC2 Command Invocation Status-change Notification, EC2 Instance Launch Successful, EC2 Instance Terminate Successful, EC2 Instance Launch Unsuccessful, RDS DB Instance Event, RDS DB Cluster Event); got ${jsonencode(var.detail_types)}."
  }
}

################################################################################
# Role
################################################################################

variable "role_arn" {
  description = "Existing role EventBridge assumes to put the events on the hub bus (trusting events.amazonaws.com, allowed events:PutEvents on hub_event_bus_arn); null creates one."
  type        = string
  default     = null

  validation {
    condition     = var.role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.role_arn))
    error_message = "role_arn must be null or an IAM role ARN (arn:<partition>:iam::<account>:role/<name>); got ${jsonencode(var.role_arn)}."
  }
}

variable "permissions_boundary_arn" {
  description = "ARN of a managed policy set as permissions boundary of the role this module creates (an account rule may require one); null for none."
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/[A-Za-z0-9+=,.@_/-]+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be null or a managed policy ARN (arn:<partition>:iam::<account or aws>:policy/<name>); got ${jsonencode(var.permissions_boundary_arn)}."
  }
}

variable "tags" {
  description = "Tags added to every resource this module creates."
  type        = map(string)
  nullable    = false
  default     = {}
}
