package broker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/stromhq/strom/internal/auth"
)

// jwksFetcher is how the broker gets an OAUTHBEARER issuer's JWKS for
// package auth (which opens no socket): an HTTP GET of
// sasl.oauthbearer.jwks.endpoint.url, answered 200 with at most
// auth.MaxJWKSBytes. https trusts the system's CAs (SSL_CERT_FILE and
// SSL_CERT_DIR add others, as for any Go program); proxies come from the
// environment (HTTPS_PROXY, NO_PROXY).
func jwksFetcher(rawURL string, client *http.Client) (func(ctx context.Context) ([]byte, error), error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", rawURL)
	}
	if client == nil {
		client = &http.Client{Timeout: auth.FetchTimeout}
	}
	return func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", rawURL, resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, auth.MaxJWKSBytes+1))
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", rawURL, err)
		}
		return b, nil // auth refuses more than MaxJWKSBytes
	}, nil
}
