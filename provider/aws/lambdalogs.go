package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/logs"
)

// logGroupPrefix starts the CloudWatch Logs group Lambda writes each of
// silo's functions' output to (/aws/lambda/<function name>).
const logGroupPrefix = "/aws/lambda/" + fnPrefix

// maxLogLines caps what one Logs call returns.
const maxLogLines = 10000

// Logs returns the log lines of account id's functions (the JSON lines the
// silo Lambda host writes on stdout, which Lambda sends to CloudWatch
// Logs, read back as the local log's entries) written at or after
// since, oldest first, at most limit (1000 if limit <= 0, at most 10000),
// read from CloudWatch Logs in the account through the deployer role.
// Lambda's own lines (START, END, REPORT) and lines naming another account
// are left out. To follow, call again with since just after the last
// line's time.
//
// # Errors
//
// CodeNotFound if the account does not exist; CodeUnavailable if AWS
// throttles the reads.
func (p *Provider) Logs(ctx context.Context, id silo.AccountID, since time.Time, limit int) ([]logs.Entry, error) {
	if err := parseID(id); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 1000
	}
	limit = min(limit, maxLogLines)
	awsID, err := p.awsID(ctx, id)
	if err != nil {
		return nil, err
	}
	m := p.member(awsID)
	var groups []string
	gin := &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(logGroupPrefix)}
	for {
		out, err := m.cwl.DescribeLogGroups(ctx, gin)
		if err != nil {
			return nil, fail(id, "list the functions' log groups", err)
		}
		for _, g := range out.LogGroups {
			groups = append(groups, aws.ToString(g.LogGroupName))
		}
		if out.NextToken == nil {
			break
		}
		gin.NextToken = out.NextToken
	}
	var lines []logs.Entry
	for _, g := range groups {
		// 10,000 events a page: AWS's default and most (the emulator
		// answers 50 without a next page otherwise).
		in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(g), StartTime: aws.Int64(since.UnixMilli()), Limit: aws.Int32(10000)}
		for n := 0; n < limit; {
			out, err := m.cwl.FilterLogEvents(ctx, in)
			if isCode(err, "ResourceNotFoundException") {
				break // deleted meanwhile
			}
			if err != nil {
				return nil, fail(id, "read the log group "+g, err)
			}
			for _, e := range out.Events {
				l, ok := parseLogLine(aws.ToString(e.Message))
				if !ok || l.Account != id || l.Time.Before(since) {
					continue
				}
				lines = append(lines, l)
				n++
			}
			if out.NextToken == nil || len(out.Events) == 0 {
				break
			}
			in.NextToken = out.NextToken
		}
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
	if len(lines) > limit {
		lines = lines[len(lines)-limit:]
	}
	return lines, nil
}

// parseLogLine reads one JSON line of the host (log/slog's JSON handler);
// false for anything else.
func parseLogLine(msg string) (logs.Entry, bool) {
	var raw map[string]any
	if json.Unmarshal([]byte(msg), &raw) != nil {
		return logs.Entry{}, false
	}
	str := func(k string) string {
		s, _ := raw[k].(string)
		delete(raw, k)
		return s
	}
	t, err := time.Parse(time.RFC3339Nano, str("time"))
	if err != nil {
		return logs.Entry{}, false
	}
	l := logs.Entry{Time: t, Level: str("level"), Account: silo.AccountID(str("account")), Function: str("function"), RequestID: str("request_id"), Msg: str("msg")}
	for k, v := range raw {
		if l.Attrs == nil {
			l.Attrs = map[string]string{}
		}
		if s, ok := v.(string); ok {
			l.Attrs[k] = s
		} else {
			b, _ := json.Marshal(v)
			l.Attrs[k] = fmt.Sprint(string(b))
		}
	}
	return l, l.Account != ""
}
