package group

import "fmt"

// Transactional offset commits (TxnOffsetCommit). The transaction
// coordinator keeps a transaction's offsets in its own log until the
// transaction ends; the group coordinator checks the committer when they
// are sent (KIP-447: the member and generation, so a zombie of an older
// generation cannot commit) and applies them when the transaction commits.

// ValidateTxnCommit checks who sends a TxnOffsetCommit: nobody is checked
// at generation -1 with no member id (clients before KIP-447); otherwise
// the member must be in the group at that generation (a KIP-848 member at
// its epoch). Unlike OffsetCommit, a group completing a rebalance is no
// reason to refuse: the offsets are applied only at the commit. A group
// that does not exist is ErrIllegalGeneration for a member.
//
// The offsets' metadata is checked against offset.metadata.max.bytes here,
// not when the transaction commits: a commit must then be able to apply
// them (ErrOffsetMetadataTooLarge).
func (c *Coordinator) ValidateTxnCommit(req CommitRequest) *Call[error] {
	call := newCall[error]()
	if err := validGroupID(req.Group); err != nil {
		call.reply(err)
		return call
	}
	for _, o := range req.Offsets {
		if len(o.Metadata) > c.cfg.MaxMetadataBytes {
			call.reply(fmt.Errorf("%w: %d bytes (offset.metadata.max.bytes %d)", ErrOffsetMetadataTooLarge, len(o.Metadata), c.cfg.MaxMetadataBytes))
			return call
		}
		if len(o.Topic) > maxString {
			call.reply(fmt.Errorf("%w: topic name of %d bytes", ErrInvalidRequest, len(o.Topic)))
			return call
		}
	}
	if req.Generation < 0 && req.MemberID == "" && req.InstanceID == "" {
		call.reply(nil)
		return call
	}
	err := c.dispatch(req.Group, false, func(g *group) {
		call.reply(g.validateTxnCommit(req))
		g.maybeCloseMailbox()
	})
	switch {
	case err == errGroupMissing:
		call.reply(ErrIllegalGeneration)
	case err != nil:
		call.reply(err)
	}
	return call
}

func (g *group) validateTxnCommit(req CommitRequest) error {
	if g.state == Dead {
		return ErrCoordinatorNotAvailable
	}
	if g.cg != nil {
		return g.validateConsumerCommit(req)
	}
	if _, err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		return err
	}
	if req.Generation != g.generation {
		return ErrIllegalGeneration
	}
	return nil
}

// CommitTxnOffsets applies the offsets of a committed transaction to a
// group, creating it if needed; the call completes once they are durable.
func (c *Coordinator) CommitTxnOffsets(groupID string, offsets []CommitOffset) *Call[CommitResult] {
	req := CommitRequest{Group: groupID, Generation: -1, Offsets: offsets, txnApply: true}
	for i := range req.Offsets {
		req.Offsets[i].Timestamp = -1
	}
	call := newCall[CommitResult]()
	if err := validGroupID(groupID); err != nil {
		call.reply(CommitResult{Err: err})
		return call
	}
	c.commitOn(req, call)
	return call
}
