variable "name" {
  description = "Policy name of the snapshot-copy module this region serves (prefix of the rule names)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,31}$", var.name))
    error_message = "name must be 1-32 characters: letters, digits and hyphens, starting with a letter; got ${jsonencode(var.name)}."
  }
}

variable "event_bus_arn" {
  description = "ARN of the source region's default event bus (the snapshot-copy module's event_bus_arn output)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/default$", var.event_bus_arn))
    error_message = "event_bus_arn must be a default event bus ARN (arn:<partition>:events:<region>:<account>:event-bus/default); got ${jsonencode(var.event_bus_arn)}."
  }
}

variable "event_forwarder_role_arn" {
  description = "ARN of the role EventBridge assumes to put the events on that bus (the snapshot-copy module's event_forwarder_role_arn output)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.event_forwarder_role_arn))
    error_message = "event_forwarder_role_arn must be an IAM role ARN (arn:<partition>:iam::<account>:role/<name>); got ${jsonencode(var.event_forwarder_role_arn)}."
  }
}

variable "copy_images" {
  description = "Whether the snapshot-copy module copies AMIs (its copy_images output): AMI state events are forwarded too."
  type        = bool
  nullable    = false
  default     = false
}

variable "tags" {
  description = "Tags added to every resource this module creates."
  type        = map(string)
  nullable    = false
  default     = {}
}
