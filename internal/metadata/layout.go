package metadata

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// NodeLayout is what the KRaft settings of a server.properties (the
// tutorials' files: process.roles, node.id, controller.quorum.voters,
// listeners, advertised.listeners, controller.listener.names,
// listener.security.protocol.map, log.dirs) say about this node, checked.
// Empty fields mean the file did not say: the flags' values stand.
type NodeLayout struct {
	// KafkaAddr is the first client listener's host:port (listeners'
	// first entry that is not a controller listener).
	KafkaAddr string
	// AdvertisedAddr is that listener's advertised host:port.
	AdvertisedAddr string
	// Listeners are every client listener, in the order of listeners,
	// each with its security protocol (listener.security.protocol.map).
	Listeners []Listener
	// ControllerAddr is the controller listener's host:port.
	ControllerAddr string
	// Controller is the controller listener with its security protocol
	// (listener.security.protocol.map), which the metadata quorum's and
	// the partitions' raft transport speaks; zero without one.
	Controller Listener
	// DataDir is log.dirs (one directory), else log.dir.
	DataDir string
	// Voters are controller.quorum.voters.
	Voters []Voter
}

// Listener is one client listener of listeners.
type Listener struct {
	Name     string // upper case, as listener.security.protocol.map has it
	Protocol string // PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
	Addr     string // host:port to bind
	// Advertised is advertised.listeners' host:port for Name, "" if it
	// has none.
	Advertised string
}

// TLS reports whether the listener speaks TLS (SSL, SASL_SSL).
func (l Listener) TLS() bool { return l.Protocol == "SSL" || l.Protocol == "SASL_SSL" }

// SASL reports whether clients authenticate with SASL (SASL_PLAINTEXT,
// SASL_SSL).
func (l Listener) SASL() bool { return l.Protocol == "SASL_PLAINTEXT" || l.Protocol == "SASL_SSL" }

// Voter is one entry of controller.quorum.voters.
type Voter struct {
	ID   int32
	Addr string // host:port
}

// ErrNotYet marks a layout Strom understands but cannot run yet.
var ErrNotYet = fmt.Errorf("%w: not supported yet", ErrInvalidConfig)

// Layout checks the KRaft settings and returns the node layout they
// describe. A file for a node Strom cannot be yet (a broker-only or
// controller-only node) is refused with ErrNotYet and a message naming the
// setting, never started as something else. Several voters make a cluster,
// whose nodes need a controller listener.
func (b *BrokerConfig) Layout() (NodeLayout, error) {
	s := b.Settings()
	var l NodeLayout
	roles := map[string]bool{}
	for _, r := range s.ProcessRoles {
		if r != "broker" && r != "controller" {
			return l, fmt.Errorf("%w: process.roles=%s: %q is not broker or controller", ErrInvalidConfig, strings.Join(s.ProcessRoles, ","), r)
		}
		roles[r] = true
	}
	if !roles["broker"] || !roles["controller"] {
		return l, fmt.Errorf("%w: process.roles=%s: a Strom node is broker and controller at once (process.roles=broker,controller); separate brokers and controllers come with the cluster",
			ErrNotYet, strings.Join(s.ProcessRoles, ","))
	}
	protocols := map[string]string{}
	for _, e := range s.ListenerSecurityProtocolMap {
		name, proto, ok := strings.Cut(e, ":")
		if !ok || name == "" {
			return l, fmt.Errorf("%w: listener.security.protocol.map entry %q: want NAME:PROTOCOL", ErrInvalidConfig, e)
		}
		switch proto {
		case "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL":
		default:
			return l, fmt.Errorf("%w: listener.security.protocol.map entry %q: %s is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", ErrInvalidConfig, e, proto)
		}
		protocols[strings.ToUpper(name)] = proto
	}
	listeners, err := parseListeners("listeners", s.Listeners, protocols)
	if err != nil {
		return l, err
	}
	advertised, err := parseListeners("advertised.listeners", s.AdvertisedListeners, protocols)
	if err != nil {
		return l, err
	}
	isController := func(name string) bool {
		return slices.ContainsFunc(s.ControllerListenerNames, func(c string) bool { return strings.EqualFold(c, name) })
	}
	for _, ln := range listeners {
		if isController(ln.name) {
			if l.ControllerAddr != "" {
				return l, fmt.Errorf("%w: listeners has two controller listeners", ErrNotYet)
			}
			l.ControllerAddr = ln.addr
			l.Controller = Listener{Name: ln.name, Protocol: ln.proto, Addr: ln.addr}
			continue
		}
		cl := Listener{Name: ln.name, Protocol: ln.proto, Addr: ln.addr}
		for _, a := range advertised {
			if a.name == ln.name {
				cl.Advertised = a.addr
			}
		}
		if l.KafkaAddr == "" {
			l.KafkaAddr, l.AdvertisedAddr = cl.Addr, cl.Advertised
		}
		l.Listeners = append(l.Listeners, cl)
	}
	for _, a := range advertised {
		if !slices.ContainsFunc(listeners, func(x listener) bool { return x.name == a.name }) && len(listeners) > 0 {
			return l, fmt.Errorf("%w: advertised.listeners names %s, which listeners does not", ErrInvalidConfig, a.name)
		}
	}
	if len(s.LogDirs) > 1 {
		return l, fmt.Errorf("%w: log.dirs=%s: one data directory per node", ErrNotYet, strings.Join(s.LogDirs, ","))
	}
	if len(s.LogDirs) == 1 {
		l.DataDir = s.LogDirs[0]
	} else {
		l.DataDir = s.LogDir
	}
	for _, v := range s.ControllerQuorumVoters {
		idText, addr, ok := strings.Cut(v, "@")
		id, err := strconv.ParseInt(idText, 10, 32)
		if !ok || err != nil || id < 0 {
			return l, fmt.Errorf("%w: controller.quorum.voters entry %q: want id@host:port", ErrInvalidConfig, v)
		}
		if !validHostPort(addr) {
			return l, fmt.Errorf("%w: controller.quorum.voters entry %q: want id@host:port", ErrInvalidConfig, v)
		}
		if slices.ContainsFunc(l.Voters, func(x Voter) bool { return x.ID == int32(id) }) {
			return l, fmt.Errorf("%w: controller.quorum.voters names node %d twice", ErrInvalidConfig, id)
		}
		l.Voters = append(l.Voters, Voter{ID: int32(id), Addr: addr})
	}
	if len(l.Voters) > 0 && !slices.ContainsFunc(l.Voters, func(x Voter) bool { return x.ID == s.NodeID }) {
		return l, fmt.Errorf("%w: node.id=%d is not in controller.quorum.voters=%s, but this node is a controller",
			ErrInvalidConfig, s.NodeID, strings.Join(s.ControllerQuorumVoters, ","))
	}
	if len(l.Voters) > 1 {
		// A node of a cluster: its controller listener is where its peers
		// reach it, so it must be given, on the port its voter entry names.
		if l.ControllerAddr == "" {
			return l, fmt.Errorf("%w: controller.quorum.voters names %d nodes but listeners has no controller listener (controller.listener.names=%s); add e.g. CONTROLLER://:9093",
				ErrInvalidConfig, len(l.Voters), strings.Join(s.ControllerListenerNames, ","))
		}
		for _, v := range l.Voters {
			if v.ID == s.NodeID && portOf(v.Addr) != portOf(l.ControllerAddr) {
				return l, fmt.Errorf("%w: controller.quorum.voters gives node %d the address %s, but its controller listener is %s",
					ErrInvalidConfig, v.ID, v.Addr, l.ControllerAddr)
			}
		}
	}
	return l, nil
}

type listener struct{ name, proto, addr string }

func parseListeners(key string, entries []string, protocols map[string]string) ([]listener, error) {
	var out []listener
	for _, e := range entries {
		name, rest, ok := strings.Cut(e, "://")
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: %s entry %q: want NAME://host:port", ErrInvalidConfig, key, e)
		}
		name = strings.ToUpper(name)
		if !validHostPort(rest) {
			return nil, fmt.Errorf("%w: %s entry %q: want NAME://host:port", ErrInvalidConfig, key, e)
		}
		proto, ok := protocols[name]
		if !ok {
			return nil, fmt.Errorf("%w: %s entry %q: listener name %s is not in listener.security.protocol.map", ErrInvalidConfig, key, e, name)
		}
		if slices.ContainsFunc(out, func(x listener) bool { return x.name == name }) {
			return nil, fmt.Errorf("%w: %s names %s twice", ErrInvalidConfig, key, name)
		}
		out = append(out, listener{name: name, proto: proto, addr: rest})
	}
	return out, nil
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// validHostPort reports whether addr is host:port with a port of 1 to 65535
// (host may be empty, a name, an IPv4 address or a bracketed IPv6 one).
// Metadata checks the form only; it opens no socket and imports no net.
func validHostPort(addr string) bool {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return false
	}
	host, port := addr[:i], addr[i+1:]
	if strings.ContainsRune(host, ':') && !(strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]")) {
		return false // an IPv6 address needs brackets
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == port
}
