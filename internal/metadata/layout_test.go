package metadata

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func layoutOf(t *testing.T, props map[string]string) (NodeLayout, error) {
	t.Helper()
	bc, err := NewBrokerConfig(props)
	if err != nil {
		return NodeLayout{}, err
	}
	return bc.Layout()
}

// TestLayoutTutorialFile: a server.properties as the KRaft tutorial writes
// it, for one node, starts with its listeners and log dir.
func TestLayoutTutorialFile(t *testing.T) {
	f, err := os.Open("testdata/kraft-server1.properties")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	props, err := ParseProperties(f)
	if err != nil {
		t.Fatal(err)
	}
	l, err := layoutOf(t, props)
	if err != nil {
		t.Fatal(err)
	}
	want := NodeLayout{KafkaAddr: ":9092", AdvertisedAddr: "localhost:9092", ControllerAddr: ":19092",
		DataDir: "/tmp/server1/kraft-combined-logs", Voters: []Voter{{ID: 1, Addr: "localhost:19092"}}}
	if l.KafkaAddr != want.KafkaAddr || l.AdvertisedAddr != want.AdvertisedAddr || l.ControllerAddr != want.ControllerAddr ||
		l.DataDir != want.DataDir || len(l.Voters) != 1 || l.Voters[0] != want.Voters[0] {
		t.Fatalf("layout %+v, want %+v", l, want)
	}
}

// TestLayoutRefusals: what Strom cannot be yet is refused naming the
// setting, and mistakes are refused as invalid.
func TestLayoutRefusals(t *testing.T) {
	base := func(kv ...string) map[string]string {
		m := map[string]string{"node.id": "1", "listeners": "PLAINTEXT://:9092,CONTROLLER://:19092", "controller.quorum.voters": "1@localhost:19092"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		props   map[string]string
		notYet  bool
		mention string
	}{
		{"three voters, no controller listener", base("listeners", "PLAINTEXT://:9092", "controller.quorum.voters", "1@localhost:19092,2@localhost:19093,3@localhost:19094"), false, "no controller listener"},
		{"own voter on another port", base("controller.quorum.voters", "1@localhost:29092,2@localhost:19093,3@localhost:19094"), false, "node 1 the address localhost:29092"},
		{"broker only", base("process.roles", "broker"), true, "process.roles"},
		{"controller only", base("process.roles", "controller"), true, "process.roles"},
		{"two log dirs", base("log.dirs", "/a,/b"), true, "log.dirs"},
		{"bad role", base("process.roles", "broker,zookeeper"), false, "zookeeper"},
		{"bad voter", base("controller.quorum.voters", "one@localhost:19092"), false, "controller.quorum.voters"},
		{"voter without port", base("controller.quorum.voters", "1@localhost"), false, "controller.quorum.voters"},
		{"voter port out of range", base("controller.quorum.voters", "1@localhost:70000"), false, "controller.quorum.voters"},
		{"listener without port", base("listeners", "PLAINTEXT://localhost,CONTROLLER://:19092"), false, "listeners"},
		{"unbracketed ipv6", base("listeners", "PLAINTEXT://::1:9092,CONTROLLER://:19092"), false, "listeners"},
		{"node not a voter", base("node.id", "4"), false, "node.id=4"},
		{"unmapped listener", base("listeners", "EXTERNAL://:9092"), false, "EXTERNAL"},
		{"advertised unknown listener", base("advertised.listeners", "EXTERNAL://h:1", "listener.security.protocol.map", "EXTERNAL:PLAINTEXT,PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"), false, "EXTERNAL"},
		{"misspelt key", base("controller.quorum.voter", "1@h:1"), false, "controller.quorum.voter"},
	} {
		_, err := layoutOf(t, tc.props)
		if err == nil || errors.Is(err, ErrNotYet) != tc.notYet || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: %v; want an error mentioning %q (not yet: %v)", tc.name, err, tc.mention, tc.notYet)
		}
	}
	if l, err := layoutOf(t, base("listeners", "PLAINTEXT://[::1]:9092,CONTROLLER://:19092")); err != nil || l.KafkaAddr != "[::1]:9092" {
		t.Fatalf("bracketed ipv6: %+v %v", l, err)
	}
	if _, err := layoutOf(t, map[string]string{}); err != nil {
		t.Fatalf("no KRaft settings at all: %v", err)
	}
	l, err := layoutOf(t, base("controller.quorum.voters", "1@localhost:19092,2@localhost:19093,3@localhost:19094"))
	if err != nil || len(l.Voters) != 3 || l.ControllerAddr != ":19092" {
		t.Fatalf("three voters: %+v %v", l, err)
	}
}

// TestLayoutSecuredListeners: several client listeners at once, each with
// its protocol and advertised address (refused with ErrNotYet before TLS
// and SASL).
func TestLayoutSecuredListeners(t *testing.T) {
	l, err := layoutOf(t, map[string]string{
		"node.id":                        "1",
		"controller.quorum.voters":       "1@localhost:19092",
		"listeners":                      "PLAINTEXT://:9092,SSL://:9093,SASL_SSL://:9094,INTERNAL://:9095,CONTROLLER://:19092",
		"advertised.listeners":           "PLAINTEXT://a:9092,SASL_SSL://b:9094",
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,INTERNAL:SASL_PLAINTEXT,CONTROLLER:SSL",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{
		{Name: "PLAINTEXT", Protocol: "PLAINTEXT", Addr: ":9092", Advertised: "a:9092"},
		{Name: "SSL", Protocol: "SSL", Addr: ":9093"},
		{Name: "SASL_SSL", Protocol: "SASL_SSL", Addr: ":9094", Advertised: "b:9094"},
		{Name: "INTERNAL", Protocol: "SASL_PLAINTEXT", Addr: ":9095"},
	}
	if len(l.Listeners) != len(want) {
		t.Fatalf("listeners %+v, want %+v", l.Listeners, want)
	}
	for i := range want {
		if l.Listeners[i] != want[i] {
			t.Errorf("listener %d: %+v, want %+v", i, l.Listeners[i], want[i])
		}
	}
	if l.KafkaAddr != ":9092" || l.AdvertisedAddr != "a:9092" || l.ControllerAddr != ":19092" {
		t.Errorf("first listener %q/%q, controller %q", l.KafkaAddr, l.AdvertisedAddr, l.ControllerAddr)
	}
	if !l.Listeners[2].TLS() || !l.Listeners[2].SASL() || l.Listeners[1].SASL() || l.Listeners[3].TLS() {
		t.Errorf("TLS/SASL of %+v", l.Listeners)
	}
	// The controller listener keeps its protocol: the raft transport
	// speaks it (it was dropped, and the listener ran plaintext).
	if want := (Listener{Name: "CONTROLLER", Protocol: "SSL", Addr: ":19092"}); l.Controller != want {
		t.Errorf("controller listener %+v, want %+v", l.Controller, want)
	}
}

// FuzzLayout feeds arbitrary KRaft values (from a server.properties anyone
// writes) to Layout: it never panics, and a layout it accepts names a
// client listener only in the host:port form, and a controller listener
// whenever it has several voters.
func FuzzLayout(f *testing.F) {
	f.Add("PLAINTEXT://:9092,CONTROLLER://:19092", "PLAINTEXT://localhost:9092", "1@localhost:19092", "broker,controller", "1")
	f.Add("SSL://[::1]:9093", "", "1@h:1,2@h:2", "broker", "2")
	f.Add("x://", "y", "@", ",", "-1")
	f.Fuzz(func(t *testing.T, listeners, advertised, voters, roles, node string) {
		bc, err := NewBrokerConfig(map[string]string{"listeners": listeners, "advertised.listeners": advertised,
			"controller.quorum.voters": voters, "process.roles": roles, "node.id": node})
		if err != nil {
			return
		}
		l, err := bc.Layout()
		if err != nil {
			return
		}
		if l.KafkaAddr != "" && !validHostPort(l.KafkaAddr) || len(l.Voters) > 1 && l.ControllerAddr == "" {
			t.Fatalf("accepted %+v", l)
		}
	})
}
