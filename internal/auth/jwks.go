package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// JWKSOptions are Kafka's settings for a JWKS fetched from its issuer
// (KIP-768): sasl.oauthbearer.jwks.endpoint.url, .refresh.ms,
// .retry.backoff.ms and .retry.backoff.max.ms. The package opens no
// socket: Fetch, the broker's, gets the document (an HTTP GET).
type JWKSOptions struct {
	Source string // the URL, for messages
	// Fetch returns the JWKS document, at most MaxJWKSBytes (more is an
	// error wrapping ErrBadJWKS), within ctx.
	Fetch           func(ctx context.Context) ([]byte, error)
	Refresh         time.Duration // between fetches that succeeded; default 1h
	RetryBackoff    time.Duration // first wait after a failed fetch; default 100ms
	RetryBackoffMax time.Duration // the waits double up to this; default 10s
	Logger          *slog.Logger
}

const (
	// FetchTimeout bounds one fetch of a JWKS.
	FetchTimeout = 10 * time.Second
	// MaxJWKSBytes bounds a JWKS document: an issuer's has a few keys.
	MaxJWKSBytes = 1 << 20
	// kidRefreshEvery: a token naming a kid the keys lack makes the JWKS
	// be fetched again (the issuer rotated its keys) at most this often,
	// so tokens with made-up kids cannot make the broker hammer the
	// issuer; kidRefreshWait bounds how long such a login waits for it.
	kidRefreshEvery = 10 * time.Second
	kidRefreshWait  = 5 * time.Second
)

// remoteJWKS is a validator's key source at a URL.
type remoteJWKS struct {
	opts JWKSOptions
	log  *slog.Logger

	mu        sync.Mutex // one fetch at a time
	lastFetch time.Time  // the last fetch begun for a missing kid, or by Run
}

// FetchJWKS makes a validator whose keys come from the JWKS o.Fetch gets.
// It fetches once, within FetchTimeout, before returning: a document that
// is not a JWKS (bad JSON, no usable key, too big) is an error, as a bad
// file is; a fetch that fails otherwise (the issuer down) is not: the
// broker starts, OAUTHBEARER logins fail until Run's retries get the keys,
// and a log line says why. Run fetches again every o.Refresh.
func FetchJWKS(ctx context.Context, o JWKSOptions) (*OAuthValidator, error) {
	if o.Fetch == nil {
		return nil, fmt.Errorf("%w: %s: no way to fetch it", ErrBadJWKS, o.Source)
	}
	if o.Refresh <= 0 {
		o.Refresh = time.Hour
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 100 * time.Millisecond
	}
	if o.RetryBackoffMax < o.RetryBackoff {
		o.RetryBackoffMax = max(o.RetryBackoff, 10*time.Second)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	r := &remoteJWKS{opts: o, log: o.Logger}
	v := &OAuthValidator{SubClaim: "sub", now: time.Now, remote: r}
	fctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	if err := r.fetch(fctx, v); err != nil {
		if errors.Is(err, ErrBadJWKS) {
			return nil, err
		}
		r.log.Error("oauthbearer: the JWKS cannot be fetched; OAUTHBEARER logins fail until it is (retrying)", "url", o.Source, "err", err)
	}
	return v, nil
}

// fetch gets the JWKS and swaps the validator's keys. A document that is
// not a usable JWKS keeps the keys in force (ErrBadJWKS).
func (r *remoteJWKS) fetch(ctx context.Context, v *OAuthValidator) error {
	b, err := r.opts.Fetch(ctx)
	if err != nil {
		return err
	}
	if len(b) > MaxJWKSBytes {
		return fmt.Errorf("%w: %s: over %d bytes", ErrBadJWKS, r.opts.Source, MaxJWKSBytes)
	}
	keys, err := parseJWKS(b, r.opts.Source)
	if err != nil {
		return err
	}
	v.keys.Store(&keys)
	return nil
}

// refreshForKid fetches the JWKS again for a token whose kid the keys
// lack, unless a fetch began less than kidRefreshEvery ago; it reports
// whether it fetched. Logins that ask at once wait for one fetch.
func (r *remoteJWKS) refreshForKid(v *OAuthValidator) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := v.now()
	if !r.lastFetch.IsZero() && now.Sub(r.lastFetch) < kidRefreshEvery {
		return false
	}
	r.lastFetch = now
	ctx, cancel := context.WithTimeout(context.Background(), kidRefreshWait)
	defer cancel()
	if err := r.fetch(ctx, v); err != nil {
		r.log.Warn("oauthbearer: fetching the JWKS again for an unknown key id failed", "url", r.opts.Source, "err", err)
		return false
	}
	return true
}

// Run fetches a remote JWKS every Refresh until ctx ends, and after a
// failed fetch again after RetryBackoff, doubling to RetryBackoffMax,
// keeping the keys in force meanwhile; a first failure of a run of them
// is logged as a warning, the recovery as info. A validator from a file
// returns at once. The caller owns the goroutine it runs on.
func (v *OAuthValidator) Run(ctx context.Context) {
	r := v.remote
	if r == nil {
		return
	}
	wait := r.opts.Refresh
	if v.keys.Load() == nil {
		wait = r.opts.RetryBackoff // the first fetch failed
	}
	failing := v.keys.Load() == nil
	backoff := r.opts.RetryBackoff
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		r.lastFetch = v.now()
		fctx, cancel := context.WithTimeout(ctx, FetchTimeout)
		err := r.fetch(fctx, v)
		cancel()
		r.mu.Unlock()
		switch {
		case err == nil:
			if failing {
				r.log.Info("oauthbearer: the JWKS is fetched again", "url", r.opts.Source)
			}
			failing, backoff, wait = false, r.opts.RetryBackoff, r.opts.Refresh
		default:
			if !failing && ctx.Err() == nil {
				r.log.Warn("oauthbearer: fetching the JWKS failed; keeping the keys in force and retrying", "url", r.opts.Source, "err", err)
			}
			failing, wait = true, backoff
			backoff = min(2*backoff, r.opts.RetryBackoffMax)
		}
		t.Reset(wait)
	}
}
