variable "region" {
  description = "Region to deploy the schedule in (its tagged instances are started and stopped)."
  type        = string
  default     = "ap-northeast-1"
}

variable "name" {
  description = "Policy name: prefix of the resources and value of OPS_POLICY_NAME."
  type        = string
  default     = "office-hours"
}

variable "excluded_dates" {
  description = "Dates (YYYY-MM-DD, Asia/Tokyo) on which the instances are neither started nor stopped."
  type        = list(string)
  default     = ["2027-01-01", "2027-01-11", "2027-02-11"]
}

variable "volume_kms_key_arns" {
  description = "Customer managed KMS key ARNs of the target instances' EBS volumes, on which the worker may create the grant EC2 needs to start them."
  type        = list(string)
  default     = []
}

variable "powertools_layer_arn" {
  description = "Powertools layer version ARN; null uses the public layer of the region."
  type        = string
  default     = null
}
