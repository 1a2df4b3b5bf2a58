package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// Every listing command takes --output table|json. Tables are for people:
// aligned columns, "-" for an empty cell. JSON is for programs: one
// document, snake_case keys, numbers as numbers, the same data as the
// table and sometimes more.

const (
	outTable = "table"
	outJSON  = "json"
)

func addOutputFlag(cmd *cobra.Command, v *string) {
	// No -o: in strom, as in kcat, -o is consume's start offset.
	cmd.Flags().StringVar(v, "output", outTable, "output format: table or json")
}

func checkOutput(v string) error {
	if v != outTable && v != outJSON {
		return usageErr("--output %q: want table or json", v)
	}
	return nil
}

// table collects rows and writes them aligned.
type table struct {
	header []string
	rows   [][]string
}

func newTable(header ...string) *table { return &table{header: header} }

// add appends a row; cells are formatted with fmt's %v, and an empty cell
// is shown as "-".
func (t *table) add(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		s := fmt.Sprint(c)
		if s == "" {
			s = "-"
		}
		// A tab or newline inside a cell would break the alignment.
		row[i] = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, s)
	}
	t.rows = append(t.rows, row)
}

func (t *table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	line := func(cells []string) {
		io.WriteString(tw, strings.Join(cells, "\t"))
		io.WriteString(tw, "\n")
	}
	if len(t.header) > 0 {
		line(t.header)
	}
	for _, r := range t.rows {
		line(r)
	}
	return tw.Flush()
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// int32List renders broker ids as "1,2,3".
func int32List(ids []int32) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(id)))
	}
	return b.String()
}

// humanBytes renders a size for a table: exact below 1 KiB, then one
// decimal in binary units.
func humanBytes(n int64) string {
	if n < 0 {
		return "-"
	}
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f := float64(n) / 1024
	u := 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[u]
}

// offsetCell shows -1 (unknown) as "-".
func offsetCell(o int64) string {
	if o < 0 {
		return "-"
	}
	return strconv.FormatInt(o, 10)
}

// writeDescriptions writes describe output: one JSON array, or each
// description printed as a block, blocks separated by a blank line.
func writeDescriptions[T any](out io.Writer, output string, descs []T, print func(io.Writer, T)) error {
	if output == outJSON {
		return writeJSON(out, descs)
	}
	for i, d := range descs {
		blankLine(out, i)
		print(out, d)
	}
	return nil
}
