package cluster

import (
	"github.com/stromhq/strom/internal/acl"
	"strconv"

	"github.com/stromhq/strom/internal/metadata"
)

// SetBrokerConfigs replaces the dynamic broker configs of a broker resource
// (resource is this node's id, or "" for the cluster-wide defaults; the
// caller checked which), persists them in the metadata store, and applies
// them before returning: every open log gets its config resolved again, so
// a topic without its own override follows the new broker value at once,
// and a restart finds the same values. Only dynamic broker configs
// (metadata.IsDynamicBrokerConfig) are accepted, each validated first;
// validateOnly stops after the checks.
func (c *Cluster) SetBrokerConfigs(resource string, cfg map[string]string, validateOnly bool) error {
	for k, v := range cfg {
		if err := metadata.ValidateDynamicBrokerConfig(k, v); err != nil {
			return err
		}
	}
	if validateOnly {
		return nil
	}
	if c.Replicated() {
		if err := c.store.SetBrokerConfigs(resource, cfg); err != nil {
			return err
		}
		c.reconcile()
		return nil
	}
	c.configMu.Lock()
	defer c.configMu.Unlock()
	if err := c.store.SetBrokerConfigs(resource, cfg); err != nil {
		return err
	}
	c.loadDynamicConfigs()
	for _, t := range c.store.Topics() {
		c.applySettingsLocked(t)
	}
	return nil
}

// BrokerConfigs returns a copy of the dynamic broker configs set on a
// broker resource (a node id, or "").
func (c *Cluster) BrokerConfigs(resource string) map[string]string {
	return c.store.BrokerConfigs(resource)
}

// loadDynamicConfigs gives the broker config the stored dynamic configs of
// this node and the cluster-wide defaults.
func (c *Cluster) loadDynamicConfigs() {
	node := strconv.FormatInt(int64(c.NodeID()), 10)
	c.cfg.Broker.SetDynamic(c.store.BrokerConfigs(node), c.store.BrokerConfigs(""))
}

// applySettingsLocked resolves t's settings again, swaps them in for the
// request path and pushes their log part to t's open logs; configMu must
// be held for writing.
func (c *Cluster) applySettingsLocked(t metadata.Topic) {
	s := c.resolveSettings(t)
	c.settings.Store(t.Name, s)
	for _, p := range c.Partitions(t.Name) {
		p.SetConfig(s.Log)
	}
}

// resolveSettings resolves t's settings with the broker's clock.
func (c *Cluster) resolveSettings(t metadata.Topic) *metadata.TopicSettings {
	if _, set := t.Configs["cleanup.policy"]; t.Name == OffsetsTopic && !set {
		// An offsets topic created before the log cleaner existed has no
		// cleanup.policy override: it is compacted all the same.
		cfgs := map[string]string{"cleanup.policy": offsetsTopicConfigs["cleanup.policy"]}
		for k, v := range t.Configs {
			cfgs[k] = v
		}
		t.Configs = cfgs
	}
	s := metadata.ResolveTopic(t.Configs, c.cfg.Broker)
	s.Log.Now = c.cfg.Now
	return s
}

// TopicSettings returns a topic's resolved, typed settings, or nil for a
// topic this broker does not have. The value is shared and never changes:
// a config change swaps in a new one.
func (c *Cluster) TopicSettings(topic string) *metadata.TopicSettings {
	if s, ok := c.settings.Load(topic); ok {
		return s.(*metadata.TopicSettings)
	}
	t, ok := c.store.Topic(topic)
	if !ok {
		return nil
	}
	c.configMu.RLock()
	defer c.configMu.RUnlock()
	s, _ := c.settings.LoadOrStore(topic, c.resolveSettings(t))
	return s.(*metadata.TopicSettings)
}

// Security is the security metadata's snapshot (SCRAM credentials), read
// without a lock.
func (c *Cluster) Security() *metadata.Security { return c.store.Security() }

// AlterScram changes SCRAM credentials (see metadata.Store.AlterScram).
func (c *Cluster) AlterScram(alts []metadata.ScramAlteration) ([]error, error) {
	return c.store.AlterScram(alts)
}

// ChangeTokens commits a change of delegation tokens (see
// metadata.Store.ChangeTokens).
func (c *Cluster) ChangeTokens(ch metadata.TokenChange) error { return c.store.ChangeTokens(ch) }

// CreateACLs stores ACL bindings (see metadata.Store.CreateACLs).
func (c *Cluster) CreateACLs(bs []acl.Binding) ([]error, error) { return c.store.CreateACLs(bs) }

// DeleteACLs removes the bindings filters select (metadata.Store.DeleteACLs).
func (c *Cluster) DeleteACLs(fs []acl.Filter) ([][]acl.Binding, error) { return c.store.DeleteACLs(fs) }
