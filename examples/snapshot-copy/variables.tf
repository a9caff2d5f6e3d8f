variable "region" {
  description = "Source region: the ebs-snapshot policy and the copy policy are deployed here."
  type        = string
  default     = "ap-northeast-1"
}

variable "destination_region" {
  description = "Destination region of the copies (the aws.osaka provider)."
  type        = string
  default     = "ap-northeast-3"
}

variable "name" {
  description = "Name of the copy policy: prefix of its resources and value of the ops-automation:policy tag on the copies."
  type        = string
  default     = "snapshot-copy-example"
}

variable "source_policy_name" {
  description = "Name of the ebs-snapshot policy whose snapshots are copied."
  type        = string
  default     = "snapshot-copy-source"
}

variable "powertools_layer_arn" {
  description = "Powertools layer version ARN; null uses the public layer of the region."
  type        = string
  default     = null
}
