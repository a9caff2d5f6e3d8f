variable "region" {
  description = "Region to deploy the clean-up in (the snapshots of AMIs deregistered there are deleted)."
  type        = string
  default     = "ap-northeast-1"
}

variable "name" {
  description = "Policy name: prefix of the resources this example creates."
  type        = string
  default     = "dereg-cleanup-example"
}

variable "scope" {
  description = "Which snapshots may be deleted: managed (made by this project's modules) or any (every AMI's snapshots)."
  type        = string
  default     = "managed"
}

variable "powertools_layer_arn" {
  description = "Powertools layer version ARN; null uses the public layer of the region."
  type        = string
  default     = null
}
