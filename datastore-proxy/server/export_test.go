package server

import "time"

// SetDormantUsage sets how long forgotten tenants' usage is kept (idle.go)
// for a test, and returns what puts it back.
func SetDormantUsage(d time.Duration) (restore func()) {
	was := dormantUsage
	dormantUsage = d
	return func() { dormantUsage = was }
}
