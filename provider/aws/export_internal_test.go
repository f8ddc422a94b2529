package aws

import "time"

// BucketName exposes the S3 name rule to the external tests.
var BucketName = bucketName

// AddAttempts is how many times Add tries before it gives up.
const AddAttempts = addAttempts

// SetClock makes p time the warm pool's claims by now instead of
// time.Now, before p is in use.
func SetClock(p *Provider, now func() time.Time) { p.now = now }
