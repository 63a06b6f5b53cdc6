# variables.tf — every setting of the s3torrent-lambda deployment (see main.tf and
# s3torrent-lambda(1)); only bucket_name and package_zip have no default.

variable "bucket_name" {
  description = "The existing bucket whose objects get .torrent files (S3_BUCKET)."
  type        = string
}

variable "package_zip" {
  description = "The zip built by contrib/lambda/package.sh (bootstrap + lib/)."
  type        = string
}

variable "architecture" {
  description = "x86_64 or arm64: must match the machine package.sh ran on."
  type        = string
  default     = "x86_64"
  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "The architecture must be x86_64 or arm64."
  }
}

variable "function_name" {
  description = "Name of the Lambda function (also the prefix of the other resources)."
  type        = string
  default     = "s3torrent"
}

variable "memory_mb" {
  description = "Function memory. 256 MB is enough for any object size; more memory also buys more CPU and so faster hashing."
  type        = number
  default     = 512
}

variable "timeout_s" {
  description = "Function timeout in seconds (at most 900). Hashing runs at roughly 50-200 MB/s: size it for the largest object."
  type        = number
  default     = 900
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions (-1: unreserved)."
  type        = number
  default     = -1
}

variable "table_name" {
  description = "DynamoDB status table (DDB_TABLE); created here."
  type        = string
  default     = "torrent-status"
}

variable "table_key_attr" {
  description = "Partition key attribute of the status table (DDB_KEY_ATTR)."
  type        = string
  default     = "s3_uri"
}

variable "trackers" {
  description = "Announce URLs (TRACKERS); empty: the built-in public UDP trackers. Must match what `s3torrent sync` uses for the same torrents."
  type        = list(string)
  default     = []
}

variable "webseed_base" {
  description = "Web seed base URL (WEBSEED_BASE); empty: none."
  type        = string
  default     = ""
}

variable "meta_version" {
  description = "v1, v2 or hybrid (META_VERSION)."
  type        = string
  default     = "v1"
}

variable "piece_length" {
  description = "Piece length such as 1M (PIECE_LENGTH); empty: the automatic rule."
  type        = string
  default     = ""
}

variable "exclude_prefixes" {
  description = "Key prefixes to leave alone (EXCLUDE_PREFIXES)."
  type        = list(string)
  default     = []
}

variable "filter_prefix" {
  description = "Only objects under this prefix trigger the function (S3 notification filter)."
  type        = string
  default     = ""
}

variable "use_sqs" {
  description = "true: S3 -> SQS (with a dead-letter queue) -> Lambda; false: S3 invokes the function directly (asynchronous, retried twice by Lambda)."
  type        = bool
  default     = true
}

variable "sqs_batch_size" {
  description = "Messages per invocation from SQS."
  type        = number
  default     = 5
}

variable "sqs_max_receive_count" {
  description = "Deliveries of a message before it goes to the dead-letter queue."
  type        = number
  default     = 5
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "fanout" {
  description = "Hash objects too big for one invocation in runs through the function's own SQS queue (docs/DESIGN.md §10); false: such objects are not started."
  type        = bool
  default     = true
}

variable "run_bytes" {
  description = "The most one run of a fan-out hashes (RUN_BYTES, a size such as 2G); empty: the runtime's default."
  type        = string
  default     = ""
}

variable "fanout_concurrency" {
  description = "Runs of fan-outs hashed at once (the runs event source mapping's maximum concurrency, 2 to 1000)."
  type        = number
  default     = 10
}
