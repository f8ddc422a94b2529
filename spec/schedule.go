package spec

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Limits of a schedule's interval.
const (
	MinEvery = time.Minute
	MaxEvery = 7 * 24 * time.Hour
)

// cronParser reads the five standard fields (minute, hour, day of month,
// month, day of week) and the descriptors @hourly, @daily, @weekly,
// @monthly, @yearly.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// parseCron checks a cron expression; the error says what is wrong in a
// sentence.
func parseCron(expr string) (cron.Schedule, error) {
	if strings.HasPrefix(strings.TrimSpace(expr), "@every") {
		return nil, fmt.Errorf("use \"every: <duration>\" instead of @every")
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%v; write five fields (minute hour day-of-month month day-of-week), such as \"0 3 * * *\", or @hourly, @daily, @weekly, @monthly", err)
	}
	return s, nil
}

// Next returns the first time after t at which s is due: the next match of
// its cron expression (in UTC), or the next multiple of its interval since
// the Unix epoch (so every account and every restart agree). It returns the
// zero time for a schedule that does not validate.
func (s Schedule) Next(t time.Time) time.Time {
	if s.Every > 0 {
		return time.Unix(0, 0).Add(t.Sub(time.Unix(0, 0)).Truncate(s.Every) + s.Every).UTC()
	}
	c, err := parseCron(s.Cron)
	if err != nil {
		return time.Time{}
	}
	return c.Next(t.UTC())
}
