package aws

// BucketName exposes the S3 name rule to the external tests.
var BucketName = bucketName

// AddAttempts is how many times Add tries before it gives up.
const AddAttempts = addAttempts
