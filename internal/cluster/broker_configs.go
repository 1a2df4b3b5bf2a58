package cluster

import (
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
	c.configMu.Lock()
	defer c.configMu.Unlock()
	if err := c.store.SetBrokerConfigs(resource, cfg); err != nil {
		return err
	}
	c.loadDynamicConfigs()
	for _, t := range c.store.Topics() {
		c.applyLogConfigLocked(t)
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

// applyLogConfigLocked pushes t's resolved config to its open logs;
// configMu must be held for writing.
func (c *Cluster) applyLogConfigLocked(t metadata.Topic) {
	lc := metadata.LogConfig(metadata.Resolve(t.Configs, c.cfg.Broker))
	lc.Now = c.cfg.Now
	for _, p := range c.Partitions(t.Name) {
		p.SetConfig(lc)
	}
}
