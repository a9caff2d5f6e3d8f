variable "region" {
  description = "Region to deploy the snapshot policy in (its volumes are snapshotted)."
  type        = string
  default     = "ap-northeast-1"
}

variable "name" {
  description = "Policy name: prefix of the resources and value of the ops-automation:policy tag."
  type        = string
  default     = "ebs-snapshot-example"
}

variable "powertools_layer_arn" {
  description = "Powertools layer version ARN; null uses the public layer of the region."
  type        = string
  default     = null
}
