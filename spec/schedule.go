package spec

import (
	"fmt"
	"strconv"
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
	const how = "write five fields (minute hour day-of-month month day-of-week), such as \"0 3 * * *\", or @hourly, @daily, @weekly, @monthly"
	if err := checkCronFields(expr); err != nil {
		return nil, fmt.Errorf("%v; %s", err, how)
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("it is not a cron expression; %s", how)
	}
	return s, nil
}

// cronFields names the five fields of a cron expression and their ranges.
var cronFields = []struct {
	name     string
	min, max int
	names    bool // month and weekday names (JAN, MON) are allowed
}{
	{"minute", 0, 59, false}, {"hour", 0, 23, false}, {"day-of-month", 1, 31, false},
	{"month", 1, 12, true}, {"day-of-week", 0, 6, true},
}

// checkCronFields says which field of a five-field cron expression is
// wrong, and why, in the words of the expression: the parser's own errors
// ("end of range (99) above maximum (59): 99") name no field.
func checkCronFields(expr string) error {
	if strings.HasPrefix(strings.TrimSpace(expr), "@") {
		return nil // a descriptor: the parser knows them
	}
	fields := strings.Fields(expr)
	if len(fields) != len(cronFields) {
		return fmt.Errorf("it has %d field(s), not 5", len(fields))
	}
	for i, f := range fields {
		cf := cronFields[i]
		for _, part := range strings.Split(f, ",") {
			rng, step, hasStep := strings.Cut(part, "/")
			if hasStep {
				if n, err := strconv.Atoi(step); err != nil || n < 1 {
					return fmt.Errorf("the %s field %q has step %q; a step is a whole number from 1, as in */15", cf.name, f, step)
				}
			}
			if rng == "*" || rng == "?" {
				continue
			}
			lo, hi, _ := strings.Cut(rng, "-")
			for _, v := range []string{lo, hi} {
				if v == "" {
					continue
				}
				n, err := strconv.Atoi(v)
				if err != nil {
					if cf.names {
						continue // JAN, MON: the parser checks names
					}
					return fmt.Errorf("the %s field %q holds %q, which is not a number", cf.name, f, v)
				}
				if n < cf.min || n > cf.max {
					return fmt.Errorf("the %s field %q holds %d, outside %d-%d", cf.name, f, n, cf.min, cf.max)
				}
			}
		}
	}
	return nil
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
