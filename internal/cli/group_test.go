package cli

import (
	"context"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/stromhq/strom/internal/testutil"
)

// sortedLines sorts the lines of out, for output whose order across
// partitions is not defined.
func sortedLines(out string) string {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

func groupTable(rows ...[]string) string {
	return renderTable(append([][]string{row("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID")}, rows...)...)
}

func TestGroups(t *testing.T) {
	onClusters(t, stromHasGroups, func(t *testing.T, c *cluster) {
		c.ok(t, nil, "topic", "create", "g1", "-p", "2")
		at := func(p int32, ms int64, v string) *kgo.Record {
			return &kgo.Record{Topic: "g1", Partition: p, Value: []byte(v), Timestamp: time.UnixMilli(ms)}
		}
		c.seed(t, at(0, 1000, "a"), at(0, 2000, "b"), at(0, 3000, "c"), at(1, 1500, "d"), at(1, 2500, "e"))

		// A plain consumer commits nothing and creates no group.
		c.ok(t, nil, "consume", "g1", "--from-beginning", "-e")
		same(t, "no groups", c.ok(t, nil, "group", "list"), "GROUP  STATE  PROTOCOL-TYPE\n")

		same(t, "group consume", sortedLines(c.ok(t, nil, "consume", "g1", "--group", "billing", "--from-beginning", "--exit", "-f", `%p:%o:%v\n`)),
			"0:0:a\n0:1:b\n0:2:c\n1:0:d\n1:1:e\n")
		same(t, "list", c.ok(t, nil, "group", "list"), renderTable(row("GROUP", "STATE", "PROTOCOL-TYPE"), row("billing", "Empty", "consumer")))
		same(t, "list json", c.ok(t, nil, "group", "list", "--output", "json"),
			"[\n  {\n    \"group\": \"billing\",\n    \"state\": \"Empty\",\n    \"protocol_type\": \"consumer\",\n    \"coordinator\": 0\n  }\n]\n")
		same(t, "describe", c.ok(t, nil, "group", "describe", "billing"), groupTable(
			row("billing", "g1", 0, 3, 3, 0, "-", "-", "-"),
			row("billing", "g1", 1, 2, 2, 0, "-", "-", "-"))+"\nTotal lag: 0  State: Empty  Members: 0\n")

		c.seed(t, at(0, 4000, "f"), at(0, 5000, "g"))
		same(t, "describe with lag", c.ok(t, nil, "group", "describe", "--group", "billing"), groupTable(
			row("billing", "g1", 0, 3, 5, 2, "-", "-", "-"),
			row("billing", "g1", 1, 2, 2, 0, "-", "-", "-"))+"\nTotal lag: 2  State: Empty  Members: 0\n")
		same(t, "describe json", c.ok(t, nil, "group", "describe", "billing", "--output", "json"), `[
  {
    "group": "billing",
    "state": "Empty",
    "protocol_type": "consumer",
    "protocol": "",
    "coordinator": 0,
    "members": [],
    "partitions": [
      {
        "topic": "g1",
        "partition": 0,
        "current_offset": 3,
        "log_end_offset": 5,
        "lag": 2,
        "consumer_id": "",
        "host": "",
        "client_id": ""
      },
      {
        "topic": "g1",
        "partition": 1,
        "current_offset": 2,
        "log_end_offset": 2,
        "lag": 0,
        "consumer_id": "",
        "host": "",
        "client_id": ""
      }
    ],
    "total_lag": 2
  }
]
`)
		same(t, "resume from the commit", c.ok(t, nil, "consume", "g1", "-g", "billing", "-e"), "f\ng\n")

		plan := func(cur0, new0, cur1, new1 int64) string {
			return renderTable(row("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"),
				row("billing", "g1", 0, cur0, new0), row("billing", "g1", 1, cur1, new1))
		}
		same(t, "reset dry run", c.ok(t, nil, "group", "reset-offsets", "billing", "--topic", "g1", "--to-earliest"),
			plan(5, 0, 2, 0)+"\ndry run: nothing changed; add --execute to commit these offsets\n")
		same(t, "reset execute", c.ok(t, nil, "group", "reset-offsets", "billing", "--topic", "g1", "--to-earliest", "--execute"),
			plan(5, 0, 2, 0)+"\ncommitted new offsets for 2 partitions of group billing\n")
		same(t, "after reset", c.ok(t, nil, "group", "describe", "billing"), groupTable(
			row("billing", "g1", 0, 0, 5, 5, "-", "-", "-"),
			row("billing", "g1", 1, 0, 2, 2, "-", "-", "-"))+"\nTotal lag: 7  State: Empty  Members: 0\n")
		c.ok(t, nil, "group", "reset-offsets", "--group", "billing", "--topic", "g1:0", "--shift-by", "2", "--execute")
		c.ok(t, nil, "group", "reset-offsets", "billing", "--topic", "g1:1", "--to-offset", "99", "--execute")
		same(t, "shift and clamp", c.ok(t, nil, "group", "reset-offsets", "billing", "--all-topics", "--to-datetime", "2000", "--output", "json"), `{
  "group": "billing",
  "executed": false,
  "partitions": [
    {
      "topic": "g1",
      "partition": 0,
      "current_offset": 2,
      "new_offset": 1
    },
    {
      "topic": "g1",
      "partition": 1,
      "current_offset": 2,
      "new_offset": 1
    }
  ]
}
`)
		same(t, "to-latest", c.ok(t, nil, "group", "reset-offsets", "billing", "--all-topics", "--to-latest", "--execute"),
			plan(2, 5, 2, 2)+"\ncommitted new offsets for 2 partitions of group billing\n")
		c.fails(t, nil, "strom: give exactly one of --to-earliest, --to-latest, --to-offset N, --to-datetime T, --shift-by N\n",
			"group", "reset-offsets", "billing", "--all-topics", "--to-latest", "--to-earliest")
		c.fails(t, nil, "strom: give either --topic TOPIC[:P,P...] or --all-topics\n", "group", "reset-offsets", "billing", "--to-latest")
		c.fails(t, nil, "strom: topic \"g1\" has no partition 9 — it has 2 partitions\n", "group", "reset-offsets", "billing", "--topic", "g1:9", "--to-latest")

		// --count commits what was printed, not what was fetched.
		c.ok(t, nil, "topic", "create", "one", "-p", "1")
		c.ok(t, strings.NewReader("1\n2\n3\n"), "produce", "one")
		same(t, "count", c.ok(t, nil, "consume", "one", "-g", "counted", "--from-beginning", "-n", "2"), "1\n2\n")
		same(t, "counted commit", c.ok(t, nil, "group", "describe", "counted"), groupTable(
			row("counted", "one", 0, 2, 3, 1, "-", "-", "-"))+"\nTotal lag: 1  State: Empty  Members: 0\n")

		// Offsets can be set for a group that has never consumed.
		c.ok(t, nil, "group", "reset-offsets", "fresh", "--topic", "one", "--to-offset", "1", "--execute")
		same(t, "a new group's offsets", c.ok(t, nil, "group", "describe", "fresh"), groupTable(
			row("fresh", "one", 0, 1, 3, 2, "-", "-", "-"))+"\nTotal lag: 2  State: Empty  Members: 0\n")
		same(t, "consume from them", c.ok(t, nil, "consume", "one", "-g", "fresh", "-e"), "2\n3\n")

		same(t, "delete", c.ok(t, nil, "group", "delete", "billing", "counted", "fresh"), "deleted group billing\ndeleted group counted\ndeleted group fresh\n")
		c.fails(t, nil, "strom: group \"billing\" does not exist — see \"strom group list\"\n", "group", "describe", "billing")
		same(t, "list after delete", c.ok(t, nil, "group", "list"), "GROUP  STATE  PROTOCOL-TYPE\n")
	})
}

// TestGroupActiveMember runs a consumer in the background and checks how
// the group commands treat a group with a live member.
func TestGroupActiveMember(t *testing.T) {
	onClusters(t, stromHasGroups, func(t *testing.T, c *cluster) {
		c.ok(t, nil, "topic", "create", "live", "-p", "1")
		c.ok(t, strings.NewReader("x\ny\n"), "produce", "live")
		cmd := exec.Command(strom(t), "consume", "live", "--group", "watchers", "--from-beginning", "--client-id", "watcher-1")
		cmd.Env = append(cleanEnv(), "GORACE=atexit_sleep_ms=0", "STROM_BROKERS="+c.addr)
		var stdout, stderr testutil.SyncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()

		adm := c.admin(t)
		var member, host string
		deadline := time.Now().Add(30 * time.Second)
		for {
			ds, err := adm.DescribeGroups(context.Background(), "watchers")
			if err == nil && ds["watchers"].State == "Stable" && len(ds["watchers"].Members) == 1 && strings.Contains(stdout.String(), "y\n") {
				member, host = ds["watchers"].Members[0].MemberID, ds["watchers"].Members[0].ClientHost
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("group never became stable with one member (%v); consumer stderr: %s", err, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		// The live member commits every few seconds; until it does the
		// current offset may be unset, so wait for its first commit.
		want := groupTable(row("watchers", "live", 0, 2, 2, 0, member, host, "watcher-1")) + "\nTotal lag: 0  State: Stable  Members: 1\n"
		for got := ""; got != want; {
			if got = c.ok(t, nil, "group", "describe", "watchers"); time.Now().After(deadline) {
				same(t, "describe a live group", got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.fails(t, nil, "strom: group \"watchers\" has active members — stop its consumers first\n", "group", "delete", "watchers")
		c.fails(t, nil, "strom: group \"watchers\" is active (state Stable, 1 members) — stop its consumers first; offsets can only be reset while the group is inactive\n",
			"group", "reset-offsets", "watchers", "--topic", "live", "--to-earliest", "--execute")

		// Ctrl-C ends a consumer cleanly: exit 0, output flushed.
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("consumer after SIGINT: %v; stderr: %s", err, stderr.String())
		}
		same(t, "consumer output", stdout.String(), "x\ny\n")
		same(t, "consumer stderr", stderr.String(), "")
		same(t, "left the group", c.ok(t, nil, "group", "describe", "watchers"),
			groupTable(row("watchers", "live", 0, 2, 2, 0, "-", "-", "-"))+"\nTotal lag: 0  State: Empty  Members: 0\n")
	})
}

// TestGroupsUnsupported: against a cluster without consumer groups (kfake
// limited to the APIs of a groupless broker), the group commands and
// consume --group say so in one line.
func TestGroupsUnsupported(t *testing.T) {
	t.Parallel()
	vs := kversion.Stable()
	for _, k := range []int16{8, 9, 11, 12, 13, 14, 15, 16, 42} {
		vs.SetMaxKeyVersion(k, -1)
	}
	c := startKfake(t, kfake.MaxVersions(vs))
	c.ok(t, nil, "topic", "create", "t", "-p", "1")
	const hint = " — group commands need a broker that implements consumer groups\n"
	pre := "strom: the cluster at " + c.addr + " does not support consumer groups (it does not serve "
	c.fails(t, nil, pre+"ListGroups)"+hint, "group", "list")
	c.fails(t, nil, pre+"DescribeGroups, OffsetFetch)"+hint, "group", "describe", "g")
	c.fails(t, nil, pre+"DescribeGroups, OffsetFetch, OffsetCommit)"+hint, "group", "reset-offsets", "g", "--topic", "t", "--to-earliest")
	c.fails(t, nil, pre+"DeleteGroups)"+hint, "group", "delete", "g")
	c.fails(t, nil, pre+"JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch) — consume without --group\n", "consume", "t", "--group", "g")
}
