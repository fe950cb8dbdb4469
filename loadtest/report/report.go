// Package report turns the measurements of a scenario into a row of the load table and prints the table.
package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Row is one scenario's line of the table.
type Row struct {
	Scenario      string
	Requests      int
	RPS           float64
	P50, P95, P99 time.Duration
	Errors        int
}

// NewRow summarizes requests of a scenario that took elapsed in all: their rate and the
// percentiles of their latencies (nearest rank), errors included.
func NewRow(scenario string, latencies []time.Duration, elapsed time.Duration, errors int) Row {
	r := Row{Scenario: scenario, Requests: len(latencies), Errors: errors}
	if elapsed > 0 {
		r.RPS = float64(len(latencies)) / elapsed.Seconds()
	}
	sorted := slices.Clone(latencies)
	slices.Sort(sorted)
	r.P50, r.P95, r.P99 = Percentile(sorted, 50), Percentile(sorted, 95), Percentile(sorted, 99)
	return r
}

// Percentile is the p-th percentile (0 < p ≤ 100) of sorted by the nearest-rank method: the
// smallest value that at least p% of the values do not exceed; 0 for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Write prints rows as one table, in Markdown with aligned columns (it reads as it is in a
// terminal, and pastes into a README).
func Write(w io.Writer, rows []Row) error {
	head := []string{"scenario", "requests", "rps", "p50", "p95", "p99", "errors"}
	cells := [][]string{head}
	for _, r := range rows {
		cells = append(cells, []string{r.Scenario, strconv.Itoa(r.Requests), fmt.Sprintf("%.0f", r.RPS), ms(r.P50), ms(r.P95), ms(r.P99), strconv.Itoa(r.Errors)})
	}
	width := make([]int, len(head))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i == 0 {
				fmt.Fprintf(&b, "| %s%s ", c, pad) // the scenario, to the left
			} else {
				fmt.Fprintf(&b, "| %s%s ", pad, c) // the figures, to the right
			}
		}
		b.WriteString("|\n")
	}
	line(head)
	for i, wd := range width {
		if i == 0 {
			fmt.Fprintf(&b, "|%s", strings.Repeat("-", wd+2))
		} else {
			fmt.Fprintf(&b, "|%s:", strings.Repeat("-", wd+1))
		}
	}
	b.WriteString("|\n")
	for _, row := range cells[1:] {
		line(row)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ms prints a latency in milliseconds with two decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
