// Package ghz runs the ghz load-testing tool (github.com/bojand/ghz) once and reads its JSON report.
package ghz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/openhavip/havip/platform/mtls"
)

// Call is one ghz run: Total requests of Method on Target from Concurrency workers over one
// connection. Request i sends Data[i % len(Data)] (ghz's own rule for an array of messages),
// after ghz fills its template actions such as {{.RequestNumber}}.
type Call struct {
	// Method is the fully-qualified method, "havip.v1.HaVipService/CreateHaVip".
	Method string
	// Target is the server's host:port.
	Target string
	// TLS names the identity the calls are made as: the CA ghz trusts, and the certificate and
	// key it presents.
	TLS mtls.Files
	// Metadata is sent with every call (the API key, for tenant methods).
	Metadata map[string]string
	// Data are the request messages, each marshaled to JSON with the proto field names.
	Data []any
	// Total and Concurrency are ghz's -n and -c.
	Total, Concurrency int
	// Timeout bounds each request (ghz's --timeout; zero: 20s).
	Timeout time.Duration
}

// Result is what a run measured.
type Result struct {
	// Count is how many requests were made.
	Count int
	// Elapsed is the run's duration as ghz measured it (its "total").
	Elapsed time.Duration
	// Latencies holds every request's latency, errors included, in the order ghz lists them.
	Latencies []time.Duration
	// Errors counts the failed requests by message.
	Errors map[string]int
}

// ErrorCount is the number of failed requests.
func (r Result) ErrorCount() int {
	n := 0
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// Merge adds o's requests to r, as one longer run.
func (r *Result) Merge(o Result) {
	r.Count += o.Count
	r.Elapsed += o.Elapsed
	r.Latencies = append(r.Latencies, o.Latencies...)
	if len(o.Errors) > 0 && r.Errors == nil {
		r.Errors = map[string]int{}
	}
	for m, n := range o.Errors {
		r.Errors[m] += n
	}
}

// Runner runs the ghz binary at Bin, keeping its data and metadata files in Dir (they hold the
// API key: the directory should be private).
type Runner struct {
	Bin string
	Dir string
}

// report is the part of ghz's JSON report Run reads.
type report struct {
	Count     int           `json:"count"`
	Total     time.Duration `json:"total"`
	EndReason string        `json:"endReason"`
	Details   []struct {
		Latency time.Duration `json:"latency"`
		Error   string        `json:"error"`
		Status  string        `json:"status"`
	} `json:"details"`
}

// Run makes the run c describes and returns what ghz measured. A request that fails is counted
// in Result.Errors, not returned as an error; an error means ghz itself did not run or report.
func (r Runner) Run(ctx context.Context, c Call) (Result, error) {
	if c.Total <= 0 || c.Concurrency <= 0 || len(c.Data) == 0 {
		return Result{}, fmt.Errorf("ghz %s: want requests, workers and data (got %d, %d, %d messages)", c.Method, c.Total, c.Concurrency, len(c.Data))
	}
	files, err := os.MkdirTemp(r.Dir, "ghz-")
	if err != nil {
		return Result{}, fmt.Errorf("ghz %s: %w", c.Method, err)
	}
	defer func() { _ = os.RemoveAll(files) }()
	dataFile, mdFile := filepath.Join(files, "data.json"), filepath.Join(files, "metadata.json")
	if err := writeJSON(dataFile, c.Data); err != nil {
		return Result{}, fmt.Errorf("ghz %s: data: %w", c.Method, err)
	}
	md := c.Metadata
	if md == nil {
		md = map[string]string{}
	}
	if err := writeJSON(mdFile, md); err != nil {
		return Result{}, fmt.Errorf("ghz %s: metadata: %w", c.Method, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	args := []string{
		"--call", c.Method,
		"--cacert", c.TLS.CA, "--cert", c.TLS.Cert, "--key", c.TLS.Key,
		"--data-file", dataFile, "--metadata-file", mdFile,
		"--total", strconv.Itoa(c.Total), "--concurrency", strconv.Itoa(min(c.Concurrency, c.Total)),
		"--timeout", timeout.String(), "--connect-timeout", "10s",
		"--format", "json",
		c.Target,
	}
	cmd := exec.CommandContext(ctx, r.Bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil { // stopped: say why, not only that it was killed
			return Result{}, fmt.Errorf("ghz %s against %s: %w", c.Method, c.Target, ctx.Err())
		}
		return Result{}, fmt.Errorf("ghz %s against %s: %w: %s", c.Method, c.Target, err, strings.TrimSpace(stderr.String()))
	}
	res, err := parse(stdout.Bytes())
	if err != nil {
		return Result{}, fmt.Errorf("ghz %s: %w", c.Method, err)
	}
	if res.Count != c.Total {
		return Result{}, fmt.Errorf("ghz %s made %d requests of %d", c.Method, res.Count, c.Total)
	}
	return res, nil
}

// parse reads ghz's JSON report (--format json).
func parse(b []byte) (Result, error) {
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return Result{}, fmt.Errorf("read the JSON report: %w", err)
	}
	if rep.EndReason != "normal" {
		return Result{}, fmt.Errorf("the run ended early (%q)", rep.EndReason)
	}
	if len(rep.Details) != rep.Count {
		return Result{}, errors.New("the report lists fewer requests than it counts")
	}
	res := Result{Count: rep.Count, Elapsed: rep.Total, Latencies: make([]time.Duration, 0, len(rep.Details))}
	for _, d := range rep.Details {
		res.Latencies = append(res.Latencies, d.Latency)
		if d.Error != "" {
			if res.Errors == nil {
				res.Errors = map[string]int{}
			}
			res.Errors[d.Error]++
		}
	}
	return res, nil
}

// writeJSON writes v to a file only its owner may read.
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
