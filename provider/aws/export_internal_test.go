package aws

// BucketName exposes the S3 name rule to the external tests.
var BucketName = bucketName
